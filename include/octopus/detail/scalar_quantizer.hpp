// A Lloyd–Max codebook in the form the hot loops read: float levels and thresholds.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace octopus::detail {

/// x rounded to the nearest IEEE binary16 value (ties to even), as a float.
inline float to_half_precision(float x) { return static_cast<float>(Eigen::half(x)); }

struct ScalarQuantizer {
    std::vector<float> levels;
    std::vector<float> thresholds;

    ScalarQuantizer() = default;
    /// From any codebook with `levels` and `thresholds` (lloyd_max.hpp's Codebook).
    template <class Book>
    explicit ScalarQuantizer(const Book& book)
        : levels(book.levels.begin(), book.levels.end()), thresholds(book.thresholds.begin(), book.thresholds.end()) {}

    /// Rounds the levels to the nearest IEEE half (returns *this): the reconstruction values of the
    /// codecs that the CUDA kernels run are fp16-exact, so the tensor cores take them without rounding
    /// and GPU and CPU decode the same numbers. Thresholds, and so the codes, are unchanged; the levels
    /// move by ≤ 2^-11 relative, which changes the distortion by parts per million.
    ScalarQuantizer& with_half_levels() {
        for (float& level : levels) level = to_half_precision(level);
        return *this;
    }

    /// The cell of x: how many thresholds are ≤ x (binary search; books here have ≤ 16 levels
    /// in the scalar codecs and a few thousand cells at most anywhere).
    std::uint32_t cell(float x) const { return count_at_or_below(thresholds.data(), thresholds.size(), x); }

    /// Cells of n values at once: for each threshold, one compare-and-add over all values, which
    /// compilers vectorize (the books here have at most 15 thresholds).
    void cells(const float* y, std::size_t n, std::uint32_t* out) const {
        for (std::size_t i = 0; i < n; ++i) out[i] = 0;
        for (float t : thresholds)
            for (std::size_t i = 0; i < n; ++i) out[i] += y[i] >= t ? 1u : 0u;
    }

    static std::uint32_t count_at_or_below(const float* sorted, std::size_t count, float x) {
        std::uint32_t lo = 0, hi = static_cast<std::uint32_t>(count);
        while (lo < hi) {
            const std::uint32_t mid = (lo + hi) / 2;
            if (sorted[mid] <= x) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
};

}  // namespace octopus::detail
