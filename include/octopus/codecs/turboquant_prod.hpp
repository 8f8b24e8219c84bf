// TurboQuant's inner-product form (Zandieh et al., arXiv 2504.19874, Algorithm 2): (b − 1)-bit
// TurboQuant of the rotated unit key, plus a 1-bit QJL sketch (d rows) of the residual and the
// residual's norm, so that scores are unbiased:
//     ⟨q, x⟩ ≈ ‖x‖ (⟨Rq, ŷ⟩ + ‖e‖ √(π/2)/d ⟨S Rq, sign(S e)⟩),   e = Rx/‖x‖ − ŷ.
// Stored per vector: d(b − 1) code bits, d sign bits, ‖e‖, ‖x‖. At b = 1 the MSE stage is empty
// (ŷ = 0) and this is QJL on the rotated key.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "octopus/codec.hpp"
#include "octopus/rotated_codec.hpp"
#include "octopus/detail/gaussian_sketch.hpp"
#include "octopus/detail/scalar_quantizer.hpp"
#include "octopus/lloyd_max.hpp"
#include "octopus/packing.hpp"
#include "octopus/rotation.hpp"

namespace octopus {

class TurboQuantProd : public CodecInterface<TurboQuantProd> {
public:
    static constexpr const char* name() { return "turboquant-prod"; }

    /// Throws octopus::error for an unsupported dim or bits not in {1, 2, 3, 4}.
    explicit TurboQuantProd(const CodecSpec& spec) : rotation_(spec.dim, spec.seed), norm_format_(spec.norm) {
        mse_bits_ = detail::whole_bits(spec.bits, name()) - 1;
        if (mse_bits_ > 0) quantizer_ = detail::ScalarQuantizer(*coordinate_codebook(spec.dim, std::size_t{1} << mse_bits_));
        sketch_ = detail::gaussian_sketch(spec.dim, spec.dim, detail::derive_seed(spec.seed, 0x9d));
        code_bytes_ = spec.dim * mse_bits_ / 8;
        sign_bytes_ = spec.dim / 8;
    }

    std::size_t dim() const { return rotation_.dim(); }
    std::size_t bytes_per_vector() const { return code_bytes_ + sign_bytes_ + 2 * detail::norm_bytes(norm_format_); }

    void encode_vector(const float* x, std::uint8_t* out) const {
        const std::size_t d = dim();
        std::uint8_t* norms = out + code_bytes_ + sign_bytes_;
        std::array<float, kMaxDim> y, residual, projected;
        const float norm = detail::normalize_and_rotate(rotation_, x, norm_format_, y.data());
        BitWriter writer(out);
        double residual_sum = 0.0;
        for (std::size_t i = 0; i < d; ++i) {
            float approximation = 0.0f;
            if (mse_bits_ > 0) {
                const std::uint32_t c = quantizer_.cell(y[i]);
                writer.put(c, mse_bits_);
                approximation = quantizer_.levels[c];
            }
            residual[i] = y[i] - approximation;
            residual_sum += static_cast<double>(residual[i]) * residual[i];
        }
        writer.flush();
        sketch_->apply(residual.data(), projected.data());
        BitWriter signs(out + code_bytes_);
        for (std::size_t r = 0; r < d; ++r) signs.put(projected[r] >= 0.0f ? 1u : 0u, 1);
        signs.flush();
        detail::store_norm(static_cast<float>(std::sqrt(residual_sum)), norm_format_, norms);
        detail::store_norm(norm, norm_format_, norms + detail::norm_bytes(norm_format_));
    }

    void decode_vector(const std::uint8_t* in, float* out) const {
        const std::size_t d = dim();
        BitReader reader(in);
        for (std::size_t i = 0; i < d; ++i) out[i] = mse_bits_ > 0 ? quantizer_.levels[reader.get(mse_bits_)] : 0.0f;
        const std::uint8_t* signs = in + code_bytes_;
        const float scale = detail::kSqrtHalfPi / static_cast<float>(d) * residual_norm(in);
        sketch_->add_transpose_signs([signs](std::size_t r) { return detail::sketch_bit(signs, r); }, scale, out);
        rotation_.apply_inverse(out);
        const float norm = key_norm(in);
        for (std::size_t i = 0; i < d; ++i) out[i] *= norm;
    }

    /// [R q, S R q].
    void prepare_query(const float* q, float* prepared) const {
        std::memcpy(prepared, q, dim() * sizeof(float));
        rotation_.apply(prepared);
        sketch_->apply(prepared, prepared + dim());
    }

    float score_vector(const float* prepared, const std::uint8_t* in) const {
        const std::size_t d = dim();
        float mse_part = 0.0f;
        if (mse_bits_ > 0) {
            BitReader reader(in);
            for (std::size_t i = 0; i < d; ++i) mse_part += prepared[i] * quantizer_.levels[reader.get(mse_bits_)];
        }
        const std::uint8_t* signs = in + code_bytes_;
        const float* sketched = prepared + d;
        float sketch_part = 0.0f;
        for (std::size_t r = 0; r < d; ++r) sketch_part += detail::sketch_bit(signs, r) ? sketched[r] : -sketched[r];
        const float scale = detail::kSqrtHalfPi / static_cast<float>(d) * residual_norm(in);
        return key_norm(in) * (mse_part + scale * sketch_part);
    }

    bool vector_is_valid(const std::uint8_t* in) const {
        return detail::norm_is_valid(residual_norm(in)) && detail::norm_is_valid(key_norm(in));
    }

private:
    float residual_norm(const std::uint8_t* in) const {
        return detail::load_norm(in + code_bytes_ + sign_bytes_, norm_format_);
    }
    float key_norm(const std::uint8_t* in) const {
        return detail::load_norm(in + code_bytes_ + sign_bytes_ + detail::norm_bytes(norm_format_), norm_format_);
    }

    Rotation rotation_;
    NormFormat norm_format_;
    unsigned mse_bits_ = 0;
    detail::ScalarQuantizer quantizer_;
    std::shared_ptr<const detail::GaussianSketch> sketch_;
    std::size_t code_bytes_ = 0, sign_bytes_ = 0;
};

}  // namespace octopus
