#include <octopus/codecs/octopus.hpp>
#include <octopus/codecs/turboquant.hpp>
#include <octopus/synthetic.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <limits>

#include "support.hpp"

namespace {

using octopus::CodecSpec;
using octopus::Octopus;
using octopus::OctopusPaper;
using octopus::TurboQuant;
using octopus_test::per_vector_mse;

// The codebook targets at d = 128 (20,000 uniform unit keys, fp32 norms), with TurboQuant and the
// paper's code measured on the same keys in the same run.
TEST(Octopus, MeetsTheCodebookTargetsAtD128) {
    const auto keys = octopus::uniform_unit_vectors(20000, 128, 31);
    const std::pair<double, double> targets[] = {{1.0, 0.3609}, {2.0, 0.1060}, {8.0 / 3.0, 0.0465}, {3.0, 0.0285}, {4.0, 0.0076}};
    for (const auto& [b, ceiling] : targets) {
        const double octopus_mse = per_vector_mse(Octopus(CodecSpec{128, b, 1}), keys);
        const double paper_mse = per_vector_mse(OctopusPaper(CodecSpec{128, b, 1}), keys);
        std::printf("d 128 b %.2f: octopus %.5f  octopus-paper %.5f", b, octopus_mse, paper_mse);
        EXPECT_LE(octopus_mse, ceiling) << "b = " << b;
        EXPECT_LT(octopus_mse, paper_mse) << "b = " << b;
        if (b == std::floor(b)) {
            const double turbo_mse = per_vector_mse(TurboQuant(CodecSpec{128, b, 1}), keys);
            std::printf("  turboquant %.5f", turbo_mse);
            EXPECT_LT(octopus_mse, turbo_mse) << "b = " << b;
        }
        std::printf("\n");
    }
}

TEST(Octopus, SameOrderingAtD64AndD256) {
    for (std::size_t d : {64u, 256u}) {
        const auto keys = octopus::uniform_unit_vectors(8000, d, 32);
        for (int b = 1; b <= 4; ++b) {
            const double octopus_mse = per_vector_mse(Octopus(CodecSpec{d, double(b), 1}), keys);
            const double turbo_mse = per_vector_mse(TurboQuant(CodecSpec{d, double(b), 1}), keys);
            EXPECT_LT(octopus_mse, turbo_mse) << "d " << d << " b " << b;
        }
    }
}

// Leftover coordinates (d mod 3 = 1 or 2 of them) go through the scalar codebook: the measured error
// must match the codebooks' exact design figure at every such dim.
TEST(Octopus, MeasuredErrorMatchesTheDesignAtEveryDim) {
    for (std::size_t d : {64u, 80u, 96u, 112u, 128u, 256u}) {
        const Octopus codec(CodecSpec{d, 3, 2});
        const double measured = per_vector_mse(codec, octopus::uniform_unit_vectors(5000, d, 40 + d));
        EXPECT_NEAR(measured, codec.expected_mse(), 0.025 * codec.expected_mse()) << "d " << d;
    }
}

TEST(Octopus, StructuredInputsAreSpreadLikeUniformOnes) {
    for (std::size_t d : {64u, 128u, 256u})
        octopus_test::expect_structured_inputs_like_uniform([d](std::uint64_t seed) { return Octopus(CodecSpec{d, 3, seed}); }, d,
                                                            "octopus b 3");
}

TEST(Octopus, DotEqualsTheDotOfTheDecodedKeys) {
    for (std::size_t d : {64u, 80u, 96u, 112u, 128u, 256u}) octopus_test::expect_dot_matches_decode(Octopus(CodecSpec{d, 7.0 / 3.0, 5}));
    for (double bits : {1.0, 3.0, 4.0}) octopus_test::expect_dot_matches_decode(Octopus(CodecSpec{128, bits, 5}));
}

// The layout: triplet codes, then leftover codes, LSB first, zero padding, then the norm. Rotating a
// decoded key forward must give norm × the tabulated point of each unpacked code.
TEST(Octopus, PacksEveryBitsPerTripletExactly) {
    const std::size_t d = 128;
    const auto keys = octopus::uniform_unit_vectors(3, d, 12);
    for (unsigned triplet_bits = 3; triplet_bits <= 12; ++triplet_bits) {
        const Octopus codec(CodecSpec{d, triplet_bits / 3.0, 8});
        ASSERT_EQ(codec.bits_per_triplet(), triplet_bits);
        const unsigned leftover_bits = std::max(1u, triplet_bits / 3);
        const std::size_t code_bits = 42 * triplet_bits + 2 * leftover_bits;
        ASSERT_EQ(codec.bytes_per_vector(), (code_bits + 7) / 8 + 4) << triplet_bits;
        const auto packed = codec.encode(keys);
        const auto decoded = codec.decode(packed);
        for (std::size_t v = 0; v < 3; ++v) {
            const std::uint8_t* bytes = packed.data() + v * codec.bytes_per_vector();
            std::vector<float> rotated(decoded.begin() + v * d, decoded.begin() + (v + 1) * d);
            octopus::rotate(codec.rotation(), rotated);
            float norm;
            std::memcpy(&norm, bytes + (code_bits + 7) / 8, 4);
            octopus::BitReader reader(bytes);
            for (std::size_t i = 0; i < 42; ++i) {
                const auto& p = codec.points()[reader.get(triplet_bits)];
                for (int k = 0; k < 3; ++k) EXPECT_NEAR(rotated[3 * i + k], norm * p[k], 1e-5);
            }
            reader.get(leftover_bits);
            reader.get(leftover_bits);
            if (code_bits % 8) {
                EXPECT_EQ(bytes[code_bits / 8] >> (code_bits % 8), 0) << "padding bits";
            }
        }
    }
}

TEST(Octopus, AcceptsThirdsAndRefusesOtherBits) {
    for (double b : {1.0, 1.33, 1.67, 2.0, 2.33, 2.67, 3.0, 3.33, 3.67, 4.0})
        EXPECT_NO_THROW(Octopus(CodecSpec{64, b, 1})) << b;
    for (double b : {0.67, 2.5, 4.33, 0.0, std::numeric_limits<double>::infinity()})
        EXPECT_THROW(Octopus(CodecSpec{64, b, 1}), octopus::error) << b;
    EXPECT_THROW(Octopus(CodecSpec{100, 3, 1}), octopus::error);
    EXPECT_THROW(OctopusPaper(CodecSpec{128, 2.5, 1}), octopus::error);
}

TEST(Octopus, IsDeterministicAndSeeded) {
    const auto keys = octopus::uniform_unit_vectors(64, 128, 17);
    const auto a = Octopus(CodecSpec{128, 3, 42}).encode(keys);
    EXPECT_EQ(a, Octopus(CodecSpec{128, 3, 42}).encode(keys));
    EXPECT_NE(a, Octopus(CodecSpec{128, 3, 43}).encode(keys));
}

TEST(Octopus, ZeroAndHalfPrecisionKeys) {
    const Octopus codec(CodecSpec{96, 2, 1});
    const std::vector<float> zero(96, 0.0f);
    for (float v : codec.decode(codec.encode(zero))) EXPECT_EQ(v, 0.0f);
    const auto keys = octopus::uniform_unit_vectors(5, 96, 4);
    std::vector<octopus::half> h(keys.size());
    std::vector<float> h_as_float(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
        h[i] = octopus::half(keys[i]);
        h_as_float[i] = static_cast<float>(h[i]);
    }
    EXPECT_EQ(codec.encode(std::span<const octopus::half>(h)), codec.encode(h_as_float));
}

TEST(Octopus, RefusesBadInputAndDamagedBytesWithoutWriting) {
    const Octopus codec(CodecSpec{128, 7.0 / 3.0, 1});  // 298 code bits: 6 padding bits
    const auto keys = octopus::uniform_unit_vectors(3, 128, 1);
    std::vector<std::uint8_t> packed(3 * codec.bytes_per_vector(), 0xCD);
    auto poisoned = keys;
    poisoned[300] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_THROW(codec.encode(std::span<const float>(poisoned), packed), octopus::error);
    EXPECT_EQ(packed, std::vector<std::uint8_t>(3 * codec.bytes_per_vector(), 0xCD));

    const auto good = codec.encode(keys);
    const auto query = octopus::uniform_unit_vectors(1, 128, 2);
    auto damaged_padding = good;
    damaged_padding[2 * codec.bytes_per_vector() + 37] |= 0x80;
    auto damaged_norm = good;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(damaged_norm.data() + codec.bytes_per_vector() + 38, &nan, 4);
    for (const auto& damaged : {damaged_padding, damaged_norm}) {
        std::vector<float> out(3 * 128, -7.0f), scores(3, -7.0f);
        EXPECT_THROW(codec.decode(damaged, out), octopus::error);
        EXPECT_THROW(codec.dot(query, damaged, scores), octopus::error);
        EXPECT_EQ(out, std::vector<float>(3 * 128, -7.0f));
        EXPECT_EQ(scores, std::vector<float>(3, -7.0f));
    }
    std::vector<float> wrong(127, 0.1f);
    EXPECT_THROW(codec.dot(wrong, good), octopus::error);
}

}  // namespace
