// PolarQuant (Han, Kacham, Karbasi, Mirrokni, Zandieh, arXiv 2502.02617): rotate, then rewrite each
// block of 16 rotated coordinates in polar form — 8 level-1 angles of coordinate pairs, 4 level-2,
// 2 level-3 and 1 level-4 angle between the norms of half-blocks, and the block's radius — and
// quantize every angle with the Lloyd–Max codebook of its exact distribution
// (marginals.hpp: polar_angle_density; level 1 is uniform on [0, 2π)).
//
// The paper's configuration is 4 levels with 4, 2, 2, 2 bits and the block radius in fp16: 3.875 bits
// per coordinate, which this codec gives at b = 4 with NormFormat::fp16. Other b scale that split:
// level 1 gets b bits, levels 2–4 get ⌈b/2⌉ (b = 1: 1,1,1,1; b = 2: 2,1,1,1; b = 3: 3,2,2,2). Block radii
// use the spec's norm format; bits_per_coordinate() counts them (1 or 2 bits per coordinate).
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
#include "octopus/rotated_codec.hpp"
#include "octopus/detail/scalar_quantizer.hpp"
#include "octopus/lloyd_max.hpp"
#include "octopus/marginals.hpp"
#include "octopus/packing.hpp"
#include "octopus/rotation.hpp"

namespace octopus {

class PolarQuant : public CodecInterface<PolarQuant>, public RotatedCodec {
public:
    static constexpr const char* name() { return "polarquant"; }
    static constexpr std::size_t kLevels = 4;
    static constexpr std::size_t kBlock = 16;  // 2^kLevels coordinates share one radius

    /// Throws octopus::error for an unsupported dim or bits not in {1, 2, 3, 4}.
    explicit PolarQuant(const CodecSpec& spec) : RotatedCodec(spec) {
        const unsigned b = detail::whole_bits(spec.bits, name());
        level_bits_ = {b, (b + 1) / 2, (b + 1) / 2, (b + 1) / 2};
        for (std::size_t level = 0; level < kLevels; ++level) {
            const std::size_t count = std::size_t{1} << level_bits_[level];
            const Codebook book = level == 0 ? circle_codebook(count) : *angle_codebook(static_cast<int>(level + 1), count);
            quantizers_[level] = detail::ScalarQuantizer(book);
            for (double angle : book.levels) {
                cosines_[level].push_back(static_cast<float>(std::cos(angle)));
                sines_[level].push_back(static_cast<float>(std::sin(angle)));
            }
        }
        std::size_t bits = 0;
        for (std::size_t level = 0; level < kLevels; ++level) bits += (kBlock >> (level + 1)) * level_bits_[level];
        blocks_ = spec.dim / kBlock;
        code_bits_ = blocks_ * bits;
        code_bytes_ = (code_bits_ + 7) / 8;
    }

    std::size_t bytes_per_vector() const { return code_bytes_ + blocks_ * detail::norm_bytes(norm_format_); }
    /// Bits of each level's angles, level 1 first.
    const std::array<unsigned, kLevels>& level_bits() const { return level_bits_; }

    void encode_vector(const float* x, std::uint8_t* out) const {
        std::array<float, kMaxDim> y;
        std::memcpy(y.data(), x, dim() * sizeof(float));
        rotation_.apply(y.data());
        for (std::size_t block = 0; block < blocks_; ++block) {
            // Radii first: fp16 refuses what it cannot hold before a byte is written.
            detail::check_norm_fits(detail::vector_norm(y.data() + block * kBlock, kBlock), norm_format_);
        }
        BitWriter writer(out);
        for (std::size_t block = 0; block < blocks_; ++block) {
            std::array<float, kBlock> r;
            std::memcpy(r.data(), y.data() + block * kBlock, sizeof(r));
            constexpr float two_pi = 6.283185307179586f;
            // Level 1: pairs to (radius, angle in [0, 2π)); level ℓ > 1: pairs of radii to
            // (radius, angle in [0, π/2]). Radii are written over the pair's first slot.
            for (std::size_t level = 0, width = kBlock; level < kLevels; ++level, width /= 2)
                for (std::size_t i = 0; i < width / 2; ++i) {
                    const float a = r[2 * i], b = r[2 * i + 1];
                    float angle = std::atan2(b, a);
                    if (level == 0 && angle < 0.0f) angle += two_pi;
                    writer.put(quantizers_[level].cell(angle), level_bits_[level]);
                    r[i] = std::sqrt(detail::product(a, a) + detail::product(b, b));  // unfused on every build
                }
            detail::store_norm(r[0], norm_format_, out + code_bytes_ + block * detail::norm_bytes(norm_format_));
        }
        writer.flush();
    }

    void decode_vector(const std::uint8_t* in, float* out) const {
        BitReader reader(in);
        for (std::size_t block = 0; block < blocks_; ++block) reconstruct_block(reader, in, block, out + block * kBlock);
        rotation_.apply_inverse(out);
    }

    float score_vector(const float* q, const std::uint8_t* in) const {
        BitReader reader(in);
        float sum = 0.0f;
        std::array<float, kBlock> block_values;
        for (std::size_t block = 0; block < blocks_; ++block) {
            reconstruct_block(reader, in, block, block_values.data());
            for (std::size_t j = 0; j < kBlock; ++j) sum += q[block * kBlock + j] * block_values[j];
        }
        return sum;
    }

    bool vector_is_valid(const std::uint8_t* in) const {
        for (std::size_t block = 0; block < blocks_; ++block)
            if (!detail::norm_is_valid(detail::load_norm(in + code_bytes_ + block * detail::norm_bytes(norm_format_), norm_format_)))
                return false;
        const unsigned padding = static_cast<unsigned>(code_bytes_ * 8 - code_bits_);
        return padding == 0 || (in[code_bytes_ - 1] >> (8 - padding)) == 0;
    }

private:
    /// The level-1 angle is uniform on [0, 2π): Lloyd–Max levels are evenly spaced.
    static Codebook circle_codebook(std::size_t count) {
        Density uniform;
        uniform.pdf = [](double) { return 1.0 / 6.283185307179586; };
        uniform.lo = 0.0;
        uniform.hi = 6.283185307179586;
        uniform.scale = 1.0;
        uniform.symmetric = true;
        return lloyd_max(uniform, count);
    }

    static std::shared_ptr<const Codebook> angle_codebook(int level, std::size_t count) {
        struct Tag {};
        return detail::memoize<Tag, std::pair<int, std::size_t>, Codebook>(
            std::pair{level, count}, [&] { return lloyd_max(polar_angle_density(level), count); });
    }

    /// The angles of one block, read in the order encode wrote them, unfolded from the radius down.
    void reconstruct_block(BitReader& reader, const std::uint8_t* in, std::size_t block, float* out) const {
        std::array<std::array<std::uint32_t, kBlock / 2>, kLevels> codes;
        for (std::size_t level = 0, width = kBlock; level < kLevels; ++level, width /= 2)
            for (std::size_t i = 0; i < width / 2; ++i) codes[level][i] = reader.get(level_bits_[level]);
        std::array<float, kBlock> r;
        r[0] = detail::load_norm(in + code_bytes_ + block * detail::norm_bytes(norm_format_), norm_format_);
        for (std::size_t level = kLevels; level-- > 0;) {
            const std::size_t pairs = kBlock >> (level + 1);
            for (std::size_t i = pairs; i-- > 0;) {
                const float radius = r[i];
                r[2 * i] = radius * cosines_[level][codes[level][i]];
                r[2 * i + 1] = radius * sines_[level][codes[level][i]];
            }
        }
        std::memcpy(out, r.data(), sizeof(r));
    }

    std::array<unsigned, kLevels> level_bits_{};
    std::array<detail::ScalarQuantizer, kLevels> quantizers_;
    std::array<std::vector<float>, kLevels> cosines_, sines_;
    std::size_t blocks_ = 0, code_bits_ = 0;
};

}  // namespace octopus
