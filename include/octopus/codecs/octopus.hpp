// OCTOPUS (arXiv 2605.21226): rotate, cut the rotated key into triplets, and code each triplet with
// B = 3b bits from a codebook matched to the exact distribution of a rotated unit key's triplets.
//
// Stored per vector: ⌊d/3⌋ triplet codes of B bits, then the d mod 3 leftover coordinates coded with
// the scalar (TurboQuant) codebook at max(1, ⌊B/3⌋) bits, packed exactly, zero padding to a byte, then
// the norm (fp32 or fp16). Every B-bit pattern is a valid triplet code (the codebooks use all 2^B
// codes), so damage is detectable only in the norm and the padding bits, which are checked.
//
// Two designs share this codec: `octopus`, Lloyd's points on the exact triplet distribution (2^B free
// points up to B = 9, above that 2^(B−3) points of one octant and three sign bits; shipped as tables,
// triplet_point_tables.hpp), coded by exact nearest-point search; and `octopus-paper`, the literal
// product code of rings and a Lloyd–Max grid of octahedral coordinates (triplet_codebook.hpp), kept so
// that the sweep shows what the design buys.
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

#include "octopus/codec.hpp"
#include "octopus/rotated_codec.hpp"
#include "octopus/detail/memo.hpp"
#include "octopus/detail/scalar_quantizer.hpp"
#include "octopus/lloyd_max.hpp"
#include "octopus/packing.hpp"
#include "octopus/rotation.hpp"
#include "octopus/triplet_codebook.hpp"
#include "octopus/triplet_point_tables.hpp"
#include "octopus/triplet_tables.hpp"

namespace octopus {

/// OCTOPUS's codebook: Lloyd's points on the exact triplet distribution, shipped as tables
/// (codebooks/triplet_points.hpp), encoded by exact nearest-point search.
struct OctopusDesign {
    using Tables = TripletPointTables;
    static constexpr const char* name() { return "octopus"; }
    static Tables build(std::size_t dim, unsigned bits) { return Tables(dim, bits); }
};

/// The paper's literal product code: paper_triplet_codebook.
struct OctopusPaperDesign {
    using Tables = detail::TripletTables;
    static constexpr const char* name() { return "octopus-paper"; }
    static Tables build(std::size_t dim, unsigned bits) { return Tables(paper_triplet_codebook(dim, bits)); }
};

namespace detail {

template <class Design>
std::shared_ptr<const typename Design::Tables> triplet_tables(std::size_t dim, unsigned bits) {
    return memoize<Design, std::pair<std::size_t, unsigned>, typename Design::Tables>(
        std::pair{dim, bits}, [&] { return Design::build(dim, bits); });
}

}  // namespace detail

/// The triplet codec with codebooks from `Design`; b ∈ [1, 4] in thirds (3 to 12 bits per triplet).
template <class Design>
class TripletCodec : public CodecInterface<TripletCodec<Design>>, public RotatedCodec {
public:
    static constexpr const char* name() { return Design::name(); }

    /// Throws octopus::error for an unsupported dim, or bits that are not k/3 for k in 3..12. The
    /// tables for (dim, bits) are built on first use in the process (under 30 ms for `octopus`, which
    /// loads shipped points; up to a second for the paper's design) and shared by every codec built
    /// afterwards.
    explicit TripletCodec(const CodecSpec& spec)
        : RotatedCodec(spec), triplet_bits_(detail::triplet_bits(spec.bits, Design::name())) {
        tables_ = detail::triplet_tables<Design>(spec.dim, triplet_bits_);
        triplets_ = spec.dim / 3;
        leftovers_ = spec.dim % 3;
        leftover_bits_ = octopus::leftover_bits(triplet_bits_);
        leftover_ = detail::ScalarQuantizer(*coordinate_codebook(spec.dim, std::size_t{1} << leftover_bits_)).with_half_levels();
        const std::size_t code_bits = triplet_code_bits(spec.dim, triplet_bits_);
        code_bytes_ = triplet_code_bytes(spec.dim, triplet_bits_);
        padding_bits_ = static_cast<unsigned>(code_bytes_ * 8 - code_bits);
    }

    unsigned bits_per_triplet() const { return triplet_bits_; }
    std::size_t bytes_per_vector() const { return code_bytes_ + detail::norm_bytes(norm_format_); }
    /// Expected per-vector MSE on uniform unit keys, from the codebooks' exact design figures.
    double expected_mse() const {
        const double leftover = coordinate_codebook(dim(), std::size_t{1} << leftover_bits_)->mse;
        return static_cast<double>(triplets_) * tables_->mse + static_cast<double>(leftovers_) * leftover;
    }
    /// The reconstruction point of every triplet code, for unit keys.
    const std::vector<std::array<float, 3>>& points() const { return tables_->points; }
    /// The flattened search tables and points behind encode and decode (the CUDA headers upload them).
    const typename Design::Tables& tables() const { return *tables_; }
    /// Bits of each of the d mod 3 leftover codes, and their scalar codebook.
    unsigned leftover_bits() const { return leftover_bits_; }
    const std::vector<float>& leftover_levels() const { return leftover_.levels; }
    const std::vector<float>& leftover_thresholds() const { return leftover_.thresholds; }

    void encode_vector(const float* x, std::uint8_t* out) const {
        std::array<float, kMaxDim> y;
        const float norm = normalize_and_rotate(x, y.data());
        const std::size_t d = dim();
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

    void decode_vector(const std::uint8_t* in, float* out) const { detail::decode_through_rotation(*this, in, out); }

    /// The record's unit vector in the rotated domain (its points and leftover levels, before the
    /// inverse rotation and the norm) into out (dim() floats); returns the stored norm.
    float decode_rotated(const std::uint8_t* in, float* out) const {
        detail::with_bits<kMinTripletBits, kMaxTripletBits>(triplet_bits_, [&]<unsigned B>() { decode_points<B>(in, out); });
        return stored_norm(in);
    }

    /// q'·k' |k| from the codes: the record's rotated points, met by the rotated query.
    float score_vector(const float* q, const std::uint8_t* in) const { return detail::score_in_rotation(*this, q, in); }

    bool vector_is_valid(const std::uint8_t* in) const {
        if (!detail::norm_is_valid(stored_norm(in))) return false;
        // Padding sits in the high bits of the last code byte.
        return padding_bits_ == 0 || (in[code_bytes_ - 1] >> (8 - padding_bits_)) == 0;
    }

private:
    /// Eight triplet codes of B bits fill exactly B bytes: each group is read as two 64-bit words and
    /// split with shifts (the unrolled lanes resolve at compile time); the rest, and the leftovers,
    /// bit by bit.
    template <unsigned B>
    void decode_points(const std::uint8_t* in, float* out) const {
        const std::array<float, 3>* points = tables_->points.data();
        // A padded point is copied whole (16 bytes), its fourth float landing on the next triplet's
        // first, which that triplet then writes; the last triplet of a vector is copied exactly.
        const std::array<float, 4>* padded = tables_->padded_points.data();
        // Whole groups of eight whose padded copies stay inside the vector: the last triplet of a
        // vector without leftovers goes through the exact path below.
        const std::size_t groups = (leftovers_ > 0 ? triplets_ : triplets_ - 1) / 8, record = this->bytes_per_vector();
        for (std::size_t g = 0; g < groups; ++g) {
            // Whole 8-byte loads where the record extends that far past the group's start (a word
            // assembled from narrower loads stalls on store forwarding); the masks keep only this
            // group's bits. The last group of a short record reads its bytes exactly.
            std::uint64_t low = 0, high = 0;
            if (g * B + (B > 8 ? 16 : 8) <= record) {
                std::memcpy(&low, in + g * B, 8);
                if constexpr (B > 8) std::memcpy(&high, in + g * B + 8, 8);
            } else {
                std::memcpy(&low, in + g * B, B < 8 ? B : 8);
                if constexpr (B > 8) std::memcpy(&high, in + g * B + 8, B - 8);
            }
            for (unsigned k = 0; k < 8; ++k) {
                const unsigned at = k * B;
                const std::uint64_t bits = at >= 64 ? high >> (at - 64) : at + B <= 64 ? low >> at : (low >> at) | (high << (64 - at));
                std::memcpy(out + 3 * (8 * g + k), padded[static_cast<std::uint32_t>(bits) & ((1u << B) - 1)].data(), 16);
            }
        }
        BitReader reader(in + groups * B);
        for (std::size_t i = 8 * groups; i < triplets_; ++i) {
            const auto& p = points[reader.get(B)];
            out[3 * i] = p[0];
            out[3 * i + 1] = p[1];
            out[3 * i + 2] = p[2];
        }
        for (std::size_t j = 3 * triplets_; j < dim(); ++j) out[j] = leftover_.levels[reader.get(leftover_bits_)];
    }

    unsigned triplet_bits_;
    std::shared_ptr<const typename Design::Tables> tables_;
    std::size_t triplets_ = 0, leftovers_ = 0;
    unsigned leftover_bits_ = 1;
    detail::ScalarQuantizer leftover_;
    unsigned padding_bits_ = 0;
};

/// OCTOPUS as designed here: joint ring and direction design, centroid decoding.
using Octopus = TripletCodec<OctopusDesign>;
/// The paper's literal product code, for comparison.
using OctopusPaper = TripletCodec<OctopusPaperDesign>;

}  // namespace octopus
