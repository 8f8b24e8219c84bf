// OCTOPUS (arXiv 2605.21226): rotate, cut the rotated key into triplets, and code each triplet's norm
// and octahedral direction together with B = 3b bits from a codebook matched to their exact marginals.
//
// Stored per vector: ⌊d/3⌋ triplet codes of B bits, then the d mod 3 leftover coordinates coded with
// the scalar (TurboQuant) codebook at max(1, ⌊B/3⌋) bits, packed exactly, zero padding to a byte, then
// the norm (fp32 or fp16). Every B-bit pattern is a valid triplet code (the codebooks use all 2^B
// cells), so damage is detectable only in the norm and the padding bits, which are checked.
//
// Two designs share this codec (see triplet_codebook.hpp): `octopus`, rings and per-ring direction
// grids designed together and decoded at true 3-D centroids; `octopus-paper`, the literal product
// code decoded at level values, kept so that the sweep shows what each design step buys.
//
// Reconstruction values (points and leftover levels) are stored rounded to the nearest fp16, so that the
// CUDA kernels' tensor cores take them exactly; the codes do not change and the MSE moves by ppm.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "octopus/codec.hpp"
#include "octopus/detail/bucketed_search.hpp"
#include "octopus/detail/memo.hpp"
#include "octopus/detail/padded_search.hpp"
#include "octopus/detail/rounded.hpp"
#include "octopus/detail/scalar_quantizer.hpp"
#include "octopus/lloyd_max.hpp"
#include "octopus/octahedral.hpp"
#include "octopus/packing.hpp"
#include "octopus/rotation.hpp"
#include "octopus/triplet_codebook.hpp"

namespace octopus {

/// The optimized OCTOPUS design: octopus_triplet_codebook.
struct OctopusDesign {
    static constexpr const char* name() { return "octopus"; }
    static TripletCodebook build(std::size_t dim, unsigned bits) { return octopus_triplet_codebook(dim, bits); }
};

/// The paper's literal product code: paper_triplet_codebook.
struct OctopusPaperDesign {
    static constexpr const char* name() { return "octopus-paper"; }
    static TripletCodebook build(std::size_t dim, unsigned bits) { return paper_triplet_codebook(dim, bits); }
};

namespace detail {

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

    /// |t| as every encoder computes it: (x·x + y·y) + z·z, each product rounded on its own (never
    /// fused, whatever the build flags), then a correctly rounded square root.
    static float triplet_norm(const float* t) {
        return std::sqrt((rounded(t[0] * t[0]) + rounded(t[1] * t[1])) + rounded(t[2] * t[2]));
    }

    /// encode() through the bucket indexes: the same code with two dependent loads per search, three
    /// times faster than the padded searches in scalar code.
    std::uint32_t encode_bucketed(const float* t) const {
        const float r = triplet_norm(t);
        const std::uint32_t ring = ring_index.search(0, r);
        const SquarePoint<float> s = octahedral_encode(t[0], t[1], t[2]);
        const std::uint32_t row = row_index.search(ring, s.u);
        const std::uint32_t slot = ring * static_cast<std::uint32_t>(rows_per_ring) + row;
        return row_base[slot] + column_index.search(slot, s.v);
    }
    std::size_t column_table_size() const { return (std::size_t{1} << column_steps) - 1; }

    /// The code of one triplet: the scalar specification of the encoder.
    std::uint32_t encode(const float* t) const {
        const float r = triplet_norm(t);
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
        // Eight interleaved (x, y, z) to three registers: blend each lane from the load that holds
        // it, then put the lanes in order.
        const __m256 a = _mm256_loadu_ps(t), b = _mm256_loadu_ps(t + 8), c = _mm256_loadu_ps(t + 16);
        const __m256 x = _mm256_permutevar8x32_ps(_mm256_blend_ps(_mm256_blend_ps(a, b, 0x92), c, 0x24),
                                                  _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5));
        const __m256 y = _mm256_permutevar8x32_ps(_mm256_blend_ps(_mm256_blend_ps(a, b, 0x24), c, 0x49),
                                                  _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6));
        const __m256 z = _mm256_permutevar8x32_ps(_mm256_blend_ps(_mm256_blend_ps(a, b, 0x49), c, 0x92),
                                                  _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7));
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

template <class Design>
std::shared_ptr<const TripletTables> triplet_tables(std::size_t dim, unsigned bits) {
    return memoize<Design, std::pair<std::size_t, unsigned>, TripletTables>(
        std::pair{dim, bits}, [&] { return TripletTables(Design::build(dim, bits)); });
}

}  // namespace detail

/// The triplet codec with codebooks from `Design`; b ∈ [1, 4] in thirds (3 to 12 bits per triplet).
template <class Design>
class TripletCodec : public CodecInterface<TripletCodec<Design>> {
public:
    static constexpr const char* name() { return Design::name(); }

    /// Throws octopus::error for an unsupported dim, or bits that are not k/3 for k in 3..12. The
    /// codebooks for (dim, bits) are designed on first use in the process (well under a second) and
    /// shared by every codec built afterwards.
    explicit TripletCodec(const CodecSpec& spec)
        : rotation_(spec.dim, spec.seed),
          norm_format_(spec.norm),
          triplet_bits_(detail::bits_per_triplet(spec.bits, Design::name())) {
        detail::check_triplet_bits(triplet_bits_);
        tables_ = detail::triplet_tables<Design>(spec.dim, triplet_bits_);
        triplets_ = spec.dim / 3;
        leftovers_ = spec.dim % 3;
        leftover_bits_ = std::max(1u, triplet_bits_ / 3);
        leftover_ = detail::ScalarQuantizer(*coordinate_codebook(spec.dim, std::size_t{1} << leftover_bits_)).with_half_levels();
        const std::size_t code_bits = triplets_ * triplet_bits_ + leftovers_ * leftover_bits_;
        code_bytes_ = (code_bits + 7) / 8;
        padding_bits_ = static_cast<unsigned>(code_bytes_ * 8 - code_bits);
    }

    std::size_t dim() const { return rotation_.dim(); }
    unsigned bits_per_triplet() const { return triplet_bits_; }
    std::size_t bytes_per_vector() const { return code_bytes_ + detail::norm_bytes(norm_format_); }
    const Rotation& rotation() const { return rotation_; }

    /// The query, rotated into the domain of the codebooks.
    void prepare_query(const float* q, float* prepared) const {
        std::memcpy(prepared, q, dim() * sizeof(float));
        rotation_.apply(prepared);
    }
    /// Expected per-vector MSE on uniform unit keys, from the codebooks' exact design figures.
    double expected_mse() const {
        const double leftover = coordinate_codebook(dim(), std::size_t{1} << leftover_bits_)->mse;
        return static_cast<double>(triplets_) * tables_->mse + static_cast<double>(leftovers_) * leftover;
    }
    /// The reconstruction point of every triplet code, for unit keys.
    const std::vector<std::array<float, 3>>& points() const { return tables_->points; }
    /// The flattened search tables and points behind encode and decode (the CUDA headers upload them).
    const detail::TripletTables& tables() const { return *tables_; }
    /// Bits of each of the d mod 3 leftover codes, and their scalar codebook.
    unsigned leftover_bits() const { return leftover_bits_; }
    const std::vector<float>& leftover_levels() const { return leftover_.levels; }
    const std::vector<float>& leftover_thresholds() const { return leftover_.thresholds; }
    /// Bytes of codes and padding before the stored norm.
    std::size_t code_bytes() const { return code_bytes_; }
    NormFormat norm_format() const { return norm_format_; }

    void encode_vector(const float* x, std::uint8_t* out) const {
        const std::size_t d = dim();
        std::array<float, kMaxDim> y;
        const float norm = detail::normalize_and_rotate(rotation_, x, norm_format_, y.data());
        std::array<std::uint32_t, kMaxDim / 3> codes;
        tables_->encode_many(y.data(), triplets_, codes.data());
        // Triplet codes, then the leftovers' codes, back to back: pack the first whole groups of
        // eight fast, the rest bit by bit.
        const std::size_t fast = triplets_ / 8 * 8;
        pack_codes_unchecked(codes.data(), fast, triplet_bits_, out);
        BitWriter writer(out + fast * triplet_bits_ / 8);
        for (std::size_t i = fast; i < triplets_; ++i) writer.put(codes[i], triplet_bits_);
        for (std::size_t j = 3 * triplets_; j < d; ++j) writer.put(leftover_.cell(y[j]), leftover_bits_);
        writer.flush();
        detail::store_norm(norm, norm_format_, out + code_bytes_);
    }

    void decode_vector(const std::uint8_t* in, float* out) const {
        BitReader reader(in);
        for (std::size_t i = 0; i < triplets_; ++i) {
            const auto& p = tables_->points[reader.get(triplet_bits_)];
            out[3 * i] = p[0];
            out[3 * i + 1] = p[1];
            out[3 * i + 2] = p[2];
        }
        for (std::size_t j = 3 * triplets_; j < dim(); ++j) out[j] = leftover_.levels[reader.get(leftover_bits_)];
        rotation_.apply_inverse(out);
        const float norm = detail::load_norm(in + code_bytes_, norm_format_);
        for (std::size_t i = 0; i < dim(); ++i) out[i] *= norm;
    }

    float score_vector(const float* q, const std::uint8_t* in) const {
        BitReader reader(in);
        float sum = 0.0f;
        for (std::size_t i = 0; i < triplets_; ++i) {
            const auto& p = tables_->points[reader.get(triplet_bits_)];
            sum += q[3 * i] * p[0] + q[3 * i + 1] * p[1] + q[3 * i + 2] * p[2];
        }
        for (std::size_t j = 3 * triplets_; j < dim(); ++j) sum += q[j] * leftover_.levels[reader.get(leftover_bits_)];
        return sum * detail::load_norm(in + code_bytes_, norm_format_);
    }

    bool vector_is_valid(const std::uint8_t* in) const {
        if (!detail::norm_is_valid(detail::load_norm(in + code_bytes_, norm_format_))) return false;
        // Padding sits in the high bits of the last code byte.
        return padding_bits_ == 0 || (in[code_bytes_ - 1] >> (8 - padding_bits_)) == 0;
    }

private:
    Rotation rotation_;
    NormFormat norm_format_;
    unsigned triplet_bits_;
    std::shared_ptr<const detail::TripletTables> tables_;
    std::size_t triplets_ = 0, leftovers_ = 0;
    unsigned leftover_bits_ = 1;
    detail::ScalarQuantizer leftover_;
    std::size_t code_bytes_ = 0;
    unsigned padding_bits_ = 0;
};

/// OCTOPUS as designed here: joint ring and direction design, centroid decoding.
using Octopus = TripletCodec<OctopusDesign>;
/// The paper's literal product code, for comparison.
using OctopusPaper = TripletCodec<OctopusPaperDesign>;

}  // namespace octopus
