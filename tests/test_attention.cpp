// Fused decode attention over codes (attention.hpp) against a double-precision softmax·V on the keys
// and values the codecs decode, for TurboQuant and OCTOPUS at every rate, GQA groups, contexts around
// the block size and thread counts; and its refusals, which leave the output as it was.
#include <octopus/attention.hpp>
#include <octopus/octopus.hpp>

#include <gtest/gtest.h>

#include "support.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace {

using octopus::CodecSpec;

/// softmax(scale · q·Kᵀ)·V in double on decoded keys and values.
std::vector<double> reference(const std::vector<float>& q, std::size_t heads, const std::vector<float>& keys, const std::vector<float>& values,
                              std::size_t d, double scale) {
    const std::size_t n = keys.size() / d;
    std::vector<double> out(heads * d, 0.0);
    for (std::size_t h = 0; h < heads; ++h) {
        if (n == 0) continue;
        std::vector<double> s(n);
        double top = -1e300, total = 0.0;
        for (std::size_t t = 0; t < n; ++t) {
            double dot = 0.0;
            for (std::size_t c = 0; c < d; ++c) dot += double(q[h * d + c]) * keys[t * d + c];
            s[t] = scale * dot;
            top = std::max(top, s[t]);
        }
        for (std::size_t t = 0; t < n; ++t) {
            const double w = std::exp(s[t] - top);
            total += w;
            for (std::size_t c = 0; c < d; ++c) out[h * d + c] += w * values[t * d + c];
        }
        for (std::size_t c = 0; c < d; ++c) out[h * d + c] /= total;
    }
    return out;
}

/// Keys with a spread of norms and a few near-duplicates of the first query (peaked attention).
std::vector<float> keys_for(std::size_t n, std::size_t d, const std::vector<float>& q, std::uint64_t seed) {
    auto k = octopus::uniform_unit_vectors(n, d, seed);
    for (std::size_t t = 0; t < n; ++t)
        for (std::size_t c = 0; c < d; ++c) k[t * d + c] = k[t * d + c] * (1.0f + float(t % 5)) + (t % 97 == 3 ? 3.0f * q[c] : 0.0f);
    return k;
}

template <class K, class V>
void expect_matches_reference(const K& kc, const V& vc, std::size_t heads, std::size_t n, int threads, const std::string& what) {
    const std::size_t d = kc.dim();
    const auto q = octopus::uniform_unit_vectors(heads, d, 11);
    const auto keys = keys_for(n, d, q, 12);
    auto values = octopus::uniform_unit_vectors(n, d, 13);
    for (float& v : values) v *= 2.0f;
    const auto pk = kc.encode(std::span<const float>(keys)), pv = vc.encode(std::span<const float>(values));
    const float scale = 4.0f / std::sqrt(float(d));  // sharper than 1/√d: a peaked softmax
    std::vector<float> out(heads * d, -7.0f);
    octopus::decode_attention(kc, vc, q, pk, pv, scale, out, threads);
    const auto expected = reference(q, heads, kc.decode(pk), vc.decode(pv), d, scale);
    double worst = 0.0;
    for (std::size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::fabs(out[i] - expected[i]));
    // Outputs are averages of values of norm ≤ 2·1.1: float accumulation over n tokens stays near 1e-6.
    EXPECT_LT(worst, 2e-5) << what << " G " << heads << " n " << n << " threads " << threads;
}

TEST(DecodeAttention, MatchesADoublePrecisionReferenceForTurboQuantAtEveryRate) {
    for (int bits = 1; bits <= 4; ++bits) {
        const octopus::TurboQuant codec(CodecSpec{128, double(bits), 3});
        for (std::size_t n : {1u, 64u, 200u}) expect_matches_reference(codec, codec, 4, n, 1, "turboquant b " + std::to_string(bits));
    }
}

TEST(DecodeAttention, MatchesADoublePrecisionReferenceForOctopusAtEveryRate) {
    for (int thirds = 3; thirds <= 12; ++thirds) {
        const octopus::Octopus codec(CodecSpec{128, thirds / 3.0, 3});
        expect_matches_reference(codec, codec, 4, 150, 1, "octopus " + std::to_string(thirds) + "/3");
    }
    const octopus::OctopusPaper paper(CodecSpec{96, 3, 1});
    expect_matches_reference(paper, paper, 2, 100, 1, "octopus-paper");
}

TEST(DecodeAttention, GroupsContextsThreadsDimsAndMixedCodecs) {
    for (std::size_t d : {64u, 80u, 256u}) {
        const octopus::TurboQuant keys(CodecSpec{d, 3, 1});
        const octopus::Octopus values(CodecSpec{d, 2, 2});
        for (std::size_t heads : {1u, 7u, 16u})
            for (std::size_t n : {0u, 1u, 63u, 64u, 65u, 1000u})
                for (int threads : {1, 2, 3}) expect_matches_reference(keys, values, heads, n, threads, "mixed d " + std::to_string(d));
    }
}

TEST(DecodeAttention, TurboQuantValuesAddedInRegistersForEveryRateAndGroup) {
    // TurboQuant values take add_weighted_rotated (decoded in registers, four heads at a time, 16
    // records a pass): every rate, groups that leave 1–3 heads over, runs not a multiple of 16.
    for (std::size_t d : {64u, 256u}) {
        const octopus::Octopus keys(CodecSpec{d, 3, 6});
        for (int bits = 1; bits <= 4; ++bits) {
            const octopus::TurboQuant values(CodecSpec{d, double(bits), 7, octopus::NormFormat::fp16});
            for (std::size_t heads : {1u, 4u, 7u, 16u})
                for (std::size_t n : {1u, 17u, 200u})
                    expect_matches_reference(keys, values, heads, n, n == 200 ? 2 : 1, "turboquant values b " + std::to_string(bits));
        }
    }
}

TEST(DecodeAttention, RefusesADamagedTurboQuantValue) {
    const octopus::TurboQuant codec(CodecSpec{64, 2, 1});
    const auto q = octopus::uniform_unit_vectors(4, 64, 1);
    const auto x = octopus::uniform_unit_vectors(100, 64, 2);
    const auto pk = codec.encode(std::span<const float>(x));
    auto pv = codec.encode(std::span<const float>(x));
    const float inf = std::numeric_limits<float>::infinity();
    std::memcpy(pv.data() + 90 * codec.bytes_per_vector() + codec.code_bytes(), &inf, 4);
    std::vector<float> out(4 * 64, 5.0f);
    for (int threads : {1, 2}) {
        EXPECT_THROW(octopus::decode_attention(codec, codec, q, pk, pv, 1.0f, out, threads), octopus::error);
        EXPECT_EQ(out, std::vector<float>(4 * 64, 5.0f));
    }
}

TEST(DecodeAttention, RefusesBadArgumentsAndLeavesTheOutput) {
    const octopus::TurboQuant kc(CodecSpec{64, 3, 1});
    const octopus::Octopus vc(CodecSpec{64, 3, 1});
    const auto q = octopus::uniform_unit_vectors(2, 64, 1);
    const auto x = octopus::uniform_unit_vectors(100, 64, 2);
    auto pk = kc.encode(std::span<const float>(x));
    const auto pv = vc.encode(std::span<const float>(x));
    std::vector<float> out(128, 5.0f);
    const auto expect = [&](auto call, const std::string& fragment) {
        octopus_test::expect_refusal(call, fragment, [&] {
            EXPECT_EQ(out, std::vector<float>(128, 5.0f));
        });
    };
    const octopus::Octopus other(CodecSpec{128, 3, 1});
    expect([&] { octopus::decode_attention(kc, other, q, pk, pv, 1.0f, out); }, "differs from the value codec's 128");
    expect([&] { octopus::decode_attention(kc, vc, std::span<const float>(q.data(), 0), pk, pv, 1.0f, out); }, "are not 1 to 16 rows");
    const auto many = octopus::uniform_unit_vectors(17, 64, 1);
    std::vector<float> big(17 * 64);
    expect([&] { octopus::decode_attention(kc, vc, many, pk, pv, 1.0f, big); }, "are not 1 to 16 rows");
    expect([&] { octopus::decode_attention(kc, vc, q, pk, pv, 1.0f, std::span<float>(out.data(), 64)); }, "output has 64 floats");
    expect([&] { octopus::decode_attention(kc, vc, q, pk, pv, std::numeric_limits<float>::infinity(), out); }, "scale is not finite");
    expect([&] { octopus::decode_attention(kc, vc, q, pk, pv, 1.0f, out, 0); }, "threads must be at least 1");
    expect([&] { octopus::decode_attention(kc, vc, q, std::span<const std::uint8_t>(pk.data(), pk.size() - 1), pv, 1.0f, out); },
           "are not the same whole number");
    expect([&] { octopus::decode_attention(kc, vc, q, std::span<const std::uint8_t>(pk.data(), pk.size() - kc.bytes_per_vector()), pv, 1.0f, out); },
           "are not the same whole number");
    auto bad_q = q;
    bad_q[70] = std::numeric_limits<float>::quiet_NaN();
    expect([&] { octopus::decode_attention(kc, vc, bad_q, pk, pv, 1.0f, out); }, "query 1 has a non-finite value at coordinate 6");
    const float negative = -1.0f;
    std::memcpy(pk.data() + 57 * kc.bytes_per_vector() + kc.code_bytes(), &negative, 4);  // record 57's norm
    for (int threads : {1, 2}) expect([&] { octopus::decode_attention(kc, vc, q, pk, pv, 1.0f, out, threads); }, "record is damaged");
}

}  // namespace

namespace {

TEST(DecodeAttention, ThroughACodecGivesTheConcreteCodecsBitsAndRefusesOthers) {
    const octopus::Octopus concrete(CodecSpec{128, 8.0 / 3, 4});
    const octopus::Codec erased = octopus::make_codec("octopus", {128, 8.0 / 3, 4});
    const auto q = octopus::uniform_unit_vectors(4, 128, 1);
    const auto x = octopus::uniform_unit_vectors(300, 128, 2);
    const auto packed = concrete.encode(std::span<const float>(x));
    std::vector<float> a(4 * 128), b(4 * 128);
    octopus::decode_attention(concrete, concrete, q, packed, packed, 0.3f, a);
    octopus::decode_attention(erased, erased, q, packed, packed, 0.3f, b);
    EXPECT_EQ(a, b);
    const octopus::Codec polar = octopus::make_codec("polarquant", {128, 3, 4});
    const auto polar_packed = polar.encode(std::span<const float>(x));
    try {
        octopus::decode_attention(erased, polar, q, packed, polar_packed, 0.3f, b);
        ADD_FAILURE() << "accepted polarquant values";
    } catch (const octopus::error& e) {
        EXPECT_NE(std::string(e.what()).find("codec 'polarquant' does not decode into a rotated domain"), std::string::npos) << e.what();
    }
}

}  // namespace
