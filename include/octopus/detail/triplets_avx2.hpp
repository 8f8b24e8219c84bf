// Eight interleaved triplets (x, y, z, x, y, z, …: 24 floats) to three AVX2 registers of x, y and z,
// for the triplet encoders' eight-lane paths.
#pragma once

#if defined(__AVX2__)
#include <immintrin.h>

namespace octopus::detail {

/// Blends each lane from the load that holds it, then puts the lanes in order.
inline void load_triplets8(const float* t, __m256& x, __m256& y, __m256& z) {
    const __m256 a = _mm256_loadu_ps(t), b = _mm256_loadu_ps(t + 8), c = _mm256_loadu_ps(t + 16);
    x = _mm256_permutevar8x32_ps(_mm256_blend_ps(_mm256_blend_ps(a, b, 0x92), c, 0x24), _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5));
    y = _mm256_permutevar8x32_ps(_mm256_blend_ps(_mm256_blend_ps(a, b, 0x24), c, 0x49), _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6));
    z = _mm256_permutevar8x32_ps(_mm256_blend_ps(_mm256_blend_ps(a, b, 0x49), c, 0x92), _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7));
}

}  // namespace octopus::detail
#endif
