#include <octopus/octahedral_cells.hpp>
#include <octopus/marginals.hpp>
#include <octopus/octahedral.hpp>
#include <octopus/synthetic.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

TEST(Octahedral, RoundTripsRandomDirections) {
    const auto x = octopus::uniform_unit_vectors(100000, 3, 4);
    double worst = 0.0;
    for (std::size_t i = 0; i < 100000; ++i) {
        const double a = x[3 * i], b = x[3 * i + 1], c = x[3 * i + 2];
        const auto s = octopus::octahedral_encode(a, b, c);
        ASSERT_LE(std::fabs(s.u), 1.0);
        ASSERT_LE(std::fabs(s.v), 1.0);
        const auto n = octopus::octahedral_decode(s.u, s.v);
        const double norm = std::sqrt(a * a + b * b + c * c);
        worst = std::max({worst, std::fabs(n[0] - a / norm), std::fabs(n[1] - b / norm), std::fabs(n[2] - c / norm)});
    }
    EXPECT_LT(worst, 1e-6);
    // Single precision too, as the codec runs it.
    for (std::size_t i = 0; i < 1000; ++i) {
        const auto s = octopus::octahedral_encode(x[3 * i], x[3 * i + 1], x[3 * i + 2]);
        const auto n = octopus::octahedral_decode(s.u, s.v);
        for (int k = 0; k < 3; ++k) EXPECT_NEAR(n[k], x[3 * i + k], 1e-6);
    }
}

TEST(Octahedral, SeamsAndZerosAreDeterministic) {
    using octopus::octahedral_decode;
    using octopus::octahedral_encode;
    const auto north = octahedral_encode(0.0, 0.0, 1.0);
    EXPECT_EQ(north.u, 0.0);
    EXPECT_EQ(north.v, 0.0);
    const auto south = octahedral_encode(0.0, 0.0, -1.0);  // sign(0) = +1: the (+, +) corner
    EXPECT_EQ(south.u, 1.0);
    EXPECT_EQ(south.v, 1.0);
    const auto zero = octahedral_encode(0.0, 0.0, 0.0);
    EXPECT_EQ(zero.u, 0.0);
    EXPECT_EQ(zero.v, 0.0);
    // The equator maps to the diamond's edge, and both halves agree there.
    const auto equator = octahedral_encode(0.6, -0.8, 0.0);
    EXPECT_NEAR(std::fabs(equator.u) + std::fabs(equator.v), 1.0, 1e-15);
    const auto below = octahedral_encode(0.6, -0.8, -1e-300);
    EXPECT_NEAR(below.u, equator.u, 1e-12);
    EXPECT_NEAR(below.v, equator.v, 1e-12);
    // Lower half on the plane x = 0 goes to the positive-u side.
    const auto plane = octahedral_encode(0.0, 0.5, -0.5);
    EXPECT_GT(plane.u, 0.0);
    for (const auto& s : {south, equator, plane}) {
        const auto n = octahedral_decode(s.u, s.v);
        EXPECT_NEAR(n[0] * n[0] + n[1] * n[1] + n[2] * n[2], 1.0, 1e-15);
    }
    const auto n = octahedral_decode(1.0, 1.0);
    EXPECT_EQ(n[2], -1.0);
}

TEST(Octahedral, JointDensityIntegratesToOneAndMatchesMonteCarlo) {
    EXPECT_NEAR(octopus::detail::direction_cell_moments(-1, 1, -1, 1).mass, 1.0, 1e-12);
    // Rectangles that straddle the axes and the diagonal kink, against sampled directions.
    const std::size_t n = 400000;
    const auto x = octopus::uniform_unit_vectors(n, 3, 8);
    const double boxes[][4] = {{0.1, 0.7, -0.3, 0.9}, {-1.0, -0.5, -1.0, -0.2}, {-0.2, 0.3, 0.6, 1.0}};
    for (const auto& box : boxes) {
        std::size_t inside = 0;
        double first[3] = {0, 0, 0};
        for (std::size_t i = 0; i < n; ++i) {
            const auto s = octopus::octahedral_encode<double>(x[3 * i], x[3 * i + 1], x[3 * i + 2]);
            if (s.u >= box[0] && s.u < box[1] && s.v >= box[2] && s.v < box[3]) {
                ++inside;
                for (int k = 0; k < 3; ++k) first[k] += x[3 * i + k];
            }
        }
        const auto m = octopus::detail::direction_cell_moments(box[0], box[1], box[2], box[3]);
        const double p = double(inside) / n, sigma = std::sqrt(p * (1 - p) / n);
        EXPECT_NEAR(m.mass, p, 5 * sigma);
        for (int k = 0; k < 3; ++k) EXPECT_NEAR(m.first[k], first[k] / n, 5 * std::sqrt(p / n));
    }
}

TEST(Octahedral, CoordinateMarginalMatchesMonteCarlo) {
    const std::size_t n = 200000;
    const auto x = octopus::uniform_unit_vectors(n, 3, 9);
    std::vector<double> u(n);
    for (std::size_t i = 0; i < n; ++i) u[i] = octopus::octahedral_encode<double>(x[3 * i], x[3 * i + 1], x[3 * i + 2]).u;
    const auto density = octopus::octahedral_coordinate_density();
    // Independent check of normalization: a plain Simpson rule on each side of the kink.
    double total = 0.0;
    for (double a : {-1.0, 0.0}) {
        const int m = 2000;
        const double h = 1.0 / m;
        double s = density.pdf(a) + density.pdf(a + 1.0);
        for (int i = 1; i < m; ++i) s += density.pdf(a + i * h) * (i % 2 ? 4.0 : 2.0);
        total += s * h / 3.0;
    }
    EXPECT_NEAR(total, 1.0, 1e-9);
    EXPECT_NEAR(density.pdf(0.0), 1.0 / M_PI, 1e-9);  // ∫ dv / (4π |p|³) along u = 0 is 1/π
    for (double t : {-0.6, -0.2, 0.0, 0.35, 0.8}) {
        const double empirical = double(std::count_if(u.begin(), u.end(), [&](double c) { return c <= t; })) / n;
        const double cdf = octopus::detail::integrate(density.pdf, -1.0, std::min(t, 0.0), 0.05) +
                           (t > 0.0 ? octopus::detail::integrate(density.pdf, 0.0, t, 0.05) : 0.0);
        EXPECT_NEAR(cdf, empirical, 5 * 0.5 / std::sqrt(double(n))) << t;
    }
}

}  // namespace
