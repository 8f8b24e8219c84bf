// Decode and dot of arbitrary bytes, for every codec (fuzz_support.hpp's configurations): the first
// byte picks the codec, the rest are its records. A call must either refuse with octopus::error or
// succeed; on success, each finite score must equal the query's dot with the decoded key (dot works
// from the codes without decoding, so the two paths check each other).
#include "fuzz_support.hpp"

#include <cstdint>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const octopus::Codec& codec = octopus_fuzz::codec(data[0]);
    std::span<const std::uint8_t> bytes(data + 1, size - 1);
    const std::size_t d = codec.dim(), record = codec.bytes_per_vector();
    if (bytes.size() % record != 0) {  // the size refusal, then the whole records
        try {
            (void)codec.decode(bytes);
            octopus_fuzz::check(false, "decode accepted a buffer that is not whole records");
        } catch (const octopus::error&) {
        }
        bytes = bytes.first(bytes.size() - bytes.size() % record);
    }
    std::vector<float> query(d);
    for (std::size_t j = 0; j < d; ++j) query[j] = (j % 7 == 0 ? -1.0f : 0.5f) / static_cast<float>(j + 1);
    std::vector<float> keys, scores;
    try {
        keys = codec.decode(bytes);
    } catch (const octopus::error&) {
        try {
            (void)codec.dot(query, bytes);
            octopus_fuzz::check(false, "dot accepted records that decode refused");
        } catch (const octopus::error&) {
        }
        return 0;
    }
    scores = codec.dot(query, bytes);
    octopus_fuzz::check(scores.size() * d == keys.size(), "dot and decode disagree on the record count");
    for (std::size_t v = 0; v < scores.size(); ++v) {
        double exact = 0.0, norm = 0.0;
        for (std::size_t j = 0; j < d; ++j) {
            exact += static_cast<double>(query[j]) * keys[v * d + j];
            norm += static_cast<double>(keys[v * d + j]) * keys[v * d + j];
        }
        if (!std::isfinite(exact) || !std::isfinite(norm) || !std::isfinite(scores[v])) continue;
        octopus_fuzz::check(std::fabs(scores[v] - exact) <= 1e-4 * std::sqrt(norm) + 1e-30, "dot differs from the decoded key's dot");
    }
    return 0;
}
