// Codebooks of a triplet t = (y₃ᵢ, y₃ᵢ₊₁, y₃ᵢ₊₂) of rotated coordinates, spending B bits on each.
//
// A triplet of a uniform unit vector has norm r with r² ~ Beta(3/2, (d−3)/2) and a direction n that is
// uniform on S² and independent of r. Both codebooks below cut r into rings and give ring k its own
// direction grid of M_k cells; the 2^B codes are the cells of all rings, numbered ring by ring, so
// every B-bit pattern is a valid code. A cell decodes to ρ_k · n̂_c.
//
// The error of ring k, by independence of r and n, is
//     E[r²; k] − 2 ρ_k A_k E[r; k] + ρ_k² Q_k P_k,     A_k = E[n·n̂],  Q_k = E|n̂|²,
// so the whole design is one-dimensional in r once each grid's (A, Q) is known.
//
//  - paper_triplet_codebook: the literal product code of the paper. B = b_u + b_v + b_r with the split
//    that minimises the error above, 2^b_r Lloyd–Max rings of r, the same 2^b_u × 2^b_v Lloyd–Max grid
//    in every ring, decoded at the level values.
//  - octopus_triplet_codebook: rings and direction resolution designed together. With centroid
//    decoding (ρ_k = E[r | k], n̂ = E[n | cell], so A = Q = 1 − D(M)), the error is
//    E[r²] − Σ_k (1 − D(M_k)) E[r; k]² / P_k. Given the rings, cells go greedily where they remove
//    the most error per cell (outer rings get more, the innermost ring may get a single cell that
//    decodes to 0); given the cell counts, the ring boundary between k and k+1 is where the two
//    rings' errors for a given r are equal, (1−D_k)(2rρ_k − ρ_k²) = (1−D_{k+1})(2rρ_{k+1} − ρ²_{k+1}),
//    not the midpoint. The two steps alternate; the ring count is searched.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "octopus/contract.hpp"
#include "octopus/detail/memo.hpp"
#include "octopus/direction_grid.hpp"
#include "octopus/error.hpp"
#include "octopus/lloyd_max.hpp"
#include "octopus/marginals.hpp"

namespace octopus {

/// Rings of the triplet norm and a direction grid per ring. Code c of ring k (first_code[k] ≤ c <
/// first_code[k+1]) is cell c − first_code[k] of grids[k] and decodes to radius[k] · grids[k]->points[·].
struct TripletCodebook {
    unsigned bits = 0;                                          // B, bits per triplet
    std::vector<double> ring_thresholds;                        // rings − 1, ascending
    std::vector<double> radius;                                 // decode radius ρ_k per ring
    std::vector<std::shared_ptr<const DirectionGrid>> grids;    // per ring
    std::vector<std::uint32_t> first_code;                      // rings + 1
    double mse = 0.0;                                           // E|t − t̂|² per triplet, unit keys

    std::size_t rings() const { return radius.size(); }
    std::size_t codes() const { return first_code.back(); }

    std::size_t ring(double r) const {
        return static_cast<std::size_t>(std::upper_bound(ring_thresholds.begin(), ring_thresholds.end(), r) -
                                        ring_thresholds.begin());
    }
};

namespace detail {

/// P_k, E[r; k], E[r²; k] of each ring.
inline std::vector<Moments> ring_moments(const Density& norm, const std::vector<double>& thresholds) {
    std::vector<Moments> out(thresholds.size() + 1);
    for (std::size_t k = 0; k < out.size(); ++k) {
        const double a = k == 0 ? norm.lo : thresholds[k - 1];
        const double b = k + 1 == out.size() ? norm.hi : thresholds[k];
        out[k] = cell_moments(norm, a, b);
    }
    return out;
}

/// Σ_k E[r²;k] − 2ρ_k A_k E[r;k] + ρ_k² Q_k P_k.
inline double triplet_error(const std::vector<Moments>& rings, const std::vector<double>& radius,
                            const std::vector<std::shared_ptr<const DirectionGrid>>& grids) {
    double error = 0.0;
    for (std::size_t k = 0; k < rings.size(); ++k)
        error += rings[k].second - 2.0 * radius[k] * grids[k]->alignment * rings[k].first +
                 radius[k] * radius[k] * grids[k]->energy * rings[k].mass;
    return error;
}

/// A smooth model of the equal-mass grid's direction distortion, D(M) ≈ c / (M + c − 1): exact at
/// M = 1 (D = 1, the centroid of all directions is 0), c/M for many cells, convex in between, so the
/// greedy allocation below is optimal for it. c = 2.5 fits the exact grids (M·D(M) ≈ 2.1–2.6 from
/// 8 to 1024 cells). It steers the design only; the final rings are measured on exact grids.
inline double distortion_model(std::size_t cells) {
    constexpr double c = 2.5;
    return c / (static_cast<double>(cells) + c - 1.0);
}

/// Cells per ring: start every ring at one cell, then repeatedly give one more cell to the ring
/// whose error falls most, w_k (D(M_k) − D(M_k + 1)), w_k = E[r; k]² / P_k.
inline std::vector<std::size_t> allocate_cells(const std::vector<double>& weight, std::size_t total) {
    std::vector<std::size_t> cells(weight.size(), 1);
    for (std::size_t used = weight.size(); used < total; ++used) {
        std::size_t best = 0;
        double best_gain = -1.0;
        for (std::size_t k = 0; k < weight.size(); ++k) {
            const double gain = weight[k] * (distortion_model(cells[k]) - distortion_model(cells[k] + 1));
            if (gain > best_gain) { best_gain = gain; best = k; }
        }
        ++cells[best];
    }
    return cells;
}

/// Ring boundaries where adjacent rings' errors cross, for rings decoding at ρ with gains g = 1 − D.
/// Returns false if they are not increasing (a ring would be empty).
inline bool weighted_ring_thresholds(const std::vector<double>& radius, const std::vector<double>& gain,
                                     std::vector<double>& thresholds) {
    for (std::size_t k = 0; k + 1 < radius.size(); ++k) {
        const double slope = gain[k] * radius[k] - gain[k + 1] * radius[k + 1];
        if (!(slope < 0.0)) return false;
        thresholds[k] =
            (gain[k] * radius[k] * radius[k] - gain[k + 1] * radius[k + 1] * radius[k + 1]) / (2.0 * slope);
        if (thresholds[k] <= (k == 0 ? 0.0 : thresholds[k - 1]) || thresholds[k] >= 1.0) return false;
    }
    return true;
}

inline TripletCodebook assemble(unsigned bits, std::vector<double> thresholds, std::vector<double> radius,
                                std::vector<std::shared_ptr<const DirectionGrid>> grids, const Density& norm) {
    TripletCodebook book;
    book.bits = bits;
    book.ring_thresholds = std::move(thresholds);
    book.radius = std::move(radius);
    book.grids = std::move(grids);
    book.first_code.push_back(0);
    for (const auto& g : book.grids) book.first_code.push_back(book.first_code.back() + static_cast<std::uint32_t>(g->cells()));
    book.mse = triplet_error(ring_moments(norm, book.ring_thresholds), book.radius, book.grids);
    return book;
}

inline void check_triplet_bits(unsigned bits) {
    require(bits >= kMinTripletBits && bits <= kMaxTripletBits,
            "bits per triplet " + std::to_string(bits) + " is outside " + std::to_string(kMinTripletBits) + ".." +
                std::to_string(kMaxTripletBits) + " (1 to 4 bits per coordinate, contract.hpp)");
}

inline std::shared_ptr<const DirectionGrid> cached_product_grid(std::size_t n_u, std::size_t n_v) {
    struct Tag {};
    return memoize<Tag, std::pair<std::size_t, std::size_t>, DirectionGrid>(
        std::pair{n_u, n_v}, [&] { return product_direction_grid(n_u, n_v); });
}

}  // namespace detail

/// The paper's literal triplet code at head dim `dim` with `bits` bits per triplet (see the header).
inline TripletCodebook paper_triplet_codebook(std::size_t dim, unsigned bits) {
    detail::check_triplet_bits(bits);
    const Density norm = triplet_norm_density(static_cast<int>(dim));
    TripletCodebook best;
    best.mse = std::numeric_limits<double>::infinity();
    // Splits far from even are never best; bounding each part keeps the search to a few codebooks.
    const unsigned most = (bits + 1) / 2;
    for (unsigned b_r = 0; b_r <= std::min(bits, most); ++b_r)
        for (unsigned b_u = 0; b_u + b_r <= bits && b_u <= most; ++b_u) {
            const unsigned b_v = bits - b_r - b_u;
            if (b_v > most) continue;
            const Codebook rings = lloyd_max(norm, std::size_t{1} << b_r);
            const auto grid = detail::cached_product_grid(std::size_t{1} << b_u, std::size_t{1} << b_v);
            std::vector<std::shared_ptr<const DirectionGrid>> grids(rings.size(), grid);
            TripletCodebook candidate = detail::assemble(bits, rings.thresholds, rings.levels, grids, norm);
            // Mirror splits (b_u, b_v) and (b_v, b_u) tie exactly; a margin keeps the first, whatever
            // the build's rounding of the two errors.
            if (candidate.mse < best.mse * (1.0 - 1e-9)) best = std::move(candidate);
        }
    return best;
}

namespace detail {

/// Rings and cells for a given ring count, alternating allocation and boundaries under the
/// distortion model. Returns the model's error, or +inf if the rings collapse.
inline double design_rings(const Density& norm, std::size_t rings, std::size_t total, std::vector<double>& thresholds,
                           std::vector<std::size_t>& cells) {
    thresholds = lloyd_max(norm, rings).thresholds;
    cells.clear();
    for (int iteration = 0; iteration < 50; ++iteration) {
        const auto moments = ring_moments(norm, thresholds);
        std::vector<double> radius(rings), weight(rings), gain(rings);
        for (std::size_t k = 0; k < rings; ++k) {
            radius[k] = moments[k].first / moments[k].mass;
            weight[k] = moments[k].first * radius[k];
        }
        auto next_cells = allocate_cells(weight, total);
        for (std::size_t k = 0; k < rings; ++k) gain[k] = 1.0 - distortion_model(next_cells[k]);
        auto next_thresholds = thresholds;
        if (!weighted_ring_thresholds(radius, gain, next_thresholds)) return std::numeric_limits<double>::infinity();
        double moved = 0.0;
        for (std::size_t k = 0; k + 1 < rings; ++k) moved = std::max(moved, std::fabs(next_thresholds[k] - thresholds[k]));
        thresholds = std::move(next_thresholds);
        const bool settled = next_cells == cells && moved < 1e-13;
        cells = std::move(next_cells);
        if (settled) break;
    }
    const auto moments = ring_moments(norm, thresholds);
    double error = 0.0;
    for (std::size_t k = 0; k < rings; ++k)
        error += moments[k].second - (1.0 - distortion_model(cells[k])) * moments[k].first * moments[k].first / moments[k].mass;
    return error;
}

}  // namespace detail

namespace detail {

/// The codebook for given cell counts on exact grids: boundaries where the rings' exact errors
/// cross, radii at the rings' centroids.
inline TripletCodebook exact_design(const Density& norm, unsigned bits, std::vector<double> thresholds,
                                    const std::vector<std::size_t>& cells, int iterations = 40) {
    const std::size_t rings = cells.size();
    std::vector<std::shared_ptr<const DirectionGrid>> grids(rings);
    std::vector<double> gain(rings), radius(rings);
    for (std::size_t k = 0; k < rings; ++k) {
        grids[k] = cached_equal_mass_grid(cells[k]);
        gain[k] = 1.0 - grids[k]->distortion();
    }
    // Alternate radii (centroids of the rings) and boundaries (where the rings' errors cross) to
    // their common fixed point; the iteration converges linearly, hence the final call's long run.
    for (int iteration = 0; iteration < iterations; ++iteration) {
        const auto moments = ring_moments(norm, thresholds);
        for (std::size_t k = 0; k < rings; ++k) radius[k] = moments[k].first / moments[k].mass;
        auto next = thresholds;
        if (!weighted_ring_thresholds(radius, gain, next)) break;
        double moved = 0.0;
        for (std::size_t k = 0; k + 1 < rings; ++k) moved = std::max(moved, std::fabs(next[k] - thresholds[k]));
        thresholds = std::move(next);
        if (moved < 1e-15) break;
    }
    const auto moments = ring_moments(norm, thresholds);
    for (std::size_t k = 0; k < rings; ++k) radius[k] = moments[k].first / moments[k].mass;
    return assemble(bits, thresholds, radius, grids, norm);
}

}  // namespace detail

/// OCTOPUS's triplet codebook at head dim `dim` with `bits` bits per triplet (see the header).
inline TripletCodebook octopus_triplet_codebook(std::size_t dim, unsigned bits) {
    detail::check_triplet_bits(bits);
    const Density norm = triplet_norm_density(static_cast<int>(dim));
    const std::size_t total = std::size_t{1} << bits;
    // The ring count, under the model.
    std::vector<double> thresholds, best_thresholds;
    std::vector<std::size_t> cells, best_cells;
    double best_error = std::numeric_limits<double>::infinity();
    int worse_in_a_row = 0;
    for (std::size_t rings = 1; rings <= std::min<std::size_t>(total, 48) && worse_in_a_row < 3; ++rings) {
        const double error = detail::design_rings(norm, rings, total, thresholds, cells);
        if (error < best_error) {
            best_error = error;
            best_thresholds = thresholds;
            best_cells = cells;
            worse_in_a_row = 0;
        } else {
            ++worse_in_a_row;  // the error is unimodal in the ring count
        }
    }
    // Exact grids from here on. The model misjudges small grids by a few percent, so the counts are
    // polished by moving a few cells between neighbouring rings while the exact error falls.
    auto best = detail::exact_design(norm, bits, best_thresholds, best_cells);
    for (int sweep = 0; sweep < 4; ++sweep) {
        bool improved = false;
        for (std::size_t k = 0; k + 1 < best_cells.size(); ++k)
            for (int step : {1, 2, 4, -1, -2, -4}) {
                auto cells_try = best_cells;
                const std::size_t from = step > 0 ? k : k + 1, to = step > 0 ? k + 1 : k;
                const auto moved = static_cast<std::size_t>(std::abs(step));
                if (cells_try[from] <= moved) continue;
                cells_try[from] -= moved;
                cells_try[to] += moved;
                auto candidate = detail::exact_design(norm, bits, best.ring_thresholds, cells_try);
                if (candidate.mse < best.mse * (1.0 - 1e-9)) {
                    best = std::move(candidate);
                    best_cells = std::move(cells_try);
                    improved = true;
                }
            }
        if (!improved) break;
    }
    return detail::exact_design(norm, bits, best.ring_thresholds, best_cells, 5000);
}

}  // namespace octopus
