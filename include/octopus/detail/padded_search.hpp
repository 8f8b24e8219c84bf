// Branch-free search in sorted thresholds padded to 2^k − 1 entries with +∞: k dependent steps of
// "compare, maybe add", the same for every input, so no branch mispredicts and SIMD lanes can run
// different searches in lockstep. Returns how many thresholds are ≤ x (the cell of x).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "octopus/detail/host_device.hpp"

namespace octopus::detail {

/// k with 2^k − 1 ≥ count.
inline unsigned padded_search_steps(std::size_t count) {
    unsigned steps = 0;
    while ((std::size_t{1} << steps) - 1 < count) ++steps;
    return steps;
}

/// Appends `values` padded with +∞ to 2^steps − 1 entries.
inline void append_padded(std::vector<float>& table, const float* values, std::size_t count, unsigned steps) {
    const std::size_t size = (std::size_t{1} << steps) - 1;
    for (std::size_t i = 0; i < size; ++i) table.push_back(i < count ? values[i] : std::numeric_limits<float>::infinity());
}

/// How many of table[0 .. 2^steps − 1) are ≤ x. The CPU's encoders and the GPU's encode kernel both
/// call this (contract.hpp); on the GPU the table is read through the read-only cache.
OCTOPUS_HOST_DEVICE inline std::uint32_t padded_search(const float* table, unsigned steps, float x) {
    std::uint32_t count = 0;
    for (unsigned s = steps; s-- > 0;) {
        const std::uint32_t step = std::uint32_t{1} << s;
#if defined(__CUDA_ARCH__)
        const float threshold = __ldg(table + count + step - 1);
#else
        const float threshold = table[count + step - 1];
#endif
        count += threshold <= x ? step : 0;
    }
    return count;
}

}  // namespace octopus::detail
