// What the codecs that rotate before they quantize share (TurboQuant, OCTOPUS, PolarQuant): the
// normalize-and-rotate prologue of encode, and RotatedCodec, the rotation, norm format and code size
// they hold. Codecs that never rotate (uniform, QJL) include codec.hpp alone.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "octopus/codec_spec.hpp"
#include "octopus/detail/rows.hpp"
#include "octopus/rotation.hpp"

namespace octopus {

namespace detail {

/// The prologue of every rotation codec: y = R x / |x| (0 for x = 0), and |x|, checked to fit
/// `format` before the caller writes anything.
inline float normalize_and_rotate(const Rotation& rotation, const float* x, NormFormat format, float* y) {
    const std::size_t d = rotation.dim();
    const float norm = vector_norm(x, d);
    check_norm_fits(norm, format);
    const float inverse = norm > 0.0f ? 1.0f / norm : 0.0f;
    for (std::size_t i = 0; i < d; ++i) y[i] = x[i] * inverse;
    rotation.apply(y);
    return norm;
}

/// decode_vector of a codec with decode_rotated: its rotated unit vector, rotated back, times the norm.
template <class C>
void decode_through_rotation(const C& codec, const std::uint8_t* in, float* out) {
    const float norm = codec.decode_rotated(in, out);
    codec.rotation().apply_inverse(out);
    for (std::size_t i = 0; i < codec.dim(); ++i) out[i] *= norm;
}

/// score_vector of a codec with decode_rotated: q'·k'·|k|, the rotated query met by the rotated unit vector.
template <class C>
float score_in_rotation(const C& codec, const float* rotated_query, const std::uint8_t* in) {
    alignas(32) std::array<float, kMaxDim> row;
    const float norm = codec.decode_rotated(in, row.data());
    return row_dot(rotated_query, row.data(), codec.dim()) * norm;
}

}  // namespace detail

/// What the codecs that rotate before they quantize share: the rotation, the norm format, the bytes
/// of codes before the stored norm, and a query prepared by rotating it into the codebooks' domain.
class RotatedCodec {
public:
    std::size_t dim() const { return rotation_.dim(); }
    const Rotation& rotation() const { return rotation_; }
    NormFormat norm_format() const { return norm_format_; }
    /// Bytes of codes and padding before the stored norm.
    std::size_t code_bytes() const { return code_bytes_; }
    /// The query, rotated into the domain of the codebooks.
    void prepare_query(const float* q, float* prepared) const {
        std::memcpy(prepared, q, dim() * sizeof(float));
        rotation_.apply(prepared);
    }

protected:
    /// Throws octopus::error for an unsupported dim (the rotation checks it first).
    explicit RotatedCodec(const CodecSpec& spec) : rotation_(spec.dim, spec.seed), norm_format_(spec.norm) {}
    /// y = R x / |x|; returns |x|, checked to fit the norm format (detail::normalize_and_rotate).
    float normalize_and_rotate(const float* x, float* y) const { return detail::normalize_and_rotate(rotation_, x, norm_format_, y); }
    /// The norm stored after the codes of the record at `in`.
    float stored_norm(const std::uint8_t* in) const { return detail::load_norm(in + code_bytes_, norm_format_); }

    Rotation rotation_;
    NormFormat norm_format_;
    std::size_t code_bytes_ = 0;
};

}  // namespace octopus
