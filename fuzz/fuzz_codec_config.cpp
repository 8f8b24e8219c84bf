// Codec configuration text: parse_codec_config either refuses with octopus::error or gives a config
// whose canonical text parses back to the same config; make_codec then builds it or refuses it, and
// a codec it builds encodes a key. Also parse_preconditioning on the same text.
#include "fuzz_support.hpp"

#include <octopus/precondition.hpp>

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        (void)octopus::parse_preconditioning(text);
    } catch (const octopus::error&) {
    }
    octopus::CodecConfig config;
    try {
        config = octopus::parse_codec_config(text);
    } catch (const octopus::error&) {
        return 0;
    }
    const std::string canonical = octopus::format_codec_config(config);
    const octopus::CodecConfig again = octopus::parse_codec_config(canonical);
    octopus_fuzz::check(again.name == config.name && again.spec.dim == config.spec.dim && again.spec.seed == config.spec.seed &&
                            again.spec.norm == config.spec.norm,
                        "the canonical text does not parse back to the config");
    octopus_fuzz::check(octopus::format_codec_config(again) == canonical, "the canonical text is not a fixed point");
    // Building a codec designs its codebook (seconds at the largest dims): only small dims here.
    if (config.spec.dim > 256) return 0;
    try {
        const octopus::Codec codec = octopus::make_codec(config);
        const octopus::Codec same = octopus::make_codec(again);
        octopus_fuzz::check(codec.bytes_per_vector() == same.bytes_per_vector(), "the canonical text names another rate");
        std::vector<float> key(codec.dim(), 0.0f);
        key[0] = 1.0f;
        const auto packed = codec.encode(std::span<const float>(key));
        octopus_fuzz::check(packed == same.encode(std::span<const float>(key)), "the canonical text names another codec");
    } catch (const octopus::error&) {
    }
    return 0;
}
