// Seeded synthetic keys for tests, sweeps and benchmarks: the uniform sphere the codecs are designed
// for, and the structured inputs real keys resemble, which the rotation must spread.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "octopus/detail/prng.hpp"

namespace octopus {

/// n row-major vectors of length dim, uniform on the unit sphere (normalized Gaussians).
inline std::vector<float> uniform_unit_vectors(std::size_t n, std::size_t dim, std::uint64_t seed) {
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

}  // namespace octopus
