// Deterministic numerical integration: composite Gauss–Legendre on equal panels.
//
// Codebooks must come out identical on every run, so no adaptive scheme whose panel choice could
// depend on rounding: the caller fixes the panel width from the density's scale, and each panel
// uses the same 20-point rule (exact for polynomials of degree 39).
#pragma once

#include <array>
#include <cmath>
#include <cstddef>

namespace octopus::detail {

inline constexpr std::size_t kGaussPoints = 20;

template <std::size_t N>
struct GaussRule {
    std::array<double, N> nodes{};    // on [-1, 1]
    std::array<double, N> weights{};
};

/// Nodes and weights of the N-point Gauss–Legendre rule, by Newton's method on the Legendre
/// polynomial (Numerical Recipes' gauleg); computed once.
template <std::size_t N = kGaussPoints>
const GaussRule<N>& gauss_legendre_rule() {
    static const GaussRule<N> rule = [] {
        GaussRule<N> r;
        const int n = static_cast<int>(N);
        for (int i = 0; i < (n + 1) / 2; ++i) {
            double z = std::cos(3.141592653589793238462643 * (i + 0.75) / (n + 0.5));
            double derivative = 0.0;
            for (int iteration = 0; iteration < 100; ++iteration) {
                double p0 = 1.0, p1 = 0.0;
                for (int k = 1; k <= n; ++k) {
                    const double p2 = p1;
                    p1 = p0;
                    p0 = ((2.0 * k - 1.0) * z * p1 - (k - 1.0) * p2) / k;
                }
                derivative = n * (z * p0 - p1) / (z * z - 1.0);
                const double step = p0 / derivative;
                z -= step;
                if (std::fabs(step) < 1e-16) break;
            }
            const double w = 2.0 / ((1.0 - z * z) * derivative * derivative);
            r.nodes[i] = -z;
            r.nodes[n - 1 - i] = z;
            r.weights[i] = w;
            r.weights[n - 1 - i] = w;
        }
        return r;
    }();
    return rule;
}

/// ∫_a^b f(t) dt with panels no wider than `max_panel`; f may return several moments at once
/// (any type with += and scalar *).
template <class F>
auto integrate(F&& f, double a, double b, double max_panel) -> decltype(f(a)) {
    using Value = decltype(f(a));
    Value total{};
    if (!(b > a)) return total;
    const auto& rule = gauss_legendre_rule<kGaussPoints>();
    const auto panels = static_cast<std::size_t>(std::ceil((b - a) / max_panel));
    const double width = (b - a) / static_cast<double>(panels == 0 ? 1 : panels);
    for (std::size_t p = 0; p < (panels == 0 ? 1 : panels); ++p) {
        const double lo = a + width * static_cast<double>(p);
        const double half = 0.5 * width, mid = lo + half;
        Value panel{};
        for (std::size_t i = 0; i < kGaussPoints; ++i) panel += f(mid + half * rule.nodes[i]) * rule.weights[i];
        total += panel * half;
    }
    return total;
}

}  // namespace octopus::detail
