// Exact moments of a uniform direction over a rectangle of the octahedral square: its probability
// and the integral of the direction itself, the pieces every centroid and distortion is made of.
//
// The density 1/(4π|p|³) and the direction p/|p| are smooth inside each of the eight triangles that
// the lines u = 0, v = 0 and |u| + |v| = 1 cut the square into, and only there. So a rectangle is
// split at u = 0 and v = 0, each quadrant piece is clipped by the diagonal into (at most) two
// polygons, and each polygon is fan-triangulated and integrated with a collapsed (Duffy) Gauss rule,
// subdividing triangles until they are small. That makes the integrals accurate to ~1e-12.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <vector>

#include "octopus/detail/quadrature.hpp"
#include "octopus/marginals.hpp"
#include "octopus/octahedral.hpp"

namespace octopus::detail {

/// ∫ f and ∫ f·n over a region, f the density of (u, v) and n the unit direction (u, v) stands for.
struct DirectionMoments {
    double mass = 0.0;
    std::array<double, 3> first{};
    DirectionMoments& operator+=(const DirectionMoments& o) {
        mass += o.mass;
        for (int k = 0; k < 3; ++k) first[k] += o.first[k];
        return *this;
    }
};

struct Point2 {
    double a, b;
};

inline constexpr std::size_t kTrianglePoints = 8;
inline constexpr double kMaxTriangleEdge = 0.25;

/// Moments over a triangle of the first quadrant lying on one side of a + b = 1.
inline void add_triangle(Point2 p0, Point2 p1, Point2 p2, DirectionMoments& out, int depth = 0) {
    const auto edge = [](Point2 x, Point2 y) { return std::hypot(x.a - y.a, x.b - y.b); };
    if (depth < 8 && std::max({edge(p0, p1), edge(p1, p2), edge(p2, p0)}) > kMaxTriangleEdge) {
        const Point2 m01{0.5 * (p0.a + p1.a), 0.5 * (p0.b + p1.b)};
        const Point2 m12{0.5 * (p1.a + p2.a), 0.5 * (p1.b + p2.b)};
        const Point2 m20{0.5 * (p2.a + p0.a), 0.5 * (p2.b + p0.b)};
        add_triangle(p0, m01, m20, out, depth + 1);
        add_triangle(m01, p1, m12, out, depth + 1);
        add_triangle(m20, m12, p2, out, depth + 1);
        add_triangle(m01, m12, m20, out, depth + 1);
        return;
    }
    // Duffy: x(s, t) = p0 + s (p1 − p0) + s t (p2 − p1), dA = s |det| ds dt on [0, 1]².
    const double det = std::fabs((p1.a - p0.a) * (p2.b - p1.b) - (p1.b - p0.b) * (p2.a - p1.a));
    if (det == 0.0) return;
    const auto& rule = gauss_legendre_rule<kTrianglePoints>();
    for (std::size_t i = 0; i < kTrianglePoints; ++i) {
        const double s = 0.5 * (rule.nodes[i] + 1.0), ws = 0.5 * rule.weights[i];
        for (std::size_t j = 0; j < kTrianglePoints; ++j) {
            const double t = 0.5 * (rule.nodes[j] + 1.0), w = ws * 0.5 * rule.weights[j] * s * det;
            const double a = p0.a + s * (p1.a - p0.a) + s * t * (p2.a - p1.a);
            const double b = p0.b + s * (p1.b - p0.b) + s * t * (p2.b - p1.b);
            const auto p = octahedral_unfold(a, b);
            const double squared = p[0] * p[0] + p[1] * p[1] + p[2] * p[2];
            const double norm = std::sqrt(squared);
            const double f = w / (4.0 * 3.14159265358979323846 * squared * norm);
            out.mass += f;
            for (int k = 0; k < 3; ++k) out.first[k] += f * p[k] / norm;
        }
    }
}

/// Moments over the part of [a0, a1] × [b0, b1] (first quadrant, a0 ≥ 0, b0 ≥ 0) on one side of
/// a + b = 1: below it when `below`, above otherwise. Sutherland–Hodgman clip, then a fan.
inline void add_clipped_rectangle(double a0, double a1, double b0, double b1, bool below, DirectionMoments& out) {
    const Point2 corners[4] = {{a0, b0}, {a1, b0}, {a1, b1}, {a0, b1}};
    const auto side = [below](Point2 p) { return below ? 1.0 - p.a - p.b : p.a + p.b - 1.0; };  // ≥ 0 inside
    std::vector<Point2> polygon;
    polygon.reserve(6);
    for (int i = 0; i < 4; ++i) {
        const Point2 p = corners[i], q = corners[(i + 1) % 4];
        const double sp = side(p), sq = side(q);
        if (sp >= 0.0) polygon.push_back(p);
        if ((sp >= 0.0) != (sq >= 0.0)) {
            const double t = sp / (sp - sq);
            polygon.push_back({p.a + t * (q.a - p.a), p.b + t * (q.b - p.b)});
        }
    }
    for (std::size_t i = 1; i + 1 < polygon.size(); ++i) add_triangle(polygon[0], polygon[i], polygon[i + 1], out);
}

/// Moments of a uniform direction over the rectangle [u0, u1] × [v0, v1] of the octahedral square.
inline DirectionMoments direction_cell_moments(double u0, double u1, double v0, double v1) {
    DirectionMoments total;
    // Split at the axes; mirror each piece into the first quadrant, where the direction's x and y
    // components are mirrored back by the piece's signs (the density is symmetric).
    const double u_breaks[] = {u0, std::clamp(0.0, u0, u1), u1};
    const double v_breaks[] = {v0, std::clamp(0.0, v0, v1), v1};
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) {
            const double ulo = u_breaks[i], uhi = u_breaks[i + 1], vlo = v_breaks[j], vhi = v_breaks[j + 1];
            if (!(uhi > ulo) || !(vhi > vlo)) continue;
            const double su = uhi <= 0.0 ? -1.0 : 1.0, sv = vhi <= 0.0 ? -1.0 : 1.0;
            const double a0 = std::fabs(su > 0 ? ulo : uhi), a1 = std::fabs(su > 0 ? uhi : ulo);
            const double b0 = std::fabs(sv > 0 ? vlo : vhi), b1 = std::fabs(sv > 0 ? vhi : vlo);
            DirectionMoments piece;
            add_clipped_rectangle(a0, a1, b0, b1, true, piece);
            add_clipped_rectangle(a0, a1, b0, b1, false, piece);
            piece.first[0] *= su;
            piece.first[1] *= sv;
            total += piece;
        }
    return total;
}

}  // namespace octopus::detail
