// The fp16 baselines of octopus-bench (bench/fp16_baselines.hpp) against double-precision references
// on the same fp16 values: a baseline that computed something else would make every ratio meaningless.
#include <octopus/octopus.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "fp16_baselines.hpp"

namespace {

using octopus::bench::from_half_bits;
using octopus::bench::to_half_bits;

std::vector<std::uint16_t> half_rows(std::size_t n, std::size_t d, std::uint64_t seed, float scale) {
    const auto x = octopus::uniform_unit_vectors(n, d, seed);
    std::vector<std::uint16_t> h(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) h[i] = to_half_bits(scale * x[i]);
    return h;
}

TEST(Fp16Baselines, ScoresAreTheDotOfTheHalfKeys) {
    for (std::size_t d : {64u, 72u, 128u}) {  // 72: the scalar tail after whole blocks of 16
        const std::size_t n = 300;
        const auto keys = half_rows(n, d, 1, 3.0f);
        const auto q = octopus::uniform_unit_vectors(1, d, 2);
        std::vector<float> scores(n);
        octopus::bench::fp16_scores(q.data(), keys.data(), n, d, scores.data());
        for (std::size_t t = 0; t < n; ++t) {
            double exact = 0.0;
            for (std::size_t j = 0; j < d; ++j) exact += double(q[j]) * from_half_bits(keys[t * d + j]);
            EXPECT_NEAR(scores[t], exact, 1e-5) << "d " << d << " key " << t;
        }
    }
}

TEST(Fp16Baselines, AttentionMatchesADoubleSoftmaxOnAnyThreadCountInBothLoops) {
    const std::size_t d = 128, heads = 4;
    for (std::size_t n : {1u, 7u, 1000u}) {
        const auto keys = half_rows(n, d, 3, 1.0f), values = half_rows(n, d, 4, 2.0f);
        auto q = octopus::uniform_unit_vectors(heads, d, 5);
        for (float& x : q) x *= 8.0f;
        const float scale = 1.0f / std::sqrt(float(d));
        std::vector<double> expected(heads * d, 0.0);
        for (std::size_t h = 0; h < heads; ++h) {
            std::vector<double> logits(n);
            double top = -1e300, total = 0.0;
            for (std::size_t t = 0; t < n; ++t) {
                for (std::size_t j = 0; j < d; ++j) logits[t] += double(q[h * d + j]) * from_half_bits(keys[t * d + j]);
                logits[t] *= scale;
                top = std::max(top, logits[t]);
            }
            for (std::size_t t = 0; t < n; ++t) total += logits[t] = std::exp(logits[t] - top);
            for (std::size_t t = 0; t < n; ++t)
                for (std::size_t j = 0; j < d; ++j) expected[h * d + j] += logits[t] / total * from_half_bits(values[t * d + j]);
        }
        for (auto loop : {octopus::bench::Fp16Loop::per_head, octopus::bench::Fp16Loop::grouped})
            for (int threads : {1, 3}) {
                octopus::bench::AttentionScratch scratch(heads, n, threads);
                std::vector<float> out(heads * d);
                octopus::bench::fp16_attention(q.data(), heads, keys.data(), values.data(), n, d, scale, threads, scratch, out.data(), loop);
                for (std::size_t i = 0; i < out.size(); ++i)
                    EXPECT_NEAR(out[i], expected[i], 1e-5 * (1.0 + std::fabs(expected[i])))
                        << "n " << n << " threads " << threads << " i " << i << " grouped " << (loop == octopus::bench::Fp16Loop::grouped);
            }
    }
}

}  // namespace
