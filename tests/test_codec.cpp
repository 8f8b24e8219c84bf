#include <octopus/octopus.hpp>

#include <gtest/gtest.h>

namespace {

TEST(Codec, MakeCodecMatchesTheConcreteType) {
    const auto keys = octopus::uniform_unit_vectors(50, 128, 3);
    const auto query = octopus::uniform_unit_vectors(1, 128, 4);
    const octopus::CodecSpec spec{128, 3, 9};
    const octopus::Codec any = octopus::make_codec("turboquant", spec);
    const octopus::TurboQuant concrete(spec);
    EXPECT_STREQ(any.name(), "turboquant");
    EXPECT_EQ(any.dim(), 128u);
    EXPECT_EQ(any.bytes_per_vector(), concrete.bytes_per_vector());
    EXPECT_DOUBLE_EQ(any.bits_per_coordinate(), 3.25);
    const auto packed = any.encode(std::span<const float>(keys));
    EXPECT_EQ(packed, concrete.encode(keys));
    EXPECT_EQ(any.decode(packed), concrete.decode(packed));
    EXPECT_EQ(any.dot(query, packed), concrete.dot(query, packed));
    const octopus::Codec copy = any;  // copies share the codec
    EXPECT_EQ(copy.encode(std::span<const float>(keys)), packed);
}

TEST(Codec, UnknownNamesListTheKnownOnes) {
    try {
        octopus::make_codec("zip", {128, 3, 1});
        FAIL() << "no exception";
    } catch (const octopus::error& e) {
        EXPECT_NE(std::string(e.what()).find("turboquant"), std::string::npos);
    }
}

TEST(Codec, CodecNamesAllConstruct) {
    for (const auto& name : octopus::codec_names())
        for (std::size_t d : {64u, 80u, 96u, 112u, 128u, 160u, 192u, 256u})
            EXPECT_NO_THROW(octopus::make_codec(name, {d, 2, 1})) << name << " d " << d;
}

}  // namespace
