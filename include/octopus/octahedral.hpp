// The octahedral parameterization: unit 3-vectors <-> points of the square [−1, 1]².
//
// A direction n is projected onto the octahedron |x| + |y| + |z| = 1 (p = n / |n|₁). The upper half
// (p_z ≥ 0) lands on the diamond |u| + |v| ≤ 1 as (u, v) = (p_x, p_y); the lower half is folded out
// over the diamond's edges into the four corners, (u, v) = ((1 − |p_y|)·sign p_x, (1 − |p_x|)·sign p_y).
// The fold is a reflection, so the map preserves area from octahedron face to square, and a uniform
// direction on S² has density 1 / (4π |p(u, v)|³) on the square (see marginals.hpp).
//
// Seams, deterministically: sign(0) = +1, so points on the planes x = 0 or y = 0 of the lower half go
// to the positive side; the equator p_z = 0 maps to the diamond's edge from either half alike; the
// zero vector maps to (0, 0), the north pole.
#pragma once

#include <array>
#include <cmath>

#include "octopus/detail/host_device.hpp"

namespace octopus {

/// A point of the square [−1, 1]².
template <class T>
struct SquarePoint {
    T u;
    T v;
};

namespace detail {
template <class T>
OCTOPUS_HOST_DEVICE constexpr T sign_not_zero(T x) { return x < T(0) ? T(-1) : T(1); }
}  // namespace detail

/// (x, y, z) ≠ 0 to the square; the vector need not be unit length (only its direction matters).
/// Single IEEE operations in a fixed order (|x| + |y|, then + |z|; two divisions; a subtraction and a
/// multiply by ±1), so the CPU's encoders and the GPU's encode kernel, which both call it for float
/// triplets (contract.hpp), round alike.
template <class T>
OCTOPUS_HOST_DEVICE SquarePoint<T> octahedral_encode(T x, T y, T z) {
    const T l1 = std::fabs(x) + std::fabs(y) + std::fabs(z);
    if (!(l1 > T(0))) return {T(0), T(0)};
    const T px = x / l1, py = y / l1;
    if (z >= T(0)) return {px, py};
    return {(T(1) - std::fabs(py)) * detail::sign_not_zero(px), (T(1) - std::fabs(px)) * detail::sign_not_zero(py)};
}

/// The point of the octahedron |p|₁ = 1 that (u, v) stands for (the fold undone, not normalized).
template <class T>
std::array<T, 3> octahedral_unfold(T u, T v) {
    const T z = T(1) - std::fabs(u) - std::fabs(v);
    if (z >= T(0)) return {u, v, z};
    return {(T(1) - std::fabs(v)) * detail::sign_not_zero(u), (T(1) - std::fabs(u)) * detail::sign_not_zero(v), z};
}

/// The unit vector that (u, v) stands for.
template <class T>
std::array<T, 3> octahedral_decode(T u, T v) {
    const auto p = octahedral_unfold(u, v);
    const T inverse = T(1) / std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
    return {p[0] * inverse, p[1] * inverse, p[2] * inverse};
}

}  // namespace octopus
