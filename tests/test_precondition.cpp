// Per-head preconditioning: the transforms are exact for attention, HeadCodec's paths agree with a
// double-precision computation on its decoded keys and values, the fit recovers what it estimates, auto
// is never worse than none on its own data, and bad input is refused.
#include <octopus/octopus.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

using octopus::Codec;
using octopus::HeadCodec;
using octopus::HeadPreconditioner;
using octopus::Preconditioning;
using octopus::PreconditionerFitData;

/// Keys as Qwen2-style heads make them: a large per-channel offset (a few channels far larger than the
/// rest) plus unit-scale variation, n × d.
std::vector<float> offset_keys(std::size_t n, std::size_t d, std::uint64_t seed, float offset_scale) {
    auto x = octopus::uniform_unit_vectors(n, d, seed);
    const auto direction = octopus::uniform_unit_vectors(1, d, seed + 100);
    for (std::size_t t = 0; t < n; ++t)
        for (std::size_t c = 0; c < d; ++c) {
            const float outlier = c % 16 == 3 ? 8.0f : 1.0f;
            x[t * d + c] = std::sqrt(float(d)) * x[t * d + c] + offset_scale * outlier * direction[c] * std::sqrt(float(d));
        }
    return x;
}

std::vector<float> scaled(std::vector<float> x, float s) {
    for (float& v : x) v *= s;
    return x;
}

/// A preconditioner with every field non-trivial, for the exactness tests.
HeadPreconditioner some_preconditioner(std::size_t d) {
    HeadPreconditioner p = HeadPreconditioner::identity(d);
    p.keys = Preconditioning::scale;
    p.center_values = true;
    for (std::size_t c = 0; c < d; ++c) {
        p.key_offset[c] = 3.0f * std::sin(0.7f * float(c));
        p.key_scale[c] = 0.5f + float(c % 5) * 0.4f;
        p.value_offset[c] = -1.5f * std::cos(0.3f * float(c));
    }
    return p;
}

TEST(HeadPreconditioner, TransformsLeaveScoresUnchangedUpToTheQueryOffset) {
    const std::size_t d = 64;
    const HeadPreconditioner p = some_preconditioner(d);
    const auto keys = scaled(octopus::uniform_unit_vectors(20, d, 1), 5.0f);
    const auto query = scaled(octopus::uniform_unit_vectors(1, d, 2), 3.0f);
    std::vector<float> q(d), k(d), back(d);
    p.transform_query(query.data(), q.data());
    for (std::size_t t = 0; t < 20; ++t) {
        p.transform_key(keys.data() + t * d, k.data());
        double exact = 0.0, transformed = 0.0;
        for (std::size_t c = 0; c < d; ++c) exact += double(query[c]) * keys[t * d + c], transformed += double(q[c]) * k[c];
        EXPECT_NEAR(transformed + p.query_offset(query.data()), exact, 1e-4);
        p.restore_key(k.data(), back.data());
        for (std::size_t c = 0; c < d; ++c) EXPECT_NEAR(back[c], keys[t * d + c], 1e-5);
        p.transform_value(keys.data() + t * d, k.data());
        p.restore_value(k.data(), back.data());
        for (std::size_t c = 0; c < d; ++c) EXPECT_NEAR(back[c], keys[t * d + c], 1e-5);
    }
    EXPECT_EQ(p.stored_bits(), 3u * 32u * d);
}

TEST(HeadCodec, WithTheIdentityItWritesTheCodecsOwnBytes) {
    for (const char* name : {"turboquant", "octopus", "uniform"}) {
        const Codec codec = octopus::make_codec(name, {128, 3, 7});
        const HeadCodec head(codec, codec);
        const auto keys = offset_keys(40, 128, 3, 1.0f);
        std::vector<std::uint8_t> packed(40 * codec.bytes_per_vector());
        head.encode_keys(std::span<const float>(keys), std::span<std::uint8_t>(packed));
        EXPECT_EQ(packed, codec.encode(std::span<const float>(keys))) << name;
        std::vector<float> decoded(keys.size());
        head.decode_keys(packed, decoded);
        EXPECT_EQ(decoded, codec.decode(packed)) << name;
    }
}

TEST(HeadCodec, DotAndAttendMatchADoubleComputationOnTheRestoredDecodedKeysAndValues) {
    const std::size_t d = 64, n = 300, heads = 3;
    for (const char* name : {"turboquant", "octopus", "polarquant", "uniform"}) {
        const Codec key_codec = octopus::make_codec(name, {d, 3, 11}), value_codec = octopus::make_codec(name, {d, 2, 12});
        const HeadCodec head(key_codec, value_codec, some_preconditioner(d));
        const auto keys = offset_keys(n, d, 5, 2.0f), values = offset_keys(n, d, 6, 0.5f);
        const auto queries = scaled(octopus::uniform_unit_vectors(heads, d, 7), 4.0f);
        std::vector<std::uint8_t> packed_keys(n * key_codec.bytes_per_vector()), packed_values(n * value_codec.bytes_per_vector());
        head.encode_keys(std::span<const float>(keys), std::span<std::uint8_t>(packed_keys));
        head.encode_values(std::span<const float>(values), std::span<std::uint8_t>(packed_values));
        std::vector<float> k_hat(n * d), v_hat(n * d), scores(n), out(heads * d);
        head.decode_keys(packed_keys, k_hat);
        head.decode_values(packed_values, v_hat);
        const float scale = 0.125f;
        head.attend(queries, packed_keys, packed_values, scale, out);
        for (std::size_t g = 0; g < heads; ++g) {
            const std::span<const float> q(queries.data() + g * d, d);
            head.dot(q, packed_keys, scores);
            std::vector<double> logits(n);
            double top = -1e300, key_norm = 0.0;
            for (std::size_t t = 0; t < n; ++t) {
                double s = 0.0;
                for (std::size_t c = 0; c < d; ++c) s += double(q[c]) * k_hat[t * d + c], key_norm = std::max(key_norm, std::fabs(double(k_hat[t * d + c])));
                EXPECT_NEAR(scores[t], s, 2e-5 * std::max(1.0, std::fabs(s)) + 1e-4) << name << " key " << t;
                logits[t] = scale * s;
                top = std::max(top, logits[t]);
            }
            double total = 0.0;
            std::vector<double> o(d, 0.0);
            for (std::size_t t = 0; t < n; ++t) {
                const double w = std::exp(logits[t] - top);
                total += w;
                for (std::size_t c = 0; c < d; ++c) o[c] += w * v_hat[t * d + c];
            }
            for (std::size_t c = 0; c < d; ++c) EXPECT_NEAR(out[g * d + c], o[c] / total, 1e-4) << name << " head " << g;
        }
    }
}

TEST(HeadCodec, TakesHalfAndBfloat16InputsAsTheirFloatValues) {
    const std::size_t d = 64, n = 10;
    const Codec codec = octopus::make_codec("octopus", {d, 3, 1});
    const HeadCodec head(codec, codec, some_preconditioner(d));
    const auto keys = offset_keys(n, d, 9, 1.0f);
    std::vector<octopus::half> halves(keys.size());
    std::vector<float> rounded(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) halves[i] = octopus::half(keys[i]), rounded[i] = float(halves[i]);
    std::vector<std::uint8_t> from_half(n * codec.bytes_per_vector()), from_float(from_half.size());
    head.encode_keys(std::span<const octopus::half>(halves), std::span<std::uint8_t>(from_half));
    head.encode_keys(std::span<const float>(rounded), std::span<std::uint8_t>(from_float));
    EXPECT_EQ(from_half, from_float);
    std::vector<std::uint8_t> one(codec.bytes_per_vector());  // the single-token path (no scratch) writes the same record
    head.encode_keys(std::span<const float>(rounded.data(), d), std::span<std::uint8_t>(one));
    EXPECT_TRUE(std::equal(one.begin(), one.end(), from_float.begin()));
}

TEST(HeadCodec, RefusesBadInputWithoutWriting) {
    const std::size_t d = 64;
    const Codec codec = octopus::make_codec("turboquant", {d, 3, 1});
    HeadPreconditioner bad = HeadPreconditioner::identity(d);
    bad.key_scale[5] = 0.0f;
    EXPECT_THROW(HeadCodec(codec, codec, bad), octopus::error);
    EXPECT_THROW(HeadCodec(codec, codec, HeadPreconditioner::identity(32)), octopus::error);
    EXPECT_THROW(HeadCodec(codec, octopus::make_codec("turboquant", {128, 3, 1})), octopus::error);
    HeadPreconditioner automatic = HeadPreconditioner::identity(d);
    automatic.keys = Preconditioning::automatic;
    EXPECT_THROW(HeadCodec(codec, codec, automatic), octopus::error);

    const HeadCodec head(codec, codec, some_preconditioner(d));
    auto keys = offset_keys(4, d, 1, 1.0f);
    keys[2 * d + 7] = NAN;
    std::vector<std::uint8_t> packed(4 * codec.bytes_per_vector(), 0xAB);
    try {
        head.encode_keys(std::span<const float>(keys), std::span<std::uint8_t>(packed));
        FAIL() << "NaN accepted";
    } catch (const octopus::error& e) {
        EXPECT_NE(std::string(e.what()).find("key 2"), std::string::npos) << e.what();
    }
    EXPECT_EQ(packed, std::vector<std::uint8_t>(packed.size(), 0xAB));
    EXPECT_THROW(head.encode_values(std::span<const float>(keys.data(), d + 1), std::span<std::uint8_t>(packed)), octopus::error);
    keys[2 * d + 7] = 0.0f;
    head.encode_keys(std::span<const float>(keys), std::span<std::uint8_t>(packed));
    std::vector<float> out(2 * d, -7.0f), query(2 * d, 0.5f);
    EXPECT_THROW(head.attend(query, packed, std::span<const std::uint8_t>(packed.data(), packed.size() - 1), 0.125f, out),
                 octopus::error);
    EXPECT_THROW(head.attend(query, packed, packed, INFINITY, out), octopus::error);
    query[3] = INFINITY;
    EXPECT_THROW(head.attend(query, packed, packed, 0.125f, out), octopus::error);
    EXPECT_EQ(out, std::vector<float>(2 * d, -7.0f));
    std::vector<float> scores(4);
    EXPECT_THROW(head.dot(std::span<const float>(query.data(), d), packed, scores), octopus::error);
    // No context: zero rows, as the GPU kernels give.
    query[3] = 0.5f;
    head.attend(query, {}, {}, 0.125f, out);
    EXPECT_EQ(out, std::vector<float>(2 * d, 0.0f));
}

TEST(PreconditionerFit, CenterIsTheMeanAndScaleBalancesKeyAndQueryEnergy) {
    const std::size_t d = 64, n = 500, m = 200;
    const auto keys = offset_keys(n, d, 21, 3.0f), values = offset_keys(n, d, 22, 1.0f);
    auto queries = octopus::uniform_unit_vectors(m, d, 23);
    for (std::size_t i = 0; i < queries.size(); ++i) queries[i] *= 1.0f + float(i % d % 7);  // uneven query channels
    const PreconditionerFitData data{d, keys, values, queries, {}, 0.0f};
    const HeadPreconditioner center = octopus::fit_preconditioner(Preconditioning::center, data);
    EXPECT_EQ(center.keys, Preconditioning::center);
    EXPECT_TRUE(center.center_values);
    for (std::size_t c = 0; c < d; ++c) {
        double mean = 0.0, value_mean = 0.0;
        for (std::size_t t = 0; t < n; ++t) mean += keys[t * d + c] / double(n), value_mean += values[t * d + c] / double(n);
        EXPECT_NEAR(center.key_offset[c], mean, 1e-5 * std::max(1.0, std::fabs(mean)));
        EXPECT_NEAR(center.value_offset[c], value_mean, 1e-5 * std::max(1.0, std::fabs(value_mean)));
        EXPECT_EQ(center.key_scale[c], 1.0f);
    }
    const HeadPreconditioner scale = octopus::fit_preconditioner(Preconditioning::scale, data);
    EXPECT_EQ(scale.key_offset, center.key_offset);
    // After k ↦ (k − μ)/s and q ↦ q∘s every channel has the same ratio of key to query energy.
    double log_product = 0.0;
    std::vector<double> ratio(d);
    for (std::size_t c = 0; c < d; ++c) {
        double key_energy = 0.0, query_energy = 0.0;
        for (std::size_t t = 0; t < n; ++t) {
            const double k = (keys[t * d + c] - center.key_offset[c]) / scale.key_scale[c];
            key_energy += k * k / n;
        }
        for (std::size_t i = 0; i < m; ++i) {
            const double q = queries[i * d + c] * scale.key_scale[c];
            query_energy += q * q / m;
        }
        ratio[c] = key_energy / query_energy;
        log_product += std::log(scale.key_scale[c]);
    }
    for (std::size_t c = 1; c < d; ++c) EXPECT_NEAR(ratio[c] / ratio[0], 1.0, 1e-3) << "channel " << c;
    EXPECT_NEAR(log_product, 0.0, 1e-4);  // geometric mean 1
}

/// Attention KL on the fit data of `p`, computed here independently of the fit (double throughout).
double fit_kl(const HeadCodec& head, const std::vector<float>& keys, const std::vector<float>& queries, std::size_t d) {
    const std::size_t n = keys.size() / d, m = queries.size() / d;
    std::vector<std::uint8_t> packed(n * head.key_codec().bytes_per_vector());
    head.encode_keys(std::span<const float>(keys), std::span<std::uint8_t>(packed));
    std::vector<float> k_hat(n * d);
    head.decode_keys(packed, k_hat);
    double total = 0.0;
    for (std::size_t i = 0; i < m; ++i) {
        std::vector<double> a(n), b(n);
        for (std::size_t t = 0; t < n; ++t)
            for (std::size_t c = 0; c < d; ++c)
                a[t] += double(queries[i * d + c]) * keys[t * d + c] / std::sqrt(double(d)),
                    b[t] += double(queries[i * d + c]) * k_hat[t * d + c] / std::sqrt(double(d));
        const double ta = *std::max_element(a.begin(), a.end()), tb = *std::max_element(b.begin(), b.end());
        double sa = 0.0, sb = 0.0;
        for (std::size_t t = 0; t < n; ++t) sa += std::exp(a[t] - ta), sb += std::exp(b[t] - tb);
        for (std::size_t t = 0; t < n; ++t) {
            const double la = a[t] - ta - std::log(sa), lb = b[t] - tb - std::log(sb);
            total += std::exp(la) * (la - lb);
        }
    }
    return total / double(m);
}

TEST(PreconditionerFit, CentringCutsTheErrorOfOffsetKeysAndAutoFindsIt) {
    const std::size_t d = 64, n = 256, m = 64;
    const Codec codec = octopus::make_codec("turboquant", {d, 3, 1});
    const auto keys = offset_keys(n, d, 31, 4.0f);
    const auto queries = scaled(octopus::uniform_unit_vectors(m, d, 32), 8.0f);
    const PreconditionerFitData data{d, keys, {}, queries, {}, 0.0f};
    const double none = fit_kl(HeadCodec(codec, codec), keys, queries, d);
    const HeadPreconditioner center = octopus::fit_preconditioner(Preconditioning::center, data);
    const double centred = fit_kl(HeadCodec(codec, codec, center), keys, queries, d);
    EXPECT_LT(centred, none / 5.0) << "none " << none << " center " << centred;
    const HeadPreconditioner chosen = octopus::fit_preconditioner(Preconditioning::automatic, data, codec, codec);
    EXPECT_NE(chosen.keys, Preconditioning::none);
    EXPECT_FALSE(chosen.center_values);  // no values given
    EXPECT_LT(fit_kl(HeadCodec(codec, codec, chosen), keys, queries, d), none / 5.0);
}

/// Mean over queries of |ô − o|², o the exact attention output and ô the one of the coded keys and values
/// (every query sees every key), computed here independently of the fit (double throughout).
double fit_output_error(const HeadCodec& head, const std::vector<float>& keys, const std::vector<float>& values,
                        const std::vector<float>& queries, std::size_t d) {
    const std::size_t n = keys.size() / d, m = queries.size() / d;
    std::vector<std::uint8_t> packed_keys(n * head.key_codec().bytes_per_vector()), packed_values(n * head.value_codec().bytes_per_vector());
    head.encode_keys(std::span<const float>(keys), std::span<std::uint8_t>(packed_keys));
    head.encode_values(std::span<const float>(values), std::span<std::uint8_t>(packed_values));
    std::vector<float> k_hat(n * d), v_hat(n * d);
    head.decode_keys(packed_keys, k_hat);
    head.decode_values(packed_values, v_hat);
    const auto output = [&](const std::vector<float>& k, const std::vector<float>& v, std::size_t i) {
        std::vector<double> logits(n), o(d, 0.0);
        for (std::size_t t = 0; t < n; ++t)
            for (std::size_t c = 0; c < d; ++c) logits[t] += double(queries[i * d + c]) * k[t * d + c] / std::sqrt(double(d));
        const double top = *std::max_element(logits.begin(), logits.end());
        double sum = 0.0;
        for (double& l : logits) sum += l = std::exp(l - top);
        for (std::size_t t = 0; t < n; ++t)
            for (std::size_t c = 0; c < d; ++c) o[c] += logits[t] / sum * v[t * d + c];
        return o;
    };
    double total = 0.0;
    for (std::size_t i = 0; i < m; ++i) {
        const auto o = output(keys, values, i), o_hat = output(k_hat, v_hat, i);
        for (std::size_t c = 0; c < d; ++c) total += (o_hat[c] - o[c]) * (o_hat[c] - o[c]);
    }
    return total / double(m);
}

TEST(PreconditionerFit, AutoIsNeverWorseThanNoneOnItsFitData) {
    const std::size_t d = 64, n = 200, m = 48;
    for (const char* name : {"turboquant", "octopus"})
        for (float offset : {0.0f, 0.3f, 1.0f, 4.0f})
            for (std::uint64_t seed : {1u, 2u, 3u}) {
                const Codec codec = octopus::make_codec(name, {d, 2, seed});
                const auto keys = offset_keys(n, d, 40 + seed, offset), values = offset_keys(n, d, 50 + seed, offset);
                const auto queries = scaled(octopus::uniform_unit_vectors(m, d, 60 + seed), 6.0f);
                // With values: the attention output; without: the attention weights.
                const HeadPreconditioner chosen =
                    octopus::fit_preconditioner(Preconditioning::automatic, {d, keys, values, queries, {}, 0.0f}, codec, codec);
                EXPECT_LE(fit_output_error(HeadCodec(codec, codec, chosen), keys, values, queries, d),
                          fit_output_error(HeadCodec(codec, codec), keys, values, queries, d) * (1 + 1e-9) + 1e-12)
                    << name << " offset " << offset << " seed " << seed << " chose " << octopus::to_string(chosen.keys);
                const HeadPreconditioner by_weights =
                    octopus::fit_preconditioner(Preconditioning::automatic, {d, keys, {}, queries, {}, 0.0f}, codec, codec);
                EXPECT_LE(fit_kl(HeadCodec(codec, codec, by_weights), keys, queries, d),
                          fit_kl(HeadCodec(codec, codec), keys, queries, d) * (1 + 1e-9) + 1e-12)
                    << name << " offset " << offset << " seed " << seed;
            }
}

TEST(PreconditionerFit, KeysTheCacheKeepsExactDoNotCount) {
    // With a window as long as the prompt every key a query sees stays exact: no option can gain, so auto
    // keeps none even on keys centring would help most.
    const std::size_t d = 64, n = 128, m = 32;
    const Codec codec = octopus::make_codec("turboquant", {d, 2, 1});
    const auto keys = offset_keys(n, d, 75, 4.0f), values = offset_keys(n, d, 76, 4.0f);
    const auto queries = scaled(octopus::uniform_unit_vectors(m, d, 77), 6.0f);
    std::vector<std::size_t> positions(m);
    for (std::size_t i = 0; i < m; ++i) positions[i] = n - 1 - i;
    PreconditionerFitData data{d, keys, values, queries, positions, 0.0f, n};
    const HeadPreconditioner within = octopus::fit_preconditioner(Preconditioning::automatic, data, codec, codec);
    EXPECT_EQ(within.keys, Preconditioning::none);
    EXPECT_FALSE(within.center_values);
    data.window = 4;
    const HeadPreconditioner beyond = octopus::fit_preconditioner(Preconditioning::automatic, data, codec, codec);
    EXPECT_NE(beyond.keys, Preconditioning::none);
}

TEST(PreconditionerFit, CausalPositionsLimitWhatEachQuerySees) {
    // A query at position 0 sees only key 0: every candidate gives it KL 0, so with all queries at
    // position 0 auto has nothing to gain and keeps none.
    const std::size_t d = 64, n = 64, m = 16;
    const Codec codec = octopus::make_codec("turboquant", {d, 2, 1});
    const auto keys = offset_keys(n, d, 71, 4.0f);
    const auto queries = scaled(octopus::uniform_unit_vectors(m, d, 72), 6.0f);
    const std::vector<std::size_t> first(m, 0), last(m, n - 1);
    EXPECT_EQ(octopus::fit_preconditioner(Preconditioning::automatic, {d, keys, {}, queries, first, 0.0f}, codec, codec).keys,
              Preconditioning::none);
    EXPECT_NE(octopus::fit_preconditioner(Preconditioning::automatic, {d, keys, {}, queries, last, 0.0f}, codec, codec).keys,
              Preconditioning::none);
}

TEST(PreconditionerFit, IsRobustToShortPromptsConstantChannelsAndMissingQueries) {
    const std::size_t d = 64;
    const Codec codec = octopus::make_codec("octopus", {d, 3, 1});
    // Fewer than kMinFitTokens keys: the identity, whatever the mode.
    const auto few = offset_keys(octopus::kMinFitTokens - 1, d, 81, 4.0f);
    const auto queries = octopus::uniform_unit_vectors(8, d, 82);
    for (Preconditioning mode : {Preconditioning::center, Preconditioning::scale, Preconditioning::automatic}) {
        const HeadPreconditioner p = octopus::fit_preconditioner(mode, {d, few, few, queries, {}, 0.0f}, codec, codec);
        EXPECT_EQ(p.keys, Preconditioning::none);
        EXPECT_EQ(p.key_offset, std::vector<float>(d, 0.0f));
        EXPECT_EQ(p.value_offset, std::vector<float>(d, 0.0f));
    }
    // Channels that never vary (and a query channel that is always 0): finite, positive scales.
    auto keys = offset_keys(100, d, 83, 1.0f);
    auto q = octopus::uniform_unit_vectors(50, d, 84);
    for (std::size_t t = 0; t < 100; ++t) keys[t * d + 5] = 2.5f, keys[t * d + 9] = 0.0f;
    for (std::size_t i = 0; i < 50; ++i) q[i * d + 9] = 0.0f, q[i * d + 12] = 0.0f;
    const HeadPreconditioner p = octopus::fit_preconditioner(Preconditioning::scale, {d, keys, {}, q, {}, 0.0f});
    EXPECT_NO_THROW(p.check());
    EXPECT_NO_THROW(HeadCodec(codec, codec, p));
    // All keys equal: scales stay 1.
    const std::vector<float> same(100 * d, 1.0f);
    EXPECT_EQ(octopus::fit_preconditioner(Preconditioning::scale, {d, same, {}, q, {}, 0.0f}).key_scale, std::vector<float>(d, 1.0f));
    // Scale needs queries; auto without them compares key errors and still centres offset keys.
    try {
        octopus::fit_preconditioner(Preconditioning::scale, {d, keys, {}, {}, {}, 0.0f});
        FAIL() << "scale without queries";
    } catch (const octopus::error& e) {
        EXPECT_NE(std::string(e.what()).find("queries"), std::string::npos) << e.what();
    }
    const auto offset = offset_keys(200, d, 85, 4.0f);
    EXPECT_EQ(octopus::fit_preconditioner(Preconditioning::automatic, {d, offset, {}, {}, {}, 0.0f}, codec, codec).keys,
              Preconditioning::center);
}

TEST(PreconditionerFit, RefusesBadInputSayingWhat) {
    const std::size_t d = 64;
    const Codec codec = octopus::make_codec("turboquant", {d, 3, 1});
    auto keys = offset_keys(64, d, 91, 1.0f);
    const auto queries = octopus::uniform_unit_vectors(8, d, 92);
    const auto expect_error = [&](const PreconditionerFitData& data, const std::string& words) {
        try {
            octopus::fit_preconditioner(Preconditioning::automatic, data, codec, codec);
            ADD_FAILURE() << "no error for " << words;
        } catch (const octopus::error& e) {
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
    };
    expect_error({d, std::span<const float>(keys.data(), 10), {}, {}, {}, 0.0f}, "key floats");
    expect_error({d, keys, std::span<const float>(keys.data(), d), {}, {}, 0.0f}, "values have");
    expect_error({d, keys, {}, std::span<const float>(queries.data(), 5), {}, 0.0f}, "query floats");
    const std::vector<std::size_t> positions(3, 0);
    expect_error({d, keys, {}, queries, positions, 0.0f}, "query positions");
    expect_error({d, keys, {}, queries, {}, -1.0f}, "attention scale");
    expect_error({0, keys, {}, {}, {}, 0.0f}, "head dim");
    keys[5 * d + 1] = INFINITY;
    expect_error({d, keys, {}, {}, {}, 0.0f}, "key row 5");
    keys[5 * d + 1] = 0.0f;
    const Codec other = octopus::make_codec("turboquant", {128, 3, 1});
    EXPECT_THROW(octopus::fit_preconditioner(Preconditioning::automatic, {d, keys, {}, {}, {}, 0.0f}, other, other), octopus::error);
    EXPECT_THROW(octopus::fit_preconditioner(Preconditioning::automatic, {d, keys, {}, {}, {}, 0.0f}), octopus::error);
    EXPECT_EQ(octopus::parse_preconditioning("auto"), Preconditioning::automatic);
    EXPECT_EQ(octopus::parse_preconditioning("scale"), Preconditioning::scale);
    EXPECT_THROW(octopus::parse_preconditioning("centre"), octopus::error);
}

}  // namespace
