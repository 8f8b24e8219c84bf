#include <octopus/lloyd_max.hpp>

#include <gtest/gtest.h>

#include "support.hpp"

#include <cmath>

namespace {

using octopus_test::simpson;

octopus::Density gaussian() {
    octopus::Density d;
    d.pdf = [](double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI); };
    d.lo = -12.0;
    d.hi = 12.0;
    d.scale = 1.0;
    return d;
}

TEST(LloydMax, UniformDensityGivesEvenlySpacedLevels) {
    octopus::Density uniform;
    uniform.pdf = [](double) { return 1.0; };
    for (std::size_t n : {1u, 2u, 5u, 16u}) {
        const auto book = octopus::lloyd_max(uniform, n);
        ASSERT_EQ(book.size(), n);
        for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(book.levels[i], (2.0 * i + 1.0) / (2.0 * n), 1e-12);
        EXPECT_NEAR(book.mse, 1.0 / (12.0 * n * n), 1e-14);
    }
}

TEST(LloydMax, GaussianMatchesMaxsTable) {
    // J. Max, "Quantizing for minimum distortion", IRE Trans. IT-6 (1960), Table I.
    const auto two = octopus::lloyd_max(gaussian(), 2);
    EXPECT_NEAR(two.levels[1], std::sqrt(2.0 / M_PI), 1e-12);
    const auto four = octopus::lloyd_max(gaussian(), 4);
    EXPECT_NEAR(four.levels[2], 0.4528, 1e-4);
    EXPECT_NEAR(four.levels[3], 1.5104, 1e-4);
    EXPECT_NEAR(four.thresholds[2], 0.9816, 1e-4);
    EXPECT_NEAR(four.mse, 0.1175, 1e-4);
    const auto eight = octopus::lloyd_max(gaussian(), 8);
    EXPECT_NEAR(eight.levels[4], 0.2451, 1e-4);
    EXPECT_NEAR(eight.levels[7], 2.152, 1e-3);
    EXPECT_NEAR(eight.thresholds[5], 1.050, 1e-3);
    EXPECT_NEAR(eight.mse, 0.03455, 1e-5);
}

TEST(LloydMax, CoordinateCodebooksMeetBothOptimalityConditions) {
    for (int d : {64, 128, 256}) {
        const auto density = octopus::coordinate_density(d);
        for (int b = 1; b <= 4; ++b) {
            const auto& book = *octopus::coordinate_codebook(d, std::size_t{1} << b);
            const std::size_t n = book.size();
            for (std::size_t i = 0; i < n; ++i) {
                // Centroid condition, checked with Simpson's rule.
                const double a = i == 0 ? -1.0 : book.thresholds[i - 1];
                const double c = i + 1 == n ? 1.0 : book.thresholds[i];
                const double mass = simpson(density.pdf, a, c);
                const double first = simpson([&](double t) { return t * density.pdf(t); }, a, c);
                EXPECT_NEAR(book.levels[i], first / mass, 1e-9) << "d " << d << " b " << b << " level " << i;
                // Nearest-neighbour condition.
                if (i + 1 < n) {
                    EXPECT_NEAR(book.thresholds[i], 0.5 * (book.levels[i] + book.levels[i + 1]), 1e-12);
                }
            }
            // Symmetric density, symmetric codebook.
            EXPECT_NEAR(book.levels.front(), -book.levels.back(), 1e-12);
        }
    }
}

TEST(LloydMax, TurboQuantDistortionMatchesTheExactValues) {
    // Per-vector MSE d·E[(t − Q(t))²] at d = 128, integrated independently of this code.
    const double expected[] = {0.36089, 0.11600, 0.03397, 0.00931};
    for (int b = 1; b <= 4; ++b) {
        const auto& book = *octopus::coordinate_codebook(128, std::size_t{1} << b);
        EXPECT_NEAR(128.0 * book.mse, expected[b - 1], 0.001 * expected[b - 1]) << "b = " << b;
    }
}

TEST(LloydMax, CodebookCellFindsTheNearestLevel) {
    const auto& book = *octopus::coordinate_codebook(128, 8);
    for (double x = -0.4; x <= 0.4; x += 0.001) {
        std::size_t best = 0;
        for (std::size_t i = 1; i < book.size(); ++i)
            if (std::fabs(x - book.levels[i]) < std::fabs(x - book.levels[best])) best = i;
        EXPECT_EQ(book.cell(x), best) << x;
    }
}

TEST(LloydMax, RefusesNoLevelsAndEmptyIntervals) {
    EXPECT_THROW(octopus::lloyd_max(gaussian(), 0), octopus::error);
    auto bad = gaussian();
    bad.hi = bad.lo;
    EXPECT_THROW(octopus::lloyd_max(bad, 4), octopus::error);
}

}  // namespace
