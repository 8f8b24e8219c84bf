// What OCTOPUS's encoder and decoders read for one (d, B): the shipped points (codebooks/triplet_points.hpp),
// their nearest-point index, and every code's point spelled out for the decoders.
//
// A code is the index of the nearest point; for a folded codebook (B > kMaxUnfoldedTripletBits) it is
// (index of the nearest octant point to |t|) · 8 + the signs of t (bit a set when coordinate a < 0, so
// −0 counts as positive), and decodes to that octant point with those signs.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "octopus/codebooks/triplet_points.hpp"
#include "octopus/contract.hpp"
#include "octopus/detail/nearest_point.hpp"
#include "octopus/detail/triplet_point_grid.hpp"
#include "octopus/detail/triplets_avx2.hpp"

namespace octopus {

namespace detail {

/// The sign bits of a folded code: bit a set when coordinate a < 0 (−0 counts as positive).
OCTOPUS_HOST_DEVICE inline std::uint32_t triplet_signs(float x, float y, float z) {
    return (x < 0.0f ? 1u : 0u) | (y < 0.0f ? 2u : 0u) | (z < 0.0f ? 4u : 0u);
}

/// The code of a folded codebook's triplet (x, y, z) whose |x|, |y|, |z| is nearest point `octant_index`.
OCTOPUS_HOST_DEVICE inline std::uint32_t folded_code(std::uint32_t octant_index, float x, float y, float z) {
    return octant_index << 3 | triplet_signs(x, y, z);
}

/// The code of triplet (x, y, z): the specification, which the CPU's batched encoder and the GPU's
/// encode kernel both match.
inline std::uint32_t triplet_point_code(const NearestPointView& index, bool folded, float x, float y, float z) {
    if (!folded) return nearest_point(index, x, y, z);
    return folded_code(nearest_point(index, fabsf(x), fabsf(y), fabsf(z)), x, y, z);
}

/// The point a code of a folded codebook decodes to.
inline std::array<float, 3> unfold_point(const std::array<float, 3>& p, std::uint32_t signs) {
    return {signs & 1u ? -p[0] : p[0], signs & 2u ? -p[1] : p[1], signs & 4u ? -p[2] : p[2]};
}

}  // namespace detail

/// The shipped codebook of (dim, B) ready to encode and decode. Build once per (dim, B): codecs share it.
struct TripletPointTables {
    bool folded = false;
    std::vector<std::array<float, 3>> base_points;       // the shipped points: 2^B, or 2^(B−3) of one octant
    std::vector<std::array<float, 3>> points;            // the point of every code, 2^B
    std::vector<std::array<float, 4>> padded_points;     // the same, each padded to 16 bytes: one load, one store
    double mse = 0.0;                                     // per triplet, unit keys
    detail::NearestPointIndex index;

    TripletPointTables(std::size_t dim, unsigned triplet_bits) {
        TripletPoints shipped = shipped_triplet_points(dim, triplet_bits);
        folded = shipped.folded;
        base_points = std::move(shipped.points);
        mse = shipped.mse;
        for (std::uint32_t code = 0; code < (1u << triplet_bits); ++code)
            points.push_back(folded ? detail::unfold_point(base_points[code >> 3], code & 7u) : base_points[code]);
        for (const auto& p : points) padded_points.push_back({p[0], p[1], p[2], 0.0f});
        const detail::PointGrid g = detail::point_grid(dim, base_points.size(), folded);
        index = detail::NearestPointIndex(base_points, g.lo, g.hi, g.grid, g.bend);
    }

    /// The code of the triplet t[0..2].
    std::uint32_t encode(const float* t) const {
        return detail::triplet_point_code(index.view(), folded, t[0], t[1], t[2]);
    }

    /// Codes of `count` consecutive triplets (3·count floats), the same as encode(). With AVX2: the
    /// buckets of eight triplets at once, then each triplet ranked against the first group of eight
    /// of its list (NearestPointIndex::rank_first_avx2); the few triplets whose list is longer are
    /// noted without a branch and ranked against their whole list afterwards, since a branch on the
    /// list's length, resolved only after two dependent loads, mispredicts often enough to double the
    /// cost of a triplet.
    void encode_many(const float* t, std::size_t count, std::uint32_t* codes) const {
        std::size_t i = 0;
#if defined(__AVX2__)
        std::array<std::uint32_t, 256> again;  // a chunk's triplets with long lists
        std::size_t pending = 0;
        const unsigned shift = folded ? 3 : 0;
        for (; i + 8 <= count; i += 8) {
            if (pending + 8 > again.size()) {
                for (std::size_t p = 0; p < pending; ++p) codes[again[p]] = encode_avx2(t + 3 * again[p]);
                pending = 0;
            }
            __m256 x, y, z;
            detail::load_triplets8(t + 3 * i, x, y, z);
            alignas(32) std::uint32_t signs[8] = {};
            if (folded) {
                const __m256 sign_bit = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
                const __m256i one = _mm256_set1_epi32(1);
                const __m256i sx = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(x, zero, _CMP_LT_OQ)), one);
                const __m256i sy = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(y, zero, _CMP_LT_OQ)), one);
                const __m256i sz = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(z, zero, _CMP_LT_OQ)), one);
                _mm256_store_si256(reinterpret_cast<__m256i*>(signs),
                                   _mm256_or_si256(sx, _mm256_or_si256(_mm256_slli_epi32(sy, 1), _mm256_slli_epi32(sz, 2))));
                x = _mm256_andnot_ps(sign_bit, x);
                y = _mm256_andnot_ps(sign_bit, y);
                z = _mm256_andnot_ps(sign_bit, z);
            }
            alignas(32) float xs[8], ys[8], zs[8];
            alignas(32) std::uint32_t buckets[8];
            _mm256_store_ps(xs, x);
            _mm256_store_ps(ys, y);
            _mm256_store_ps(zs, z);
            _mm256_store_si256(reinterpret_cast<__m256i*>(buckets), index.buckets_avx2(x, y, z));
            for (int k = 0; k < 8; ++k) {
                codes[i + k] = index.rank_first_avx2(buckets[k], xs[k], ys[k], zs[k]) << shift | signs[k];
                again[pending] = static_cast<std::uint32_t>(i + k);
                pending += index.long_list(buckets[k]) ? 1 : 0;
            }
        }
        for (std::size_t p = 0; p < pending; ++p) codes[again[p]] = encode_avx2(t + 3 * again[p]);
        for (; i < count; ++i) codes[i] = encode_avx2(t + 3 * i);
#else
        for (; i < count; ++i) codes[i] = encode(t + 3 * i);
#endif
    }

#if defined(__AVX2__)
    /// encode() of one triplet with its whole list ranked eight candidates at a time.
    std::uint32_t encode_avx2(const float* t) const {
        if (!folded) return index.search_avx2(t[0], t[1], t[2]);
        return detail::folded_code(index.search_avx2(std::fabs(t[0]), std::fabs(t[1]), std::fabs(t[2])), t[0], t[1], t[2]);
    }
#endif
};

}  // namespace octopus
