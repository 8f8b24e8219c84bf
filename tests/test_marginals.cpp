#include <octopus/marginals.hpp>
#include <octopus/synthetic.hpp>

#include <gtest/gtest.h>

#include "support.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

using octopus_test::simpson;

TEST(Marginals, CoordinateDensityIsNormalizedWithVarianceOneOverD) {
    for (int d : {64, 80, 128, 256}) {
        const auto density = octopus::coordinate_density(d);
        EXPECT_NEAR(simpson(density.pdf, -1.0, 1.0), 1.0, 1e-10) << d;
        EXPECT_NEAR(simpson([&](double t) { return t * t * density.pdf(t); }, -1.0, 1.0), 1.0 / d, 1e-12) << d;
    }
}

TEST(Marginals, TripletNormDensityIsNormalizedWithMeanSquareThreeOverD) {
    for (int d : {64, 96, 128, 256}) {
        const auto density = octopus::triplet_norm_density(d);
        EXPECT_NEAR(simpson(density.pdf, 0.0, 1.0), 1.0, 1e-10) << d;
        EXPECT_NEAR(simpson([&](double r) { return r * r * density.pdf(r); }, 0.0, 1.0), 3.0 / d, 1e-12) << d;
    }
}

// The CDFs against Monte Carlo samples of real unit vectors: the empirical CDF at a point has
// standard error sqrt(F(1 − F)/n) ≤ 0.5/sqrt(n); we allow five of them.
TEST(Marginals, DensitiesMatchMonteCarloSamples) {
    const int d = 128;
    const std::size_t n = 40000;
    const auto x = octopus::uniform_unit_vectors(n, d, 77);
    std::vector<double> coordinate(n), norm(n);
    for (std::size_t v = 0; v < n; ++v) {
        const float* row = x.data() + v * d;
        coordinate[v] = row[5];
        norm[v] = std::sqrt(double(row[0]) * row[0] + double(row[1]) * row[1] + double(row[2]) * row[2]);
    }
    const double tolerance = 5.0 * 0.5 / std::sqrt(static_cast<double>(n));
    const auto coordinate_density = octopus::coordinate_density(d);
    for (double t : {-0.15, -0.05, 0.0, 0.08, 0.2}) {
        const double empirical =
            static_cast<double>(std::count_if(coordinate.begin(), coordinate.end(), [&](double c) { return c <= t; })) / n;
        EXPECT_NEAR(simpson(coordinate_density.pdf, -1.0, t), empirical, tolerance) << t;
    }
    const auto norm_density = octopus::triplet_norm_density(d);
    for (double r : {0.05, 0.1, 0.15, 0.2, 0.3}) {
        const double empirical =
            static_cast<double>(std::count_if(norm.begin(), norm.end(), [&](double c) { return c <= r; })) / n;
        EXPECT_NEAR(simpson(norm_density.pdf, 0.0, r), empirical, tolerance) << r;
    }
}

}  // namespace
