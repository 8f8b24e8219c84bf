// What the fuzz harnesses share: the codec configurations they drive and a check that aborts, so a
// broken property shows up as a crash libFuzzer reports and keeps.
#pragma once

#include <octopus/codec_config.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

namespace octopus_fuzz {

/// Every codec at every rate it takes (so every width-specialized decoder runs), at d = 128 and a few
/// other dims (80 and 96 leave 2 and 0 leftover coordinates after OCTOPUS's triplets), both norm formats.
inline constexpr const char* kConfigs[] = {
    "turboquant:dim=128,bits=1",        "turboquant:dim=128,bits=2,norm=fp16", "turboquant:dim=128,bits=3",
    "turboquant:dim=64,bits=4,norm=fp16", "octopus:dim=128,bits=1",            "octopus:dim=128,bits=1.33,norm=fp16",
    "octopus:dim=128,bits=1.67",        "octopus:dim=128,bits=2,norm=fp16",    "octopus:dim=96,bits=2.33",
    "octopus:dim=128,bits=2.67,norm=fp16", "octopus:dim=80,bits=3",            "octopus:dim=128,bits=3.33,norm=fp16",
    "octopus:dim=128,bits=3.67",        "octopus:dim=96,bits=4,norm=fp16",     "octopus-paper:dim=64,bits=3",
    "octopus-paper:dim=128,bits=2.33,norm=fp16", "polarquant:dim=64,bits=1",   "polarquant:dim=128,bits=2,norm=fp16",
    "polarquant:dim=64,bits=3",         "polarquant:dim=64,bits=4,norm=fp16",  "turboquant-prod:dim=64,bits=2",
    "turboquant-prod:dim=64,bits=4,norm=fp16", "qjl:dim=64,bits=1",             "qjl:dim=64,bits=3,norm=fp16",
    "uniform:dim=64,bits=1",            "uniform:dim=128,bits=3,norm=fp16",    "uniform:dim=64,bits=5",
    "uniform:dim=64,bits=8,norm=fp16",
};
inline constexpr std::size_t kConfigCount = sizeof(kConfigs) / sizeof(kConfigs[0]);

/// The codec of kConfigs[index % kConfigCount], built on first use and kept for the process.
inline const octopus::Codec& codec(std::size_t index) {
    static std::vector<std::optional<octopus::Codec>> built(kConfigCount);
    auto& slot = built[index % kConfigCount];
    if (!slot) slot = octopus::make_codec(octopus::parse_codec_config(kConfigs[index % kConfigCount]));
    return *slot;
}

inline void check(bool condition, const char* what) {
    if (condition) return;
    std::fprintf(stderr, "fuzz property broken: %s\n", what);
    std::abort();
}

}  // namespace octopus_fuzz
