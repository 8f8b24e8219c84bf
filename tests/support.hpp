// Helpers shared by the codec tests: measured distortion and the structured inputs real keys resemble.
#pragma once

#include <octopus/codec.hpp>
#include <octopus/synthetic.hpp>

#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

namespace octopus_test {

/// Mean over vectors of |x − decode(encode(x))|² (vectors given unit length, so this is the
/// per-vector MSE the papers report).
template <class C>
double per_vector_mse(const C& codec, const std::vector<float>& x) {
    const auto decoded = codec.decode(codec.encode(std::span<const float>(x)));
    double sum = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) sum += (double(x[i]) - decoded[i]) * (double(x[i]) - decoded[i]);
    return sum / static_cast<double>(x.size() / codec.dim());
}

/// Every one-hot vector of R^d.
inline std::vector<float> one_hot_vectors(std::size_t d) {
    std::vector<float> x(d * d, 0.0f);
    for (std::size_t i = 0; i < d; ++i) x[i * d + i] = 1.0f;
    return x;
}

inline std::vector<float> all_ones_vector(std::size_t d) {
    return std::vector<float>(d, static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))));
}

/// MSE of `make(seed)` on structured input averaged over `seeds` rotations, so the figure describes
/// the codec on that input, not one lucky or unlucky rotation.
template <class Make>
double mse_over_seeds(Make make, const std::vector<float>& x, int seeds) {
    double total = 0.0;
    for (int s = 0; s < seeds; ++s) total += per_vector_mse(make(static_cast<std::uint64_t>(1000 + s)), x);
    return total / seeds;
}

}  // namespace octopus_test
