// The 1-D Lloyd–Max quantizer of a density, and the Codebook it produces.
//
// A Lloyd–Max codebook minimises E[(X − Q(X))²] for X with the given density. It satisfies two
// conditions at once, which the tests check: every level is the centroid of its cell, and every
// threshold is the midpoint of its two neighbouring levels (nearest-neighbour cells). We reach them
// by Lloyd's alternation from quantile starting points, then Newton's method on the threshold
// equations (their Jacobian is tridiagonal), which converges quadratically to ~1e-15.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "octopus/detail/memo.hpp"
#include "octopus/detail/quadrature.hpp"
#include "octopus/error.hpp"
#include "octopus/marginals.hpp"

namespace octopus {

/// Reconstruction levels (ascending) and the thresholds between them: cell i is
/// [thresholds[i−1], thresholds[i]) and decodes to levels[i]. `mse` is E[(X − Q(X))²] under the
/// density the codebook was built for.
struct Codebook {
    std::vector<double> levels;
    std::vector<double> thresholds;  // levels.size() − 1 of them
    double mse = 0.0;

    std::size_t size() const { return levels.size(); }

    /// Index of the cell that holds x (branch-free count for small books, binary search beyond).
    std::size_t cell(double x) const {
        if (thresholds.size() <= 16) {
            std::size_t index = 0;
            for (double t : thresholds) index += static_cast<std::size_t>(x >= t);
            return index;
        }
        return static_cast<std::size_t>(std::upper_bound(thresholds.begin(), thresholds.end(), x) - thresholds.begin());
    }
};

namespace detail {

/// Probability mass, first and second moments of a cell, integrated together so that each pdf value
/// serves all three.
struct Moments {
    double mass = 0.0;
    double first = 0.0;
    double second = 0.0;
    Moments& operator+=(const Moments& o) { mass += o.mass; first += o.first; second += o.second; return *this; }
    Moments operator*(double w) const { return {mass * w, first * w, second * w}; }
};

inline Moments cell_moments(const Density& density, double a, double b) {
    const auto f = [&](double t) { const double p = density.pdf(t); return Moments{p, p * t, p * t * t}; };
    const double panel = density.scale / 4.0;
    if (std::isfinite(density.kink) && a < density.kink && density.kink < b) {
        Moments m = integrate(f, a, density.kink, panel);
        m += integrate(f, density.kink, b, panel);
        return m;
    }
    return integrate(f, a, b, panel);
}

/// Levels = centroids of the cells the thresholds cut; a cell of (numerically) zero mass keeps its
/// midpoint so that the iteration cannot produce NaN.
inline void centroids(const Density& density, const std::vector<double>& thresholds, std::vector<double>& levels,
                      std::vector<Moments>* moments_out = nullptr) {
    const std::size_t n = thresholds.size() + 1;
    levels.resize(n);
    if (moments_out) moments_out->resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const double a = i == 0 ? density.lo : thresholds[i - 1];
        const double b = i + 1 == n ? density.hi : thresholds[i];
        const Moments m = cell_moments(density, a, b);
        levels[i] = m.mass > 1e-300 ? m.first / m.mass : 0.5 * (a + b);
        if (moments_out) (*moments_out)[i] = m;
    }
}

/// Makes `x` (ascending) exactly symmetric about the density's centre: x_i and x_{n−1−i} become
/// centre ∓ the mean of their distances from it, a middle element the centre itself. The last bits
/// of an iterated codebook depend on the build's floating-point contraction; the mirror does not.
inline void mirror(const Density& density, std::vector<double>& x) {
    const double centre = 0.5 * (density.lo + density.hi);
    const std::size_t n = x.size();
    for (std::size_t i = 0; i < n / 2; ++i) {
        const double half_width = 0.5 * ((centre - x[i]) + (x[n - 1 - i] - centre));
        x[i] = centre - half_width;
        x[n - 1 - i] = centre + half_width;
    }
    if (n % 2 == 1) x[n / 2] = centre;
}

/// Thresholds at the quantiles i/n of the density, from a tabulated CDF: a start inside the basin
/// of the optimum for any unimodal density.
inline std::vector<double> quantile_thresholds(const Density& density, std::size_t n) {
    const std::size_t grid = 4096;
    std::vector<double> cdf(grid + 1, 0.0);
    const double step = (density.hi - density.lo) / grid;
    for (std::size_t i = 0; i < grid; ++i) {
        const double a = density.lo + step * i;
        cdf[i + 1] = cdf[i] + cell_moments(density, a, a + step).mass;
    }
    std::vector<double> thresholds(n - 1);
    for (std::size_t k = 1; k < n; ++k) {
        const double target = cdf[grid] * static_cast<double>(k) / static_cast<double>(n);
        const auto it = std::lower_bound(cdf.begin(), cdf.end(), target);
        const std::size_t i = std::clamp<std::size_t>(static_cast<std::size_t>(it - cdf.begin()), 1, grid);
        const double frac = (target - cdf[i - 1]) / std::max(cdf[i] - cdf[i - 1], 1e-300);
        thresholds[k - 1] = density.lo + step * (static_cast<double>(i - 1) + std::clamp(frac, 0.0, 1.0));
    }
    return thresholds;
}

}  // namespace detail

/// The Lloyd–Max codebook with `levels` levels for `density`. Throws octopus::error for fewer than
/// one level or a density that is not a proper interval.
inline Codebook lloyd_max(const Density& density, std::size_t levels) {
    detail::require(levels >= 1, "lloyd_max: need at least 1 level, got 0");
    detail::require(density.hi > density.lo && density.scale > 0.0,
                    "lloyd_max: the density needs lo < hi and a positive scale");
    Codebook book;
    std::vector<double>& t = book.thresholds;
    std::vector<double>& c = book.levels;
    std::vector<detail::Moments> moments;
    if (levels > 1) {
        t = detail::quantile_thresholds(density, levels);
        // Lloyd's alternation: robust, linear convergence; it brings Newton into its basin.
        for (int iteration = 0; iteration < 60; ++iteration) {
            detail::centroids(density, t, c);
            for (std::size_t i = 0; i + 1 < levels; ++i) t[i] = 0.5 * (c[i] + c[i + 1]);
        }
        // Newton on F_i(t) = t_i − (c_{i−1} + c_i)/2, i.e. the nearest-neighbour condition with the
        // levels held at their centroids. ∂c/∂t follows from Leibniz's rule on c = ∫x f / ∫f.
        const std::size_t m = levels - 1;
        std::vector<double> residual(m), lower(m), diagonal(m), upper(m), trial(m);
        const auto residual_norm = [&](const std::vector<double>& th, std::vector<double>& r) {
            detail::centroids(density, th, c, &moments);
            double worst = 0.0;
            for (std::size_t i = 0; i < m; ++i) {
                r[i] = th[i] - 0.5 * (c[i] + c[i + 1]);
                worst = std::max(worst, std::fabs(r[i]));
            }
            return worst;
        };
        double norm = residual_norm(t, residual);
        for (int iteration = 0; iteration < 100 && norm > 1e-15 * density.scale; ++iteration) {
            for (std::size_t i = 0; i < m; ++i) {
                const double fi = density.pdf(t[i]);
                const double below = moments[i].mass, above = moments[i + 1].mass;
                const double dc_below = below > 1e-300 ? fi * (t[i] - c[i]) / below : 0.0;     // ∂c_i/∂t_i
                const double dc_above = above > 1e-300 ? fi * (c[i + 1] - t[i]) / above : 0.0; // ∂c_{i+1}/∂t_i
                diagonal[i] = 1.0 - 0.5 * (dc_below + dc_above);
                lower[i] = i > 0 && below > 1e-300 ? -0.5 * density.pdf(t[i - 1]) * (c[i] - t[i - 1]) / below : 0.0;
                upper[i] = i + 1 < m && above > 1e-300 ? -0.5 * density.pdf(t[i + 1]) * (t[i + 1] - c[i + 1]) / above : 0.0;
            }
            // Thomas algorithm for the tridiagonal system J·step = residual.
            std::vector<double> d = diagonal, r = residual;
            for (std::size_t i = 1; i < m; ++i) {
                const double w = lower[i] / d[i - 1];
                d[i] -= w * upper[i - 1];
                r[i] -= w * r[i - 1];
            }
            std::vector<double> step(m);
            for (std::size_t i = m; i-- > 0;) step[i] = (r[i] - (i + 1 < m ? upper[i] * step[i + 1] : 0.0)) / d[i];
            // Damped: halve the step until the thresholds stay ordered and the residual shrinks.
            double lambda = 1.0;
            double trial_norm = norm;
            for (int halving = 0; halving < 30; ++halving, lambda *= 0.5) {
                bool ordered = true;
                for (std::size_t i = 0; i < m; ++i) {
                    trial[i] = t[i] - lambda * step[i];
                    const double prev = i == 0 ? density.lo : trial[i - 1];
                    ordered = ordered && trial[i] > prev && trial[i] < density.hi;
                }
                if (!ordered) continue;
                std::vector<double> r_trial(m);
                trial_norm = residual_norm(trial, r_trial);
                if (trial_norm < norm) { residual = r_trial; break; }
            }
            if (!(trial_norm < norm)) break;  // at the floor of double precision
            t = trial;
            norm = trial_norm;
        }
    }
    if (density.symmetric) detail::mirror(density, t);
    detail::centroids(density, t, c, &moments);
    if (density.symmetric) detail::mirror(density, c);
    // E[(X − c_i)²] over cell i = E[X²] − 2 c_i E[X] + c_i² P with the cell's own moments.
    double mse = 0.0;
    for (std::size_t i = 0; i < levels; ++i)
        mse += moments[i].second - 2.0 * c[i] * moments[i].first + c[i] * c[i] * moments[i].mass;
    book.mse = mse;
    return book;
}


/// The Lloyd–Max codebook with `levels` levels for one rotated coordinate at head dim `dim`, built
/// once per process and shared (this is TurboQuant's scalar codebook).
inline std::shared_ptr<const Codebook> coordinate_codebook(std::size_t dim, std::size_t levels) {
    struct Tag {};
    return detail::memoize<Tag, std::pair<std::size_t, std::size_t>, Codebook>(
        std::pair{dim, levels}, [&] { return lloyd_max(coordinate_density(static_cast<int>(dim)), levels); });
}

}  // namespace octopus
