// The row operations of decode attention, on float rows of d (a multiple of 16, as every supported
// head dim is): dot products of one row with up to four query rows at once, y += a·x, a block of
// value rows weighted into four outputs at once, and exp of a run of floats. AVX2 + FMA where the
// build has them, plain loops otherwise.
#pragma once

#include <cmath>
#include <cstddef>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace octopus::detail {

/// Σ a_i·b_i over d floats.
inline float row_dot(const float* a, const float* b, std::size_t d) {
#if defined(__AVX2__) && defined(__FMA__)
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    const __m256 s = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float sum = _mm_cvtss_f32(h);
    for (; i < d; ++i) sum += a[i] * b[i];
    return sum;
#else
    float sum = 0.0f;
    for (std::size_t i = 0; i < d; ++i) sum += a[i] * b[i];
    return sum;
#endif
}

/// y ← y + a·x over d floats.
inline void row_axpy(float a, const float* x, float* y, std::size_t d) {
#if defined(__AVX2__) && defined(__FMA__)
    const __m256 va = _mm256_set1_ps(a);
    std::size_t i = 0;
    for (; i + 8 <= d; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < d; ++i) y[i] += a * x[i];
#else
    for (std::size_t i = 0; i < d; ++i) y[i] += a * x[i];
#endif
}

#if defined(__AVX2__) && defined(__FMA__)
/// out[h] = Σ_i q[h·d + i]·row_i for the four rows of q, where group(g) gives floats 8g … 8g + 7 of the
/// row in a register: the row is read once for all four.
template <class Group>
void dot4(const float* q, std::size_t d, Group&& group, float* out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (std::size_t i = 0; i < d; i += 8) {
        const __m256 x = group(i / 8);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), x, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + i), x, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 2 * d + i), x, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 3 * d + i), x, a3);
    }
    // Four horizontal sums at once: pairwise adds leave lane h of the low half holding head h's sum.
    const __m256 s01 = _mm256_hadd_ps(a0, a1), s23 = _mm256_hadd_ps(a2, a3);
    const __m256 s = _mm256_hadd_ps(s01, s23);
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
}
#endif

/// out[h] = Σ_i q[h·d + i]·k_i for the `heads` ≤ 4 rows of q: the key row is loaded once for all.
inline void rows_dot(const float* q, std::size_t heads, const float* k, std::size_t d, float* out) {
#if defined(__AVX2__) && defined(__FMA__)
    if (heads == 4) return dot4(q, d, [&](std::size_t g) { return _mm256_loadu_ps(k + 8 * g); }, out);
#endif
    for (std::size_t h = 0; h < heads; ++h) out[h] = row_dot(q + h * d, k, d);
}

#if defined(__AVX2__) && defined(__FMA__)
/// acc[h·d + i] += Σ_t w[h·stride + t]·row_t[i] for four outputs and n rows, where group(t, g) gives
/// floats 8g … 8g + 7 of row t in a register: each slice of 16 coordinates of the four outputs stays in
/// registers while every row is added to it.
template <class Group>
void weighted_sum4(const float* w, std::size_t stride, std::size_t n, std::size_t d, float* acc, Group&& group) {
    for (std::size_t i = 0; i < d; i += 16) {
        __m256 a[8];
        for (std::size_t h = 0; h < 4; ++h) {
            a[2 * h] = _mm256_loadu_ps(acc + h * d + i);
            a[2 * h + 1] = _mm256_loadu_ps(acc + h * d + i + 8);
        }
        for (std::size_t t = 0; t < n; ++t) {
            const __m256 x0 = group(t, i / 8), x1 = group(t, i / 8 + 1);
            for (std::size_t h = 0; h < 4; ++h) {
                const __m256 weight = _mm256_broadcast_ss(w + h * stride + t);
                a[2 * h] = _mm256_fmadd_ps(weight, x0, a[2 * h]);
                a[2 * h + 1] = _mm256_fmadd_ps(weight, x1, a[2 * h + 1]);
            }
        }
        for (std::size_t h = 0; h < 4; ++h) {
            _mm256_storeu_ps(acc + h * d + i, a[2 * h]);
            _mm256_storeu_ps(acc + h * d + i + 8, a[2 * h + 1]);
        }
    }
}
#endif

/// acc[h·d + i] += Σ_t w[h·stride + t]·v[t·d + i] for `heads` ≤ 4 outputs and `n` value rows: each
/// slice of the outputs stays in registers while every row of the block is added to it.
inline void rows_weighted_sum(const float* w, std::size_t stride, std::size_t heads, const float* v, std::size_t n, std::size_t d,
                              float* acc) {
#if defined(__AVX2__) && defined(__FMA__)
    if (heads == 4)
        return weighted_sum4(w, stride, n, d, acc, [&](std::size_t t, std::size_t g) { return _mm256_loadu_ps(v + t * d + 8 * g); });
#endif
    for (std::size_t t = 0; t < n; ++t)
        for (std::size_t h = 0; h < heads; ++h) row_axpy(w[h * stride + t], v + t * d, acc + h * d, d);
}

/// x_i ← e^(x_i) for n floats x_i ≤ 0 (scores less their max): eight at a time to within 2 ulp
/// (Cody–Waite reduction, a degree-6 polynomial), −∞ and values below −87 to 0.
inline void exp_nonpositive(float* x, std::size_t n) {
    std::size_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f), ln2_hi = _mm256_set1_ps(0.693359375f),
                 ln2_lo = _mm256_set1_ps(-2.12194440e-4f), lowest = _mm256_set1_ps(-87.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 under = _mm256_cmp_ps(v, lowest, _CMP_LT_OQ);  // also true for −∞
        const __m256 clamped = _mm256_max_ps(v, lowest);
        const __m256 k = _mm256_round_ps(_mm256_mul_ps(clamped, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 r = _mm256_fnmadd_ps(k, ln2_hi, clamped);
        r = _mm256_fnmadd_ps(k, ln2_lo, r);
        __m256 p = _mm256_set1_ps(1.9875691500e-4f);
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
        p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
        const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
        const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
        _mm256_storeu_ps(x + i, _mm256_andnot_ps(under, e));
    }
#endif
    for (; i < n; ++i) x[i] = std::exp(x[i]);
}

}  // namespace octopus::detail
