// The per-token uniform quantizer most engines ship today: each group of 32 coordinates (the last
// group of d = 80 or 112 has 16) is mapped affinely onto 2^b levels between its min and max, with
// the scale and the zero point (the min) stored in fp16. No rotation, no codebook.
//
// Stored per vector: d codes of b bits, then per group an fp16 scale and an fp16 zero; the bits per
// coordinate are b + 1 for groups of 32, counted honestly. Codes are computed against the fp16-rounded
// scale and zero, so decoding reproduces exactly what encoding measured.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "octopus/codec.hpp"
#include "octopus/packing.hpp"

namespace octopus {

class Uniform : public CodecInterface<Uniform> {
public:
    static constexpr const char* name() { return "uniform"; }
    static constexpr std::size_t kGroup = 32;
    /// Widest code: b = 1..kMaxBits bits per coordinate.
    static constexpr unsigned kMaxBits = 8;

    /// Throws octopus::error for an unsupported dim or bits not a whole number in 1..8.
    explicit Uniform(const CodecSpec& spec) : dim_(spec.dim) {
        check_dim(spec.dim);
        bits_ = detail::whole_bits(spec.bits, name(), kMaxBits);
        groups_ = (dim_ + kGroup - 1) / kGroup;
        code_bytes_ = packed_bytes(dim_, bits_);
    }

    std::size_t dim() const { return dim_; }
    std::size_t bytes_per_vector() const { return code_bytes_ + 4 * groups_; }

    void encode_vector(const float* x, std::uint8_t* out) const {
        std::array<half, 2 * (kMaxDim / kGroup + 1)> params;
        for (std::size_t g = 0; g < groups_; ++g) {
            const float* begin = x + g * kGroup;
            const float* end = x + std::min(dim_, (g + 1) * kGroup);
            const auto [lo, hi] = std::minmax_element(begin, end);
            detail::require(std::fabs(*lo) <= 65504.0f && std::fabs(*hi) <= 65504.0f && *hi - *lo <= 65504.0f,
                            "uniform: key values beyond ±65504 do not fit the fp16 scale and zero");
            params[2 * g] = half((*hi - *lo) / static_cast<float>((1u << bits_) - 1));
            params[2 * g + 1] = half(*lo);
        }
        BitWriter writer(out);
        const auto top = static_cast<float>((1u << bits_) - 1);
        for (std::size_t i = 0; i < dim_; ++i) {
            const float scale = static_cast<float>(params[2 * (i / kGroup)]);
            const float zero = static_cast<float>(params[2 * (i / kGroup) + 1]);
            // The range of codes is the quantizer's own, [0, 2^b − 1]; fp16 rounding of the zero and
            // scale can put the group's extremes a hair outside it.
            const float level = scale > 0.0f ? std::nearbyint((x[i] - zero) / scale) : 0.0f;
            writer.put(static_cast<std::uint32_t>(std::clamp(level, 0.0f, top)), bits_);
        }
        writer.flush();
        std::memcpy(out + code_bytes_, params.data(), 4 * groups_);
    }

    void decode_vector(const std::uint8_t* in, float* out) const {
        BitReader reader(in);
        for (std::size_t i = 0; i < dim_; ++i)
            out[i] = zero(in, i / kGroup) + scale(in, i / kGroup) * static_cast<float>(reader.get(bits_));
    }

    /// [q, then the sum of q over each group] (the zero points multiply those sums).
    void prepare_query(const float* q, float* prepared) const {
        std::memcpy(prepared, q, dim_ * sizeof(float));
        for (std::size_t g = 0; g < groups_; ++g) {
            float sum = 0.0f;
            for (std::size_t i = g * kGroup; i < std::min(dim_, (g + 1) * kGroup); ++i) sum += q[i];
            prepared[dim_ + g] = sum;
        }
    }

    float score_vector(const float* prepared, const std::uint8_t* in) const {
        BitReader reader(in);
        float total = 0.0f;
        for (std::size_t g = 0; g < groups_; ++g) {
            float weighted = 0.0f;
            for (std::size_t i = g * kGroup; i < std::min(dim_, (g + 1) * kGroup); ++i)
                weighted += prepared[i] * static_cast<float>(reader.get(bits_));
            total += scale(in, g) * weighted + zero(in, g) * prepared[dim_ + g];
        }
        return total;
    }

    bool vector_is_valid(const std::uint8_t* in) const {
        for (std::size_t g = 0; g < groups_; ++g)
            if (!std::isfinite(zero(in, g)) || !(scale(in, g) >= 0.0f) || !std::isfinite(scale(in, g))) return false;
        return true;
    }

private:
    float scale(const std::uint8_t* in, std::size_t group) const { return param(in, 2 * group); }
    float zero(const std::uint8_t* in, std::size_t group) const { return param(in, 2 * group + 1); }
    float param(const std::uint8_t* in, std::size_t index) const {
        std::uint16_t bits;
        std::memcpy(&bits, in + code_bytes_ + 2 * index, 2);
        return static_cast<float>(Eigen::numext::bit_cast<half>(bits));
    }

    std::size_t dim_;
    unsigned bits_ = 0;
    std::size_t groups_ = 0, code_bytes_ = 0;
};

}  // namespace octopus
