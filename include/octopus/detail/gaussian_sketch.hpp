// The Gaussian JL matrix S of QJL (arXiv 2406.03482): rows × dim entries N(0, 1) from the seed.
//
// sign(S k) with ‖k‖ gives the unbiased inner-product estimator
//     ⟨q, k⟩ ≈ ‖k‖ · √(π/2) / rows · ⟨S q, sign(S k)⟩,
// because E[sign(s·k) (s·q)] = √(2/π) ⟨q, k⟩ / ‖k‖ for a Gaussian row s.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <tuple>
#include <vector>

#include "octopus/detail/memo.hpp"
#include "octopus/detail/prng.hpp"

namespace octopus::detail {

struct GaussianSketch {
    std::size_t rows = 0, dim = 0;
    std::vector<float> matrix;  // row-major rows × dim

    GaussianSketch(std::size_t rows_, std::size_t dim_, std::uint64_t seed) : rows(rows_), dim(dim_), matrix(rows_ * dim_) {
        SplitMix64 rng(seed);
        for (float& entry : matrix) entry = static_cast<float>(rng.normal());
    }

    /// out = S x (rows floats).
    void apply(const float* x, float* out) const {
        for (std::size_t r = 0; r < rows; ++r) {
            const float* row = matrix.data() + r * dim;
            float sum = 0.0f;
            for (std::size_t j = 0; j < dim; ++j) sum += row[j] * x[j];
            out[r] = sum;
        }
    }

    /// out += scale · Sᵀ z for z ∈ {±1}^rows given as one bit per row (1 = +1).
    template <class BitAt>
    void add_transpose_signs(BitAt bit, float scale, float* out) const {
        for (std::size_t r = 0; r < rows; ++r) {
            const float s = bit(r) ? scale : -scale;
            const float* row = matrix.data() + r * dim;
            for (std::size_t j = 0; j < dim; ++j) out[j] += s * row[j];
        }
    }
};

/// The sketch for (rows, dim, seed), built once per process and shared.
inline std::shared_ptr<const GaussianSketch> gaussian_sketch(std::size_t rows, std::size_t dim, std::uint64_t seed) {
    struct Tag {};
    return memoize<Tag, std::tuple<std::size_t, std::size_t, std::uint64_t>, GaussianSketch>(
        std::tuple{rows, dim, seed}, [&] { return GaussianSketch(rows, dim, seed); });
}

/// Bit r of a packed sign sketch (LSB first, as BitWriter writes one bit per row).
inline bool sketch_bit(const std::uint8_t* bits, std::size_t r) { return (bits[r / 8] >> (r % 8)) & 1u; }

inline constexpr float kSqrtHalfPi = 1.2533141373155003f;  // √(π/2)

}  // namespace octopus::detail
