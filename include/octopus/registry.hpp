// Codecs by name: what the sweep and an engine's configuration use to pick a codec at run time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "octopus/codec.hpp"
#include "octopus/codecs/octopus.hpp"
#include "octopus/codecs/polarquant.hpp"
#include "octopus/codecs/qjl.hpp"
#include "octopus/codecs/turboquant.hpp"
#include "octopus/codecs/turboquant_prod.hpp"
#include "octopus/codecs/uniform.hpp"

namespace octopus {

/// The names make_codec accepts.
inline std::vector<std::string> codec_names() {
    return {"turboquant", "octopus", "octopus-paper", "polarquant", "turboquant-prod", "qjl", "uniform"};
}

/// The codec called `name` built from `spec`. Throws octopus::error for an unknown name or a spec
/// the codec refuses (dim, bits).
inline Codec make_codec(std::string_view name, const CodecSpec& spec) {
    if (name == TurboQuant::name()) return TurboQuant(spec);
    if (name == Octopus::name()) return Octopus(spec);
    if (name == OctopusPaper::name()) return OctopusPaper(spec);
    if (name == PolarQuant::name()) return PolarQuant(spec);
    if (name == TurboQuantProd::name()) return TurboQuantProd(spec);
    if (name == Qjl::name()) return Qjl(spec);
    if (name == Uniform::name()) return Uniform(spec);
    std::string known;
    for (const auto& n : codec_names()) known += (known.empty() ? "" : ", ") + n;
    throw error("unknown codec '" + std::string(name) + "'; known codecs: " + known);
}

/// Which codebook the codes of codec `name` refer to: 1 for a codec whose codes mean today what they
/// meant when cache files began, bumped when a codec's codes change meaning (`octopus` is 2 since its
/// codebook v2, Lloyd's points), so that a file written under another revision is refused instead of
/// decoded to other points. Throws octopus::error for an unknown name.
inline std::uint32_t codebook_revision(std::string_view name) {
    (void)make_codec(name, CodecSpec{64, 3, 1});  // the name check and its message
    return name == Octopus::name() ? 2u : 1u;
}

}  // namespace octopus
