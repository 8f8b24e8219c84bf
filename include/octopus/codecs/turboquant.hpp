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
#include "octopus/rotated_codec.hpp"
#include "octopus/detail/scalar_quantizer.hpp"
#include "octopus/lloyd_max.hpp"
#include "octopus/packing.hpp"
#include "octopus/rotation.hpp"

namespace octopus {

/// Per-coordinate Lloyd–Max quantization after a seeded randomized Hadamard rotation; b ∈ {1, 2, 3, 4}.
class TurboQuant : public CodecInterface<TurboQuant>, public RotatedCodec {
public:
    static constexpr const char* name() { return "turboquant"; }

    /// Throws octopus::error for an unsupported dim or bits not in {1, 2, 3, 4}.
    explicit TurboQuant(const CodecSpec& spec)
        : RotatedCodec(spec), bits_(detail::whole_bits(spec.bits, name())) {
        quantizer_ = detail::ScalarQuantizer(*coordinate_codebook(spec.dim, std::size_t{1} << bits_)).with_half_levels();
        code_bytes_ = packed_bytes(spec.dim, bits_);
    }

    unsigned bits() const { return bits_; }
    std::size_t bytes_per_vector() const { return code_bytes_ + detail::norm_bytes(norm_format_); }
    /// The scalar reconstruction levels (for unit vectors), ascending; fp16-exact.
    const std::vector<float>& levels() const { return quantizer_.levels; }
    /// The cell boundaries between consecutive levels, ascending: a coordinate's code is how many are ≤ it.
    const std::vector<float>& thresholds() const { return quantizer_.thresholds; }

    void encode_vector(const float* x, std::uint8_t* out) const {
        std::array<float, kMaxDim> y;
        std::array<std::uint32_t, kMaxDim> codes;
        const float norm = normalize_and_rotate(x, y.data());
        quantizer_.cells(y.data(), dim(), codes.data());
        pack_codes_unchecked(codes.data(), dim(), bits_, out);
        detail::store_norm(norm, norm_format_, out + code_bytes_);
    }

    void decode_vector(const std::uint8_t* in, float* out) const {
        const std::size_t d = dim();
        BitReader reader(in);
        for (std::size_t i = 0; i < d; ++i) out[i] = quantizer_.levels[reader.get(bits_)];
        rotation_.apply_inverse(out);
        const float norm = stored_norm(in);
        for (std::size_t i = 0; i < d; ++i) out[i] *= norm;
    }

    float score_vector(const float* rotated_query, const std::uint8_t* in) const {
        BitReader reader(in);
        float sum = 0.0f;
        for (std::size_t i = 0; i < dim(); ++i) sum += rotated_query[i] * quantizer_.levels[reader.get(bits_)];
        return sum * stored_norm(in);
    }

    bool vector_is_valid(const std::uint8_t* in) const {
        return detail::norm_is_valid(stored_norm(in));
    }

private:
    unsigned bits_;
    detail::ScalarQuantizer quantizer_;
};

}  // namespace octopus
