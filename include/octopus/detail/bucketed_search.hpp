// Search in sorted thresholds through a bucket index: x's bucket (an affine map of x, truncated)
// gives how many thresholds lie in lower buckets, and only the few thresholds sharing x's bucket are
// compared. Two dependent loads instead of log2(n): what makes the AVX2 triplet encoder fast.
//
// Exactness: bucket() is monotone in x (it is one subtraction, one multiplication and a
// truncation, all monotone in float arithmetic), so a threshold t in a lower bucket than x has
// t < x, one in a higher bucket has t > x, and only those in the same bucket need comparing. The
// result is therefore exactly the number of thresholds ≤ x, as the padded search gives.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace octopus::detail {

class BucketedSearch {
public:
    BucketedSearch() = default;

    /// Indexes each of `tables` (sorted threshold lists, searched by their index in `tables`) with
    /// `buckets` buckets over [lo, hi]; values outside fall in the end buckets.
    BucketedSearch(const std::vector<std::vector<float>>& tables, float lo, float hi, std::uint32_t buckets)
        : lo_(lo), scale_(static_cast<float>(buckets) / (hi - lo)), buckets_(buckets) {
        std::size_t longest = 0;
        for (const auto& t : tables) longest = std::max(longest, t.size());
        // How many thresholds share a bucket at most: that many compares per search.
        for (const auto& t : tables) {
            std::size_t run = 0;
            for (std::size_t i = 0; i < t.size(); ++i) {
                run = i > 0 && bucket(t[i]) == bucket(t[i - 1]) ? run + 1 : 1;
                checks_ = std::max<unsigned>(checks_, static_cast<unsigned>(run));
            }
        }
        stride_ = static_cast<std::uint32_t>(longest + checks_);
        for (const auto& t : tables) {
            for (std::size_t i = 0; i < stride_; ++i)
                thresholds_.push_back(i < t.size() ? t[i] : std::numeric_limits<float>::infinity());
            for (std::uint32_t b = 0; b < buckets_; ++b) {
                std::uint32_t below = 0;
                while (below < t.size() && bucket(t[below]) < b) ++below;
                first_.push_back(below);
                next_.push_back(below < t.size() ? t[below] : std::numeric_limits<float>::infinity());
            }
        }
    }

    std::uint32_t bucket(float x) const {
        const float position = (x - lo_) * scale_;
        const auto b = static_cast<std::int32_t>(std::clamp(position, 0.0f, static_cast<float>(buckets_ - 1)));
        return static_cast<std::uint32_t>(b);
    }

    /// Number of thresholds of table `table` that are ≤ x.
    std::uint32_t search(std::uint32_t table, float x) const {
        const std::uint32_t first = first_[table * buckets_ + bucket(x)];
        const float* t = thresholds_.data() + static_cast<std::size_t>(table) * stride_ + first;
        std::uint32_t count = first;
        for (unsigned k = 0; k < checks_; ++k) count += t[k] <= x ? 1u : 0u;
        return count;
    }

    float lo() const { return lo_; }
    float scale() const { return scale_; }
    std::uint32_t buckets() const { return buckets_; }
    unsigned checks() const { return checks_; }
    std::uint32_t stride() const { return stride_; }
    const float* thresholds() const { return thresholds_.data(); }
    const std::uint32_t* first() const { return first_.data(); }
    /// The first threshold each (table, bucket) may have to compare: with checks() == 1 the whole
    /// search is first + (next ≤ x), two loads that do not wait on each other.
    const float* next() const { return next_.data(); }

private:
    float lo_ = 0.0f, scale_ = 1.0f;
    std::uint32_t buckets_ = 1, stride_ = 0;
    unsigned checks_ = 0;
    std::vector<float> thresholds_;     // per table, stride_ entries, +∞ padded
    std::vector<std::uint32_t> first_;  // per table, per bucket
    std::vector<float> next_;           // per table, per bucket
};

}  // namespace octopus::detail
