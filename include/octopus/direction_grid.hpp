// Quantizers of a direction on S² built on the octahedral square: rows of u, and in each row its
// own columns of v, every cell decoding to a point stored in a table.
//
// Two constructions:
//  - product_direction_grid: the literal product code. Lloyd–Max thresholds of the u marginal and of
//    the v marginal, n_u × n_v cells, each decoded at octahedral_decode(level_u, level_v).
//  - equal_mass_direction_grid: M cells of equal probability in rows of (almost) equal counts, each
//    decoded at its true centroid E[n | cell]. A uniform direction makes equal-area cells the right
//    target; the centroid (shorter than a unit vector) is the MSE-optimal decoding of a cell, and is
//    what lets a cell count that is not a product of powers of two be spent where it pays.
// Neither depends on the head dim: the direction of a triplet is uniform whatever d is.
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

/// x with mass(x) = target, for a mass increasing in x with derivative `density(x)`: Newton inside
/// a bisection bracket [from, to].
template <class Mass, class DensityAt>
double solve_for_mass(Mass mass, DensityAt density, double from, double to, double target) {
    double lo = from, hi = to;
    const double start_density = density(from);
    const double start_mass = mass(from);
    double x = start_density > 0.0 ? std::min(to, from + (target - start_mass) / start_density) : 0.5 * (from + to);
    for (int iteration = 0; iteration < 60; ++iteration) {
        const double residual = mass(x) - target;
        if (residual > 0.0) hi = x; else lo = x;
        if (std::fabs(residual) < 1e-14 || hi - lo < 1e-14) break;
        const double slope = density(x);
        double next = slope > 0.0 ? x - residual / slope : 0.5 * (lo + hi);
        if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
        x = next;
    }
    return x;
}

/// ∫ f(u, v) du over [u0, u1] at fixed v, split at the density's kinks.
inline double row_density_at(double u0, double u1, double v) {
    const double edge = 1.0 - std::fabs(v);
    double breaks[] = {u0, -edge, 0.0, edge, u1};
    std::sort(breaks + 1, breaks + 4);
    double total = 0.0;
    for (int i = 0; i < 4; ++i) {
        const double a = std::clamp(breaks[i], u0, u1), b = std::clamp(breaks[i + 1], u0, u1);
        total += integrate([v](double u) { return octahedral_density(u, v); }, a, b, 0.5);
    }
    return total;
}

/// The CDF of one octahedral coordinate, tabulated once on 1025 knots (0 among them, where the
/// density has its kink) and read by cubic Hermite interpolation with the exact density as slope:
/// the row boundaries of every grid come from it.
class OctahedralCoordinateCdf {
public:
    static const OctahedralCoordinateCdf& get() {
        static const OctahedralCoordinateCdf table;
        return table;
    }

    double operator()(double u) const {
        if (u <= -1.0) return 0.0;
        if (u >= 1.0) return 1.0;
        const double position = (u + 1.0) / kStep;
        const auto i = std::min<std::size_t>(static_cast<std::size_t>(position), kKnots - 2);
        const double t = position - static_cast<double>(i);
        const double h00 = (1 + 2 * t) * (1 - t) * (1 - t), h10 = t * (1 - t) * (1 - t);
        const double h01 = t * t * (3 - 2 * t), h11 = t * t * (t - 1);
        return h00 * cdf_[i] + h10 * kStep * pdf_[i] + h01 * cdf_[i + 1] + h11 * kStep * pdf_[i + 1];
    }

    double density(double u) const { return marginal_.pdf(u); }

private:
    static constexpr std::size_t kKnots = 1025;
    static constexpr double kStep = 2.0 / (kKnots - 1);

    OctahedralCoordinateCdf() : marginal_(octahedral_coordinate_density()), cdf_(kKnots), pdf_(kKnots) {
        for (std::size_t i = 0; i < kKnots; ++i) pdf_[i] = marginal_.pdf(-1.0 + kStep * static_cast<double>(i));
        cdf_[0] = 0.0;
        for (std::size_t i = 1; i < kKnots; ++i) {
            const double a = -1.0 + kStep * static_cast<double>(i - 1);
            cdf_[i] = cdf_[i - 1] + integrate(marginal_.pdf, a, a + kStep, kStep);
        }
    }

    Density marginal_;
    std::vector<double> cdf_, pdf_;
};

/// Fills points (given), mass, alignment and energy from the cells' exact moments.
inline void measure_grid(DirectionGrid& grid, bool centroid_points) {
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
            auto& point = grid.points[first + c];
            if (centroid_points)
                for (int k = 0; k < 3; ++k) point[k] = m.mass > 0.0 ? m.first[k] / m.mass : 0.0;
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

/// Cells per row for M cells in `rows` rows: as even as possible, the extra cells in the middle rows
/// (placed symmetrically) where the octahedral rows are widest on the sphere.
inline std::vector<std::uint32_t> cells_per_row(std::size_t cells, std::size_t rows) {
    std::vector<std::uint32_t> counts(rows, static_cast<std::uint32_t>(cells / rows));
    std::size_t extra = cells % rows;
    const std::size_t middle = rows / 2;
    if (extra % 2 == 1 && rows % 2 == 1) { ++counts[middle]; --extra; }
    for (std::size_t k = 0; extra > 0; ++k) {
        // Pairs around the middle: (middle − 1 − k, middle + k) for even row counts,
        // (middle − 1 − k, middle + 1 + k) for odd ones.
        const std::size_t left = middle - 1 - k, right = rows % 2 ? middle + 1 + k : middle + k;
        ++counts[left];
        --extra;
        if (extra > 0) { ++counts[right]; --extra; }
    }
    return counts;
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
    detail::measure_grid(grid, false);
    return grid;
}

/// M equal-probability cells in `rows` rows, each decoded at its centroid. rows = 0 picks
/// round(√M), the count that makes cells closest to square.
inline DirectionGrid equal_mass_direction_grid(std::size_t cells, std::size_t rows = 0) {
    if (rows == 0) rows = std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(std::sqrt(double(cells)))));
    rows = std::min(rows, cells);
    DirectionGrid grid;
    const auto counts = detail::cells_per_row(cells, rows);
    grid.first_cell.push_back(0);
    for (auto c : counts) grid.first_cell.push_back(grid.first_cell.back() + c);
    // Rows: cumulative mass of rows 0..i equals (cells in them) / M.
    const auto& cdf = detail::OctahedralCoordinateCdf::get();
    double u_start = -1.0, cumulative = 0.0;
    for (std::size_t row = 0; row + 1 < rows; ++row) {
        cumulative += static_cast<double>(counts[row]) / static_cast<double>(cells);
        const double u = detail::solve_for_mass([&](double x) { return cdf(x); },
                                                [&](double x) { return cdf.density(x); }, u_start, 1.0, cumulative);
        grid.row_thresholds.push_back(u);
        u_start = u;
    }
    // Columns: equal mass within each row.
    for (std::size_t row = 0; row < rows; ++row) {
        const double u0 = row == 0 ? -1.0 : grid.row_thresholds[row - 1];
        const double u1 = row + 1 == rows ? 1.0 : grid.row_thresholds[row];
        const double row_mass = detail::direction_cell_moments(u0, u1, -1.0, 1.0).mass;
        double v_start = -1.0;
        for (std::uint32_t c = 0; c + 1 < counts[row]; ++c) {
            const double v = detail::solve_for_mass(
                [&](double x) { return detail::direction_cell_moments(u0, u1, v_start, x).mass; },
                [&](double x) { return detail::row_density_at(u0, u1, x); }, v_start, 1.0, row_mass / counts[row]);
            grid.column_thresholds.push_back(v);
            v_start = v;
        }
    }
    grid.points.resize(cells);
    detail::measure_grid(grid, true);
    return grid;
}

/// The equal-mass grid of `cells` cells with the least distortion, built once per process (it does
/// not depend on the head dim). The row count is searched around √M: a few rows more or fewer change
/// D by up to 15% at small M (M = 4: 3 rows of 1, 2, 1 cells beat 2 × 2), and under 2% past ~256.
inline std::shared_ptr<const DirectionGrid> cached_equal_mass_grid(std::size_t cells) {
    struct Tag {};
    return detail::memoize<Tag, std::size_t, DirectionGrid>(cells, [&] {
        const auto square = std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(std::sqrt(double(cells)))));
        const std::size_t spread = cells <= 64 ? 2 : cells <= 256 ? 1 : 0;
        DirectionGrid best;
        for (std::size_t rows = square > spread ? square - spread : 1; rows <= std::min(cells, square + spread); ++rows) {
            DirectionGrid grid = equal_mass_direction_grid(cells, rows);
            if (best.points.empty() || grid.distortion() < best.distortion()) best = std::move(grid);
        }
        return best;
    });
}

}  // namespace octopus
