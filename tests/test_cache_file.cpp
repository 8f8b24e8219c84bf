// The cache file format (cache_file.hpp): round trips through buffers and streams, every refusal with
// its message and the caller's output untouched, and a file written by format version 1 that every
// later build must keep reading.
#include <octopus/cache_file.hpp>
#include <octopus/octopus.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using octopus::CacheLayout;
using octopus::CodecSpec;
using octopus::NormFormat;

const CodecSpec kSpec{64, 8.0 / 3, 7, NormFormat::fp16};

std::vector<std::uint8_t> records(std::size_t n) {
    const auto codec = octopus::make_codec("octopus", kSpec);
    return codec.encode(std::span<const float>(octopus::uniform_unit_vectors(n, 64, 3)));
}

/// Expects load_cache to throw a message containing `fragment` and to leave `out` as it was.
void expect_refusal(const std::vector<std::uint8_t>& file, std::string_view codec, const CodecSpec& spec, CacheLayout layout,
                    const std::string& fragment) {
    std::vector<std::uint8_t> out = {1, 2, 3};
    try {
        octopus::load_cache(file, codec, spec, out, layout);
        FAIL() << "accepted; expected a refusal mentioning '" << fragment << "'";
    } catch (const octopus::error& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
    EXPECT_EQ(out, (std::vector<std::uint8_t>{1, 2, 3})) << "the caller's output changed on a refusal";
}

TEST(CacheFile, RoundTripsThroughBuffersAndStreams) {
    const auto payload = records(32);
    for (CacheLayout layout : {CacheLayout{0}, CacheLayout{16}}) {
        const auto file = octopus::save_cache("octopus", kSpec, payload, layout);
        std::vector<std::uint8_t> back;
        octopus::load_cache(file, "octopus", kSpec, back, layout);
        EXPECT_EQ(back, payload);
        std::stringstream stream;
        octopus::save_cache(stream, "octopus", kSpec, payload, layout);
        std::vector<std::uint8_t> from_stream;
        octopus::load_cache(stream, "octopus", kSpec, from_stream, layout);
        EXPECT_EQ(from_stream, payload);
    }
    std::vector<std::uint8_t> none = {9};
    octopus::load_cache(octopus::save_cache("turboquant", {128, 3, 1}, {}), "turboquant", {128, 3, 1}, none);
    EXPECT_TRUE(none.empty());
}

TEST(CacheFile, RefusesWhatTheReaderDidNotWriteAndSaysWhat) {
    const auto file = octopus::save_cache("octopus", kSpec, records(32), CacheLayout{16});
    const CacheLayout paged{16};
    auto bad = file;
    bad[0] = 'X';
    expect_refusal(bad, "octopus", kSpec, paged, "not an octopus cache file");
    expect_refusal({}, "octopus", kSpec, paged, "not an octopus cache file");
    bad = file;
    bad[8] = 2;  // version 2
    expect_refusal(bad, "octopus", kSpec, paged, "format version 2 is unknown");
    bad = file;
    bad[30] ^= 0x10;  // inside the seed: the header checksum catches it
    expect_refusal(bad, "octopus", kSpec, paged, "header's checksum fails");
    expect_refusal(file, "octopus-paper", kSpec, paged, "codec differs");
    expect_refusal(file, "turboquant", {64, 3, 7, NormFormat::fp16}, paged, "codec differs");
    expect_refusal(file, "octopus", {128, 8.0 / 3, 7, NormFormat::fp16}, paged, "head dim differs");
    expect_refusal(file, "octopus", {64, 3, 7, NormFormat::fp16}, paged, "bits differs");
    expect_refusal(file, "octopus", {64, 8.0 / 3, 8, NormFormat::fp16}, paged, "rotation seed differs");
    expect_refusal(file, "octopus", {64, 8.0 / 3, 7, NormFormat::fp32}, paged, "norm format differs");
    expect_refusal(file, "octopus", kSpec, CacheLayout{0}, "layout differs");
    expect_refusal(file, "octopus", kSpec, CacheLayout{8}, "layout differs");
    expect_refusal(file, "octopus", {64, 8.0 / 3, 8, NormFormat::fp16}, paged,
                   "it was written as octopus d=64 b=8/3 seed=7 fp16 norms, pages of 16 tokens, the reader expects octopus "
                   "d=64 b=8/3 seed=8");
    bad = file;
    bad.pop_back();
    expect_refusal(bad, "octopus", kSpec, paged, "truncated or overlong");
    bad = file;
    bad.push_back(0);
    expect_refusal(bad, "octopus", kSpec, paged, "truncated or overlong");
    bad.assign(file.begin(), file.begin() + 40);
    expect_refusal(bad, "octopus", kSpec, paged, "truncated");
    bad = file;
    bad[bad.size() - 5] ^= 1;
    expect_refusal(bad, "octopus", kSpec, paged, "payload's checksum fails");
}

TEST(CacheFile, SaveRefusesPartialRecordsAndPartialPages) {
    const auto payload = records(32);
    EXPECT_THROW(octopus::save_cache("octopus", kSpec, std::span<const std::uint8_t>(payload.data(), payload.size() - 1)), octopus::error);
    EXPECT_THROW(octopus::save_cache("octopus", kSpec, payload, CacheLayout{24}), octopus::error);
    EXPECT_THROW(octopus::save_cache("zip", kSpec, payload), octopus::error);
}

TEST(CacheFile, ReadsTheVersion1GoldenFile) {
    // tests/data/cache_v1.octkv: 32 records of octopus d=64 b=8/3 seed 7 fp16 norms in pages of 16, written by
    // format version 1 (2026-12-04). Later builds must keep reading it.
    std::ifstream in(OCTOPUS_TEST_DATA "/cache_v1.octkv", std::ios::binary);
    ASSERT_TRUE(in) << "missing " OCTOPUS_TEST_DATA "/cache_v1.octkv";
    std::vector<std::uint8_t> back;
    octopus::load_cache(in, "octopus", kSpec, back, CacheLayout{16});
    EXPECT_EQ(back, records(32));
}

}  // namespace

