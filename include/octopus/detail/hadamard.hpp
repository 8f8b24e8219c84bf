// Hadamard matrices of every order a supported head dim needs, and the fast transform.
//
// Head dims that are not powers of two (80, 96, 112, 160, 192) factor as m·2^k with m ∈ {12, 20, 28}.
// The Kronecker product H_m ⊗ H_{2^k} of two Hadamard matrices is a Hadamard matrix of order d, so
// the rotation stays an exact orthonormal transform (after the 1/√d scale) at every supported d:
// a fast Walsh–Hadamard transform of length 2^k on each of the m rows, then the small dense H_m
// across rows (m·d additions).
//   H_12, H_20: Paley's first construction from the quadratic residues mod q = 11, 19 (q ≡ 3 mod 4).
//   H_28:       Paley's second construction from the quadratic residues mod q = 13 (q ≡ 1 mod 4).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "octopus/detail/walsh_hadamard_avx2.hpp"

namespace octopus::detail {

inline constexpr std::size_t kMaxHadamardOrder = 28;

/// A ±1 matrix H of order n with H Hᵀ = n I, row-major in the first n·n entries.
struct SmallHadamard {
    std::size_t order = 1;
    std::array<std::int8_t, kMaxHadamardOrder * kMaxHadamardOrder> entries{};
    constexpr int operator()(std::size_t row, std::size_t column) const { return entries[row * order + column]; }
};

/// Legendre symbol χ(a) mod a prime q: 0 for a ≡ 0, +1 for a nonzero square, −1 otherwise.
constexpr int legendre_symbol(int a, int q) {
    a = ((a % q) + q) % q;
    if (a == 0) return 0;
    for (int x = 1; x < q; ++x)
        if ((x * x) % q == a) return 1;
    return -1;
}

/// Paley I (q ≡ 3 mod 4): H = I + S, S = [[0, 1ᵀ], [−1, Q]] with Q_ij = χ(j − i), order q + 1.
constexpr SmallHadamard paley_one(int q) {
    SmallHadamard h;
    const int n = q + 1;
    h.order = static_cast<std::size_t>(n);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            int s;
            if (i == 0 && j == 0) s = 0;
            else if (i == 0) s = 1;
            else if (j == 0) s = -1;
            else s = legendre_symbol(j - i, q);
            h.entries[static_cast<std::size_t>(i * n + j)] = static_cast<std::int8_t>(s + (i == j ? 1 : 0));
        }
    return h;
}

/// Paley II (q ≡ 1 mod 4): from the symmetric conference matrix C = [[0, 1ᵀ], [1, Q]] of order
/// q + 1, H = C ⊗ [[1, −1], [−1, −1]] + I ⊗ [[1, 1], [1, −1]], order 2(q + 1).
constexpr SmallHadamard paley_two(int q) {
    SmallHadamard h;
    const int c_order = q + 1, n = 2 * c_order;
    h.order = static_cast<std::size_t>(n);
    constexpr int on_zero[2][2] = {{1, 1}, {1, -1}};      // where C has its zero diagonal
    constexpr int on_pm[2][2] = {{1, -1}, {-1, -1}};      // times C's ±1 entries
    for (int i = 0; i < c_order; ++i)
        for (int j = 0; j < c_order; ++j) {
            int c;
            if (i == j) c = 0;
            else if (i == 0 || j == 0) c = 1;
            else c = legendre_symbol(j - i, q);
            for (int a = 0; a < 2; ++a)
                for (int b = 0; b < 2; ++b) {
                    const int v = c == 0 ? on_zero[a][b] : c * on_pm[a][b];
                    h.entries[static_cast<std::size_t>((2 * i + a) * n + 2 * j + b)] = static_cast<std::int8_t>(v);
                }
        }
    return h;
}

inline constexpr SmallHadamard kHadamard12 = paley_one(11);
inline constexpr SmallHadamard kHadamard20 = paley_one(19);
inline constexpr SmallHadamard kHadamard28 = paley_two(13);

/// The dense factor for a head dim: order 1 (pure power of two), 12, 20 or 28.
constexpr const SmallHadamard* small_hadamard_for(std::size_t order) {
    switch (order) {
        case 12: return &kHadamard12;
        case 20: return &kHadamard20;
        case 28: return &kHadamard28;
        default: return nullptr;
    }
}

/// Unnormalized in-place fast Walsh–Hadamard transform of length n (a power of two): log2(n)
/// rounds of butterflies (a, b) → (a + b, a − b). The scalar specification; the AVX2 path is
/// tested bit for bit against it.
inline void walsh_hadamard_scalar(float* x, std::size_t n) {
    for (std::size_t h = 1; h < n; h *= 2)
        for (std::size_t i = 0; i < n; i += 2 * h)
            for (std::size_t j = i; j < i + h; ++j) {
                const float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
}

/// The fastest available form of walsh_hadamard_scalar, chosen at compile time.
inline void walsh_hadamard(float* x, std::size_t n) {
#if defined(__AVX2__)
    if (n >= 8) {
        walsh_hadamard_avx2(x, n);
        return;
    }
#endif
    walsh_hadamard_scalar(x, n);
}

/// y = (H_m ⊗ H_p) x, unnormalized, in place; `transpose` applies (H_mᵀ ⊗ H_p) (H_p is symmetric).
/// x is viewed as m rows of p; `scratch` holds d floats.
inline void kronecker_hadamard(float* x, std::size_t m, std::size_t p, const SmallHadamard* small, bool transpose,
                               float* scratch) {
    for (std::size_t row = 0; row < m; ++row) walsh_hadamard(x + row * p, p);
    if (m == 1) return;
    for (std::size_t i = 0; i < m; ++i) {
        float* out = scratch + i * p;
        for (std::size_t j = 0; j < p; ++j) out[j] = 0.0f;
        for (std::size_t k = 0; k < m; ++k) {
            const float s = static_cast<float>(transpose ? (*small)(k, i) : (*small)(i, k));
            const float* in = x + k * p;
            for (std::size_t j = 0; j < p; ++j) out[j] += s * in[j];
        }
    }
    for (std::size_t j = 0; j < m * p; ++j) x[j] = scratch[j];
}

}  // namespace octopus::detail
