// TurboQuant (Zandieh et al., arXiv 2504.19874), its MSE form: rotate, then quantize every rotated
// coordinate on its own with the Lloyd–Max codebook of the exact coordinate marginal.
//
// Stored per vector: d codes of b bits, packed exactly, then the vector's norm (fp32 or fp16). The
// codebooks assume unit vectors, so keys are divided by their norm before rotation and the norm
// scales the decoded vector back.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "octopus/codec.hpp"
#include "octopus/detail/scalar_quantizer.hpp"
#include "octopus/lloyd_max.hpp"
#include "octopus/packing.hpp"
#include "octopus/rotation.hpp"

namespace octopus {

/// Per-coordinate Lloyd–Max quantization after a seeded randomized Hadamard rotation; b ∈ {1, 2, 3, 4}.
class TurboQuant : public CodecInterface<TurboQuant> {
public:
    static constexpr const char* name() { return "turboquant"; }

    /// Throws octopus::error for an unsupported dim or bits not in {1, 2, 3, 4}.
    explicit TurboQuant(const CodecSpec& spec)
        : rotation_(spec.dim, spec.seed), norm_format_(spec.norm), bits_(checked_bits(spec.bits)) {
        quantizer_ = detail::ScalarQuantizer(*coordinate_codebook(spec.dim, std::size_t{1} << bits_)).with_half_levels();
        code_bytes_ = packed_bytes(spec.dim, bits_);
    }

    std::size_t dim() const { return rotation_.dim(); }
    unsigned bits() const { return bits_; }
    std::size_t bytes_per_vector() const { return code_bytes_ + detail::norm_bytes(norm_format_); }
    const Rotation& rotation() const { return rotation_; }

    /// The query, rotated into the domain of the codebooks.
    void prepare_query(const float* q, float* prepared) const {
        std::memcpy(prepared, q, dim() * sizeof(float));
        rotation_.apply(prepared);
    }
    /// The scalar reconstruction levels (for unit vectors), ascending; fp16-exact.
    const std::vector<float>& levels() const { return quantizer_.levels; }
    /// The cell boundaries between consecutive levels, ascending: a coordinate's code is how many are ≤ it.
    const std::vector<float>& thresholds() const { return quantizer_.thresholds; }
    /// Bytes of codes and padding before the stored norm.
    std::size_t code_bytes() const { return code_bytes_; }
    NormFormat norm_format() const { return norm_format_; }

    void encode_vector(const float* x, std::uint8_t* out) const {
        const std::size_t d = dim();
        std::array<float, kMaxDim> y;
        const float norm = detail::normalize_and_rotate(rotation_, x, norm_format_, y.data());
        std::array<std::uint32_t, kMaxDim> codes;
        quantizer_.cells(y.data(), d, codes.data());
        pack_codes_unchecked(codes.data(), d, bits_, out);
        detail::store_norm(norm, norm_format_, out + code_bytes_);
    }

    void decode_vector(const std::uint8_t* in, float* out) const {
        const std::size_t d = dim();
        BitReader reader(in);
        for (std::size_t i = 0; i < d; ++i) out[i] = quantizer_.levels[reader.get(bits_)];
        rotation_.apply_inverse(out);
        const float norm = detail::load_norm(in + code_bytes_, norm_format_);
        for (std::size_t i = 0; i < d; ++i) out[i] *= norm;
    }

    float score_vector(const float* rotated_query, const std::uint8_t* in) const {
        BitReader reader(in);
        float sum = 0.0f;
        for (std::size_t i = 0; i < dim(); ++i) sum += rotated_query[i] * quantizer_.levels[reader.get(bits_)];
        return sum * detail::load_norm(in + code_bytes_, norm_format_);
    }

    bool vector_is_valid(const std::uint8_t* in) const {
        return detail::norm_is_valid(detail::load_norm(in + code_bytes_, norm_format_));
    }

private:
    static unsigned checked_bits(double bits) {
        detail::require(bits == 1.0 || bits == 2.0 || bits == 3.0 || bits == 4.0,
                        "turboquant: bits " + std::to_string(bits) + " is not one of 1, 2, 3, 4");
        return static_cast<unsigned>(bits);
    }

    Rotation rotation_;
    NormFormat norm_format_;
    unsigned bits_;
    std::size_t code_bytes_ = 0;
    detail::ScalarQuantizer quantizer_;
};

}  // namespace octopus
