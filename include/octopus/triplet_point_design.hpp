// How OCTOPUS's triplet points are designed: Lloyd's algorithm in 3-D on samples of the exact triplet
// distribution at head dim d. tools/generate_triplet_points.cpp runs it once per (d, B) and ships the
// result as fp16 tables (codebooks/triplet_points.hpp), because Lloyd's fixed point, rounded to fp16,
// must be the same on every compiler and flag set and a run takes seconds, not the 50 ms a codec may
// spend at start-up. The test that regenerates a table bit for bit includes this header too.
//
// The triplet t = (y₁, y₂, y₃) of a uniform unit vector is r·n with r² ~ Beta(3/2, (d−3)/2) and n
// uniform on S², independent. Samples draw r by inverting the norm density's CDF (tabulated by
// quadrature) and n by rejection from the cube; both from SplitMix64, so the samples are fixed.
//
// Up to kMaxUnfoldedTripletBits the codebook is 2^B free points. Above, it is folded: 2^(B−3) points in
// the positive octant, the code's three low bits giving the signs, and Lloyd runs on |t| (the nearest
// of the eight images of an octant point is the one in t's octant; detail/nearest_point.hpp). Splitting
// (Linde–Buzo–Gray) starts from the centroid and doubles the points, with Lloyd runs between doublings.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "octopus/contract.hpp"
#include "octopus/detail/nearest_point.hpp"
#include "octopus/detail/triplet_point_grid.hpp"
#include "octopus/detail/prng.hpp"
#include "octopus/detail/quadrature.hpp"
#include "octopus/marginals.hpp"

namespace octopus {

/// Points of one designed codebook (doubles, before rounding to fp16), and its per-triplet MSE on the
/// design samples.
struct TripletPointDesign {
    std::vector<std::array<double, 3>> points;
    double mse = 0.0;
};

namespace detail {

/// `count` samples of the triplet at head dim `dim` (folded to |t| when asked), from `seed`.
inline std::vector<std::array<double, 3>> triplet_samples(std::size_t dim, std::size_t count, std::uint64_t seed, bool folded) {
    // The norm's CDF on a fine grid (Gauss–Legendre per cell), inverted by bisection and interpolation.
    const Density norm = triplet_norm_density(static_cast<int>(dim));
    constexpr std::size_t cells = 1 << 14;
    const double top = std::min(1.0, 14.0 / std::sqrt(static_cast<double>(dim)));
    std::vector<double> cdf(cells + 1, 0.0);
    for (std::size_t i = 0; i < cells; ++i)
        cdf[i + 1] = cdf[i] + integrate(norm.pdf, top * i / cells, top * (i + 1) / cells, 1.0);
    for (double& c : cdf) c /= cdf.back();
    SplitMix64 random(derive_seed(seed, dim));
    std::vector<std::array<double, 3>> samples(count);
    for (auto& s : samples) {
        const double u = random.uniform();
        const std::size_t i = static_cast<std::size_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin()) - 1;
        const double within = cdf[i + 1] > cdf[i] ? (u - cdf[i]) / (cdf[i + 1] - cdf[i]) : 0.0;
        const double r = top * (static_cast<double>(std::min(i, cells - 1)) + within) / cells;
        double x, y, z, q;
        do {
            x = 2.0 * random.uniform() - 1.0;
            y = 2.0 * random.uniform() - 1.0;
            z = 2.0 * random.uniform() - 1.0;
            q = x * x + y * y + z * z;
        } while (q > 1.0 || q < 1e-12);
        const double scale = r / std::sqrt(q);
        s = {x * scale, y * scale, z * scale};
        if (folded)
            for (double& c : s) c = std::fabs(c);
    }
    return samples;
}

/// One Lloyd step: assigns samples to their nearest point (through the same float search the codec
/// runs) and moves each point to its samples' mean. Returns the MSE of the assignment. A point left
/// without samples takes the sample farthest from its own point (deterministic, and rare).
inline double lloyd_step(std::size_t dim, bool folded, const std::vector<std::array<double, 3>>& samples,
                         std::vector<std::array<double, 3>>& points) {
    std::vector<std::array<float, 3>> single(points.size());
    for (std::size_t k = 0; k < points.size(); ++k)
        for (int a = 0; a < 3; ++a) single[k][a] = static_cast<float>(points[k][a]);
    const PointGrid g = point_grid(dim, points.size(), folded);
    const NearestPointIndex index(single, g.lo, g.hi, g.grid, g.bend);
    std::vector<std::array<double, 3>> sum(points.size(), {0.0, 0.0, 0.0});
    std::vector<std::size_t> count(points.size(), 0);
    double error = 0.0, worst = -1.0;
    std::size_t worst_sample = 0;
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const auto& s = samples[i];
        const std::uint32_t k = index.search(static_cast<float>(s[0]), static_cast<float>(s[1]), static_cast<float>(s[2]));
        double e = 0.0;
        for (int a = 0; a < 3; ++a) {
            sum[k][a] += s[a];
            e += (s[a] - points[k][a]) * (s[a] - points[k][a]);
        }
        ++count[k];
        error += e;
        if (e > worst) { worst = e; worst_sample = i; }
    }
    for (std::size_t k = 0; k < points.size(); ++k) {
        if (count[k] == 0) {
            points[k] = samples[worst_sample];
            continue;
        }
        for (int a = 0; a < 3; ++a) points[k][a] = sum[k][a] / static_cast<double>(count[k]);
    }
    return error / static_cast<double>(samples.size());
}

/// Lloyd steps until the MSE improves by less than `tolerance` (relative) or `steps` have run.
inline double lloyd(std::size_t dim, bool folded, const std::vector<std::array<double, 3>>& samples,
                    std::vector<std::array<double, 3>>& points, int steps, double tolerance,
                    const std::function<void(int, double)>& progress = {}) {
    double previous = INFINITY, error = INFINITY;
    for (int step = 0; step < steps; ++step) {
        error = lloyd_step(dim, folded, samples, points);
        if (progress) progress(step, error);
        if (previous - error < tolerance * error) break;
        previous = error;
    }
    return error;
}

}  // namespace detail

/// Lloyd's design of the B-bit triplet codebook at head dim `dim` on `samples` triplets from `seed`:
/// 2^B points, or 2^(B−3) octant points when B > kMaxUnfoldedTripletBits. Deterministic for a given
/// build; seconds to a minute per codebook.
inline TripletPointDesign design_triplet_points(std::size_t dim, unsigned triplet_bits, std::size_t samples,
                                                std::uint64_t seed, const std::function<void(int, double)>& progress = {}) {
    const bool folded = triplet_bits > kMaxUnfoldedTripletBits;
    const std::size_t target = std::size_t{1} << (folded ? triplet_bits - 3 : triplet_bits);
    const auto data = detail::triplet_samples(dim, samples, seed, folded);
    std::vector<std::array<double, 3>> points(1, {0.0, 0.0, 0.0});
    for (const auto& s : data)
        for (int a = 0; a < 3; ++a) points[0][a] += s[a] / static_cast<double>(data.size());
    detail::SplitMix64 random(detail::derive_seed(seed, 1000 + dim * 16 + triplet_bits));
    const double step = 0.05 / std::sqrt(static_cast<double>(dim));
    while (points.size() < target) {
        // Split every point into two, nudged apart along a random direction.
        std::vector<std::array<double, 3>> split;
        for (const auto& p : points) {
            std::array<double, 3> v{random.uniform() - 0.5, random.uniform() - 0.5, random.uniform() - 0.5};
            split.push_back({p[0] + step * v[0], p[1] + step * v[1], p[2] + step * v[2]});
            split.push_back({p[0] - step * v[0], p[1] - step * v[1], p[2] - step * v[2]});
        }
        points = std::move(split);
        const bool last = points.size() == target;
        detail::lloyd(dim, folded, data, points, last ? 150 : 20, last ? 1e-6 : 1e-4, last ? progress : nullptr);
    }
    // A canonical order: by norm, then coordinates (codes number the points in this order).
    std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) {
        const double na = a[0] * a[0] + a[1] * a[1] + a[2] * a[2], nb = b[0] * b[0] + b[1] * b[1] + b[2] * b[2];
        return na != nb ? na < nb : a < b;
    });
    TripletPointDesign design;
    design.points = std::move(points);
    return design;
}

}  // namespace octopus
