// The text form of a shipped triplet codebook, written by tools/generate_triplet_points.cpp and read by
// codebooks/triplet_points.hpp: one C++ initializer per (dim, B),
//     {dim, B, mse, "hhhhhhhhhhhh" "…"},
// the points as fp16 bit patterns (x, y, z, four hex digits each, in code order) and the design's
// per-triplet MSE as a hexadecimal float, so that the table is exactly what was designed.
#pragma once

#include <Eigen/Core>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "octopus/error.hpp"

namespace octopus::detail {

/// The fp16 bit pattern nearest to x (round to nearest even), and the float an fp16 pattern holds.
inline std::uint16_t half_bits(float x) { return Eigen::numext::bit_cast<std::uint16_t>(Eigen::half(x)); }
inline float half_value(std::uint16_t bits) { return static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(bits)); }

/// One shipped codebook as the generated files hold it.
struct ShippedPoints {
    std::uint16_t dim;
    std::uint8_t triplet_bits;
    double mse;        // per triplet, unit keys
    const char* halves;  // 12 hex digits per point
};

inline std::string format_shipped_points(std::size_t dim, unsigned triplet_bits, double mse,
                                         const std::vector<std::array<float, 3>>& points) {
    char head[96];
    std::snprintf(head, sizeof head, "{%zu, %u, %a,", dim, triplet_bits, mse);
    std::string line = head;
    for (std::size_t i = 0; i < points.size(); ++i) {
        if (i % 8 == 0) line += "\n \"";
        char hex[16];
        std::snprintf(hex, sizeof hex, "%04x%04x%04x", half_bits(points[i][0]), half_bits(points[i][1]), half_bits(points[i][2]));
        line += hex;
        if (i % 8 == 7 || i + 1 == points.size()) line += "\"";
    }
    return line + "},\n";
}

/// The points of a shipped codebook, `count` of them; throws if the text is malformed.
inline std::vector<std::array<float, 3>> parse_shipped_points(const ShippedPoints& shipped, std::size_t count) {
    const std::string text = shipped.halves;
    require(text.size() == 12 * count, "octopus: shipped triplet points for d = " + std::to_string(shipped.dim) + ", B = " +
                                           std::to_string(shipped.triplet_bits) + " hold " + std::to_string(text.size()) +
                                           " hex digits, expected " + std::to_string(12 * count));
    std::vector<std::array<float, 3>> points(count);
    for (std::size_t i = 0; i < count; ++i)
        for (int a = 0; a < 3; ++a) {
            const std::string digits = text.substr(12 * i + 4 * static_cast<std::size_t>(a), 4);
            std::size_t used = 0;
            const unsigned long value = std::stoul(digits, &used, 16);
            require(used == 4, "octopus: shipped triplet points: bad hex digits '" + digits + "'");
            points[i][a] = half_value(static_cast<std::uint16_t>(value));
        }
    return points;
}

}  // namespace octopus::detail
