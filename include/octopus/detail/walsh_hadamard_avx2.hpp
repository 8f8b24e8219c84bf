// AVX2 fast Walsh–Hadamard transform, bit-identical to the scalar one in hadamard.hpp.
//
// The butterflies of strides 1, 2 and 4 happen inside one 8-float register: with P the lane
// permutation that swaps partners and S = ±1 per lane, (a, b) → (a + b, a − b) is P(v) + S·v. S·v is
// exact and a + b = b + a in IEEE arithmetic, so every lane gets the same bits as the scalar loop.
// Strides of 8 and more are whole-register butterflies.
#pragma once

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstddef>

namespace octopus::detail {

inline constexpr bool kHasAvx2Hadamard = true;

/// Unnormalized in-place transform of length n, a power of two ≥ 8.
inline void walsh_hadamard_avx2(float* x, std::size_t n) {
    const __m256 s1 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
    const __m256 s2 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
    const __m256 s4 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
    for (std::size_t i = 0; i < n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        v = _mm256_add_ps(_mm256_permute_ps(v, 0xB1), _mm256_mul_ps(v, s1));
        v = _mm256_add_ps(_mm256_permute_ps(v, 0x4E), _mm256_mul_ps(v, s2));
        v = _mm256_add_ps(_mm256_permute2f128_ps(v, v, 1), _mm256_mul_ps(v, s4));
        _mm256_storeu_ps(x + i, v);
    }
    for (std::size_t h = 8; h < n; h *= 2)
        for (std::size_t i = 0; i < n; i += 2 * h)
            for (std::size_t j = i; j < i + h; j += 8) {
                const __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + h);
                _mm256_storeu_ps(x + j, _mm256_add_ps(a, b));
                _mm256_storeu_ps(x + j + h, _mm256_sub_ps(a, b));
            }
}

/// x ← H (signs ⊙ x) for n = N, a power of two from 8 to 256, with x held in registers from load
/// to store: the in-memory stages of walsh_hadamard_avx2 wait on store-to-load forwarding each
/// round, this does not. The same operations in the same order, so the same bits.
template <std::size_t N>
inline void signed_walsh_hadamard_avx2(float* x, const float* signs) {
    constexpr std::size_t kRegisters = N / 8;
    const __m256 s1 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
    const __m256 s2 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
    const __m256 s4 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
    __m256 v[kRegisters];
    for (std::size_t i = 0; i < kRegisters; ++i) {
        __m256 r = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), _mm256_loadu_ps(signs + 8 * i));
        r = _mm256_add_ps(_mm256_permute_ps(r, 0xB1), _mm256_mul_ps(r, s1));
        r = _mm256_add_ps(_mm256_permute_ps(r, 0x4E), _mm256_mul_ps(r, s2));
        v[i] = _mm256_add_ps(_mm256_permute2f128_ps(r, r, 1), _mm256_mul_ps(r, s4));
    }
    for (std::size_t h = 1; h < kRegisters; h *= 2)
        for (std::size_t i = 0; i < kRegisters; i += 2 * h)
            for (std::size_t j = i; j < i + h; ++j) {
                const __m256 a = v[j], b = v[j + h];
                v[j] = _mm256_add_ps(a, b);
                v[j + h] = _mm256_sub_ps(a, b);
            }
    for (std::size_t i = 0; i < kRegisters; ++i) _mm256_storeu_ps(x + 8 * i, v[i]);
}

}  // namespace octopus::detail

#else

namespace octopus::detail {
inline constexpr bool kHasAvx2Hadamard = false;
}  // namespace octopus::detail

#endif
