// Exact densities of what the codecs quantize, for a uniformly random unit vector in R^d.
//
// After a random rotation every key direction looks like a uniform point on the sphere S^{d-1}, so
// these densities are the exact marginals the Lloyd–Max codebooks are matched to: no training data.
#pragma once

#include <cmath>
#include <functional>

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

}  // namespace octopus
