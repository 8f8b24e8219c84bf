// Seeded synthetic keys for tests, sweeps and benchmarks: the uniform sphere the codecs are designed
// for, and the structured inputs real keys resemble, which the rotation must spread.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "octopus/detail/prng.hpp"
#include "octopus/error.hpp"

namespace octopus {

/// n row-major vectors of length dim, uniform on the unit sphere (normalized Gaussians).
/// Throws octopus::error when n·dim floats exceed what a std::vector can hold (no size wraps). The
/// other generators start from this one, so the check covers them too.
inline std::vector<float> uniform_unit_vectors(std::size_t n, std::size_t dim, std::uint64_t seed) {
    detail::require(dim == 0 || n <= std::vector<float>().max_size() / dim,
                    "uniform_unit_vectors: " + std::to_string(n) + " vectors of dim " + std::to_string(dim) +
                        " exceed the largest float vector (" + std::to_string(std::vector<float>().max_size()) + " elements)");
    detail::SplitMix64 rng(seed);
    std::vector<float> out(n * dim);
    std::vector<double> g(dim);
    for (std::size_t v = 0; v < n; ++v) {
        double sum = 0.0;
        for (double& x : g) {
            x = rng.normal();
            sum += x * x;
        }
        const double inverse = 1.0 / std::sqrt(sum);
        for (std::size_t j = 0; j < dim; ++j) out[v * dim + j] = static_cast<float>(g[j] * inverse);
    }
    return out;
}

/// n Gaussian vectors whose first `outliers` channels have standard deviation `scale` times the
/// rest (real keys carry a few such channels), normalized to unit length.
inline std::vector<float> outlier_channel_vectors(std::size_t n, std::size_t dim, std::uint64_t seed,
                                                  std::size_t outliers = 4, double scale = 50.0) {
    std::vector<float> out = uniform_unit_vectors(n, dim, seed);
    for (std::size_t v = 0; v < n; ++v) {
        float* x = out.data() + v * dim;
        double sum = 0.0;
        for (std::size_t j = 0; j < dim; ++j) {
            if (j < outliers) x[j] *= static_cast<float>(scale);
            sum += static_cast<double>(x[j]) * x[j];
        }
        const auto inverse = static_cast<float>(1.0 / std::sqrt(sum));
        for (std::size_t j = 0; j < dim; ++j) x[j] *= inverse;
    }
    return out;
}

/// n vectors near a random `rank`-dimensional subspace fixed by `seed`: Gaussian coefficients (drawn
/// from `stream` of the seed, so several streams share one subspace) on an orthonormalized random
/// basis, plus isotropic noise of relative size `noise`, normalized to unit length. Heads whose keys
/// live in few directions look like this.
inline std::vector<float> low_rank_vectors(std::size_t n, std::size_t dim, std::uint64_t seed, std::size_t rank = 8,
                                           double noise = 0.1, std::uint64_t stream = 0) {
    detail::SplitMix64 basis_rng(detail::derive_seed(seed, 1));
    std::vector<double> basis(rank * dim);
    for (std::size_t r = 0; r < rank; ++r) {
        double* b = basis.data() + r * dim;
        for (std::size_t j = 0; j < dim; ++j) b[j] = basis_rng.normal();
        for (std::size_t p = 0; p < r; ++p) {  // Gram–Schmidt
            const double* other = basis.data() + p * dim;
            double dot = 0.0;
            for (std::size_t j = 0; j < dim; ++j) dot += b[j] * other[j];
            for (std::size_t j = 0; j < dim; ++j) b[j] -= dot * other[j];
        }
        double norm = 0.0;
        for (std::size_t j = 0; j < dim; ++j) norm += b[j] * b[j];
        for (std::size_t j = 0; j < dim; ++j) b[j] /= std::sqrt(norm);
    }
    detail::SplitMix64 rng(detail::derive_seed(seed, 2 + stream));
    const double noise_scale = noise * std::sqrt(static_cast<double>(rank) / static_cast<double>(dim));
    std::vector<float> out(n * dim);
    std::vector<double> x(dim);
    for (std::size_t v = 0; v < n; ++v) {
        for (std::size_t j = 0; j < dim; ++j) x[j] = noise_scale * rng.normal();
        for (std::size_t r = 0; r < rank; ++r) {
            const double z = rng.normal();
            for (std::size_t j = 0; j < dim; ++j) x[j] += z * basis[r * dim + j];
        }
        double norm = 0.0;
        for (double c : x) norm += c * c;
        for (std::size_t j = 0; j < dim; ++j) out[v * dim + j] = static_cast<float>(x[j] / std::sqrt(norm));
    }
    return out;
}

}  // namespace octopus
