// Exact nearest-point search in a small 3-D codebook through a bucket grid with candidate lists.
//
// A cube [lo, hi)³ is cut into G³ boxes, finer near 0 where triplets and points crowd: along each
// axis the box edges are equally spaced in the bent coordinate x / (|x| + bend), a monotone map
// computed with one IEEE division, so every path (scalar, AVX2, GPU) finds the same box. A point p is
// listed for a box unless the box cannot hold a triplet whose nearest point is p: either p is farther
// from the whole box than the box's farthest corner is from the point nearest its centre, or some
// other point q is closer than p everywhere in the box (|x−q|² − |x−p|² is linear in x, so checking
// the eight corners decides it). A triplet outside the cube searches every point. The boxes are
// widened and the tests given slack larger than the float rounding of the bucket position and of the
// distances, so the list of a triplet's bucket always holds every point that float arithmetic can rank
// first: the search returns exactly the brute-force float argmin over all points, lowest index on ties
// (tests/test_triplet_points.cpp).
//
// Every search ranks points by e(p) = |p|² − 2 (((x·p₀) + (y·p₁)) + (z·p₂)), each product rounded on
// its own (contract.hpp's detail::product), on the CPU's scalar and AVX2 paths and on the GPU.
//
// A folded codebook holds the points of one octant (all coordinates ≥ 0) and stands for their eight
// sign images: the caller searches |t| and puts t's signs in the code. For t in an octant, the image
// in that octant is the nearest, since (|x| − p)² ≤ (|x| + p)² for p ≥ 0, so folding loses nothing.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "octopus/contract.hpp"

namespace octopus::detail {

/// Eight candidates, structure of arrays, so that one AVX2 register holds one coordinate of all
/// eight. Unused slots have sq = +∞ and never win.
struct CandidateGroup {
    float x[8], y[8], z[8], sq[8];
    std::uint32_t index[8];
};

/// What a search reads, as plain pointers: passed by value to the GPU's encode kernel as well.
struct NearestPointView {
    const CandidateGroup* groups = nullptr;
    const std::uint32_t* first_group = nullptr;  // G³ + 2 offsets into groups: bucket b is [first[b], first[b+1])
    float lo = 0.0f, scale = 1.0f;                // bucket coordinate of x: (bent(x) − lo) · scale
    float bend = 1.0f;                            // bent(x) = x / (|x| + bend)
    std::uint32_t grid = 1;                       // G
};

/// The bent coordinate, x / (|x| + bend): monotone in x, one rounding each for the sum and the quotient.
OCTOPUS_HOST_DEVICE inline float bent(float x, float bend) { return x / (fabsf(x) + bend); }

/// |p|² of a candidate as every list stores or recomputes it: each product rounded on its own.
OCTOPUS_HOST_DEVICE inline float point_sq(float px, float py, float pz) {
    return (product(px, px) + product(py, py)) + product(pz, pz);
}

/// |p|² − 2 x·p in the fixed order every search uses.
OCTOPUS_HOST_DEVICE inline float point_rank(float x, float y, float z, float px, float py, float pz, float sq) {
    const float dot = (product(x, px) + product(y, py)) + product(z, pz);
    return sq - (dot + dot);
}

/// The bucket of (x, y, z): G³ (the list of every point) outside the cube.
OCTOPUS_HOST_DEVICE inline std::uint32_t nearest_point_bucket(const NearestPointView& v, float x, float y, float z) {
    const float g = static_cast<float>(v.grid);
    const float px = (bent(x, v.bend) - v.lo) * v.scale, py = (bent(y, v.bend) - v.lo) * v.scale,
                pz = (bent(z, v.bend) - v.lo) * v.scale;
    // Written so that NaN fails too (encoders refuse NaN before this; the guard keeps the index in range).
    const bool inside = px >= 0.0f && px < g && py >= 0.0f && py < g && pz >= 0.0f && pz < g;
    if (!inside) return v.grid * v.grid * v.grid;
    const auto ix = static_cast<std::uint32_t>(px), iy = static_cast<std::uint32_t>(py), iz = static_cast<std::uint32_t>(pz);
    return (ix * v.grid + iy) * v.grid + iz;
}

/// Index of the nearest point to (x, y, z): the specification every other path matches (the AVX2
/// one and the GPU's encode kernel rank a list's candidates in parallel lanes and take the least
/// rank, the lowest index among equal ranks: the same point, since a list holds its indices in
/// ascending order and this scan keeps its first best).
inline std::uint32_t nearest_point(const NearestPointView& v, float x, float y, float z) {
    const std::uint32_t bucket = nearest_point_bucket(v, x, y, z);
    float best = INFINITY;
    std::uint32_t index = 0;
    for (std::uint32_t g = v.first_group[bucket]; g < v.first_group[bucket + 1]; ++g)
        for (int k = 0; k < 8; ++k) {
            const CandidateGroup& c = v.groups[g];
            const float e = point_rank(x, y, z, c.x[k], c.y[k], c.z[k], c.sq[k]);
            if (e < best) {
                best = e;
                index = c.index[k];
            }
        }
    return index;
}

/// Builds and owns the candidate lists of one codebook (its points fp16-exact or not, as given).
class NearestPointIndex {
public:
    NearestPointIndex() = default;

    /// Lists for `points` over the cube [lo, hi)³ cut into grid³ boxes, equal in the bent coordinate
    /// with `bend`. Points keep their order: index k of a search result is points[k].
    NearestPointIndex(const std::vector<std::array<float, 3>>& points, float lo, float hi, std::uint32_t grid, float bend)
        : lo_(bent(lo, bend)), scale_(static_cast<float>(grid) / (bent(hi, bend) - bent(lo, bend))), bend_(bend), grid_(grid) {
        const std::size_t n = points.size();
        std::vector<std::array<double, 3>> p(n);
        std::vector<double> sq(n);
        for (std::size_t i = 0; i < n; ++i) {
            for (int a = 0; a < 3; ++a) p[i][a] = points[i][a];
            sq[i] = p[i][0] * p[i][0] + p[i][1] * p[i][1] + p[i][2] * p[i][2];
        }
        // Slack against float rounding: ranks are within a few ulps of sums of size ≤ |p|² + 2|x||p|.
        double reach = std::max(std::fabs(static_cast<double>(lo)), std::fabs(static_cast<double>(hi)));
        for (double s : sq) reach = std::max(reach, std::sqrt(s));
        const double slack = 1e-5 * 3.0 * reach * reach * 3.0;
        // Box edges along an axis: equal steps of the bent coordinate mapped back, x = b·u / (1 − |u|),
        // each box widened by 1e-3 of its width, far more than the float rounding of a position.
        std::vector<double> edge_lo(grid), edge_hi(grid);
        for (std::uint32_t i = 0; i < grid; ++i) {
            const auto unbend = [&](double u) { return bend * u / (1.0 - std::fabs(u)); };
            const double a = unbend(lo_ + i / static_cast<double>(scale_)), b = unbend(lo_ + (i + 1) / static_cast<double>(scale_));
            edge_lo[i] = a - 1e-3 * (b - a);
            edge_hi[i] = b + 1e-3 * (b - a);
        }
        std::vector<std::uint32_t> list, order;
        first_group_.push_back(0);
        for (std::uint32_t ix = 0; ix < grid; ++ix)
            for (std::uint32_t iy = 0; iy < grid; ++iy)
                for (std::uint32_t iz = 0; iz < grid; ++iz) {
                    candidates(p, sq, {edge_lo[ix], edge_lo[iy], edge_lo[iz]}, {edge_hi[ix], edge_hi[iy], edge_hi[iz]}, slack, list,
                               order);
                    append(points, list);
                }
        list.resize(n);
        std::iota(list.begin(), list.end(), 0u);
        append(points, list);  // bucket G³: outside the cube, every point
    }

    NearestPointView view() const { return {groups_.data(), first_group_.data(), lo_, scale_, bend_, grid_}; }
    std::uint32_t search(float x, float y, float z) const { return nearest_point(view(), x, y, z); }

    const std::vector<CandidateGroup>& groups() const { return groups_; }
    const std::vector<std::uint32_t>& first_group() const { return first_group_; }
    /// Most groups of eight any bucket inside the cube searches.
    std::uint32_t longest_list() const {
        std::uint32_t most = 0;
        for (std::size_t b = 0; b + 2 < first_group_.size(); ++b) most = std::max(most, first_group_[b + 1] - first_group_[b]);
        return most;
    }

#if defined(__AVX2__)
    /// nearest_point_bucket() of eight triplets at once, lane for lane the same float operations.
    __m256i buckets_avx2(__m256 x, __m256 y, __m256 z) const {
        const __m256 lo = _mm256_set1_ps(lo_), scale = _mm256_set1_ps(scale_), zero = _mm256_setzero_ps();
        const __m256 g = _mm256_set1_ps(static_cast<float>(grid_));
        const __m256 bend = _mm256_set1_ps(bend_), sign_bit = _mm256_set1_ps(-0.0f);
        const auto position = [&](__m256 v) {
            return _mm256_mul_ps(_mm256_sub_ps(_mm256_div_ps(v, _mm256_add_ps(_mm256_andnot_ps(sign_bit, v), bend)), lo), scale);
        };
        const __m256 px = position(x), py = position(y), pz = position(z);
        const auto within = [&](__m256 p) {
            return _mm256_and_ps(_mm256_cmp_ps(p, zero, _CMP_GE_OQ), _mm256_cmp_ps(p, g, _CMP_LT_OQ));
        };
        const __m256 inside = _mm256_and_ps(_mm256_and_ps(within(px), within(py)), within(pz));
        const __m256i n = _mm256_set1_epi32(static_cast<int>(grid_));
        const __m256i bucket = _mm256_add_epi32(
            _mm256_mullo_epi32(_mm256_add_epi32(_mm256_mullo_epi32(_mm256_cvttps_epi32(px), n), _mm256_cvttps_epi32(py)), n),
            _mm256_cvttps_epi32(pz));
        return _mm256_blendv_epi8(_mm256_set1_epi32(static_cast<int>(grid_ * grid_ * grid_)), bucket, _mm256_castps_si256(inside));
    }

    /// nearest_point() for a triplet whose bucket is known, eight candidates of a group in eight
    /// lanes: each lane keeps its first best, then the lanes' least rank wins, the lowest index among
    /// equal ranks, as in the scalar order.
    std::uint32_t rank_avx2(std::uint32_t bucket, float x, float y, float z) const {
        return rank_groups_avx2(first_group_[bucket], first_group_[bucket + 1], x, y, z);
    }
    /// rank_avx2() over the first group of the bucket's list only: the answer when the list is
    /// short (!long_list(bucket)), with no branch on the list's length. With one group each lane holds
    /// one candidate, so the least rank's lowest lane is the answer (indices ascend along a group).
    std::uint32_t rank_first_avx2(std::uint32_t bucket, float x, float y, float z) const {
        const CandidateGroup& c = groups_[first_group_[bucket]];
        const __m256 e = group_ranks(c, _mm256_set1_ps(x), _mm256_set1_ps(y), _mm256_set1_ps(z));
        const int lanes = _mm256_movemask_ps(_mm256_cmp_ps(e, least_lane(e), _CMP_EQ_OQ));
        return c.index[lanes == 0 ? 0 : __builtin_ctz(static_cast<unsigned>(lanes))];
    }
    /// Whether the bucket's list holds more than one group of eight.
    bool long_list(std::uint32_t bucket) const { return first_group_[bucket + 1] - first_group_[bucket] > 1; }

    std::uint32_t rank_groups_avx2(std::uint32_t first, std::uint32_t last, float x, float y, float z) const {
        const __m256 bx = _mm256_set1_ps(x), by = _mm256_set1_ps(y), bz = _mm256_set1_ps(z);
        __m256 best = _mm256_set1_ps(std::numeric_limits<float>::infinity());
        __m256i index = _mm256_setzero_si256();
        for (std::uint32_t g = first; g < last; ++g) {
            const CandidateGroup& c = groups_[g];
            const __m256 e = group_ranks(c, bx, by, bz);
            const __m256 better = _mm256_cmp_ps(e, best, _CMP_LT_OQ);
            best = _mm256_blendv_ps(best, e, better);
            index = _mm256_blendv_epi8(index, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.index)),
                                       _mm256_castps_si256(better));
        }
        // The lanes holding the least rank, then the least index among them (both by halving).
        const __m256i ties = _mm256_castps_si256(_mm256_cmp_ps(best, least_lane(best), _CMP_EQ_OQ));
        __m256i lowest = _mm256_blendv_epi8(_mm256_set1_epi32(-1), index, ties);
        lowest = _mm256_min_epu32(lowest, _mm256_permute2x128_si256(lowest, lowest, 1));
        lowest = _mm256_min_epu32(lowest, _mm256_shuffle_epi32(lowest, _MM_SHUFFLE(1, 0, 3, 2)));
        lowest = _mm256_min_epu32(lowest, _mm256_shuffle_epi32(lowest, _MM_SHUFFLE(2, 3, 0, 1)));
        return static_cast<std::uint32_t>(_mm256_cvtsi256_si32(lowest));
    }

    /// point_rank() of the eight candidates of a group against the broadcast triplet, lane for lane.
    static __m256 group_ranks(const CandidateGroup& c, __m256 x, __m256 y, __m256 z) {
        const __m256 dot = _mm256_add_ps(_mm256_add_ps(rounded(_mm256_mul_ps(x, _mm256_loadu_ps(c.x))),
                                                       rounded(_mm256_mul_ps(y, _mm256_loadu_ps(c.y)))),
                                         rounded(_mm256_mul_ps(z, _mm256_loadu_ps(c.z))));
        return _mm256_sub_ps(_mm256_loadu_ps(c.sq), _mm256_add_ps(dot, dot));
    }
    /// The least of the eight lanes, in every lane.
    static __m256 least_lane(__m256 v) {
        __m256 least = _mm256_min_ps(v, _mm256_permute2f128_ps(v, v, 1));
        least = _mm256_min_ps(least, _mm256_shuffle_ps(least, least, _MM_SHUFFLE(1, 0, 3, 2)));
        return _mm256_min_ps(least, _mm256_shuffle_ps(least, least, _MM_SHUFFLE(2, 3, 0, 1)));
    }

    /// search() on the AVX2 path.
    std::uint32_t search_avx2(float x, float y, float z) const {
        return rank_avx2(nearest_point_bucket(view(), x, y, z), x, y, z);
    }
#endif

private:
    /// The points a box keeps, in index order (see the header for the two tests).
    static void candidates(const std::vector<std::array<double, 3>>& p, const std::vector<double>& sq,
                           const std::array<double, 3>& box_lo, const std::array<double, 3>& box_hi, double slack,
                           std::vector<std::uint32_t>& list, std::vector<std::uint32_t>& order) {
        const std::size_t n = p.size();
        std::array<double, 3> centre;
        for (int a = 0; a < 3; ++a) centre[a] = 0.5 * (box_lo[a] + box_hi[a]);
        std::size_t nearest = 0;
        double nearest_distance = std::numeric_limits<double>::infinity();
        for (std::size_t i = 0; i < n; ++i) {
            const double d = distance2(p[i], centre);
            if (d < nearest_distance) { nearest_distance = d; nearest = i; }
        }
        double reach = 0.0;  // the farthest corner from the centre's nearest point bounds every winner's distance
        for (int corner = 0; corner < 8; ++corner) reach = std::max(reach, distance2(p[nearest], corner_of(box_lo, box_hi, corner)));
        order.clear();
        for (std::size_t i = 0; i < n; ++i) {
            double gap = 0.0;
            for (int a = 0; a < 3; ++a) {
                const double below = box_lo[a] - p[i][a], above = p[i][a] - box_hi[a];
                const double out = std::max({below, above, 0.0});
                gap += out * out;
            }
            if (gap <= reach + slack) order.push_back(static_cast<std::uint32_t>(i));
        }
        // Domination by the points nearest the centre first: they are the likeliest to dominate.
        std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
            const double da = distance2(p[a], centre), db = distance2(p[b], centre);
            return da < db || (da == db && a < b);
        });
        list.clear();
        for (std::uint32_t i : order) {
            bool dominated = false;
            for (std::size_t k = 0; k < order.size() && k < 24 && !dominated; ++k) {
                const std::uint32_t q = order[k];
                if (q == i) continue;
                // |x−q|² − |x−p|² = (|q|² − |p|²) − 2 x·(q − p): below −slack at every corner?
                double worst = -std::numeric_limits<double>::infinity();
                for (int corner = 0; corner < 8; ++corner) {
                    const auto x = corner_of(box_lo, box_hi, corner);
                    double dot = 0.0;
                    for (int a = 0; a < 3; ++a) dot += x[a] * (p[q][a] - p[i][a]);
                    worst = std::max(worst, sq[q] - sq[i] - 2.0 * dot);
                }
                dominated = worst < -slack;
            }
            if (!dominated) list.push_back(i);
        }
        std::sort(list.begin(), list.end());
    }

    void append(const std::vector<std::array<float, 3>>& points, const std::vector<std::uint32_t>& list) {
        for (std::size_t at = 0; at < list.size(); at += 8) {
            CandidateGroup g;
            for (int k = 0; k < 8; ++k) {
                const bool real = at + k < list.size();
                const auto& q = points[real ? list[at + k] : list[at]];
                g.x[k] = real ? q[0] : 0.0f;
                g.y[k] = real ? q[1] : 0.0f;
                g.z[k] = real ? q[2] : 0.0f;
                g.sq[k] = real ? point_sq(q[0], q[1], q[2]) : std::numeric_limits<float>::infinity();
                g.index[k] = real ? list[at + k] : list[at];
            }
            groups_.push_back(g);
        }
        first_group_.push_back(static_cast<std::uint32_t>(groups_.size()));
    }

    static double distance2(const std::array<double, 3>& a, const std::array<double, 3>& b) {
        const double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
        return dx * dx + dy * dy + dz * dz;
    }
    static std::array<double, 3> corner_of(const std::array<double, 3>& lo, const std::array<double, 3>& hi, int corner) {
        return {corner & 1 ? hi[0] : lo[0], corner & 2 ? hi[1] : lo[1], corner & 4 ? hi[2] : lo[2]};
    }

    float lo_ = 0.0f, scale_ = 1.0f, bend_ = 1.0f;
    std::uint32_t grid_ = 1;
    std::vector<CandidateGroup> groups_;
    std::vector<std::uint32_t> first_group_;
};

}  // namespace octopus::detail
