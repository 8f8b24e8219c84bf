// The scan layout (scan_keys.hpp), lookup-table scoring (scan_scores.hpp) and attention over it
// (scan_attention.hpp): records come back byte for byte; scores equal their definition (integer sums
// of the 8-bit tables, recomputed here from unpacked codes) to the bit and stay within the stated
// bound of the exact score from the codes; attention equals a double-precision softmax·V on those
// scores; bad input is refused and changes nothing. Built twice: with AVX2 and without.
#include <octopus/octopus.hpp>
#include <octopus/packing.hpp>
#include <octopus/scan_attention.hpp>

#include <gtest/gtest.h>

#include "support.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace {

using octopus::CodecSpec;
using octopus::NormFormat;
using octopus_test::spread_keys;

TEST(ScanKeys, HoldTheRecordsByteForByte) {
    for (std::size_t d : {64u, 80u, 128u}) {
        for (int bits = 1; bits <= 4; ++bits)
            for (NormFormat norm : {NormFormat::fp32, NormFormat::fp16}) {
                const octopus::TurboQuant codec(CodecSpec{d, double(bits), 5, norm});
                const auto records = codec.encode(spread_keys(100, d, 7));
                octopus::ScanKeys keys(codec);
                const std::size_t r = codec.bytes_per_vector();
                // Three appends that start and end inside blocks.
                keys.append_records(std::span<const std::uint8_t>(records.data(), 31 * r));
                keys.append_records(std::span<const std::uint8_t>(records.data() + 31 * r, 2 * r));
                keys.append_records(std::span<const std::uint8_t>(records.data() + 33 * r, 67 * r));
                ASSERT_EQ(keys.size(), 100u);
                ASSERT_EQ(keys.blocks(), 4u);
                EXPECT_EQ(keys.bytes().size(), 128 * r) << "a block is 32 records' bytes";
                std::vector<std::uint8_t> back(r);
                for (std::size_t t = 0; t < 100; ++t) {
                    keys.record(t, back);
                    ASSERT_EQ(0, std::memcmp(back.data(), records.data() + t * r, r)) << "d " << d << " b " << bits << " token " << t;
                    EXPECT_EQ(keys.norm(t), octopus::detail::load_norm(records.data() + t * r + codec.code_bytes(), norm));
                }
                for (std::size_t i = 100 * r; i < 128 * r; ++i) {
                    const std::size_t in_block = i % (32 * r), t = in_block < 32 * codec.code_bytes()
                                                                         ? in_block % 32
                                                                         : (in_block - 32 * codec.code_bytes()) / (r - codec.code_bytes());
                    if (t >= 4) {
                        ASSERT_EQ(keys.bytes()[i], 0) << "padding tokens are zero";
                    }
                }
            }
    }
}

TEST(ScanKeys, RefuseBadRecordsAndKeepWhatTheyHeld) {
    const octopus::TurboQuant codec(CodecSpec{64, 3, 1});
    auto records = codec.encode(spread_keys(40, 64, 2));
    octopus::ScanKeys keys(codec);
    keys.append_records(std::span<const std::uint8_t>(records.data(), 5 * codec.bytes_per_vector()));
    const std::vector<std::uint8_t> before(keys.bytes().begin(), keys.bytes().end());
    const auto expect = [&](auto call, const std::string& fragment) {
        octopus_test::expect_refusal(call, fragment, [&] {
            EXPECT_EQ(keys.size(), 5u);
            EXPECT_EQ(std::vector<std::uint8_t>(keys.bytes().begin(), keys.bytes().end()), before);
        });
    };
    expect([&] { keys.append_records(std::span<const std::uint8_t>(records.data(), 7)); }, "not a whole number of 28-byte records");
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(records.data() + 17 * codec.bytes_per_vector() + codec.code_bytes(), &nan, 4);
    expect([&] { keys.append_records(records); }, "record 17 is damaged");
    std::vector<float> bad(64, 1.0f);
    bad[3] = std::numeric_limits<float>::infinity();
    expect([&] { keys.append(bad); }, "non-finite value at coordinate 3");
    std::vector<std::uint8_t> out(codec.bytes_per_vector());
    expect([&] { keys.record(5, out); }, "token 5 of 5");
    std::vector<std::uint8_t> short_out(3);
    expect([&] { keys.record(0, short_out); }, "output has 3 bytes");
}

/// The definition of a scan score: unpack the token's codes, look each lookup's entry up, add them as
/// integers, then |k| · fma(step, sum, base).
float defined_score(const octopus::ScanQuery& query, const octopus::TurboQuant& codec, const std::uint8_t* record) {
    const std::size_t d = codec.dim();
    const unsigned b = codec.bits();
    std::vector<std::uint32_t> codes(d);
    octopus::unpack_codes(std::span<const std::uint8_t>(record, codec.code_bytes()), b, codes);
    const std::size_t per = b == 3 ? 1 : 4 / b;
    std::uint32_t sum = 0;
    for (std::size_t j = 0; j < query.lookups(); ++j) {
        std::uint32_t index = 0;
        for (std::size_t m = 0; m < per; ++m) index |= codes[j * per + m] << (m * b);
        sum += query.entries(j)[index];
        EXPECT_EQ(query.entries(j)[index], query.entries(j)[16 + index]) << "both halves of a table agree";
    }
    const float norm = octopus::detail::load_norm(record + codec.code_bytes(), codec.norm_format());
    return norm * std::fma(query.step(), static_cast<float>(sum), query.base());
}

TEST(ScanScores, EqualTheirDefinitionAndStayWithinTheBoundOfTheExactScore) {
    for (std::size_t d : {64u, 128u, 1024u})  // 1024: more lookups than one 16-bit accumulation holds
        for (int bits = 1; bits <= 4; ++bits) {
            const octopus::TurboQuant codec(CodecSpec{d, double(bits), 3, NormFormat::fp16});
            const std::size_t n = d == 1024 ? 70 : 333;
            const auto records = codec.encode(spread_keys(n, d, 8));
            octopus::ScanKeys keys(codec);
            keys.append_records(records);
            const auto q = octopus::uniform_unit_vectors(3, d, 9);
            for (std::size_t i = 0; i < 3; ++i) {
                std::vector<float> query(q.begin() + i * d, q.begin() + (i + 1) * d);
                for (float& x : query) x *= 3.0f;  // a query of norm 3
                const octopus::ScanQuery tables(codec, query);
                std::vector<float> scores(n), exact(n);
                octopus::scan_scores(tables, keys, scores);
                codec.dot(query, records, exact);
                double worst = 0.0, squared = 0.0;
                for (std::size_t t = 0; t < n; ++t) {
                    const std::uint8_t* record = records.data() + t * codec.bytes_per_vector();
                    ASSERT_EQ(scores[t], defined_score(tables, codec, record)) << "d " << d << " b " << bits << " token " << t;
                    const double norm = keys.norm(t), error = std::fabs(double(scores[t]) - exact[t]);
                    // The tables' rounding, plus float rounding of sums of d terms of size ≤ |q|·|k|.
                    ASSERT_LE(error, norm * (tables.max_error() + 1e-5 * 3.0)) << "d " << d << " b " << bits << " token " << t;
                    worst = std::max(worst, error / norm);
                    squared += error * error / (norm * norm);
                }
                // The rounding errors are independent: their sum is far inside the worst case.
                const double rms = std::sqrt(squared / double(n)), expected = tables.step() * std::sqrt(tables.lookups() / 12.0);
                EXPECT_LT(rms, 2.0 * expected) << "d " << d << " b " << bits;
                EXPECT_GT(tables.max_error(), 0.0f);
            }
        }
}

TEST(ScanScores, RefuseQueriesOfAnotherCodecAndBadSizes) {
    const octopus::TurboQuant codec(CodecSpec{64, 3, 1}), other(CodecSpec{64, 2, 1});
    octopus::ScanKeys keys(codec);
    keys.append(spread_keys(10, 64, 1));
    const auto q = octopus::uniform_unit_vectors(1, 64, 3);
    std::vector<float> out(10, 4.0f);
    const auto expect = [&](auto call, const std::string& fragment) {
        octopus_test::expect_refusal(call, fragment, [&] {
            EXPECT_EQ(out, std::vector<float>(10, 4.0f));
        });
    };
    expect([&] { octopus::scan_scores(octopus::ScanQuery(other, q), keys, out); }, "tables are for 2 bits at dim 64, the keys are 3 bits");
    expect([&] { octopus::scan_scores(octopus::ScanQuery(codec, q), keys, std::span<float>(out.data(), 9)); }, "output has 9 floats");
    expect([&] { octopus::ScanQuery(codec, std::span<const float>(q.data(), 63)); }, "query has 63 floats");
    auto bad = q;
    bad[5] = std::numeric_limits<float>::quiet_NaN();
    expect([&] { octopus::ScanQuery(codec, bad); }, "non-finite value at coordinate 5");
    std::vector<float> zero(64, 0.0f), scores(10);
    octopus::scan_scores(octopus::ScanQuery(codec, zero), keys, scores);
    EXPECT_EQ(scores, std::vector<float>(10, 0.0f)) << "a zero query scores zero";
}

/// softmax(scale · s)·V̂ in double, on the scan's own scores s.
std::vector<double> reference(const std::vector<float>& scores, std::size_t heads, const std::vector<float>& values, std::size_t d,
                              double scale) {
    const std::size_t n = values.size() / d;
    std::vector<double> out(heads * d, 0.0);
    for (std::size_t h = 0; h < heads && n > 0; ++h) {
        double top = -1e300, total = 0.0;
        for (std::size_t t = 0; t < n; ++t) top = std::max(top, scale * scores[h * n + t]);
        for (std::size_t t = 0; t < n; ++t) {
            const double w = std::exp(scale * scores[h * n + t] - top);
            total += w;
            for (std::size_t c = 0; c < d; ++c) out[h * d + c] += w * values[t * d + c];
        }
        for (std::size_t c = 0; c < d; ++c) out[h * d + c] /= total;
    }
    return out;
}

template <class V>
void expect_attention_matches(const octopus::TurboQuant& kc, const V& vc, std::size_t heads, std::size_t n, int threads) {
    const std::size_t d = kc.dim();
    const auto q = octopus::uniform_unit_vectors(heads, d, 21);
    octopus::ScanKeys keys(kc);
    keys.append(spread_keys(n, d, 22));
    auto values = octopus::uniform_unit_vectors(n, d, 23);
    const auto packed_values = vc.encode(std::span<const float>(values));
    const float scale = 3.0f / std::sqrt(float(d));
    std::vector<float> scores(heads * n);
    for (std::size_t h = 0; h < heads; ++h)
        octopus::scan_scores(octopus::ScanQuery(kc, std::span<const float>(q.data() + h * d, d)), keys,
                             std::span<float>(scores.data() + h * n, n));
    std::vector<float> out(heads * d, -7.0f);
    octopus::decode_attention(keys, vc, q, packed_values, scale, out, threads);
    const auto expected = reference(scores, heads, vc.decode(packed_values), d, scale);
    double worst = 0.0;
    for (std::size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::fabs(out[i] - expected[i]));
    EXPECT_LT(worst, 2e-5) << "b " << kc.bits() << " d " << d << " G " << heads << " n " << n << " threads " << threads;
}

TEST(ScanAttention, MatchesADoublePrecisionSoftmaxOfItsScoresForEveryRateGroupAndContext) {
    for (int bits = 1; bits <= 4; ++bits) {
        const octopus::TurboQuant kc(CodecSpec{128, double(bits), 4});
        for (std::size_t n : {0u, 1u, 31u, 32u, 64u, 65u, 1000u}) expect_attention_matches(kc, kc, 4, n, 1);
    }
    const octopus::TurboQuant kc(CodecSpec{80, 3, 4});
    const octopus::Octopus vc(CodecSpec{80, 2, 5});
    for (std::size_t heads : {1u, 3u, 7u, 16u})
        for (std::size_t n : {63u, 200u, 1000u})
            for (int threads : {1, 2, 3}) expect_attention_matches(kc, vc, heads, n, threads);
}

TEST(ScanAttention, RefusesBadArgumentsAndLeavesTheOutput) {
    const octopus::TurboQuant kc(CodecSpec{64, 3, 1});
    const octopus::Octopus vc(CodecSpec{64, 3, 1}), other(CodecSpec{128, 3, 1});
    octopus::ScanKeys keys(kc);
    keys.append(spread_keys(100, 64, 2));
    auto pv = vc.encode(std::span<const float>(octopus::uniform_unit_vectors(100, 64, 3)));
    const auto q = octopus::uniform_unit_vectors(2, 64, 1);
    std::vector<float> out(128, 5.0f);
    const auto expect = [&](auto call, const std::string& fragment) {
        octopus_test::expect_refusal(call, fragment, [&] {
            EXPECT_EQ(out, std::vector<float>(128, 5.0f));
        });
    };
    expect([&] { octopus::decode_attention(keys, other, q, pv, 1.0f, out); }, "differs from the value codec's 128");
    expect([&] { octopus::decode_attention(keys, vc, std::span<const float>(q.data(), 0), pv, 1.0f, out); }, "are not 1 to 16 rows");
    expect([&] { octopus::decode_attention(keys, vc, q, pv, 1.0f, std::span<float>(out.data(), 64)); }, "output has 64 floats");
    expect([&] { octopus::decode_attention(keys, vc, q, pv, std::numeric_limits<float>::quiet_NaN(), out); }, "scale is not finite");
    expect([&] { octopus::decode_attention(keys, vc, q, pv, 1.0f, out, 0); }, "threads must be at least 1");
    expect([&] { octopus::decode_attention(keys, vc, q, std::span<const std::uint8_t>(pv.data(), pv.size() - 1), 1.0f, out); },
           "are not 100 records");
    auto bad_q = q;
    bad_q[70] = std::numeric_limits<float>::infinity();
    expect([&] { octopus::decode_attention(keys, vc, bad_q, pv, 1.0f, out); }, "query 1 has a non-finite value at coordinate 6");
    const float negative = -1.0f;
    std::memcpy(pv.data() + 57 * vc.bytes_per_vector() + vc.code_bytes(), &negative, 4);
    for (int threads : {1, 2}) expect([&] { octopus::decode_attention(keys, vc, q, pv, 1.0f, out, threads); }, "record is damaged");
}

}  // namespace
