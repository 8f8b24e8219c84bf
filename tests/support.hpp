// Helpers shared by the codec tests: measured distortion and the structured inputs real keys resemble.
#pragma once

#include <gtest/gtest.h>
#include <octopus/codec.hpp>
#include <octopus/synthetic.hpp>

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

namespace octopus_test {

/// Runs `call`, which must throw octopus::error with `fragment` in its message, then `unchanged()`,
/// which checks that the refusal left what the call could have written as it was.
template <class Call, class Check>
void expect_refusal(Call&& call, const std::string& fragment, Check&& unchanged) {
    try {
        call();
        ADD_FAILURE() << "accepted; expected '" << fragment << "'";
    } catch (const octopus::error& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
    unchanged();
}

/// Composite Simpson rule on `intervals` equal steps: an integration independent of the library's
/// Gauss–Legendre quadrature, for checking its densities and codebooks.
template <class F>
double simpson(F f, double a, double b, int intervals = 20000) {
    if (!(b > a)) return 0.0;
    const double h = (b - a) / intervals;
    double sum = f(a) + f(b);
    for (int i = 1; i < intervals; ++i) sum += f(a + i * h) * (i % 2 ? 4.0 : 2.0);
    return sum * h / 3.0;
}

/// dot() from codes equals the dot of the decoded keys (to 1e-5 of the decoded key's norm), for 50
/// keys of norms 0.5 to 2.5 against one query.
template <class C>
void expect_dot_matches_decode(const C& codec, std::uint64_t seed = 1) {
    const std::size_t d = codec.dim();
    auto keys = octopus::uniform_unit_vectors(50, d, seed);
    for (std::size_t i = 0; i < keys.size(); ++i) keys[i] *= 0.5f + float(i / d % 3);
    const auto query = octopus::uniform_unit_vectors(1, d, seed + 1);
    const auto packed = codec.encode(std::span<const float>(keys));
    const auto decoded = codec.decode(packed);
    const auto scores = codec.dot(query, packed);
    for (std::size_t v = 0; v < 50; ++v) {
        double exact = 0.0, norm = 0.0;
        for (std::size_t j = 0; j < d; ++j) {
            exact += double(query[j]) * decoded[v * d + j];
            norm += double(decoded[v * d + j]) * decoded[v * d + j];
        }
        EXPECT_NEAR(scores[v], exact, 1e-5 * std::max(1.0, std::sqrt(norm))) << codec.name() << " d " << d << " key " << v;
    }
}

/// Mean over vectors of |x − decode(encode(x))|² (vectors given unit length, so this is the
/// per-vector MSE the papers report).
template <class C>
double per_vector_mse(const C& codec, const std::vector<float>& x) {
    const auto decoded = codec.decode(codec.encode(std::span<const float>(x)));
    double sum = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) sum += (double(x[i]) - decoded[i]) * (double(x[i]) - decoded[i]);
    return sum / static_cast<double>(x.size() / codec.dim());
}

/// FNV-1a of packed bytes: tests pin it so that any change of rotation, codebook or layout shows.
inline std::uint64_t fnv1a(const std::vector<std::uint8_t>& bytes) {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (std::uint8_t byte : bytes) hash = (hash ^ byte) * 0x100000001b3ULL;
    return hash;
}

/// n keys of dim d with a spread of norms (0.5 to 6.5), so that norms and codes both matter.
inline std::vector<float> spread_keys(std::size_t n, std::size_t d, std::uint64_t seed) {
    auto k = octopus::uniform_unit_vectors(n, d, seed);
    for (std::size_t t = 0; t < n; ++t)
        for (std::size_t c = 0; c < d; ++c) k[t * d + c] *= 0.5f + float(t % 7);
    return k;
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

/// The rotation must make one-hot, all-ones and outlier-channel keys look uniform: the MSE of
/// `make(seed)` (a codec at head dim d) on each within 7% of its MSE on uniform keys (what rotation.hpp
/// promises for three rounds), the structured ones averaged over rotations.
template <class Make>
void expect_structured_inputs_like_uniform(Make make, std::size_t d, const char* name) {
    const double uniform = per_vector_mse(make(1), octopus::uniform_unit_vectors(4000, d, 9));
    const double one_hot = mse_over_seeds(make, one_hot_vectors(d), 20);
    const double ones = mse_over_seeds(make, all_ones_vector(d), 200);
    const double outliers = per_vector_mse(make(1), octopus::outlier_channel_vectors(4000, d, 9, 4, 50.0));
    std::printf("%s d %zu: uniform %.5f one-hot %.5f all-ones %.5f outliers %.5f\n", name, d, uniform, one_hot, ones, outliers);
    EXPECT_NEAR(one_hot / uniform, 1.0, 0.07) << name << " d " << d << " one-hot " << one_hot << " uniform " << uniform;
    EXPECT_NEAR(ones / uniform, 1.0, 0.07) << name << " d " << d << " all-ones " << ones << " uniform " << uniform;
    EXPECT_NEAR(outliers / uniform, 1.0, 0.07) << name << " d " << d << " outliers " << outliers << " uniform " << uniform;
}

}  // namespace octopus_test
