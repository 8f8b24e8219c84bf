// PolarQuant, TurboQuant-prod, QJL and the uniform quantizer: each against a property its paper
// states, plus the rules every codec shares.
#include <octopus/octopus.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "support.hpp"

namespace {

using octopus::CodecSpec;
using octopus_test::simpson;

TEST(PolarQuant, AngleDensitiesAreNormalizedAndCodebooksOptimal) {
    for (int level = 2; level <= 4; ++level) {
        const auto density = octopus::polar_angle_density(level);
        EXPECT_NEAR(simpson(density.pdf, density.lo, density.hi), 1.0, 1e-9) << level;
        const auto book = octopus::lloyd_max(density, 4);
        for (std::size_t i = 0; i < 4; ++i) {
            const double a = i == 0 ? density.lo : book.thresholds[i - 1];
            const double b = i == 3 ? density.hi : book.thresholds[i];
            EXPECT_NEAR(book.levels[i], simpson([&](double t) { return t * density.pdf(t); }, a, b) / simpson(density.pdf, a, b),
                        1e-9);
        }
        // Symmetric about π/4, as the paper's concentration argument says.
        EXPECT_NEAR(book.levels[0] + book.levels[3], 1.5707963267948966, 1e-12);
    }
}

TEST(PolarQuant, PaperConfigurationCostsThreePointEightSevenFiveBits) {
    const octopus::PolarQuant paper(CodecSpec{128, 4, 1, octopus::NormFormat::fp16});
    EXPECT_EQ(paper.level_bits(), (std::array<unsigned, 4>{4, 2, 2, 2}));
    EXPECT_DOUBLE_EQ(paper.bits_per_coordinate(), 3.875);
}

TEST(PolarQuant, KeepsEveryBlockRadiusAndImprovesWithBits) {
    // The polar decoding multiplies each block radius by cosines and sines of decoded angles only,
    // so the decoded key has exactly the encoded block radii: ‖x̂‖ = ‖x‖.
    const auto keys = octopus::uniform_unit_vectors(2000, 128, 3);
    double previous = 1e9;
    for (int b = 1; b <= 4; ++b) {
        const octopus::PolarQuant codec(CodecSpec{128, double(b), 1});
        const auto decoded = codec.decode(codec.encode(keys));
        for (std::size_t v = 0; v < 20; ++v) {
            double norm = 0.0;
            for (std::size_t j = 0; j < 128; ++j) norm += double(decoded[v * 128 + j]) * decoded[v * 128 + j];
            EXPECT_NEAR(norm, 1.0, 1e-5);
        }
        const double mse = octopus_test::per_vector_mse(codec, keys);
        EXPECT_LT(mse, previous) << b;
        previous = mse;
    }
    for (std::size_t d : {64u, 80u, 96u, 112u, 256u}) octopus_test::expect_dot_matches_decode(octopus::PolarQuant(CodecSpec{d, 3, 2}));
}

TEST(Qjl, EstimatorIsUnbiasedWithTheStatedVariance) {
    // Var[est] = ((π/2)|q|²|k|² − (q·k)²) / m for the sign sketch with m rows (QJL, Lemma 3.2).
    const std::size_t d = 64;
    const auto pair = octopus::uniform_unit_vectors(2, d, 11);
    const std::vector<float> key(pair.begin(), pair.begin() + d), query(pair.begin() + d, pair.end());
    double exact = 0.0;
    for (std::size_t j = 0; j < d; ++j) exact += double(key[j]) * query[j];
    for (int b : {1, 2}) {
        const int seeds = 400;
        double sum = 0.0, squares = 0.0;
        for (int s = 0; s < seeds; ++s) {
            const octopus::Qjl codec(CodecSpec{d, double(b), std::uint64_t(s)});
            const double e = codec.dot(query, codec.encode(key))[0] - exact;
            sum += e;
            squares += e * e;
        }
        const double variance = (1.5707963267948966 - exact * exact) / (b * d);
        EXPECT_NEAR(sum / seeds, 0.0, 4.0 * std::sqrt(variance / seeds)) << b;
        EXPECT_NEAR(squares / seeds, variance, 0.2 * variance) << b;
    }
    octopus_test::expect_dot_matches_decode(octopus::Qjl(CodecSpec{128, 2, 3}));
}

TEST(TurboQuantProd, InnerProductDistortionMatchesThePaper) {
    // TurboQuant (arXiv 2504.19874), Theorem 2 and Fig. 3: D_prod·d ≈ 1.57, 0.56, 0.18, 0.047 for
    // b = 1..4 at unit q and k, i.e. ip_rel_err² since RMS(q·k)² = 1/d.
    const std::size_t d = 128;
    const auto keys = octopus::uniform_unit_vectors(4000, d, 5);
    const auto queries = octopus::uniform_unit_vectors(8, d, 6);
    const double expected[] = {1.57, 0.56, 0.18, 0.047};
    for (int b = 1; b <= 4; ++b) {
        const octopus::TurboQuantProd codec(CodecSpec{d, double(b), 9});
        const auto packed = codec.encode(keys);
        double error = 0.0, bias = 0.0;
        for (std::size_t q = 0; q < 8; ++q) {
            const std::span<const float> query(queries.data() + q * d, d);
            const auto scores = codec.dot(query, packed);
            for (std::size_t v = 0; v < 4000; ++v) {
                double exact = 0.0;
                for (std::size_t j = 0; j < d; ++j) exact += double(query[j]) * keys[v * d + j];
                error += (scores[v] - exact) * (scores[v] - exact);
                bias += scores[v] - exact;
            }
        }
        const double distortion = error / 32000.0 * d;
        EXPECT_NEAR(distortion, expected[b - 1], 0.25 * expected[b - 1]) << "b = " << b;
        EXPECT_NEAR(bias / 32000.0, 0.0, 4.0 * std::sqrt(distortion / d / 32000.0)) << "b = " << b;
    }
    octopus_test::expect_dot_matches_decode(octopus::TurboQuantProd(CodecSpec{96, 3, 2}));
}

TEST(Uniform, ErrorIsWithinHalfAStepAndBitsAreCountedHonestly) {
    const std::size_t d = 128;
    const octopus::Uniform codec(CodecSpec{d, 3, 0});
    EXPECT_DOUBLE_EQ(codec.bits_per_coordinate(), 4.0);  // 3 code bits + 32 bits of fp16 scale and zero per 32
    const auto keys = octopus::outlier_channel_vectors(200, d, 4);
    const auto packed = codec.encode(keys);
    const auto decoded = codec.decode(packed);
    for (std::size_t v = 0; v < 200; ++v)
        for (std::size_t g = 0; g < d / 32; ++g) {
            float lo = 1e9f, hi = -1e9f;
            for (std::size_t j = g * 32; j < g * 32 + 32; ++j) lo = std::min(lo, keys[v * d + j]), hi = std::max(hi, keys[v * d + j]);
            const float step = (hi - lo) / 7.0f;
            for (std::size_t j = g * 32; j < g * 32 + 32; ++j)
                EXPECT_LE(std::fabs(decoded[v * d + j] - keys[v * d + j]), 0.5f * step * 1.01f + 1e-3f * std::fabs(lo) + 1e-6f);
        }
    const std::vector<float> constant(d, 0.25f);
    for (float x : codec.decode(codec.encode(constant))) EXPECT_EQ(x, 0.25f);
    EXPECT_DOUBLE_EQ(octopus::Uniform(CodecSpec{80, 2, 0}).bits_per_coordinate(), 2.0 + 3 * 32.0 / 80);
    for (std::size_t dd : {80u, 128u}) octopus_test::expect_dot_matches_decode(octopus::Uniform(CodecSpec{dd, 4, 0}));
    std::vector<float> huge(d, 1.0f);
    huge[3] = 1e6f;
    EXPECT_THROW(codec.encode(huge), octopus::error);
}

TEST(Baselines, RefuseBadBitsAndDamagedBytes) {
    for (const char* name : {"polarquant", "turboquant-prod", "qjl"}) {
        EXPECT_THROW(octopus::make_codec(name, {128, 2.5, 1}), octopus::error) << name;
        EXPECT_THROW(octopus::make_codec(name, {128, 5, 1}), octopus::error) << name;
        EXPECT_THROW(octopus::make_codec(name, {100, 2, 1}), octopus::error) << name;
    }
    EXPECT_THROW(octopus::make_codec("uniform", {128, 9, 1}), octopus::error);
    const auto keys = octopus::uniform_unit_vectors(2, 128, 1);
    const auto query = octopus::uniform_unit_vectors(1, 128, 2);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const char* name : {"polarquant", "turboquant-prod", "qjl", "uniform"}) {
        const auto codec = octopus::make_codec(name, {128, 2, 1});
        auto packed = codec.encode(std::span<const float>(keys));
        EXPECT_EQ(packed, codec.encode(std::span<const float>(keys))) << name;  // deterministic
        // The last bytes of every layout hold a norm, radius or zero point: make them NaN.
        const std::uint16_t half_nan = 0x7e00;
        if (std::string(name) == "uniform") std::memcpy(packed.data() + packed.size() - 2, &half_nan, 2);
        else std::memcpy(packed.data() + packed.size() - 4, &nan, 4);
        std::vector<float> scores(2, -7.0f);
        EXPECT_THROW(codec.dot(query, packed, scores), octopus::error) << name;
        EXPECT_EQ(scores, std::vector<float>(2, -7.0f)) << name;
        EXPECT_THROW(codec.decode(packed), octopus::error) << name;
    }
}

}  // namespace
