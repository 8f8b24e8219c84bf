// Writes OCTOPUS's shipped triplet codebooks, include/octopus/codebooks/triplet_points_d<dim>.inc, one
// line per (dim, B): Lloyd's design (triplet_point_design.hpp) rounded to fp16, and its per-triplet
// MSE measured on fresh samples with the rounded points.
//
//   generate_triplet_points OUT_DIR [DIMS] [BITS]          write the files (all dims, B = 3..12 by default)
//   generate_triplet_points --check DIR DIMS BITS          regenerate those lines, compare with DIR's files
//
// DIMS and BITS are comma lists. Two positional forms do not need an argument-parsing library.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include "octopus/codebooks/shipped_format.hpp"
#include "octopus/triplet_point_design.hpp"

namespace {

constexpr std::size_t kDesignSamples = std::size_t{1} << 20;
constexpr std::size_t kMeasureSamples = std::size_t{1} << 21;
constexpr std::uint64_t kSeed = 0x0c70905;

std::vector<std::size_t> list(const std::string& text) {
    std::vector<std::size_t> out;
    std::stringstream s(text);
    for (std::string item; std::getline(s, item, ',');) out.push_back(std::stoul(item));
    return out;
}

/// The per-triplet MSE of fp16 points on fresh samples, through the codec's own search.
double measure(std::size_t dim, unsigned bits, const std::vector<std::array<float, 3>>& points) {
    const bool folded = octopus::is_folded(bits);
    const auto samples = octopus::detail::triplet_samples(dim, kMeasureSamples, kSeed + 1, folded);
    const auto g = octopus::detail::point_grid(dim, points.size(), folded);
    const octopus::detail::NearestPointIndex index(points, g.lo, g.hi, g.grid, g.bend);
    double error = 0.0;
    for (const auto& s : samples) {
        const auto& p = points[index.search(static_cast<float>(s[0]), static_cast<float>(s[1]), static_cast<float>(s[2]))];
        for (int a = 0; a < 3; ++a) error += (s[a] - p[a]) * (s[a] - p[a]);
    }
    return error / static_cast<double>(samples.size());
}

std::string line_for(std::size_t dim, unsigned bits) {
    const auto start = std::chrono::steady_clock::now();
    const auto design = octopus::design_triplet_points(dim, bits, kDesignSamples, kSeed);
    std::vector<std::array<float, 3>> points;
    for (const auto& p : design.points)
        points.push_back({octopus::detail::half_value(octopus::detail::half_bits(static_cast<float>(p[0]))),
                          octopus::detail::half_value(octopus::detail::half_bits(static_cast<float>(p[1]))),
                          octopus::detail::half_value(octopus::detail::half_bits(static_cast<float>(p[2])))});
    const std::string line = octopus::detail::format_shipped_points(dim, bits, measure(dim, bits, points), points);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "d=%zu B=%u: %zu points, %.1f s\n", dim, bits, points.size(), seconds);
    return line;
}

std::string file_name(const std::string& dir, std::size_t dim) {
    return dir + "/triplet_points_d" + std::to_string(dim) + ".inc";
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const bool check = argc > 1 && std::string(argv[1]) == "--check";
        const int first = check ? 2 : 1;
        if (argc < first + 1 || (check && argc != 5)) {
            std::fprintf(stderr, "usage: %s OUT_DIR [DIMS] [BITS] | --check DIR DIMS BITS\n", argv[0]);
            return 2;
        }
        const std::string dir = argv[first];
        std::vector<std::size_t> dims, bits;
        if (argc > first + 1) dims = list(argv[first + 1]);
        else
            for (std::size_t d = 32; d <= octopus::kMaxDim; ++d)
                if (octopus::is_supported_dim(d)) dims.push_back(d);
        if (argc > first + 2) bits = list(argv[first + 2]);
        else
            for (unsigned b = octopus::kMinTripletBits; b <= octopus::kMaxTripletBits; ++b) bits.push_back(b);

        if (check) {
            int mismatches = 0;
            for (std::size_t d : dims) {
                std::ifstream in(file_name(dir, d));
                std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
                for (std::size_t b : bits) {
                    const std::string line = line_for(d, static_cast<unsigned>(b));
                    const bool found = content.find(line) != std::string::npos;
                    std::printf("d=%zu B=%zu: %s\n", d, b, found ? "reproduced bit for bit" : "DIFFERS from the shipped table");
                    mismatches += found ? 0 : 1;
                }
            }
            return mismatches == 0 ? 0 : 1;
        }
        for (std::size_t d : dims) {
            // The codebooks of one dim in parallel, then written in B order.
            std::vector<std::future<std::string>> lines;
            for (std::size_t b : bits) lines.push_back(std::async(std::launch::async, line_for, d, static_cast<unsigned>(b)));
            std::ofstream out(file_name(dir, d));
            out << "// Generated by tools/generate_triplet_points.cpp; regenerate, never edit (docs/ARCHITECTURE.md).\n";
            for (auto& l : lines) out << l.get();
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "generate_triplet_points: %s\n", e.what());
        return 1;
    }
}
