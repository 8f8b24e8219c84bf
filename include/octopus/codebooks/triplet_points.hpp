// OCTOPUS's triplet codebooks as shipped: for every supported head dim and B = 3..12 bits per triplet,
// the points Lloyd's algorithm found on the exact triplet distribution (triplet_point_design.hpp),
// as fp16, generated once by tools/generate_triplet_points.cpp. Shipping them, instead of running
// Lloyd at start-up, makes the codes the same on every compiler and flag set, and the tables load in
// well under a millisecond. tests/test_triplet_points.cpp regenerates some of them bit for bit.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "octopus/codebooks/shipped_format.hpp"
#include "octopus/contract.hpp"
#include "octopus/error.hpp"

namespace octopus {

namespace detail {
inline constexpr ShippedPoints kShippedTripletPoints[] = {
#include "octopus/codebooks/triplet_points_d32.inc"
#include "octopus/codebooks/triplet_points_d48.inc"
#include "octopus/codebooks/triplet_points_d64.inc"
#include "octopus/codebooks/triplet_points_d80.inc"
#include "octopus/codebooks/triplet_points_d96.inc"
#include "octopus/codebooks/triplet_points_d112.inc"
#include "octopus/codebooks/triplet_points_d128.inc"
#include "octopus/codebooks/triplet_points_d160.inc"
#include "octopus/codebooks/triplet_points_d192.inc"
#include "octopus/codebooks/triplet_points_d224.inc"
#include "octopus/codebooks/triplet_points_d256.inc"
#include "octopus/codebooks/triplet_points_d320.inc"
#include "octopus/codebooks/triplet_points_d384.inc"
#include "octopus/codebooks/triplet_points_d448.inc"
#include "octopus/codebooks/triplet_points_d512.inc"
#include "octopus/codebooks/triplet_points_d640.inc"
#include "octopus/codebooks/triplet_points_d768.inc"
#include "octopus/codebooks/triplet_points_d896.inc"
#include "octopus/codebooks/triplet_points_d1024.inc"
};
}  // namespace detail

/// A shipped triplet codebook: 2^B points, or for a folded B (is_folded) the 2^(B−3) points of the
/// positive octant; and its per-triplet MSE on unit keys.
struct TripletPoints {
    bool folded = false;
    std::vector<std::array<float, 3>> points;
    double mse = 0.0;
};

/// The shipped codebook of head dim `dim` at B = `triplet_bits`; throws for a dim or B without one.
inline TripletPoints shipped_triplet_points(std::size_t dim, unsigned triplet_bits) {
    check_dim(dim);
    for (const auto& shipped : detail::kShippedTripletPoints)
        if (shipped.dim == dim && shipped.triplet_bits == triplet_bits) {
            TripletPoints out;
            out.folded = is_folded(triplet_bits);
            out.points = detail::parse_shipped_points(shipped, std::size_t{1} << (out.folded ? triplet_bits - 3 : triplet_bits));
            out.mse = shipped.mse;
            return out;
        }
    throw error("octopus: no shipped triplet codebook for d = " + std::to_string(dim) + " at " +
                std::to_string(triplet_bits) + " bits per triplet (3..12 are shipped for every supported dim)");
}

}  // namespace octopus
