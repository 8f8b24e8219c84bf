// Scores of a query against ScanKeys (scan_keys.hpp) by table lookup, 32 tokens at once, as faiss's
// fast-scan scores 4-bit codes: no key is decoded.
//
// A key's score is norm · Σ_j v_j, where lookup j covers the coordinates of one nibble (4/b codes for
// b ∈ {1, 2, 4}) or one 3-bit code, and v_j = Σ over its coordinates of q'_i · level(code_i) takes at
// most 16 values. ScanQuery holds, per lookup, those values as 8-bit integers on one common step:
// v_j ≈ lo_j + step · e_j(code), e_j ∈ [0, 255] rounded to nearest. The scan looks the e_j of 32
// tokens up with one vpshufb and accumulates them in 16 bits (the even tokens' bytes with the odd
// ones' above them, and the odd tokens' alone), widened to 32 bits every 256 lookups; the sum is
// exact in integers, so the only error is the tables' rounding: at most step/2 per lookup,
// lookups · step / 2 in all (ScanQuery::max_error, for a unit key), about √(lookups/12) · step in
// practice. Every path (AVX2 or plain loops) gives the same integer sums and the same float scores.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "octopus/error.hpp"
#include "octopus/scan_keys.hpp"

#if defined(__SSE__)
#include <immintrin.h>
#endif

namespace octopus {

/// Lookups per key of a b-bit codec of dim d: one per 3-bit code, else one per nibble.
inline constexpr std::size_t scan_lookups(unsigned bits, std::size_t d) { return bits == 3 ? d : d * bits / 4; }

/// One query's lookup tables against the ScanKeys of one codec. Reusable: assign() allocates
/// nothing once it has held a query of the same codec's size.
class ScanQuery {
public:
    ScanQuery() = default;
    ScanQuery(const TurboQuant& codec, std::span<const float> query) { assign(codec, query); }

    /// Tables for `query` (dim floats, in the model's domain; rotated here). Throws octopus::error for
    /// a wrong size or a non-finite value, leaving the tables as they were.
    void assign(const TurboQuant& codec, std::span<const float> query) {
        const std::size_t d = codec.dim();
        detail::require(query.size() == d, "ScanQuery: query has " + std::to_string(query.size()) + " floats, the codec's dim is " +
                                               std::to_string(d));
        for (std::size_t i = 0; i < d; ++i)
            if (!std::isfinite(query[i])) throw error("ScanQuery: query has a non-finite value at coordinate " + std::to_string(i));
        alignas(32) std::array<float, kMaxDim> rotated;
        codec.prepare_query(query.data(), rotated.data());
        assign_rotated(codec, rotated.data());
    }

    /// Tables for a query already in the codec's rotated domain (prepare_query's output; finite).
    void assign_rotated(const TurboQuant& codec, const float* rotated) {
        const unsigned b = codec.bits();
        const std::size_t d = codec.dim(), lookups = scan_lookups(b, d), per = b == 3 ? 1 : 4 / b;
        const std::size_t codes = b == 3 ? 8 : 16;
        const std::vector<float>& levels = codec.levels();
        values_.resize(lookups * 16);
        double widest = 0.0, base = 0.0;
        for (std::size_t j = 0; j < lookups; ++j) {
            double* v = values_.data() + j * 16;
            for (std::size_t e = 0; e < codes; ++e) {
                double sum = 0.0;
                for (std::size_t m = 0; m < per; ++m)
                    sum += static_cast<double>(rotated[j * per + m]) * levels[(e >> (m * b)) & ((1u << b) - 1)];
                v[e] = sum;
            }
            const double lo = *std::min_element(v, v + codes), hi = *std::max_element(v, v + codes);
            for (std::size_t e = 0; e < codes; ++e) v[e] -= lo;  // each lookup's values above its lowest
            widest = std::max(widest, hi - lo);
            base += lo;
        }
        const double step = widest / kTop, inverse = step > 0.0 ? 1.0 / step : 0.0;
        entries_.resize(lookups * 32);
        for (std::size_t j = 0; j < lookups; ++j) {
            const double* v = values_.data() + j * 16;
            std::uint8_t* entry = entries_.data() + j * 32;
            // (v − lo) / step ∈ [0, 255], rounded half up; entries past a 3-bit code repeat the first
            // eight, and both 128-bit halves hold the table (vpshufb looks up per half).
            for (std::size_t e = 0; e < codes; ++e) entry[e] = static_cast<std::uint8_t>(v[e] * inverse + 0.5);
            for (std::size_t e = codes; e < 16; ++e) entry[e] = entry[e - codes];
            std::memcpy(entry + 16, entry, 16);
        }
        step_ = static_cast<float>(step);
        base_ = static_cast<float>(base);
        bits_ = b;
        dim_ = d;
    }

    unsigned bits() const { return bits_; }
    std::size_t dim() const { return dim_; }
    std::size_t lookups() const { return scan_lookups(bits_, dim_); }
    /// Lookup j's 16 entries (8-bit), twice: 32 bytes.
    const std::uint8_t* entries(std::size_t j) const { return entries_.data() + j * 32; }
    /// The value of one entry step, and Σ_j lo_j: q'·k' ≈ step · Σ_j e_j + base.
    float step() const { return step_; }
    float base() const { return base_; }
    /// The most the tables' rounding moves q'·k' of a unit key: lookups · step / 2.
    float max_error() const { return static_cast<float>(lookups()) * step_ * 0.5f; }

    /// Largest entry.
    static constexpr double kTop = 255.0;

private:
    std::vector<double> values_;  // scratch of assign_rotated, kept to allocate once
    std::vector<std::uint8_t> entries_;
    float step_ = 0.0f, base_ = 0.0f;
    unsigned bits_ = 0;
    std::size_t dim_ = 0;
};

namespace detail {

/// Lookups accumulated in 16 bits before they are widened: 256 entries of ≤ 255 stay below 2^16.
inline constexpr std::size_t kScanLookupsPerFlush = 256;

/// sums[h][t] = Σ_j e_j(code_j of token t) over the lookups of one block for the H ≤ 4 queries, plain
/// loops: the definition the AVX2 scan must match.
template <unsigned B>
void scan_block_plain(const std::uint8_t* block, std::size_t code_bytes, const ScanQuery* const* queries, std::size_t heads,
                      std::uint32_t (*sums)[kScanBlock]) {
    for (std::size_t h = 0; h < heads; ++h)
        for (std::size_t t = 0; t < kScanBlock; ++t) sums[h][t] = 0;
    for (std::size_t t = 0; t < kScanBlock; ++t) {
        if constexpr (B == 3) {
            for (std::size_t g = 0; g < code_bytes / 3; ++g) {
                const std::uint32_t word = block[(3 * g) * kScanBlock + t] | block[(3 * g + 1) * kScanBlock + t] << 8 |
                                           block[(3 * g + 2) * kScanBlock + t] << 16;
                for (std::size_t m = 0; m < 8; ++m)
                    for (std::size_t h = 0; h < heads; ++h) sums[h][t] += queries[h]->entries(8 * g + m)[(word >> (3 * m)) & 7];
            }
        } else {
            for (std::size_t r = 0; r < code_bytes; ++r) {
                const std::uint8_t byte = block[r * kScanBlock + t];
                for (std::size_t h = 0; h < heads; ++h)
                    sums[h][t] += queries[h]->entries(2 * r)[byte & 15] + queries[h]->entries(2 * r + 1)[byte >> 4];
            }
        }
    }
}

#if defined(__AVX2__)
/// The scan of one block for H queries: per lookup one vpshufb and two 16-bit accumulators per query
/// (the even tokens' bytes with the odd ones' above them, and the odd tokens' alone), widened to 32
/// bits every kScanLookupsPerFlush lookups.
template <unsigned B, std::size_t H>
void scan_block_avx2(const std::uint8_t* block, std::size_t code_bytes, const ScanQuery* const* queries,
                     std::uint32_t (*sums)[kScanBlock]) {
    __m256i total[H][4];
    for (std::size_t h = 0; h < H; ++h)
        for (auto& x : total[h]) x = _mm256_setzero_si256();
    __m256i mixed[H], odd[H];
    const auto start = [&] {
        for (std::size_t h = 0; h < H; ++h) mixed[h] = odd[h] = _mm256_setzero_si256();
    };
    const auto flush = [&] {
        for (std::size_t h = 0; h < H; ++h) {
            const __m256i even = _mm256_sub_epi16(mixed[h], _mm256_slli_epi16(odd[h], 8));
            const __m256i low = _mm256_unpacklo_epi16(even, odd[h]), high = _mm256_unpackhi_epi16(even, odd[h]);
            // Within each 128-bit half, unpacklo holds tokens 0–7 (16–23) and unpackhi 8–15 (24–31).
            total[h][0] = _mm256_add_epi32(total[h][0], _mm256_cvtepu16_epi32(_mm256_castsi256_si128(low)));
            total[h][1] = _mm256_add_epi32(total[h][1], _mm256_cvtepu16_epi32(_mm256_castsi256_si128(high)));
            total[h][2] = _mm256_add_epi32(total[h][2], _mm256_cvtepu16_epi32(_mm256_extracti128_si256(low, 1)));
            total[h][3] = _mm256_add_epi32(total[h][3], _mm256_cvtepu16_epi32(_mm256_extracti128_si256(high, 1)));
        }
    };
    const auto lookup = [&](std::size_t j, __m256i index) {
        for (std::size_t h = 0; h < H; ++h) {
            const __m256i r = _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(queries[h]->entries(j))), index);
            mixed[h] = _mm256_add_epi16(mixed[h], r);
            odd[h] = _mm256_add_epi16(odd[h], _mm256_srli_epi16(r, 8));
        }
    };
    const auto pair = [&](std::size_t j, __m256i a, __m256i b) {
        lookup(j, a);
        lookup(j + 1, b);
    };
    const auto row = [&](std::size_t r) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + r * kScanBlock)); };
    const __m256i low4 = _mm256_set1_epi8(15), low3 = _mm256_set1_epi8(7), low2 = _mm256_set1_epi8(3), bit0 = _mm256_set1_epi8(1),
                  bit2 = _mm256_set1_epi8(4), bits12 = _mm256_set1_epi8(6);
    if constexpr (B == 3) {
        // Eight 3-bit codes in three bytes, least significant first; 16-bit shifts carry bits across
        // bytes, which every mask removes.
        const std::size_t groups = code_bytes / 3, per_flush = kScanLookupsPerFlush / 8;
        for (std::size_t g0 = 0; g0 < groups; g0 += per_flush) {
            start();
            for (std::size_t g = g0; g < std::min(groups, g0 + per_flush); ++g) {
                const __m256i x0 = row(3 * g), x1 = row(3 * g + 1), x2 = row(3 * g + 2);
                const std::size_t j = 8 * g;
                pair(j, _mm256_and_si256(x0, low3), _mm256_and_si256(_mm256_srli_epi16(x0, 3), low3));
                pair(j + 2,
                     _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(x0, 6), low2), _mm256_and_si256(_mm256_slli_epi16(x1, 2), bit2)),
                     _mm256_and_si256(_mm256_srli_epi16(x1, 1), low3));
                pair(j + 4, _mm256_and_si256(_mm256_srli_epi16(x1, 4), low3),
                     _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(x1, 7), bit0), _mm256_and_si256(_mm256_slli_epi16(x2, 1), bits12)));
                pair(j + 6, _mm256_and_si256(_mm256_srli_epi16(x2, 2), low3), _mm256_and_si256(_mm256_srli_epi16(x2, 5), low3));
            }
            flush();
        }
    } else {
        for (std::size_t r0 = 0; r0 < code_bytes; r0 += kScanLookupsPerFlush / 2) {
            start();
            for (std::size_t r = r0; r < std::min(code_bytes, r0 + kScanLookupsPerFlush / 2); ++r) {
                const __m256i x = row(r);
                pair(2 * r, _mm256_and_si256(x, low4), _mm256_and_si256(_mm256_srli_epi16(x, 4), low4));
            }
            flush();
        }
    }
    for (std::size_t h = 0; h < H; ++h)
        for (std::size_t k = 0; k < 4; ++k) _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums[h] + 8 * k), total[h][k]);
}
#endif

/// The integer sums of one block for `heads` ≤ 4 queries of the same codec as the keys.
template <unsigned B>
void scan_block(const std::uint8_t* block, std::size_t code_bytes, const ScanQuery* const* queries, std::size_t heads,
                std::uint32_t (*sums)[kScanBlock]) {
#if defined(__AVX2__)
    switch (heads) {
        case 1: return scan_block_avx2<B, 1>(block, code_bytes, queries, sums);
        case 2: return scan_block_avx2<B, 2>(block, code_bytes, queries, sums);
        case 3: return scan_block_avx2<B, 3>(block, code_bytes, queries, sums);
        default: return scan_block_avx2<B, 4>(block, code_bytes, queries, sums);
    }
#else
    scan_block_plain<B>(block, code_bytes, queries, heads, sums);
#endif
}

/// How many blocks ahead scan_scores asks for a block's cache lines.
inline constexpr std::size_t kScanPrefetchBlocks = 4;

/// Asks for a block's cache lines ahead of its scan: the hardware prefetchers alone leave a DRAM-bound
/// scan of 4-bit blocks (2,112 bytes at d = 128) at about half the bandwidth 3-bit blocks get.
inline void prefetch_block(const std::uint8_t* block, std::size_t bytes) {
#if defined(__SSE__)
    for (std::size_t i = 0; i < bytes; i += 64) _mm_prefetch(reinterpret_cast<const char*>(block + i), _MM_HINT_T0);
#else
    (void)block, (void)bytes;
#endif
}

/// The 32 stored norms of a block, as floats.
inline void block_norms(const ScanKeys& keys, const std::uint8_t* block, float* norms) {
    const std::size_t code = keys.codec().code_bytes(), m = keys.codec().bytes_per_vector() - code;
    for (std::size_t t = 0; t < kScanBlock; ++t) norms[t] = load_norm(block + kScanBlock * code + t * m, keys.codec().norm_format());
}

/// q'·k'·|k| of a block's tokens from its integer sums: |k| · (step · sum + base), one rounding order
/// on every path.
inline void block_scores(const ScanQuery& query, const std::uint32_t* sums, const float* norms, float scale, float* out) {
    for (std::size_t t = 0; t < kScanBlock; ++t)
        out[t] = scale * norms[t] * std::fma(query.step(), static_cast<float>(sums[t]), query.base());
}

/// Throws unless `query` was built for the codec of `keys` (same bits and dim).
inline void require_same_codec(const ScanQuery& query, const ScanKeys& keys, const char* who) {
    require(query.bits() == keys.bits() && query.dim() == keys.dim(),
            std::string(who) + ": the query's tables are for " + std::to_string(query.bits()) + " bits at dim " + std::to_string(query.dim()) +
                ", the keys are " + std::to_string(keys.bits()) + " bits at dim " + std::to_string(keys.dim()));
}

}  // namespace detail

/// out[t] ≈ q·k̂_t for every token of `keys` (out.size() == keys.size()), within |k_t| ·
/// query.max_error() of the exact score from the codes (TurboQuant::dot). Allocates nothing. Throws
/// octopus::error for a query of another codec or a wrong output size.
inline void scan_scores(const ScanQuery& query, const ScanKeys& keys, std::span<float> out) {
    detail::require_same_codec(query, keys, "scan_scores");
    detail::require(out.size() == keys.size(), "scan_scores: output has " + std::to_string(out.size()) + " floats, the keys " +
                                                   std::to_string(keys.size()));
    const ScanQuery* queries[1] = {&query};
    alignas(32) std::uint32_t sums[1][kScanBlock];
    alignas(32) float norms[kScanBlock], scores[kScanBlock];
    const std::size_t code_bytes = keys.codec().code_bytes();
    detail::with_bits<1, kMaxScalarBits>(keys.bits(), [&]<unsigned B>() {
        for (std::size_t b = 0; b < keys.blocks(); ++b) {
            if (b + detail::kScanPrefetchBlocks < keys.blocks()) detail::prefetch_block(keys.block(b + detail::kScanPrefetchBlocks), keys.block_bytes());
            detail::scan_block<B>(keys.block(b), code_bytes, queries, 1, sums);
            detail::block_norms(keys, keys.block(b), norms);
            const std::size_t n = std::min(kScanBlock, keys.size() - b * kScanBlock);
            detail::block_scores(query, sums[0], norms, 1.0f, n == kScanBlock ? out.data() + b * kScanBlock : scores);
            if (n < kScanBlock) std::copy(scores, scores + n, out.data() + b * kScanBlock);
        }
    });
}

}  // namespace octopus
