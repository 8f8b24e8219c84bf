// The sweep as a picture: an SVG with MSE (log scale) against bits per coordinate, one line per
// codec (with its preconditioning, if any) and head dim, the 4^−b floor drawn; and a second panel with attention KL. Written by hand:
// no plotting dependency.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "sweep.hpp"

namespace octopus::sweep {

namespace detail {

struct Panel {
    double x0, y0, width, height;       // pixel box of the plotting area
    double x_min, x_max, y_min, y_max;  // data range (y in log10)
    double x(double v) const { return x0 + (v - x_min) / (x_max - x_min) * width; }
    double y(double v) const {
        const double l = std::log10(std::max(v, 1e-300));
        return y0 + height - (l - y_min) / (y_max - y_min) * height;
    }
};

inline std::string escape(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '&') out += "&amp;";
        else out += c;
    }
    return out;
}

inline const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
inline const char* kDashes[] = {"", "6,3", "2,3", "8,3,2,3"};

}  // namespace detail

/// Writes `rows` as an SVG to `path`. Throws octopus::error if the file cannot be written.
inline void write_plot(const std::string& path, const std::vector<Row>& rows) {
    std::ofstream svg(path);
    octopus::detail::require(static_cast<bool>(svg), path + ": cannot write the plot");
    double x_min = 1e9, x_max = -1e9;
    std::vector<std::string> codecs;
    std::vector<std::size_t> dims;
    for (const auto& r : rows) {
        x_min = std::min(x_min, r.bits_per_coord);
        x_max = std::max(x_max, r.bits_per_coord);
        if (std::find(codecs.begin(), codecs.end(), r.series()) == codecs.end()) codecs.push_back(r.series());
        if (std::find(dims.begin(), dims.end(), r.dim) == dims.end()) dims.push_back(r.dim);
    }
    x_min = std::floor(x_min * 2) / 2 - 0.25;
    x_max = std::ceil(x_max * 2) / 2 + 0.25;
    const auto log_range = [&](auto value, double floor_value) {
        double lo = 1e300, hi = -1e300;
        for (const auto& r : rows) {
            const double v = value(r);
            if (v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
        }
        if (floor_value > 0) lo = std::min(lo, floor_value);
        if (!(hi >= lo)) lo = 1e-4, hi = 1;
        return std::pair{std::floor(std::log10(lo)), std::ceil(std::log10(hi))};
    };
    const auto [mse_lo, mse_hi] = log_range([](const Row& r) { return r.mse; }, std::pow(4.0, -x_max));
    const auto [kl_lo, kl_hi] = log_range([](const Row& r) { return r.attn_kl; }, 0.0);
    const detail::Panel panels[2] = {{70, 40, 420, 340, x_min, x_max, mse_lo, mse_hi},
                                     {590, 40, 420, 340, x_min, x_max, kl_lo, kl_hi}};
    const char* titles[2] = {"per-vector MSE (log) vs bits per coordinate", "attention KL (log) vs bits per coordinate"};
    const std::size_t legend_rows = (codecs.size() * dims.size() + 3) / 4;
    svg << "<svg xmlns='http://www.w3.org/2000/svg' width='1080' height='" << 460 + 18 * legend_rows
        << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
    for (int p = 0; p < 2; ++p) {
        const auto& panel = panels[p];
        svg << "<text x='" << panel.x0 << "' y='25' font-size='14'>" << titles[p] << "</text>\n";
        svg << "<rect x='" << panel.x0 << "' y='" << panel.y0 << "' width='" << panel.width << "' height='" << panel.height
            << "' fill='none' stroke='black'/>\n";
        for (double e = panel.y_min; e <= panel.y_max + 1e-9; e += 1.0) {
            const double y = panel.y(std::pow(10.0, e));
            svg << "<line x1='" << panel.x0 << "' x2='" << panel.x0 + panel.width << "' y1='" << y << "' y2='" << y
                << "' stroke='#ddd'/><text x='" << panel.x0 - 8 << "' y='" << y + 4 << "' text-anchor='end'>1e" << e
                << "</text>\n";
        }
        for (double b = std::ceil(panel.x_min); b <= panel.x_max; b += 1.0) {
            const double x = panel.x(b);
            svg << "<line x1='" << x << "' x2='" << x << "' y1='" << panel.y0 << "' y2='" << panel.y0 + panel.height
                << "' stroke='#ddd'/><text x='" << x << "' y='" << panel.y0 + panel.height + 16
                << "' text-anchor='middle'>" << b << "</text>\n";
        }
        svg << "<text x='" << panel.x0 + panel.width / 2 << "' y='" << panel.y0 + panel.height + 34
            << "' text-anchor='middle'>bits per coordinate (norms and scales included)</text>\n";
        if (p == 0) {  // the information-theoretic floor 4^−b
            svg << "<polyline fill='none' stroke='black' stroke-dasharray='1,3' points='";
            for (double b = std::max(panel.x_min, 0.5); b <= panel.x_max; b += 0.05)
                svg << panel.x(b) << ',' << panel.y(std::pow(4.0, -b)) << ' ';
            svg << "'/>\n<text x='" << panel.x(panel.x_max) - 4 << "' y='" << panel.y(std::pow(4.0, -panel.x_max)) - 6
                << "' text-anchor='end'>floor 4^-b</text>\n";
        }
        for (std::size_t c = 0; c < codecs.size(); ++c)
            for (std::size_t di = 0; di < dims.size(); ++di) {
                std::vector<const Row*> line;
                for (const auto& r : rows)
                    if (r.series() == codecs[c] && r.dim == dims[di]) line.push_back(&r);
                std::sort(line.begin(), line.end(), [](const Row* a, const Row* b) { return a->bits_per_coord < b->bits_per_coord; });
                const char* color = detail::kColors[c % 8];
                svg << "<polyline fill='none' stroke='" << color << "' stroke-width='1.8' stroke-dasharray='"
                    << detail::kDashes[di % 4] << "' points='";
                for (const Row* r : line) svg << panel.x(r->bits_per_coord) << ',' << panel.y(p == 0 ? r->mse : r->attn_kl) << ' ';
                svg << "'/>\n";
                for (const Row* r : line)
                    svg << "<circle cx='" << panel.x(r->bits_per_coord) << "' cy='" << panel.y(p == 0 ? r->mse : r->attn_kl)
                        << "' r='2.5' fill='" << color << "'/>\n";
            }
    }
    // Legend: colour = codec, dash = head dim.
    double y = 440;
    std::size_t item = 0;
    for (std::size_t c = 0; c < codecs.size(); ++c)
        for (std::size_t di = 0; di < dims.size(); ++di, ++item) {
            const double x = 70 + 260 * static_cast<double>(item % 4);
            if (item > 0 && item % 4 == 0) y += 18;
            svg << "<line x1='" << x << "' x2='" << x + 30 << "' y1='" << y << "' y2='" << y << "' stroke='"
                << detail::kColors[c % 8] << "' stroke-width='2' stroke-dasharray='" << detail::kDashes[di % 4]
                << "'/><text x='" << x + 36 << "' y='" << y + 4 << "'>" << detail::escape(codecs[c]) << " d=" << dims[di]
                << "</text>\n";
        }
    svg << "</svg>\n";
}

}  // namespace octopus::sweep
