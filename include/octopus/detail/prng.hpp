// SplitMix64 (Steele, Lea, Flood 2014): the library's only source of randomness.
//
// Every random choice (rotation signs, test and sweep data) comes from a seed through this
// generator, never through std:: distributions, whose outputs differ between standard libraries.
// The integer arithmetic below gives the same stream on every platform and compiler.
#pragma once

#include <cmath>
#include <cstdint>

namespace octopus::detail {

/// SplitMix64: a 64-bit state advanced by a Weyl constant and scrambled by two multiply-xorshifts.
struct SplitMix64 {
    std::uint64_t state;

    explicit constexpr SplitMix64(std::uint64_t seed) : state(seed) {}

    constexpr std::uint64_t next() {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    /// Uniform double in [0, 1) from the top 53 bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    /// Standard normal by Box–Muller (one of the pair is discarded: simplicity over speed, this
    /// feeds tests and sweeps, not hot paths).
    double normal() {
        double u1 = uniform();
        while (u1 <= 0.0) u1 = uniform();
        const double u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
    }
};

/// Derives an independent stream for sub-task `stream` of `seed` (e.g. one rotation round), so
/// that adding a consumer of randomness never shifts the values another consumer sees.
constexpr std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
    SplitMix64 g(seed ^ (0xd1b54a32d192ed03ULL * (stream + 1)));
    return g.next();
}

}  // namespace octopus::detail
