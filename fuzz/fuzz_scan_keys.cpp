// The scan layout over arbitrary bytes, for the TurboQuant configurations of fuzz_support.hpp (the first
// byte picks one of the first four, the rest are its records): ScanKeys::append_records must either refuse,
// appending nothing, or take them; taken records come back byte for byte, and every finite scan score lies
// within |k|·max_error() of TurboQuant::dot on the same records.
#include "fuzz_support.hpp"

#include <octopus/scan_scores.hpp>

#include <algorithm>
#include <cstdint>
#include <span>

namespace {
constexpr std::size_t kTurboQuantConfigs = 4;  // kConfigs[0..3]
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static std::vector<std::optional<octopus::TurboQuant>> codecs(kTurboQuantConfigs);
    auto& slot = codecs[data[0] % kTurboQuantConfigs];
    if (!slot) slot.emplace(octopus::parse_codec_config(octopus_fuzz::kConfigs[data[0] % kTurboQuantConfigs]).spec);
    const octopus::TurboQuant& codec = *slot;
    const std::span<const std::uint8_t> bytes(data + 1, size - 1);
    const std::size_t d = codec.dim(), record = codec.bytes_per_vector();
    octopus::ScanKeys keys(codec);
    try {
        keys.append_records(bytes);
    } catch (const octopus::error&) {
        octopus_fuzz::check(keys.size() == 0 && keys.bytes().empty(), "a refused append left tokens behind");
        return 0;
    }
    octopus_fuzz::check(bytes.size() % record == 0, "append_records took a partial record");
    const std::size_t n = bytes.size() / record;
    octopus_fuzz::check(keys.size() == n, "append_records lost or invented tokens");
    std::vector<std::uint8_t> back(record);
    for (std::size_t t = 0; t < n; ++t) {
        keys.record(t, back);
        octopus_fuzz::check(std::equal(back.begin(), back.end(), bytes.begin() + static_cast<std::ptrdiff_t>(t * record)),
                            "a record did not come back byte for byte");
    }
    std::vector<float> query(d);
    for (std::size_t j = 0; j < d; ++j) query[j] = (j % 7 == 0 ? -1.0f : 0.5f) / static_cast<float>(j + 1);
    const octopus::ScanQuery tables(codec, query);
    std::vector<float> scanned(n), exact(n);
    octopus::scan_scores(tables, keys, scanned);
    codec.dot(query, bytes, exact);
    double query_norm = 0.0;
    for (float x : query) query_norm += static_cast<double>(x) * x;
    for (std::size_t t = 0; t < n; ++t) {
        const double norm = keys.norm(t);
        if (!std::isfinite(scanned[t]) || !std::isfinite(exact[t]) || !std::isfinite(norm * tables.max_error())) continue;
        octopus_fuzz::check(std::fabs(double(scanned[t]) - exact[t]) <= norm * (tables.max_error() + 1e-4 * std::sqrt(query_norm)) + 1e-30,
                            "a scan score left its bound");
    }
    return 0;
}
