// The seeded randomized Hadamard rotation, one vector per warp, bit for bit the CPU's.
//
// Lane l holds elements [l·E, (l+1)·E) of a d-vector, E = d/32. The butterflies run in the CPU's
// order (stride 1, 2, 4, ...; in-lane strides below E, shuffles above), each an IEEE add or subtract
// of the same two operands, and the sign multiplies are single roundings (__fmul_rn, never fused):
// the rotated values, and so the codes, match the CPU encoder exactly.
#pragma once

#include <cuda_runtime.h>

#include "octopus/contract.hpp"

namespace octopus::cuda::detail {

using octopus::kRotationRounds;

inline constexpr unsigned kFullMask = 0xffffffffu;

/// x ← H x, unnormalized, over a warp (d = 32·E).
template <int E>
__device__ inline void warp_walsh_hadamard(float (&v)[E]) {
    const int lane = static_cast<int>(threadIdx.x % 32);
#pragma unroll
    for (int h = 1; h < E; h *= 2)
#pragma unroll
        for (int j = 0; j < E; ++j)
            if ((j & h) == 0) {
                const float a = v[j], b = v[j + h];
                v[j] = __fadd_rn(a, b);
                v[j + h] = __fsub_rn(a, b);
            }
#pragma unroll
    for (int m = 1; m < 32; m *= 2)
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const float partner = __shfl_xor_sync(kFullMask, v[j], m);
            v[j] = (lane & m) ? __fsub_rn(partner, v[j]) : __fadd_rn(v[j], partner);
        }
}

/// x ← R x with R's signs (kRotationRounds·d floats, see Rotation::signs).
template <int E>
__device__ inline void warp_rotate(float (&v)[E], const float* signs) {
    constexpr int d = 32 * E;
    const int base = static_cast<int>(threadIdx.x % 32) * E;
#pragma unroll
    for (int round = 0; round < kRotationRounds; ++round) {
#pragma unroll
        for (int j = 0; j < E; ++j) v[j] = __fmul_rn(v[j], __ldg(signs + round * d + base + j));
        warp_walsh_hadamard(v);
    }
}

/// x ← R⁻¹ x.
template <int E>
__device__ inline void warp_inverse_rotate(float (&v)[E], const float* signs) {
    constexpr int d = 32 * E;
    const int base = static_cast<int>(threadIdx.x % 32) * E;
#pragma unroll
    for (int round = kRotationRounds - 1; round >= 0; --round) {
        warp_walsh_hadamard(v);
#pragma unroll
        for (int j = 0; j < E; ++j) v[j] = __fmul_rn(v[j], __ldg(signs + round * d + base + j));
    }
}

}  // namespace octopus::cuda::detail
