// TurboQuant (Zandieh et al., arXiv 2504.19874), its MSE form: rotate, then quantize every rotated
// coordinate on its own with the Lloyd–Max codebook of the exact coordinate marginal.
//
// Stored per vector: d codes of b bits, packed exactly, then the vector's norm (fp32 or fp16). The
// codebooks assume unit vectors, so keys are divided by their norm before rotation and the norm
// scales the decoded vector back.
#pragma once

#include <algorithm>
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

    /// acc[h·dim + i] += Σ_t w[h·stride + t] · |v_t| · v'_ti for the n records at `in` (bytes_per_vector()
    /// apart) and `heads` outputs: each record's rotated vector (decode_rotated's levels times its norm)
    /// weighted into the outputs, four at a time, every slice of 16 coordinates decoded in registers and
    /// held there across 16 records. What fused attention adds its values with. Returns false, having
    /// added what it read, if a record's norm is damaged.
    bool add_weighted_rotated(const std::uint8_t* in, std::size_t n, const float* w, std::size_t stride, std::size_t heads,
                              float* acc) const {
        constexpr std::size_t kRows = 16;
        std::array<float, 4 * kRows> scaled;
        bool valid = true;
        detail::with_bits<1, kMaxScalarBits>(bits_, [&]<unsigned B>() {
            for (std::size_t t0 = 0; t0 < n; t0 += kRows) {
                const std::size_t m = std::min(kRows, n - t0);
                for (std::size_t h0 = 0; h0 < heads; h0 += 4) {
                    const std::size_t group = std::min<std::size_t>(4, heads - h0);
                    for (std::size_t t = 0; t < m; ++t) {
                        const float norm = stored_norm(in + (t0 + t) * bytes_per_vector());
                        valid &= detail::norm_is_valid(norm);
                        for (std::size_t h = 0; h < group; ++h) scaled[h * kRows + t] = w[(h0 + h) * stride + t0 + t] * norm;
                    }
                    weighted_levels<B>(in + t0 * bytes_per_vector(), m, scaled.data(), kRows, group, acc + h0 * dim());
                }
            }
        });
        return valid;
    }

private:
#if defined(__AVX2__)
    /// Eight codes of B bits fill exactly B bytes: each group is read as one word, split with a shift
    /// per lane and looked up in levels held in registers (vpermps: eight levels per register).
    template <unsigned B>
    struct Lanes {
        __m256 low, high;
        __m256i shifts = _mm256_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B), mask = _mm256_set1_epi32((1 << B) - 1);
        explicit Lanes(const float* levels) : low(_mm256_loadu_ps(levels)), high(_mm256_loadu_ps(levels + 8)) {}

        /// The levels of the eight codes of group g of the codes at `in`.
        __m256 group(const std::uint8_t* in, std::size_t g) const {
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
            return v;
        }
    };
#endif

    template <unsigned B>
    void decode_levels(const std::uint8_t* in, float* out) const {
        const std::size_t d = dim();
#if defined(__AVX2__)
        const Lanes<B> lanes(register_levels_.data());
        for (std::size_t g = 0; g < d / 8; ++g) _mm256_storeu_ps(out + 8 * g, lanes.group(in, g));
#else
        BitReader reader(in);
        for (std::size_t i = 0; i < d; ++i) out[i] = quantizer_.levels[reader.get(B)];
#endif
    }

    /// acc[h·dim + i] += Σ_t w[h·stride + t] · level_ti for n records and heads ≤ 4 outputs.
    template <unsigned B>
    void weighted_levels(const std::uint8_t* in, std::size_t n, const float* w, std::size_t stride, std::size_t heads, float* acc) const {
        const std::size_t d = dim(), bytes = bytes_per_vector();
#if defined(__AVX2__) && defined(__FMA__)
        if (heads == 4) {
            const Lanes<B> lanes(register_levels_.data());
            return detail::weighted_sum4(w, stride, n, d, acc, [&](std::size_t t, std::size_t g) { return lanes.group(in + t * bytes, g); });
        }
#endif
        alignas(32) std::array<float, kMaxDim> row;
        for (std::size_t t = 0; t < n; ++t) {
            decode_levels<B>(in + t * bytes, row.data());
            for (std::size_t h = 0; h < heads; ++h) detail::row_axpy(w[h * stride + t], row.data(), acc + h * d, d);
        }
    }

    unsigned bits_;
    detail::ScalarQuantizer quantizer_;
    std::array<float, 16> register_levels_{};  // the levels repeated to 16: two registers for decode_levels' lookups
};

}  // namespace octopus
