// The tables OCTOPUS's encoders and decoders read, flattened to float from a TripletCodebook: padded
// threshold tables for the scalar specification encoder (which the GPU's encode kernel also runs),
// bucket indexes and an eight-lane AVX2 encoder for the CPU's batched encode, and the fp16-exact
// reconstruction points. Every path gives the same code for the same triplet (tests/test_triplet_codebook.cpp).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "octopus/contract.hpp"
#include "octopus/detail/bucketed_search.hpp"
#include "octopus/detail/padded_search.hpp"
#include "octopus/detail/rounded.hpp"
#include "octopus/detail/scalar_quantizer.hpp"
#include "octopus/detail/triplets_avx2.hpp"
#include "octopus/octahedral.hpp"
#include "octopus/triplet_codebook.hpp"

namespace octopus::detail {

/// What the triplet codec's hot loops read, flattened to float. The scalar encoder, the
/// specification, runs three fixed-length branch-free searches (ring by r, row by u, column by v)
/// on tables padded to 2^k − 1 entries (detail/padded_search.hpp). The batched encoder runs the
/// same searches through bucket indexes of the same thresholds (detail/bucketed_search.hpp), two
/// dependent loads per search instead of k, eight triplets at once with AVX2; all give the same codes.
struct TripletTables {
    unsigned ring_steps = 0, row_steps = 0, column_steps = 0;
    std::size_t rows_per_ring = 0;           // row slots per ring (padded)
    std::vector<float> ring_table;           // 2^ring_steps − 1
    std::vector<float> row_table;            // per ring: 2^row_steps − 1
    std::vector<float> column_table;         // per (ring, row slot): 2^column_steps − 1
    std::vector<std::uint32_t> row_base;     // per (ring, row slot): code of the row's first cell
    std::vector<std::array<float, 3>> points;  // fp16-exact (see ScalarQuantizer::with_half_levels)
    std::vector<std::array<float, 4>> padded_points;  // the same, each padded to 16 bytes: one load, one store
    double mse = 0.0;  // per triplet, of the double-precision design
    // The same three searches through bucket indexes, for the batched encoder.
    BucketedSearch ring_index, row_index, column_index;
    std::vector<float> ring_thresholds;            // unpadded, for the AVX2 broadcast compares
    std::vector<std::uint32_t> column_code_first;  // per (slot, bucket): row_base[slot] + column first

    explicit TripletTables(const TripletCodebook& book) : mse(book.mse) {
        const std::vector<float> rings(book.ring_thresholds.begin(), book.ring_thresholds.end());
        ring_steps = padded_search_steps(rings.size());
        append_padded(ring_table, rings.data(), rings.size(), ring_steps);
        std::size_t max_rows = 1, max_columns = 1;
        for (const auto& grid : book.grids) {
            max_rows = std::max(max_rows, grid->rows());
            for (std::size_t row = 0; row < grid->rows(); ++row)
                max_columns = std::max<std::size_t>(max_columns, grid->first_cell[row + 1] - grid->first_cell[row]);
        }
        row_steps = padded_search_steps(max_rows - 1);
        column_steps = padded_search_steps(max_columns - 1);
        rows_per_ring = std::size_t{1} << row_steps;
        for (std::size_t k = 0; k < book.rings(); ++k) {
            const DirectionGrid& grid = *book.grids[k];
            const std::vector<float> row_thresholds(grid.row_thresholds.begin(), grid.row_thresholds.end());
            append_padded(row_table, row_thresholds.data(), row_thresholds.size(), row_steps);
            for (std::size_t row = 0; row < rows_per_ring; ++row) {
                // Padded row slots are never reached (their thresholds are +∞); they repeat the last row.
                const std::size_t real = std::min(row, grid.rows() - 1);
                const std::size_t first = grid.first_cell[real], cells = grid.first_cell[real + 1] - first;
                const std::vector<float> columns(grid.column_thresholds.begin() + static_cast<std::ptrdiff_t>(first - real),
                                                 grid.column_thresholds.begin() + static_cast<std::ptrdiff_t>(first - real + cells - 1));
                append_padded(column_table, columns.data(), columns.size(), column_steps);
                row_base.push_back(book.first_code[k] + static_cast<std::uint32_t>(first));
            }
            for (const auto& p : grid.points)
                points.push_back({to_half_precision(static_cast<float>(book.radius[k] * p[0])),
                                  to_half_precision(static_cast<float>(book.radius[k] * p[1])),
                                  to_half_precision(static_cast<float>(book.radius[k] * p[2]))});
        }
        for (const auto& p : points) padded_points.push_back({p[0], p[1], p[2], 0.0f});
        build_bucket_indexes(book);
    }

    /// Ring index over [0, largest ring threshold], row index per ring and column index per (ring,
    /// row slot) over [−1, 1]; bucket counts chosen so that few thresholds share a bucket.
    void build_bucket_indexes(const TripletCodebook& book) {
        std::vector<std::vector<float>> rings(1), rows, columns;
        rings[0].assign(book.ring_thresholds.begin(), book.ring_thresholds.end());
        const float r_hi = rings[0].empty() ? 1.0f : rings[0].back() * 1.001f;
        for (std::size_t k = 0; k < book.rings(); ++k) {
            const DirectionGrid& grid = *book.grids[k];
            rows.emplace_back(grid.row_thresholds.begin(), grid.row_thresholds.end());
            for (std::size_t row = 0; row < rows_per_ring; ++row) {
                const std::size_t real = std::min(row, grid.rows() - 1);
                const std::size_t first = grid.first_cell[real], cells = grid.first_cell[real + 1] - first;
                columns.emplace_back(grid.column_thresholds.begin() + static_cast<std::ptrdiff_t>(first - real),
                                     grid.column_thresholds.begin() + static_cast<std::ptrdiff_t>(first - real + cells - 1));
            }
        }
        ring_index = BucketedSearch(rings, 0.0f, r_hi, 256);
        row_index = BucketedSearch(rows, -1.0f, 1.0f, 256);
        column_index = BucketedSearch(columns, -1.0f, 1.0f, 128);
        ring_thresholds = rings[0];
        for (std::size_t slot = 0; slot < row_base.size(); ++slot)
            for (std::uint32_t b = 0; b < column_index.buckets(); ++b)
                column_code_first.push_back(row_base[slot] + column_index.first()[slot * column_index.buckets() + b]);
    }

    std::size_t row_table_size() const { return (std::size_t{1} << row_steps) - 1; }
    std::size_t column_table_size() const { return (std::size_t{1} << column_steps) - 1; }

    /// encode() through the bucket indexes: the same code with two dependent loads per search instead
    /// of one per step of the padded search.
    std::uint32_t encode_bucketed(const float* t) const {
        const float r = triplet_norm(t[0], t[1], t[2]);
        const std::uint32_t ring = ring_index.search(0, r);
        const SquarePoint<float> s = octahedral_encode(t[0], t[1], t[2]);
        const std::uint32_t row = row_index.search(ring, s.u);
        const std::uint32_t slot = ring * static_cast<std::uint32_t>(rows_per_ring) + row;
        return row_base[slot] + column_index.search(slot, s.v);
    }

    /// The code of one triplet: the scalar specification of the encoder, which the GPU's encode kernel
    /// runs as well (the norm, fold and searches are contract.hpp's shared functions).
    std::uint32_t encode(const float* t) const {
        const float r = triplet_norm(t[0], t[1], t[2]);
        const std::uint32_t ring = padded_search(ring_table.data(), ring_steps, r);
        const SquarePoint<float> s = octahedral_encode(t[0], t[1], t[2]);
        const std::uint32_t row = padded_search(row_table.data() + ring * row_table_size(), row_steps, s.u);
        const std::size_t slot = ring * rows_per_ring + row;
        return row_base[slot] + padded_search(column_table.data() + slot * column_table_size(), column_steps, s.v);
    }

    /// Codes of `count` consecutive triplets starting at t (3·count floats): eight at a time with
    /// AVX2, the rest (and everything without AVX2) through encode_bucketed().
    void encode_many(const float* t, std::size_t count, std::uint32_t* codes) const {
        std::size_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
        for (; i + 8 <= count; i += 8) encode8_avx2(t + 3 * i, codes + i);
#endif
        for (; i < count; ++i) codes[i] = encode_bucketed(t + 3 * i);
    }

#if defined(__AVX2__) && defined(__FMA__)
    /// Eight triplets at once, lane for lane the same operations as encode(), so the same codes.
    void encode8_avx2(const float* t, std::uint32_t* codes) const {
        __m256 x, y, z;
        load_triplets8(t, x, y, z);
        // r² as triplet_norm computes it, each product rounded (never fused), so the ring decisions
        // match encode() bit for bit.
        const __m256 r = _mm256_sqrt_ps(_mm256_add_ps(
            _mm256_add_ps(rounded(_mm256_mul_ps(x, x)), rounded(_mm256_mul_ps(y, y))), rounded(_mm256_mul_ps(z, z))));
        const __m256 sign_mask = _mm256_set1_ps(-0.0f);
        const __m256 ax = _mm256_andnot_ps(sign_mask, x), ay = _mm256_andnot_ps(sign_mask, y),
                     az = _mm256_andnot_ps(sign_mask, z);
        const __m256 l1 = _mm256_add_ps(_mm256_add_ps(ax, ay), az);
        const __m256 positive = _mm256_cmp_ps(l1, _mm256_setzero_ps(), _CMP_GT_OQ);
        const __m256 px = _mm256_and_ps(_mm256_div_ps(x, l1), positive);
        const __m256 py = _mm256_and_ps(_mm256_div_ps(y, l1), positive);
        // Lower half folded: ((1 − |p_y|)·sign p_x, (1 − |p_x|)·sign p_y) with sign(0) = +1.
        const __m256 one = _mm256_set1_ps(1.0f);
        const __m256 minus_one = _mm256_set1_ps(-1.0f), zero = _mm256_setzero_ps();
        const __m256 sx = _mm256_blendv_ps(one, minus_one, _mm256_cmp_ps(px, zero, _CMP_LT_OQ));  // −0 counts as +
        const __m256 sy = _mm256_blendv_ps(one, minus_one, _mm256_cmp_ps(py, zero, _CMP_LT_OQ));
        const __m256 fold_u = _mm256_mul_ps(_mm256_sub_ps(one, _mm256_andnot_ps(sign_mask, py)), sx);
        const __m256 fold_v = _mm256_mul_ps(_mm256_sub_ps(one, _mm256_andnot_ps(sign_mask, px)), sy);
        const __m256 lower = _mm256_and_ps(_mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ), positive);
        const __m256 u = _mm256_blendv_ps(px, fold_u, lower);
        const __m256 v = _mm256_blendv_ps(py, fold_v, lower);

        // Rings: few thresholds, compared all at once against broadcasts.
        __m256i ring = _mm256_setzero_si256();
        for (float threshold : ring_thresholds)
            ring = _mm256_sub_epi32(ring, _mm256_castps_si256(_mm256_cmp_ps(_mm256_set1_ps(threshold), r, _CMP_LE_OQ)));
        // Rows and columns: BucketedSearch::search lane for lane. The count starts from `start` (the
        // index's own first counts, or for columns those plus the row's first code); the first
        // candidate threshold comes from next(), loaded beside it, and with checks() > 1 the others
        // from the threshold table.
        const auto search = [](const BucketedSearch& index, const std::uint32_t* start, __m256i table, __m256 value) {
            const __m256 position = _mm256_mul_ps(_mm256_sub_ps(value, _mm256_set1_ps(index.lo())), _mm256_set1_ps(index.scale()));
            const __m256 clamped = _mm256_min_ps(_mm256_max_ps(position, _mm256_setzero_ps()),
                                                 _mm256_set1_ps(static_cast<float>(index.buckets() - 1)));
            const __m256i slot = _mm256_add_epi32(
                _mm256_mullo_epi32(table, _mm256_set1_epi32(static_cast<int>(index.buckets()))), _mm256_cvttps_epi32(clamped));
            __m256i count = _mm256_i32gather_epi32(reinterpret_cast<const int*>(start), slot, 4);
            const __m256 next = _mm256_i32gather_ps(index.next(), slot, 4);
            count = _mm256_sub_epi32(count, _mm256_castps_si256(_mm256_cmp_ps(next, value, _CMP_LE_OQ)));
            if (index.checks() > 1) {
                const __m256i first = _mm256_i32gather_epi32(reinterpret_cast<const int*>(index.first()), slot, 4);
                const __m256i base =
                    _mm256_add_epi32(_mm256_mullo_epi32(table, _mm256_set1_epi32(static_cast<int>(index.stride()))), first);
                for (unsigned k = 1; k < index.checks(); ++k) {
                    const __m256 threshold =
                        _mm256_i32gather_ps(index.thresholds(), _mm256_add_epi32(base, _mm256_set1_epi32(static_cast<int>(k))), 4);
                    count = _mm256_sub_epi32(count, _mm256_castps_si256(_mm256_cmp_ps(threshold, value, _CMP_LE_OQ)));
                }
            }
            return count;
        };
        const __m256i row = search(row_index, row_index.first(), ring, u);
        const __m256i slot = _mm256_add_epi32(_mm256_mullo_epi32(ring, _mm256_set1_epi32(static_cast<int>(rows_per_ring))), row);
        const __m256i code = search(column_index, column_code_first.data(), slot, v);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes), code);
    }
#endif
};

}  // namespace octopus::detail
