// QJL (Zandieh, Daliri, Han, arXiv 2406.03482): a 1-bit Johnson–Lindenstrauss sign sketch of the key
// with its norm, scored by the unbiased estimator of detail/gaussian_sketch.hpp.
//
// At b bits per coordinate the sketch has m = b·d rows, so b ∈ {1, 2, 3, 4}. Stored per vector: m sign
// bits, then ‖k‖. decode returns the estimator's own reconstruction ‖k‖·√(π/2)/m · Sᵀ sign(S k),
// whose inner product with any q is exactly the score; it is unbiased but noisy, which is what the
// sweep's MSE column shows.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "octopus/codec.hpp"
#include "octopus/detail/gaussian_sketch.hpp"
#include "octopus/packing.hpp"

namespace octopus {

class Qjl : public CodecInterface<Qjl> {
public:
    static constexpr const char* name() { return "qjl"; }

    /// Throws octopus::error for an unsupported dim or bits not in {1, 2, 3, 4}.
    explicit Qjl(const CodecSpec& spec) : dim_(spec.dim), norm_format_(spec.norm) {
        check_dim(spec.dim);
        rows_ = detail::whole_bits(spec.bits, name()) * spec.dim;  // sketch rows = bits · d
        sketch_ = detail::gaussian_sketch(rows_, spec.dim, detail::derive_seed(spec.seed, 0x51));
    }

    std::size_t dim() const { return dim_; }
    std::size_t bytes_per_vector() const { return rows_ / 8 + detail::norm_bytes(norm_format_); }

    void encode_vector(const float* x, std::uint8_t* out) const {
        const float norm = detail::vector_norm(x, dim_);
        detail::check_norm_fits(norm, norm_format_);
        std::array<float, kMaxPreparedQuery> projected;
        sketch_->apply(x, projected.data());
        BitWriter writer(out);
        for (std::size_t r = 0; r < rows_; ++r) writer.put(projected[r] >= 0.0f ? 1u : 0u, 1);
        writer.flush();
        detail::store_norm(norm, norm_format_, out + rows_ / 8);
    }

    void decode_vector(const std::uint8_t* in, float* out) const {
        for (std::size_t j = 0; j < dim_; ++j) out[j] = 0.0f;
        const float scale = detail::kSqrtHalfPi / static_cast<float>(rows_) * detail::load_norm(in + rows_ / 8, norm_format_);
        sketch_->add_transpose_signs([in](std::size_t r) { return detail::sketch_bit(in, r); }, scale, out);
    }

    /// The query's sketch S q.
    void prepare_query(const float* q, float* prepared) const { sketch_->apply(q, prepared); }

    float score_vector(const float* sketched_query, const std::uint8_t* in) const {
        float sum = 0.0f;
        for (std::size_t r = 0; r < rows_; ++r) sum += detail::sketch_bit(in, r) ? sketched_query[r] : -sketched_query[r];
        return sum * detail::kSqrtHalfPi / static_cast<float>(rows_) * detail::load_norm(in + rows_ / 8, norm_format_);
    }

    bool vector_is_valid(const std::uint8_t* in) const {
        return detail::norm_is_valid(detail::load_norm(in + rows_ / 8, norm_format_));
    }

private:
    std::size_t dim_;
    NormFormat norm_format_;
    std::size_t rows_ = 0;
    std::shared_ptr<const detail::GaussianSketch> sketch_;
};

}  // namespace octopus
