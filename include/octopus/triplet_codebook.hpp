// The paper's literal triplet code (OCTOPUS's `octopus-paper`): B bits per triplet t = (y₃ᵢ, y₃ᵢ₊₁, y₃ᵢ₊₂)
// of rotated coordinates as B = b_u + b_v + b_r, with 2^b_r Lloyd–Max rings of the triplet norm and
// the same 2^b_u × 2^b_v Lloyd–Max grid of octahedral coordinates in every ring, decoded at the level
// values. (`octopus` itself uses Lloyd's points in 3-D: triplet_point_tables.hpp.)
//
// A triplet of a uniform unit vector has norm r with r² ~ Beta(3/2, (d−3)/2) and a direction n that is
// uniform on S² and independent of r. The 2^B codes are the cells of all rings, numbered ring by ring.
// The error of ring k, by independence of r and n, is
//     E[r²; k] − 2 ρ_k A_k E[r; k] + ρ_k² Q_k P_k,     A_k = E[n·n̂],  Q_k = E|n̂|²,
// which picks the split (b_u, b_v, b_r) with the least error.
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

}  // namespace octopus
