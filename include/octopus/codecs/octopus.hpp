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
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "octopus/codec.hpp"
#include "octopus/detail/memo.hpp"
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

/// What the triplet codec's hot loops read, flattened to float: per ring its grid's row and column
/// thresholds, and one 3-D reconstruction point per code.
struct TripletTables {
    std::vector<float> ring_thresholds;
    struct Ring {
        std::vector<float> row_thresholds;
        std::vector<std::uint32_t> first_cell;
        std::vector<float> column_thresholds;
        std::uint32_t first_code = 0;
    };
    std::vector<Ring> rings;
    std::vector<std::array<float, 3>> points;
    double mse = 0.0;  // per triplet, of the double-precision design

    explicit TripletTables(const TripletCodebook& book) : mse(book.mse) {
        ring_thresholds.assign(book.ring_thresholds.begin(), book.ring_thresholds.end());
        for (std::size_t k = 0; k < book.rings(); ++k) {
            const DirectionGrid& grid = *book.grids[k];
            Ring ring;
            ring.row_thresholds.assign(grid.row_thresholds.begin(), grid.row_thresholds.end());
            ring.first_cell = grid.first_cell;
            ring.column_thresholds.assign(grid.column_thresholds.begin(), grid.column_thresholds.end());
            ring.first_code = book.first_code[k];
            rings.push_back(std::move(ring));
            for (const auto& p : grid.points)
                points.push_back({static_cast<float>(book.radius[k] * p[0]), static_cast<float>(book.radius[k] * p[1]),
                                  static_cast<float>(book.radius[k] * p[2])});
        }
    }

    std::uint32_t encode(const float* t) const {
        const float r = std::sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]);
        const Ring& ring = rings[ScalarQuantizer::count_at_or_below(ring_thresholds.data(), ring_thresholds.size(), r)];
        const SquarePoint<float> s = octahedral_encode(t[0], t[1], t[2]);
        const std::uint32_t row = ScalarQuantizer::count_at_or_below(ring.row_thresholds.data(), ring.row_thresholds.size(), s.u);
        const std::uint32_t first = ring.first_cell[row], cells = ring.first_cell[row + 1] - first;
        const float* columns = ring.column_thresholds.data() + (first - row);
        return ring.first_code + first + ScalarQuantizer::count_at_or_below(columns, cells - 1, s.v);
    }
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
        leftover_ = detail::ScalarQuantizer(*coordinate_codebook(spec.dim, std::size_t{1} << leftover_bits_));
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

    void encode_vector(const float* x, std::uint8_t* out) const {
        const std::size_t d = dim();
        double sum = 0.0;
        for (std::size_t i = 0; i < d; ++i) sum += static_cast<double>(x[i]) * x[i];
        const auto norm = static_cast<float>(std::sqrt(sum));
        detail::check_norm_fits(norm, norm_format_);
        std::array<float, kMaxDim> y;
        const float inverse = norm > 0.0f ? 1.0f / norm : 0.0f;
        for (std::size_t i = 0; i < d; ++i) y[i] = x[i] * inverse;
        rotation_.apply(y.data());
        BitWriter writer(out);
        for (std::size_t i = 0; i < triplets_; ++i) writer.put(tables_->encode(y.data() + 3 * i), triplet_bits_);
        for (std::size_t j = 3 * triplets_; j < d; ++j)
            writer.put(leftover_.cell(y[j]), leftover_bits_);
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
