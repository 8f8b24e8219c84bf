// What a codec is built from (CodecSpec), the element types it takes, and how a record stores its
// norm: the pieces every codec shares below the CodecInterface of codec.hpp. The rules a record's
// bytes follow on CPU and GPU alike (norm bytes, the fp16 limit) are contract.hpp's.
#pragma once

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "octopus/contract.hpp"
#include "octopus/error.hpp"

namespace octopus {

/// IEEE binary16 and bfloat16 key elements, as engines store them (Eigen's types: bit-exact
/// round-to-nearest-even conversions).
using half = Eigen::half;
using bfloat16 = Eigen::bfloat16;

/// How a codec stores each vector's norm; the bytes count in bits_per_coordinate().
enum class NormFormat { fp32, fp16 };

/// What a codec is built from: head dim, bits per coordinate (whole numbers; OCTOPUS also takes
/// thirds such as 2.33 = 7 bits per triplet), the rotation seed, and how norms are stored.
struct CodecSpec {
    std::size_t dim = 128;
    double bits = 3.0;
    std::uint64_t seed = 0;
    NormFormat norm = NormFormat::fp32;
};

namespace detail {

inline std::size_t norm_bytes(NormFormat format) { return octopus::norm_bytes(format == NormFormat::fp16); }

/// Throws unless `norm` fits `format`: fp16 refuses norms it cannot hold rather than clamping them
/// to Inf. Encoders call it before writing a byte.
inline void check_norm_fits(float norm, NormFormat format) {
    if (!norm_fits(norm, format == NormFormat::fp16))
        throw error("key norm " + std::to_string(norm) +
                    " exceeds the largest fp16 value 65504; use NormFormat::fp32 for such keys");
}

/// Stores a vector norm (checked by check_norm_fits).
inline void store_norm(float norm, NormFormat format, std::uint8_t* out) {
    check_norm_fits(norm, format);
    if (format == NormFormat::fp32) {
        std::memcpy(out, &norm, 4);
        return;
    }
    const std::uint16_t bits = Eigen::numext::bit_cast<std::uint16_t>(half(norm));
    std::memcpy(out, &bits, 2);
}

inline float load_norm(const std::uint8_t* in, NormFormat format) {
    if (format == NormFormat::fp32) {
        float norm;
        std::memcpy(&norm, in, 4);
        return norm;
    }
    std::uint16_t bits;
    std::memcpy(&bits, in, 2);
    return static_cast<float>(Eigen::numext::bit_cast<half>(bits));
}

/// |x| of n floats, accumulated in double over eight interleaved partial sums: exact enough that the
/// float result is correctly rounded in practice, free of the serial add chain of one accumulator,
/// and in a fixed order, so the same bits on every build.
inline float vector_norm(const float* x, std::size_t n) {
    double partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (std::size_t k = 0; k < 8; ++k) partial[k] += static_cast<double>(x[i + k]) * x[i + k];
    for (; i < n; ++i) partial[i % 8] += static_cast<double>(x[i]) * x[i];
    return static_cast<float>(std::sqrt(combine_norm_partials(partial)));
}

/// A stored norm must be a finite number ≥ 0; anything else means the bytes were damaged.
inline bool norm_is_valid(float norm) { return std::isfinite(norm) && norm >= 0.0f; }

}  // namespace detail

}  // namespace octopus
