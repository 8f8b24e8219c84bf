// Quantizers of a direction on S² built on the octahedral square: rows of u, and in each row its
// own columns of v, every cell decoding to a point stored in a table.
//
// The paper's construction, product_direction_grid: Lloyd–Max thresholds of the u marginal and of the
// v marginal, n_u × n_v cells, each decoded at octahedral_decode(level_u, level_v). It does not depend
// on the head dim: the direction of a triplet is uniform whatever d is.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "octopus/detail/memo.hpp"
#include "octopus/octahedral_cells.hpp"
#include "octopus/lloyd_max.hpp"
#include "octopus/marginals.hpp"
#include "octopus/octahedral.hpp"

namespace octopus {

/// Cells of the octahedral square: row i spans u ∈ [row_thresholds[i−1], row_thresholds[i]) and
/// holds cells first_cell[i] … first_cell[i+1]−1, split in v by that row's column thresholds.
struct DirectionGrid {
    std::vector<double> row_thresholds;            // rows − 1 of them, ascending
    std::vector<std::uint32_t> first_cell;         // rows + 1 offsets
    std::vector<double> column_thresholds;         // row i's (cells_i − 1) start at first_cell[i] − i
    std::vector<std::array<double, 3>> points;     // decoded direction of each cell
    std::vector<double> mass;                      // probability of each cell
    double alignment = 0.0;                        // A = E[n · n̂]
    double energy = 0.0;                           // Q = E[|n̂|²]

    std::size_t rows() const { return first_cell.size() - 1; }
    std::size_t cells() const { return points.size(); }
    /// E|n − n̂|² = 1 − 2A + Q; for centroid decoding A = Q and this is 1 − Q.
    double distortion() const { return 1.0 - 2.0 * alignment + energy; }

    /// The cell of (u, v).
    std::uint32_t cell(double u, double v) const {
        const auto row = static_cast<std::size_t>(
            std::upper_bound(row_thresholds.begin(), row_thresholds.end(), u) - row_thresholds.begin());
        const auto begin = column_thresholds.begin() + (first_cell[row] - row);
        const auto end = begin + (first_cell[row + 1] - first_cell[row] - 1);
        return first_cell[row] + static_cast<std::uint32_t>(std::upper_bound(begin, end, v) - begin);
    }
};

namespace detail {

/// Fills mass, alignment and energy from the cells' exact moments, for the grid's points.
inline void measure_grid(DirectionGrid& grid) {
    const std::size_t rows = grid.rows();
    grid.mass.assign(grid.points.size(), 0.0);
    grid.alignment = grid.energy = 0.0;
    for (std::size_t row = 0; row < rows; ++row) {
        const double u0 = row == 0 ? -1.0 : grid.row_thresholds[row - 1];
        const double u1 = row + 1 == rows ? 1.0 : grid.row_thresholds[row];
        const std::size_t first = grid.first_cell[row], count = grid.first_cell[row + 1] - first;
        const double* columns = grid.column_thresholds.data() + (first - row);
        for (std::size_t c = 0; c < count; ++c) {
            const double v0 = c == 0 ? -1.0 : columns[c - 1];
            const double v1 = c + 1 == count ? 1.0 : columns[c];
            const DirectionMoments m = direction_cell_moments(u0, u1, v0, v1);
            const auto& point = grid.points[first + c];
            grid.mass[first + c] = m.mass;
            double dot = 0.0, squared = 0.0;
            for (int k = 0; k < 3; ++k) {
                dot += m.first[k] * point[k];
                squared += point[k] * point[k];
            }
            grid.alignment += dot;
            grid.energy += m.mass * squared;
        }
    }
}

}  // namespace detail

/// The Lloyd–Max codebook of one octahedral coordinate with `levels` levels, built once per process.
inline std::shared_ptr<const Codebook> octahedral_coordinate_codebook(std::size_t levels) {
    struct Tag {};
    return detail::memoize<Tag, std::size_t, Codebook>(
        levels, [&] { return lloyd_max(octahedral_coordinate_density(), levels); });
}

/// The literal product code: n_u × n_v cells from the Lloyd–Max codebooks of the u and v marginals,
/// decoded at the octahedral image of the level pair (a unit vector).
inline DirectionGrid product_direction_grid(std::size_t n_u, std::size_t n_v) {
    const Codebook& book_u = *octahedral_coordinate_codebook(n_u);
    const Codebook& book_v = *octahedral_coordinate_codebook(n_v);
    DirectionGrid grid;
    grid.row_thresholds = book_u.thresholds;
    for (std::size_t row = 0; row <= n_u; ++row) grid.first_cell.push_back(static_cast<std::uint32_t>(row * n_v));
    for (std::size_t row = 0; row < n_u; ++row) {
        grid.column_thresholds.insert(grid.column_thresholds.end(), book_v.thresholds.begin(), book_v.thresholds.end());
        for (std::size_t c = 0; c < n_v; ++c) grid.points.push_back(octahedral_decode(book_u.levels[row], book_v.levels[c]));
    }
    detail::measure_grid(grid);
    return grid;
}

}  // namespace octopus
