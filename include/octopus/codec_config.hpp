// A codec named in one line of text, as an engine's configuration file or a command line gives it:
//
//     <name>[:<key>=<value>[,<key>=<value>...]]      e.g.  octopus:dim=128,bits=2.67,seed=7,norm=fp16
//
// Keys are dim, bits, seed and norm (fp32 or fp16); a key left out keeps CodecSpec's default. Bits
// may be thirds written to two places (2.33, 2.67) for OCTOPUS. parse_codec_config checks the text's
// form; make_codec then checks that the codec accepts the spec (the dim, the rate).
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "octopus/codec_spec.hpp"
#include "octopus/error.hpp"
#include "octopus/registry.hpp"

namespace octopus {

/// A codec's name and the spec it is built from.
struct CodecConfig {
    std::string name = "octopus";
    CodecSpec spec;
};

/// Longest configuration text parse_codec_config reads (a real one is under 60 characters).
inline constexpr std::size_t kMaxCodecConfigText = 256;

namespace detail {

/// `text` as a number of type T, all of it, or an error naming the key.
template <class T>
T config_number(std::string_view text, std::string_view key) {
    T value{};
    const auto [end, status] = std::from_chars(text.data(), text.data() + text.size(), value);
    require(status == std::errc() && end == text.data() + text.size() && !text.empty(),
            "codec config: value '" + std::string(text) + "' of " + std::string(key) + " is not a " +
                (std::is_floating_point_v<T> ? "number" : "whole number in range"));
    return value;
}

}  // namespace detail

/// Parses "<name>[:key=value,...]" (see the header). Throws octopus::error naming the part that is
/// wrong: an unknown codec or key, a key given twice, a value that is not a number of the key's kind
/// (bits must be finite), an unknown norm format, or text longer than kMaxCodecConfigText.
inline CodecConfig parse_codec_config(std::string_view text) {
    using detail::require;
    require(text.size() <= kMaxCodecConfigText,
            "codec config: text of " + std::to_string(text.size()) + " characters is longer than the limit of " +
                std::to_string(kMaxCodecConfigText));
    CodecConfig config;
    const std::size_t colon = text.find(':');
    config.name = std::string(text.substr(0, colon));
    bool known = false;
    std::string names;
    for (const std::string& name : codec_names()) {
        known |= name == config.name;
        names += (names.empty() ? "" : ", ") + name;
    }
    require(known, "codec config: unknown codec '" + config.name + "'; known codecs: " + names);
    if (colon == std::string_view::npos) return config;

    bool seen[4] = {false, false, false, false};  // dim, bits, seed, norm
    std::string_view rest = text.substr(colon + 1);
    while (true) {
        const std::size_t comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        const std::size_t equals = item.find('=');
        require(equals != std::string_view::npos, "codec config: '" + std::string(item) + "' is not key=value");
        const std::string_view key = item.substr(0, equals), value = item.substr(equals + 1);
        int slot = -1;
        if (key == "dim") {
            slot = 0;
            config.spec.dim = detail::config_number<std::size_t>(value, key);
        } else if (key == "bits") {
            slot = 1;
            config.spec.bits = detail::config_number<double>(value, key);
            require(std::isfinite(config.spec.bits), "codec config: bits '" + std::string(value) + "' is not finite");
        } else if (key == "seed") {
            slot = 2;
            config.spec.seed = detail::config_number<std::uint64_t>(value, key);
        } else if (key == "norm") {
            slot = 3;
            require(value == "fp32" || value == "fp16", "codec config: norm '" + std::string(value) + "' is not fp32 or fp16");
            config.spec.norm = value == "fp16" ? NormFormat::fp16 : NormFormat::fp32;
        } else {
            throw error("codec config: unknown key '" + std::string(key) + "'; keys are dim, bits, seed, norm");
        }
        require(!seen[slot], "codec config: key '" + std::string(key) + "' given twice");
        seen[slot] = true;
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
    }
    return config;
}

/// The canonical text of `config`, every key written: what parse_codec_config reads back to the
/// same codec (bits in thirds are written to two places, 2.33 and 2.67).
inline std::string format_codec_config(const CodecConfig& config) {
    const double b = config.spec.bits, thirds = std::round(3.0 * b);
    char text[64];
    // A rate in thirds that is not whole (7/3, 8/3) is written to two places; anything else exactly.
    const bool is_third = std::isfinite(b) && std::fabs(b) < 1e6 && std::fabs(3.0 * b - thirds) < 0.02 &&
                          static_cast<long long>(thirds) % 3 != 0;
    const std::size_t length = is_third ? static_cast<std::size_t>(std::snprintf(text, sizeof text, "%.2f", thirds / 3.0))
                                        : static_cast<std::size_t>(std::to_chars(text, text + sizeof text, b).ptr - text);  // shortest exact
    return config.name + ":dim=" + std::to_string(config.spec.dim) + ",bits=" + std::string(text, length) +
           ",seed=" + std::to_string(config.spec.seed) + ",norm=" + (config.spec.norm == NormFormat::fp16 ? "fp16" : "fp32");
}

/// The codec `config` names. Throws octopus::error for a spec the codec refuses.
inline Codec make_codec(const CodecConfig& config) { return make_codec(config.name, config.spec); }

}  // namespace octopus
