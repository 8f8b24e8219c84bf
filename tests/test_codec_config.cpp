// Codec configuration text (codec_config.hpp): what it reads, the canonical text it writes back, and
// a refusal naming the fault for every malformed line.
#include <octopus/codec_config.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using octopus::CodecConfig;
using octopus::NormFormat;
using octopus::parse_codec_config;

TEST(CodecConfig, ReadsEveryKeyAndKeepsDefaultsForTheRest) {
    const CodecConfig c = parse_codec_config("octopus:dim=128,bits=2.67,seed=7,norm=fp16");
    EXPECT_EQ(c.name, "octopus");
    EXPECT_EQ(c.spec.dim, 128u);
    EXPECT_DOUBLE_EQ(c.spec.bits, 2.67);
    EXPECT_EQ(c.spec.seed, 7u);
    EXPECT_EQ(c.spec.norm, NormFormat::fp16);
    const CodecConfig plain = parse_codec_config("turboquant");
    const octopus::CodecSpec defaults;
    EXPECT_EQ(plain.name, "turboquant");
    EXPECT_EQ(plain.spec.dim, defaults.dim);
    EXPECT_EQ(plain.spec.bits, defaults.bits);
    EXPECT_EQ(plain.spec.seed, defaults.seed);
    EXPECT_EQ(plain.spec.norm, defaults.norm);
    EXPECT_EQ(parse_codec_config("qjl:seed=18446744073709551615").spec.seed, 18446744073709551615ull);
}

TEST(CodecConfig, CanonicalTextParsesBackToTheSameCodec) {
    for (const char* text : {"octopus:bits=2.33", "octopus:bits=2.6667,dim=80", "turboquant:bits=4,norm=fp16", "uniform:bits=8,seed=3",
                             "polarquant"}) {
        const CodecConfig c = parse_codec_config(text);
        const std::string canonical = octopus::format_codec_config(c);
        const CodecConfig again = parse_codec_config(canonical);
        EXPECT_EQ(octopus::format_codec_config(again), canonical) << text;
        const auto a = octopus::make_codec(c), b = octopus::make_codec(again);
        std::vector<float> key(a.dim(), 0.0f);
        key[1] = 1.0f;
        EXPECT_EQ(a.encode(std::span<const float>(key)), b.encode(std::span<const float>(key))) << text << " vs " << canonical;
    }
    EXPECT_EQ(octopus::format_codec_config(parse_codec_config("octopus:bits=2.33")), "octopus:dim=128,bits=2.33,seed=0,norm=fp32");
}

TEST(CodecConfig, RefusesMalformedTextNamingTheFault) {
    const std::pair<std::string, const char*> cases[] = {
        {"", "unknown codec ''"},
        {"zip:bits=3", "unknown codec 'zip'; known codecs: turboquant"},
        {"octopus:", "'' is not key=value"},
        {"octopus:bits", "'bits' is not key=value"},
        {"octopus:bits=3,", "'' is not key=value"},
        {"octopus:size=3", "unknown key 'size'"},
        {"octopus:bits=3,bits=4", "key 'bits' given twice"},
        {"octopus:bits=three", "value 'three' of bits is not a number"},
        {"octopus:bits=3x", "value '3x' of bits is not a number"},
        {"octopus:bits=nan", "bits 'nan' is not finite"},
        {"octopus:bits=inf", "bits 'inf' is not finite"},
        {"octopus:dim=-128", "value '-128' of dim is not a whole number"},
        {"octopus:dim=+128", "value '+128' of dim"},
        {"octopus:dim=", "value '' of dim"},
        {"octopus:seed=18446744073709551616", "value '18446744073709551616' of seed is not a whole number in range"},
        {"octopus:norm=fp8", "norm 'fp8' is not fp32 or fp16"},
        {"octopus :bits=3", "unknown codec 'octopus '"},
        {"octopus:" + std::string(300, 'x'), "longer than the limit of 256"},
    };
    for (const auto& [text, message] : cases) {
        try {
            (void)parse_codec_config(text);
            ADD_FAILURE() << "'" << text << "' was accepted";
        } catch (const octopus::error& e) {
            EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << text << ": " << e.what();
        }
    }
}

TEST(CodecConfig, TheCodecRefusesWhatTheTextCannotKnow) {
    EXPECT_THROW((void)octopus::make_codec(parse_codec_config("octopus:dim=100")), octopus::error);
    EXPECT_THROW((void)octopus::make_codec(parse_codec_config("turboquant:bits=2.5")), octopus::error);
    EXPECT_THROW((void)octopus::make_codec(parse_codec_config("octopus:bits=5")), octopus::error);
    EXPECT_THROW((void)octopus::make_codec(parse_codec_config("octopus:dim=18446744073709551615")), octopus::error);
}

}  // namespace
