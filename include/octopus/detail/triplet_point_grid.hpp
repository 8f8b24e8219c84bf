// The bucket grid of OCTOPUS's nearest-point index for a triplet codebook at head dim d: what both the
// offline design (triplet_point_design.hpp, which searches with it in every Lloyd step) and the codec's
// tables (triplet_point_tables.hpp) build their index with. The grid changes speed and memory only,
// never a code: the search is exact on any grid.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace octopus::detail {

/// The bucket grid of a codebook's nearest-point index: the cube covers |coordinate| ≤ 4.5/√d (all but
/// about 1e-5 of coordinates), its boxes equal in x / (|x| + 1.6/√d), so finer near 0 where points
/// crowd, and more of them for more points: then nearly every triplet's list is one group of eight.
struct PointGrid {
    float lo, hi, bend;
    std::uint32_t grid;
};
inline PointGrid point_grid(std::size_t dim, std::size_t points, bool folded) {
    const float sigma = 1.0f / std::sqrt(static_cast<float>(dim));
    const float reach = std::min(1.0f, 4.5f * sigma), bend = 1.6f * sigma;
    if (folded) return {0.0f, reach, bend, points <= 128 ? 12u : points <= 256 ? 14u : 16u};
    return {-reach, reach, bend, points <= 16 ? 6u : points <= 64 ? 8u : points <= 128 ? 10u : points <= 256 ? 12u : 16u};
}

}  // namespace octopus::detail
