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

// Sampled directions, grouped by the grid's own cell lookup: each cell's frequency must equal its
// computed mass within five standard errors, and the sampled distortion the computed one.
TEST(DirectionGrid, MassesAndDistortionMatchMonteCarlo) {
    const std::size_t n = 400000;
    const auto x = octopus::uniform_unit_vectors(n, 3, 21);
    for (const auto& [n_u, n_v] : {std::pair<std::size_t, std::size_t>{4, 4}, {4, 8}}) {
        const auto grid = octopus::product_direction_grid(n_u, n_v);
        const std::size_t cells = grid.cells();
        std::vector<std::size_t> count(cells, 0);
        double error = 0.0, total = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            const double v[3] = {x[3 * i], x[3 * i + 1], x[3 * i + 2]};
            const auto s = octopus::octahedral_encode(v[0], v[1], v[2]);
            const auto c = grid.cell(s.u, s.v);
            ++count[c];
            for (int k = 0; k < 3; ++k) error += (v[k] - grid.points[c][k]) * (v[k] - grid.points[c][k]);
        }
        for (std::size_t c = 0; c < cells; ++c) {
            total += grid.mass[c];
            EXPECT_NEAR(double(count[c]) / n, grid.mass[c], 5.0 * std::sqrt(grid.mass[c] / n)) << "cell " << c;
        }
        EXPECT_NEAR(total, 1.0, 1e-10);
        EXPECT_NEAR(error / n, grid.distortion(), 0.02 * grid.distortion());
    }
}

TEST(DirectionGrid, ProductGridDecodesAtUnitLevelPoints) {
    const auto grid = octopus::product_direction_grid(4, 4);
    ASSERT_EQ(grid.cells(), 16u);
    for (const auto& p : grid.points) EXPECT_NEAR(p[0] * p[0] + p[1] * p[1] + p[2] * p[2], 1.0, 1e-12);
    EXPECT_NEAR(grid.energy, 1.0, 1e-10);
}

TEST(DirectionGrid, CellLookupCoversTheSquare) {
    const auto grid = octopus::product_direction_grid(4, 8);
    for (double u = -1.0; u <= 1.0; u += 0.01)
        for (double v = -1.0; v <= 1.0; v += 0.01) ASSERT_LT(grid.cell(u, v), 32u);
    EXPECT_EQ(grid.cell(-1.0, -1.0), 0u);
    EXPECT_EQ(grid.cell(1.0, 1.0), 31u);
}

}  // namespace
