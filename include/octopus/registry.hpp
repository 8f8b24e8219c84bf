// Codecs by name: what the sweep and an engine's configuration use to pick a codec at run time.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "octopus/codec.hpp"
#include "octopus/codecs/octopus.hpp"
#include "octopus/codecs/turboquant.hpp"

namespace octopus {

/// The names make_codec accepts.
inline std::vector<std::string> codec_names() { return {"turboquant", "octopus", "octopus-paper"}; }

/// The codec called `name` built from `spec`. Throws octopus::error for an unknown name or a spec
/// the codec refuses (dim, bits).
inline Codec make_codec(std::string_view name, const CodecSpec& spec) {
    if (name == TurboQuant::name()) return TurboQuant(spec);
    if (name == Octopus::name()) return Octopus(spec);
    if (name == OctopusPaper::name()) return OctopusPaper(spec);
    std::string known;
    for (const auto& n : codec_names()) known += (known.empty() ? "" : ", ") + n;
    throw error("unknown codec '" + std::string(name) + "'; known codecs: " + known);
}

}  // namespace octopus
