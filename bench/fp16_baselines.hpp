// The fp16 KV cache a CPU engine really runs against, as the baseline of the codecs' scoring and
// attention benchmarks: keys and values stored as IEEE half, converted eight at a time with F16C
// (vcvtph2ps) and multiplied with FMA, as llama.cpp's fp16 dot does; our own code, not a copy.
//
// - fp16_scores: scores[t] = q·k_t for n keys of dim d.
// - fp16_attention: decode attention of G query heads sharing one KV head (grouped-query attention):
//   out_h = softmax(scale · q_h·Kᵀ)·V; over `threads` OpenMP threads the context is split into chunks,
//   each chunk keeps its own (max, sum, Σ p·v) and the chunks are merged at the end (flash-decoding).
//   Fp16Loop::per_head runs each head's dot and axpy on each row as llama.cpp's CPU attention does;
//   Fp16Loop::grouped (G = 4) converts each key once for the four heads and adds values 16 rows at a
//   time with each 16-coordinate slice of the four outputs held in registers, the loop structure of the
//   library's own attention over codes: the strongest fp16 baseline we could write.
// Without F16C/FMA (a build without -march=native) the same loops run on scalar conversions.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <octopus/detail/rows.hpp>

#if defined(__F16C__) && defined(__FMA__) && defined(__AVX2__)
#include <immintrin.h>
#define OCTOPUS_BENCH_F16C 1
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace octopus::bench {

/// The half bits of x (round to nearest even).
inline std::uint16_t to_half_bits(float x) { return Eigen::numext::bit_cast<std::uint16_t>(Eigen::half(x)); }
inline float from_half_bits(std::uint16_t h) { return static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(h)); }

/// q · k for one fp16 row of d (a multiple of 16 with F16C) against a float query.
inline float fp16_dot(const float* q, const std::uint16_t* k, std::size_t d) {
#if OCTOPUS_BENCH_F16C
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    std::size_t j = 0;
    for (; j + 16 <= d; j += 16) {
        const __m256 k0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + j)));
        const __m256 k1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + j + 8)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), k0, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 8), k1, a1);
    }
    const __m256 a = _mm256_add_ps(a0, a1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float sum = _mm_cvtss_f32(s);
    for (; j < d; ++j) sum += q[j] * from_half_bits(k[j]);
    return sum;
#else
    float sum = 0.0f;
    for (std::size_t j = 0; j < d; ++j) sum += q[j] * from_half_bits(k[j]);
    return sum;
#endif
}

/// out += w · v for one fp16 row of d.
inline void fp16_axpy(float w, const std::uint16_t* v, float* out, std::size_t d) {
#if OCTOPUS_BENCH_F16C
    const __m256 weight = _mm256_set1_ps(w);
    std::size_t j = 0;
    for (; j + 8 <= d; j += 8) {
        const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + j)));
        _mm256_storeu_ps(out + j, _mm256_fmadd_ps(weight, x, _mm256_loadu_ps(out + j)));
    }
    for (; j < d; ++j) out[j] += w * from_half_bits(v[j]);
#else
    for (std::size_t j = 0; j < d; ++j) out[j] += w * from_half_bits(v[j]);
#endif
}

/// scores[t] = q · k_t for the n×d fp16 keys.
inline void fp16_scores(const float* q, const std::uint16_t* keys, std::size_t n, std::size_t d, float* scores) {
    for (std::size_t t = 0; t < n; ++t) scores[t] = fp16_dot(q, keys + t * d, d);
}

/// What one chunk of the context leaves for the merge: per head, its max, Σ exp and Σ exp · v.
struct AttentionPartial {
    std::vector<float> max, sum, acc;  // G, G, G·d
};

/// The two fp16 attention loops (see the header comment).
enum class Fp16Loop { per_head, grouped };

/// The partial of tokens [begin, end) for G heads: scores of each key for all heads, then the values.
/// `scores` is scratch of G·(end − begin) floats.
inline void fp16_attention_chunk(const float* q, std::size_t heads, const std::uint16_t* keys, const std::uint16_t* values,
                                 std::size_t begin, std::size_t end, std::size_t d, float scale, float* scores,
                                 AttentionPartial& part, Fp16Loop loop = Fp16Loop::per_head) {
    const std::size_t n = end - begin;
    part.max.assign(heads, -std::numeric_limits<float>::infinity());
    part.sum.assign(heads, 0.0f);
    part.acc.assign(heads * d, 0.0f);
#if OCTOPUS_BENCH_F16C
    if (loop == Fp16Loop::grouped && heads == 4 && d % 16 == 0) {
        for (std::size_t t = 0; t < n; ++t) {  // each key converted once for the four heads
            const std::uint16_t* row = keys + (begin + t) * d;
            float s[4];
            const auto group = [&](std::size_t g) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 8 * g))); };
            octopus::detail::dot4(q, d, group, s);
            for (std::size_t h = 0; h < 4; ++h) {
                scores[h * n + t] = scale * s[h];
                part.max[h] = std::max(part.max[h], scores[h * n + t]);
            }
        }
        for (std::size_t h = 0; h < 4; ++h) {
            for (std::size_t t = 0; t < n; ++t) scores[h * n + t] -= part.max[h];
            octopus::detail::exp_nonpositive(scores + h * n, n);
            for (std::size_t t = 0; t < n; ++t) part.sum[h] += scores[h * n + t];
        }
        for (std::size_t t0 = 0; t0 < n; t0 += 16) {  // 16 rows of values (4 KB at d = 128) stay in L1 across the slices
            const std::uint16_t* rows = values + (begin + t0) * d;
            octopus::detail::weighted_sum4(scores + t0, n, std::min<std::size_t>(16, n - t0), d, part.acc.data(),
                                           [&](std::size_t t, std::size_t g) {
                                               return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + t * d + 8 * g)));
                                           });
        }
        return;
    }
#endif
    (void)loop;
    for (std::size_t t = 0; t < n; ++t)
        for (std::size_t h = 0; h < heads; ++h) {
            const float s = scale * fp16_dot(q + h * d, keys + (begin + t) * d, d);
            scores[h * n + t] = s;
            part.max[h] = std::max(part.max[h], s);
        }
    for (std::size_t h = 0; h < heads; ++h)
        for (std::size_t t = 0; t < n; ++t) {
            const float p = std::exp(scores[h * n + t] - part.max[h]);
            scores[h * n + t] = p;
            part.sum[h] += p;
        }
    for (std::size_t t = 0; t < n; ++t)
        for (std::size_t h = 0; h < heads; ++h) fp16_axpy(scores[h * n + t], values + (begin + t) * d, part.acc.data() + h * d, d);
}

/// Scratch of fp16_attention, allocated once for the largest context and thread count.
struct AttentionScratch {
    std::vector<AttentionPartial> parts;
    std::vector<std::vector<float>> scores;
    AttentionScratch(std::size_t heads, std::size_t tokens, int threads)
        : parts(static_cast<std::size_t>(threads)), scores(static_cast<std::size_t>(threads),
                                                           std::vector<float>(heads * (tokens / threads + 1))) {}
};

/// out (G×d) = softmax(scale · q·Kᵀ)·V for G = `heads` query rows over n fp16 keys and values, split
/// over `threads` chunks (one per OpenMP thread) and merged.
inline void fp16_attention(const float* q, std::size_t heads, const std::uint16_t* keys, const std::uint16_t* values,
                           std::size_t n, std::size_t d, float scale, int threads, AttentionScratch& scratch, float* out,
                           Fp16Loop loop = Fp16Loop::per_head) {
    const std::size_t chunks = static_cast<std::size_t>(std::max(1, threads));
    const std::size_t per = (n + chunks - 1) / chunks;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (std::size_t c = 0; c < chunks; ++c) {
        const std::size_t begin = std::min(n, c * per), end = std::min(n, begin + per);
        fp16_attention_chunk(q, heads, keys, values, begin, end, d, scale, scratch.scores[c].data(), scratch.parts[c], loop);
    }
    for (std::size_t h = 0; h < heads; ++h) {
        float top = -std::numeric_limits<float>::infinity();
        for (std::size_t c = 0; c < chunks; ++c) top = std::max(top, scratch.parts[c].max[h]);
        float total = 0.0f;
        std::fill(out + h * d, out + (h + 1) * d, 0.0f);
        for (std::size_t c = 0; c < chunks; ++c) {
            const AttentionPartial& p = scratch.parts[c];
            if (p.sum[h] == 0.0f) continue;
            const float w = std::exp(p.max[h] - top);
            total += w * p.sum[h];
            for (std::size_t j = 0; j < d; ++j) out[h * d + j] += w * p.acc[h * d + j];
        }
        for (std::size_t j = 0; j < d; ++j) out[h * d + j] /= total;
    }
}

}  // namespace octopus::bench
