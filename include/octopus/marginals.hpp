// Exact densities of what the codecs quantize, for a uniformly random unit vector in R^d.
//
// After a random rotation every key direction looks like a uniform point on the sphere S^{d-1}, so
// these densities are the exact marginals the Lloyd–Max codebooks are matched to: no training data.
#pragma once

#include <cmath>
#include <functional>

#include "octopus/detail/quadrature.hpp"
#include "octopus/octahedral.hpp"

namespace octopus {

/// A probability density on [lo, hi], normalized to integrate to 1 there. `scale` is the width
/// over which the density changes appreciably (it sets the quadrature panels); `kink`, when inside
/// (lo, hi), is a point where the density is not smooth and panels must break.
struct Density {
    std::function<double(double)> pdf;
    double lo = 0.0;
    double hi = 1.0;
    double scale = 1.0;
    double kink = NAN;
    /// f(lo + hi − x) = f(x): lloyd_max then mirrors its codebook exactly about the centre, so that a
    /// value at the centre (a zero coordinate) lands in the same cell on every build.
    bool symmetric = false;
};

namespace detail {
inline double log_beta(double a, double b) { return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b); }
}  // namespace detail

/// One coordinate t of a uniform unit vector in R^d: f(t) = (1 − t²)^((d−3)/2) / B(1/2, (d−1)/2)
/// on [−1, 1]. Its variance is 1/d.
inline Density coordinate_density(int dim) {
    const double exponent = 0.5 * (dim - 3);
    const double log_norm = -detail::log_beta(0.5, 0.5 * (dim - 1));
    Density density;
    density.pdf = [exponent, log_norm](double t) {
        const double s = 1.0 - t * t;
        return s <= 0.0 ? 0.0 : std::exp(log_norm + exponent * std::log(s));
    };
    density.lo = -1.0;
    density.hi = 1.0;
    density.scale = 1.0 / std::sqrt(static_cast<double>(dim));
    density.symmetric = true;
    return density;
}

/// The norm r of three coordinates of a uniform unit vector in R^d. Since r² ~ Beta(3/2, (d−3)/2),
/// f(r) = 2 r² (1 − r²)^((d−5)/2) / B(3/2, (d−3)/2) on [0, 1]. E[r²] = 3/d.
inline Density triplet_norm_density(int dim) {
    const double exponent = 0.5 * (dim - 5);
    const double log_norm = std::log(2.0) - detail::log_beta(1.5, 0.5 * (dim - 3));
    Density density;
    density.pdf = [exponent, log_norm](double r) {
        const double s = 1.0 - r * r;
        if (r <= 0.0 || s <= 0.0) return 0.0;
        return std::exp(log_norm + 2.0 * std::log(r) + exponent * std::log(s));
    };
    density.lo = 0.0;
    density.hi = 1.0;
    density.scale = 1.0 / std::sqrt(static_cast<double>(dim));
    return density;
}

/// Joint density of the octahedral coordinates (u, v) of a uniform direction on S², on [−1, 1]²:
/// 1 / (4π |p|³) with p = octahedral_unfold(u, v). (The central projection of the octahedron face
/// onto the sphere has solid-angle element du dv / |p|³; the fold is a reflection.) It ranges from
/// 1/(4π) at the octahedron's vertices to 3√3/(4π) at its face centres.
inline double octahedral_density(double u, double v) {
    const auto p = octahedral_unfold(u, v);
    const double squared = p[0] * p[0] + p[1] * p[1] + p[2] * p[2];
    return 1.0 / (4.0 * 3.14159265358979323846 * squared * std::sqrt(squared));
}

/// Marginal density of one octahedral coordinate u (v has the same by symmetry) on [−1, 1]:
/// ∫ octahedral_density(u, v) dv, integrated piecewise between the kinks v = 0 and |v| = 1 − |u|.
/// The density itself has a kink at u = 0.
inline Density octahedral_coordinate_density() {
    Density density;
    density.pdf = [](double u) {
        const double edge = 1.0 - std::fabs(u);
        const auto f = [u](double v) { return octahedral_density(u, v); };
        const double breaks[] = {-1.0, -edge, 0.0, edge, 1.0};
        double total = 0.0;
        for (int i = 0; i < 4; ++i) total += detail::integrate(f, breaks[i], breaks[i + 1], 0.5);
        return total;
    };
    density.lo = -1.0;
    density.hi = 1.0;
    density.scale = 0.5;
    density.kink = 0.0;
    density.symmetric = true;
    return density;
}

/// PolarQuant's level-ℓ angle (ℓ ≥ 2) of a rotated key: ψ = atan(|b| / |a|) for the two halves a, b
/// of a block of 2^ℓ coordinates. For a Gaussian (equivalently, uniformly rotated) key,
/// f(ψ) = sin^(k−1)(2ψ) / Z on [0, π/2], k = 2^(ℓ−1), Z = √π Γ(k/2) / (2 Γ((k+1)/2))
/// (arXiv 2502.02617, Lemma 2). Level 1, the angle of a pair, is uniform on [0, 2π).
inline Density polar_angle_density(int level) {
    const double k = std::ldexp(1.0, level - 1);
    const double log_norm = -(0.5 * std::log(3.14159265358979323846) + std::lgamma(0.5 * k) - std::log(2.0) -
                              std::lgamma(0.5 * (k + 1.0)));
    Density density;
    density.pdf = [k, log_norm](double psi) {
        const double s = std::sin(2.0 * psi);
        if (s <= 0.0) return k == 1.0 ? std::exp(log_norm) : 0.0;
        return std::exp(log_norm + (k - 1.0) * std::log(s));
    };
    density.lo = 0.0;
    density.hi = 1.5707963267948966;
    density.scale = std::min(0.5, 1.0 / std::sqrt(k));
    density.symmetric = true;  // sin(2ψ) about π/4
    return density;
}

}  // namespace octopus
