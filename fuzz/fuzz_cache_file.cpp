// load_cache on arbitrary bytes, read as each of fuzz_support.hpp's configurations by turn (the first
// byte picks the reader). Built with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, the loader skips its
// checksum comparisons so the fuzzer reaches the fields and records behind them; what loads is then
// decoded, so damaged records behind a forged header meet the codec's own checks.
#include "fuzz_support.hpp"

#include <octopus/cache_file.hpp>

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t pick = data[0] % octopus_fuzz::kConfigCount;
    const octopus::CodecConfig config = octopus::parse_codec_config(octopus_fuzz::kConfigs[pick]);
    const octopus::CacheLayout layout{data[0] >= 128 ? 16u : 0u};
    const std::span<const std::uint8_t> file(data + 1, size - 1);
    std::vector<std::uint8_t> records = {1, 2, 3};
    try {
        octopus::load_cache(file, config.name, config.spec, records, layout);
    } catch (const octopus::error&) {
        octopus_fuzz::check(records == std::vector<std::uint8_t>{1, 2, 3}, "a refused load changed the output");
        return 0;
    }
    const octopus::Codec& codec = octopus_fuzz::codec(pick);
    octopus_fuzz::check(records.size() % codec.bytes_per_vector() == 0, "a load gave a payload of partial records");
    try {
        (void)codec.decode(records);
    } catch (const octopus::error&) {
    }
    return 0;
}
