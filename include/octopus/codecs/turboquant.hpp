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
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "octopus/codec.hpp"
#include "octopus/rotated_codec.hpp"
#include "octopus/detail/scalar_quantizer.hpp"
#include "octopus/lloyd_max.hpp"
#include "octopus/packing.hpp"
#include "octopus/rotation.hpp"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace octopus {

/// Per-coordinate Lloyd–Max quantization after a seeded randomized Hadamard rotation; b ∈ {1, 2, 3, 4}.
class TurboQuant : public CodecInterface<TurboQuant>, public RotatedCodec {
public:
    static constexpr const char* name() { return "turboquant"; }

    /// Throws octopus::error for an unsupported dim or bits not in {1, 2, 3, 4}.
    explicit TurboQuant(const CodecSpec& spec)
        : RotatedCodec(spec), bits_(detail::whole_bits(spec.bits, name())) {
        quantizer_ = detail::ScalarQuantizer(*coordinate_codebook(spec.dim, std::size_t{1} << bits_)).with_half_levels();
        for (std::size_t i = 0; i < register_levels_.size(); ++i) register_levels_[i] = quantizer_.levels[i % quantizer_.levels.size()];
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

    void decode_vector(const std::uint8_t* in, float* out) const { detail::decode_through_rotation(*this, in, out); }

    /// The record's unit vector in the rotated domain (its levels, before the inverse rotation and
    /// the norm) into out (dim() floats); returns the stored norm. What fused attention reads.
    float decode_rotated(const std::uint8_t* in, float* out) const {
        detail::with_bits<1, kMaxScalarBits>(bits_, [&]<unsigned B>() { decode_levels<B>(in, out); });
        return stored_norm(in);
    }

    /// q'·k' |k| from the codes: the record's rotated levels, met by the rotated query.
    float score_vector(const float* rotated_query, const std::uint8_t* in) const {
        return detail::score_in_rotation(*this, rotated_query, in);
    }

    bool vector_is_valid(const std::uint8_t* in) const {
        return detail::norm_is_valid(stored_norm(in));
    }

private:
    /// Eight codes of B bits fill exactly B bytes: each group is read as one word, split with a shift
    /// per lane and looked up in levels held in registers (vpermps: eight levels per register).
    template <unsigned B>
    void decode_levels(const std::uint8_t* in, float* out) const {
        const std::size_t d = dim();
#if defined(__AVX2__)
        const __m256 low = _mm256_loadu_ps(register_levels_.data()), high = _mm256_loadu_ps(register_levels_.data() + 8);
        const __m256i shifts = _mm256_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B);
        const __m256i mask = _mm256_set1_epi32((1 << B) - 1);
        for (std::size_t g = 0; g < d / 8; ++g) {
            // One whole 4-byte load (a word assembled from narrower loads stalls on store forwarding):
            // for B ≥ 2 it ends at most 2 bytes past the codes, inside the norm that follows them; the
            // shifts and the mask keep only this group's bits.
            std::uint32_t word = 0;
            if constexpr (B == 1)
                word = in[g];
            else
                std::memcpy(&word, in + g * B, 4);
            const __m256i codes = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), shifts), mask);
            __m256 v = _mm256_permutevar8x32_ps(low, codes);
            if constexpr (B == 4)
                v = _mm256_blendv_ps(v, _mm256_permutevar8x32_ps(high, codes), _mm256_castsi256_ps(_mm256_slli_epi32(codes, 28)));
            _mm256_storeu_ps(out + 8 * g, v);
        }
#else
        BitReader reader(in);
        for (std::size_t i = 0; i < d; ++i) out[i] = quantizer_.levels[reader.get(B)];
#endif
    }

    unsigned bits_;
    detail::ScalarQuantizer quantizer_;
    std::array<float, 16> register_levels_{};  // the levels repeated to 16: two registers for decode_levels' lookups
};

}  // namespace octopus
