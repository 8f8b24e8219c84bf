// The measurements behind octopus-sweep: one row per codec × dim × bits on the same data.
#pragma once

#include <octopus/octopus.hpp>

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace octopus::sweep {

/// One line of the sweep. mse is the mean per-vector squared error on unit keys; ip_rel_err is
/// RMS(q·k̂ − q·k) / RMS(q·k) over every (query, key) pair, with q·k̂ scored from the codes.
struct Row {
    std::string codec;
    std::size_t dim = 0;
    double bits = 0.0;
    double bits_per_coord = 0.0;
    double mse = 0.0;
    double ip_rel_err = 0.0;
};

/// Measures `codec` on row-major unit `keys` and `queries` (both n×dim).
inline Row measure(const Codec& codec, double bits, const std::vector<float>& keys, const std::vector<float>& queries) {
    const std::size_t d = codec.dim(), n = keys.size() / d, n_queries = queries.size() / d;
    Row row{codec.name(), d, bits, codec.bits_per_coordinate(), 0.0, 0.0};
    const auto packed = codec.encode(std::span<const float>(keys));
    const auto decoded = codec.decode(packed);
    double squared = 0.0;
    for (std::size_t i = 0; i < keys.size(); ++i) squared += (double(keys[i]) - decoded[i]) * (double(keys[i]) - decoded[i]);
    row.mse = squared / static_cast<double>(n);
    std::vector<float> scores(n);
    double error = 0.0, signal = 0.0;
    for (std::size_t q = 0; q < n_queries; ++q) {
        const std::span<const float> query(queries.data() + q * d, d);
        codec.dot(query, packed, scores);
        for (std::size_t v = 0; v < n; ++v) {
            double exact = 0.0;
            for (std::size_t j = 0; j < d; ++j) exact += double(query[j]) * keys[v * d + j];
            error += (scores[v] - exact) * (scores[v] - exact);
            signal += exact * exact;
        }
    }
    row.ip_rel_err = signal > 0.0 ? std::sqrt(error / signal) : 0.0;
    return row;
}

}  // namespace octopus::sweep
