// OCTOPUS's shipped triplet codebooks and their nearest-point search (codebooks/triplet_points.hpp,
// triplet_point_tables.hpp, detail/nearest_point.hpp). The regeneration of shipped tables bit for bit
// is a ctest of its own (tools/generate_triplet_points --check).
#include <octopus/contract.hpp>
#include <octopus/triplet_point_design.hpp>
#include <octopus/triplet_point_tables.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

using octopus::TripletPointTables;
using octopus::detail::point_rank;

std::vector<std::size_t> supported_dims() {
    std::vector<std::size_t> dims;
    for (std::size_t d = 32; d <= octopus::kMaxDim; ++d)
        if (octopus::is_supported_dim(d)) dims.push_back(d);
    return dims;
}

// Every supported dim has every rate; the points are finite, distinct, in the octant when folded; the
// MSE falls with B and never beats Shannon's bound for the triplet's variance, 3/d · 2^(−2B/3).
TEST(TripletPoints, EveryDimAndRateIsShippedAndSane) {
    const auto dims = supported_dims();
    ASSERT_EQ(dims.size(), 19u);
    for (std::size_t d : dims) {
        double previous = std::numeric_limits<double>::infinity();
        for (unsigned b = octopus::kMinTripletBits; b <= octopus::kMaxTripletBits; ++b) {
            const auto shipped = octopus::shipped_triplet_points(d, b);
            ASSERT_EQ(shipped.folded, b > 9u);
            ASSERT_EQ(shipped.points.size(), std::size_t{1} << (shipped.folded ? b - 3 : b));
            for (std::size_t i = 0; i < shipped.points.size(); ++i) {
                for (float c : shipped.points[i]) {
                    ASSERT_TRUE(std::isfinite(c));
                    if (shipped.folded) {
                        ASSERT_GE(c, 0.0f);
                    }
                }
                if (i > 0) {
                    ASSERT_NE(shipped.points[i], shipped.points[i - 1]) << "d " << d << " B " << b;
                }
            }
            const double shannon = 3.0 / double(d) * std::exp2(-2.0 * b / 3.0);
            EXPECT_GT(shipped.mse, shannon) << "d " << d << " B " << b;
            EXPECT_LT(shipped.mse, previous) << "d " << d << " B " << b;
            previous = shipped.mse;
        }
    }
    EXPECT_THROW(octopus::shipped_triplet_points(100, 6), octopus::error);
    EXPECT_THROW(octopus::shipped_triplet_points(128, 13), octopus::error);
}

/// The brute-force code: the lowest index among the points of lowest rank (of |t| when folded).
std::uint32_t brute_force_code(const TripletPointTables& t, float x, float y, float z) {
    const std::uint32_t signs = t.folded ? (x < 0.0f ? 1u : 0u) | (y < 0.0f ? 2u : 0u) | (z < 0.0f ? 4u : 0u) : 0u;
    if (t.folded) x = std::fabs(x), y = std::fabs(y), z = std::fabs(z);
    float best = std::numeric_limits<float>::infinity();
    std::uint32_t index = 0;
    for (std::uint32_t k = 0; k < t.base_points.size(); ++k) {
        const auto& p = t.base_points[k];
        const float sq = (octopus::detail::product(p[0], p[0]) + octopus::detail::product(p[1], p[1])) +
                         octopus::detail::product(p[2], p[2]);
        const float e = point_rank(x, y, z, p[0], p[1], p[2], sq);
        if (e < best) best = e, index = k;
    }
    return t.folded ? index << 3 | signs : index;
}

/// Triplets that stress the search: typical ones, far ones (outside the grid), the points
/// themselves and midpoints of pairs (ties), bucket boundaries, zeros of both signs, tiny values.
std::vector<float> hard_triplets(const TripletPointTables& t, std::size_t dim, std::uint64_t seed) {
    octopus::detail::SplitMix64 random(seed);
    std::vector<float> out;
    const double sigma = 1.0 / std::sqrt(double(dim));
    for (int i = 0; i < 20000; ++i) {
        const double spread = i % 10 == 0 ? 4.0 : 1.0;
        for (int a = 0; a < 3; ++a) out.push_back(static_cast<float>(spread * sigma * random.normal()));
    }
    const auto& base = t.base_points;
    for (std::size_t k = 0; k < base.size(); ++k) {
        const auto& p = base[k];
        const auto& q = base[(k * 7 + 3) % base.size()];
        out.insert(out.end(), {p[0], p[1], p[2]});
        out.insert(out.end(), {0.5f * (p[0] + q[0]), 0.5f * (p[1] + q[1]), 0.5f * (p[2] + q[2])});
        out.insert(out.end(), {-p[0], p[1], -p[2]});
    }
    const auto view = t.index.view();
    for (std::uint32_t k = 0; k <= view.grid; ++k) {
        // Box edges: equal steps of the bent coordinate u, mapped back by x = bend·u / (1 − |u|).
        const double u = view.lo + k / double(view.scale);
        const float edge = static_cast<float>(view.bend * u / (1.0 - std::fabs(u)));
        out.insert(out.end(), {edge, 0.5f * edge, -0.25f * edge});
        out.insert(out.end(), {std::nextafter(edge, -1.0f), edge, std::nextafter(edge, 1.0f)});
    }
    out.insert(out.end(), {0.0f, 0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 1e-30f, -1e-30f, 0.0f, 1.0f, 0.0f, 0.0f, -1.0f, -1.0f, 1.0f});
    return out;
}

// The bucketed search, scalar and AVX2, is the brute-force argmin over all points, ties included.
TEST(TripletPoints, SearchIsTheExactNearestPoint) {
    const std::pair<std::size_t, unsigned> cases[] = {{32, 9}, {64, 3}, {80, 5}, {128, 6}, {128, 8}, {128, 9},
                                                      {128, 10}, {128, 12}, {256, 7}, {256, 11}, {1024, 12}};
    for (const auto& [d, b] : cases) {
        const TripletPointTables t(d, b);
        const auto triplets = hard_triplets(t, d, d * 16 + b);
        const std::size_t n = triplets.size() / 3;
        std::vector<std::uint32_t> batched(n);
        t.encode_many(triplets.data(), n, batched.data());
        std::size_t wrong = 0, drift = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const float* x = triplets.data() + 3 * i;
            const std::uint32_t code = t.encode(x);
            wrong += code != brute_force_code(t, x[0], x[1], x[2]);
            drift += batched[i] != code;
        }
        EXPECT_EQ(wrong, 0u) << "d " << d << " B " << b << " of " << n;
        EXPECT_EQ(drift, 0u) << "d " << d << " B " << b << " (batched path)";
        EXPECT_LE(t.index.longest_list(), 8u) << "d " << d << " B " << b << ": groups of eight in the longest list";
    }
}

// Lloyd's two optimality conditions on fresh samples (not the design's): cells are nearest-point
// cells (the search), and each point is the mean of its cell, to the Monte Carlo error of the mean.
// The table's MSE is what the fresh samples give.
TEST(TripletPoints, PointsAreTheCentroidsOfTheirCells) {
    for (const auto& [d, b] : {std::pair<std::size_t, unsigned>{128, 6}, {128, 10}, {64, 9}}) {
        const TripletPointTables t(d, b);
        const auto samples = octopus::detail::triplet_samples(d, 1 << 19, 777, t.folded);
        const std::size_t k = t.base_points.size();
        std::vector<std::array<double, 3>> sum(k, {0, 0, 0});
        std::vector<double> count(k, 0.0), spread(k, 0.0);
        double mse = 0.0;
        for (const auto& s : samples) {
            const std::uint32_t i = t.index.search(float(s[0]), float(s[1]), float(s[2]));
            double e = 0.0;
            for (int a = 0; a < 3; ++a) {
                sum[i][a] += s[a];
                e += (s[a] - t.base_points[i][a]) * (s[a] - t.base_points[i][a]);
            }
            count[i] += 1.0;
            spread[i] += e;
            mse += e;
        }
        mse /= double(samples.size());
        EXPECT_NEAR(mse, t.mse, 0.01 * t.mse) << "d " << d << " B " << b;
        for (std::size_t i = 0; i < k; ++i) {
            ASSERT_GT(count[i], 50.0) << "d " << d << " B " << b << " point " << i;
            double moved = 0.0;
            for (int a = 0; a < 3; ++a) {
                const double c = sum[i][a] / count[i] - t.base_points[i][a];
                moved += c * c;
            }
            // |mean − point|² against the variance of the cell's mean (spread / count²), with the
            // fp16 rounding of the point (≤ 2^−11 relative per coordinate) on top.
            const double noise = spread[i] / count[i] / count[i];
            const double rounding = 3.0 * std::pow(std::ldexp(1.0, -11) * 0.6, 2) * 3.0 / double(d);
            EXPECT_LT(moved, 25.0 * noise + rounding) << "d " << d << " B " << b << " point " << i;
        }
    }
}

// A folded code's sign bits are the signs of the triplet: negating a coordinate flips only its bit.
TEST(TripletPoints, FoldedCodesCarryTheSigns) {
    const TripletPointTables t(128, 11);
    const float x[3] = {0.05f, -0.11f, 0.02f};
    const std::uint32_t code = t.encode(x);
    EXPECT_EQ(code & 7u, 2u);
    const float flipped[3] = {-0.05f, 0.11f, 0.02f};
    EXPECT_EQ(t.encode(flipped), (code & ~7u) | 1u);
    const auto& p = t.points[code];
    const auto& base = t.base_points[code >> 3];
    EXPECT_EQ(p[0], base[0]);
    EXPECT_EQ(p[1], -base[1]);
    EXPECT_EQ(p[2], base[2]);
}

}  // namespace
