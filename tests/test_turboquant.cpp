#include <octopus/codecs/turboquant.hpp>
#include <octopus/synthetic.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <limits>

#include "support.hpp"

namespace {

using octopus::CodecSpec;
using octopus::TurboQuant;
using octopus_test::per_vector_mse;

const std::vector<float>& uniform_128() {
    static const auto x = octopus::uniform_unit_vectors(20000, 128, 2024);
    return x;
}

TEST(TurboQuant, RoundTripErrorMatchesTheExactValuesAtD128) {
    // Exact per-vector MSE of Lloyd–Max on the coordinate marginal (independently integrated). With
    // 20000 vectors the Monte-Carlo error is ~0.1%, well inside the 1% allowed.
    const double expected[] = {0.36089, 0.11600, 0.03397, 0.00931};
    for (int b = 1; b <= 4; ++b) {
        const TurboQuant codec(CodecSpec{128, double(b), 1});
        EXPECT_NEAR(per_vector_mse(codec, uniform_128()), expected[b - 1], 0.01 * expected[b - 1]) << "b = " << b;
    }
}

TEST(TurboQuant, PackedSizeIsExact) {
    for (std::size_t d : {64u, 80u, 96u, 112u, 128u, 160u, 192u, 256u})
        for (int b = 1; b <= 4; ++b) {
            const TurboQuant fp32(CodecSpec{d, double(b), 1});
            const TurboQuant fp16(CodecSpec{d, double(b), 1, octopus::NormFormat::fp16});
            EXPECT_EQ(fp32.bytes_per_vector(), d * b / 8 + 4);
            EXPECT_EQ(fp16.bytes_per_vector(), d * b / 8 + 2);
            EXPECT_DOUBLE_EQ(fp16.bits_per_coordinate(), b + 16.0 / d);
        }
}

TEST(TurboQuant, StructuredInputsAreSpreadLikeUniformOnes) {
    for (std::size_t d : {64u, 128u, 256u})
        octopus_test::expect_structured_inputs_like_uniform([d](std::uint64_t seed) { return TurboQuant(CodecSpec{d, 3, seed}); },
                                                            d, "turboquant b 3");
}

TEST(TurboQuant, DotEqualsTheDotOfTheDecodedKeys) {
    for (std::size_t d : {64u, 96u, 128u, 256u})
        for (int b = 1; b <= 4; ++b) octopus_test::expect_dot_matches_decode(TurboQuant(CodecSpec{d, double(b), 5}));
}

TEST(TurboQuant, IsDeterministicAndSeeded) {
    const auto keys = octopus::uniform_unit_vectors(64, 128, 17);
    const auto a = TurboQuant(CodecSpec{128, 3, 42}).encode(keys);
    const auto b = TurboQuant(CodecSpec{128, 3, 42}).encode(keys);
    const auto c = TurboQuant(CodecSpec{128, 3, 43}).encode(keys);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
}

TEST(TurboQuant, ZeroVectorRoundTripsToZero) {
    const TurboQuant codec(CodecSpec{128, 2, 1});
    const std::vector<float> zero(128, 0.0f);
    const auto packed = codec.encode(zero);
    for (float v : codec.decode(packed)) EXPECT_EQ(v, 0.0f);
    const auto query = octopus::uniform_unit_vectors(1, 128, 3);
    EXPECT_EQ(codec.dot(query, packed)[0], 0.0f);
}

TEST(TurboQuant, HalfAndBfloat16KeysEncodeLikeTheirFloatValues) {
    const TurboQuant codec(CodecSpec{128, 4, 1});
    const auto keys = octopus::uniform_unit_vectors(10, 128, 4);
    std::vector<octopus::half> h(keys.size());
    std::vector<octopus::bfloat16> bf(keys.size());
    std::vector<float> h_as_float(keys.size()), bf_as_float(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
        h[i] = octopus::half(keys[i]);
        bf[i] = octopus::bfloat16(keys[i]);
        h_as_float[i] = static_cast<float>(h[i]);
        bf_as_float[i] = static_cast<float>(bf[i]);
    }
    EXPECT_EQ(codec.encode(std::span<const octopus::half>(h)), codec.encode(h_as_float));
    EXPECT_EQ(codec.encode(std::span<const octopus::bfloat16>(bf)), codec.encode(bf_as_float));
}

TEST(TurboQuant, Fp16NormsCostLittleAndRefuseWhatTheyCannotHold) {
    const TurboQuant fp16(CodecSpec{128, 3, 1, octopus::NormFormat::fp16});
    const double mse = per_vector_mse(fp16, octopus::uniform_unit_vectors(4000, 128, 8));
    EXPECT_NEAR(mse, 0.03397, 0.02 * 0.03397);
    std::vector<float> huge(128, 1.0e4f);  // norm 1.1e5 > 65504
    std::vector<std::uint8_t> packed(fp16.bytes_per_vector(), 0xEE);
    EXPECT_THROW(fp16.encode(std::span<const float>(huge), packed), octopus::error);
    EXPECT_EQ(packed, std::vector<std::uint8_t>(fp16.bytes_per_vector(), 0xEE));
}

TEST(TurboQuant, RefusesBadSpecs) {
    EXPECT_THROW(TurboQuant(CodecSpec{100, 3, 1}), octopus::error);
    for (double b : {0.0, 5.0, 2.5, -1.0, std::numeric_limits<double>::quiet_NaN()})
        EXPECT_THROW(TurboQuant(CodecSpec{128, b, 1}), octopus::error) << b;
}

TEST(TurboQuant, RefusesBadInputsWithoutWriting) {
    const TurboQuant codec(CodecSpec{64, 2, 1});
    auto keys = octopus::uniform_unit_vectors(3, 64, 1);
    std::vector<std::uint8_t> packed(3 * codec.bytes_per_vector(), 0xCD);
    const auto untouched = packed;
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        auto poisoned = keys;
        poisoned[2 * 64 + 10] = bad;  // in the last row: the first rows must not be written either
        EXPECT_THROW(codec.encode(std::span<const float>(poisoned), packed), octopus::error);
        EXPECT_EQ(packed, untouched);
    }
    std::vector<std::uint8_t> short_buffer(3 * codec.bytes_per_vector() - 1);
    EXPECT_THROW(codec.encode(std::span<const float>(keys), short_buffer), octopus::error);
    std::vector<float> ragged(keys.begin(), keys.end() - 1);
    EXPECT_THROW(codec.encode(ragged), octopus::error);

    const auto good = codec.encode(keys);
    std::vector<float> out(3 * 64, -7.0f);
    std::vector<float> wrong_out(3 * 64 - 1);
    EXPECT_THROW(codec.decode(good, wrong_out), octopus::error);
    std::vector<std::uint8_t> not_whole(good.begin(), good.end() - 1);
    EXPECT_THROW(codec.decode(not_whole), octopus::error);
    const auto query = octopus::uniform_unit_vectors(1, 64, 2);
    std::vector<float> long_query(65, 0.1f);
    EXPECT_THROW(codec.dot(long_query, good), octopus::error);
    std::vector<float> nan_query = query;
    nan_query[0] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_THROW(codec.dot(nan_query, good), octopus::error);
    std::vector<float> scores(2);
    EXPECT_THROW(codec.dot(query, good, scores), octopus::error);
}

TEST(TurboQuant, DetectsDamagedNormsWithoutWriting) {
    const TurboQuant codec(CodecSpec{64, 2, 1});
    const auto keys = octopus::uniform_unit_vectors(3, 64, 1);
    const auto good = codec.encode(keys);
    const std::size_t norm_at = 2 * codec.bytes_per_vector() + 64 * 2 / 8;  // last vector's norm
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -1.0f}) {
        auto damaged = good;
        std::memcpy(damaged.data() + norm_at, &bad, 4);
        std::vector<float> out(3 * 64, -7.0f);
        EXPECT_THROW(codec.decode(damaged, out), octopus::error);
        EXPECT_EQ(out, std::vector<float>(3 * 64, -7.0f));
        std::vector<float> scores(3, -7.0f);
        EXPECT_THROW(codec.dot(keys, damaged, scores), octopus::error);  // wrong-size query is caught first
        const auto query = octopus::uniform_unit_vectors(1, 64, 2);
        EXPECT_THROW(codec.dot(query, damaged, scores), octopus::error);
        EXPECT_EQ(scores, std::vector<float>(3, -7.0f));
    }
}

}  // namespace
