#include <octopus/direction_grid.hpp>
#include <octopus/synthetic.hpp>

#include <gtest/gtest.h>

#include "support.hpp"

#include <cmath>
#include <vector>

namespace {

// Simpson's rule on each side of the octahedral marginal's kink at 0.
double simpson(const std::function<double(double)>& f, double a, double b) {
    return octopus_test::simpson(f, a, std::min(b, 0.0), 8000) + octopus_test::simpson(f, std::max(a, 0.0), b, 8000);
}

TEST(DirectionGrid, OctahedralCoordinateCodebooksMeetTheLloydMaxConditions) {
    const auto density = octopus::octahedral_coordinate_density();
    for (std::size_t levels : {2u, 3u, 4u, 8u, 16u}) {
        const auto& book = *octopus::octahedral_coordinate_codebook(levels);
        for (std::size_t i = 0; i < levels; ++i) {
            const double a = i == 0 ? -1.0 : book.thresholds[i - 1];
            const double b = i + 1 == levels ? 1.0 : book.thresholds[i];
            const double mass = simpson(density.pdf, a, b);
            const double first = simpson([&](double t) { return t * density.pdf(t); }, a, b);
            EXPECT_NEAR(book.levels[i], first / mass, 1e-8) << levels << " levels, level " << i;
            if (i + 1 < levels) {
                EXPECT_NEAR(book.thresholds[i], 0.5 * (book.levels[i] + book.levels[i + 1]), 1e-12);
            }
        }
    }
}

TEST(DirectionGrid, EqualMassCellsHaveEqualMassAndCentroidPoints) {
    for (std::size_t cells : {1u, 4u, 7u, 24u, 61u, 200u}) {
        const auto& grid = *octopus::cached_equal_mass_grid(cells);
        ASSERT_EQ(grid.cells(), cells);
        double total = 0.0, energy = 0.0;
        for (std::size_t c = 0; c < cells; ++c) {
            EXPECT_NEAR(grid.mass[c], 1.0 / cells, 1e-9) << cells << " cells, cell " << c;
            total += grid.mass[c];
            const auto& p = grid.points[c];
            energy += grid.mass[c] * (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
        }
        EXPECT_NEAR(total, 1.0, 1e-10);
        // Centroid decoding: A = Q, so D = 1 − Q.
        EXPECT_NEAR(grid.alignment, grid.energy, 1e-12);
        EXPECT_NEAR(grid.distortion(), 1.0 - energy, 1e-12);
    }
    EXPECT_NEAR(octopus::cached_equal_mass_grid(1)->distortion(), 1.0, 1e-12);  // one cell decodes to 0
}

// Sampled directions, grouped by the grid's own cell lookup: each cell's mean direction must equal
// its tabulated centroid within five standard errors, and the sampled distortion the computed one.
TEST(DirectionGrid, CentroidsMatchMonteCarlo) {
    const std::size_t n = 400000;
    const auto x = octopus::uniform_unit_vectors(n, 3, 21);
    for (std::size_t cells : {24u, 61u}) {
        const auto& grid = *octopus::cached_equal_mass_grid(cells);
        std::vector<std::array<double, 3>> sum(cells, {0, 0, 0});
        std::vector<std::size_t> count(cells, 0);
        double error = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            const double v[3] = {x[3 * i], x[3 * i + 1], x[3 * i + 2]};
            const auto s = octopus::octahedral_encode(v[0], v[1], v[2]);
            const auto c = grid.cell(s.u, s.v);
            ++count[c];
            for (int k = 0; k < 3; ++k) {
                sum[c][k] += v[k];
                error += (v[k] - grid.points[c][k]) * (v[k] - grid.points[c][k]);
            }
        }
        for (std::size_t c = 0; c < cells; ++c) {
            ASSERT_GT(count[c], 0u);
            // |n| = 1, so each component's variance within a cell is at most 1.
            const double tolerance = 5.0 / std::sqrt(double(count[c]));
            for (int k = 0; k < 3; ++k) EXPECT_NEAR(sum[c][k] / count[c], grid.points[c][k], tolerance);
            EXPECT_NEAR(double(count[c]) / n, 1.0 / cells, 5.0 * std::sqrt(1.0 / cells / n));
        }
        EXPECT_NEAR(error / n, grid.distortion(), 0.02 * grid.distortion());
    }
}

TEST(DirectionGrid, ProductGridDecodesAtUnitLevelPoints) {
    const auto grid = octopus::product_direction_grid(4, 4);
    ASSERT_EQ(grid.cells(), 16u);
    for (const auto& p : grid.points) EXPECT_NEAR(p[0] * p[0] + p[1] * p[1] + p[2] * p[2], 1.0, 1e-12);
    EXPECT_NEAR(grid.energy, 1.0, 1e-10);
    // The product grid is worse than centroids of equal-mass cells at the same count.
    EXPECT_GT(grid.distortion(), octopus::cached_equal_mass_grid(16)->distortion());
}

TEST(DirectionGrid, CellLookupCoversTheSquare) {
    const auto& grid = *octopus::cached_equal_mass_grid(37);
    for (double u = -1.0; u <= 1.0; u += 0.01)
        for (double v = -1.0; v <= 1.0; v += 0.01) ASSERT_LT(grid.cell(u, v), 37u);
    EXPECT_EQ(grid.cell(-1.0, -1.0), 0u);
    EXPECT_EQ(grid.cell(1.0, 1.0), 36u);
}

}  // namespace
