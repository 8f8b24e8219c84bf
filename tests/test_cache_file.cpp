// The cache file format (cache_file.hpp): round trips through buffers and streams, every refusal with
// its message and the caller's output untouched, and golden files of each format version that later
// builds must keep reading (or, for codes whose codebook changed since, refuse by name).
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

std::size_t record_size() { return octopus::make_codec("octopus", kSpec).bytes_per_vector(); }

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
    bad[8] = 3;  // version 3
    expect_refusal(bad, "octopus", kSpec, paged, "format version 3 is unknown");
    bad = file;
    bad[36] ^= 0x10;  // inside the seed: the header checksum catches it
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

TEST(CacheFile, ReadsTheGoldenFilesOfEachVersion) {
    const auto read = [](const char* name) {
        std::ifstream in(std::string(OCTOPUS_TEST_DATA "/") + name, std::ios::binary);
        EXPECT_TRUE(in) << "missing " << name;
        return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    };
    // cache_v2.octkv: 32 records of octopus d=64 b=8/3 seed 7 fp16 norms in pages of 16, format version 2
    // (2026-12-05, codebook revision 2). Later builds must keep reading it.
    std::vector<std::uint8_t> back;
    octopus::load_cache(read("cache_v2.octkv"), "octopus", kSpec, back, CacheLayout{16});
    EXPECT_EQ(back, records(32));
    // cache_v1_turboquant.octkv: 32 records of turboquant d=64 b=3 seed 7 fp16 norms in pages of 16, written by
    // format version 1 (the library of 2026-12-04): TurboQuant's codebook has not changed, so it loads.
    const CodecSpec turbo{64, 3, 7, NormFormat::fp16};
    octopus::load_cache(read("cache_v1_turboquant.octkv"), "turboquant", turbo, back, CacheLayout{16});
    EXPECT_EQ(back, octopus::make_codec("turboquant", turbo).encode(std::span<const float>(octopus::uniform_unit_vectors(32, 64, 3))));
    // cache_v1.octkv: the same as cache_v2.octkv written by format version 1, whose octopus codes meant the
    // codebook before v2: refused, the output untouched.
    expect_refusal(read("cache_v1.octkv"), "octopus", kSpec, CacheLayout{16}, "codebook revision 1 (format version 1)");
}

TEST(CacheFile, CodebookRevisionsAreNamedAndWritten) {
    EXPECT_EQ(octopus::codebook_revision("octopus"), 2u);
    EXPECT_EQ(octopus::codebook_revision("turboquant"), 1u);
    EXPECT_THROW(octopus::codebook_revision("zip"), octopus::error);
    // A version-2 header whose revision field is changed (checksum recomputed) is refused by name.
    auto file = octopus::save_cache("octopus", kSpec, records(16));
    const std::size_t at = 8 + 4 + 2 + 7;  // magic, version, name length, "octopus"
    ASSERT_EQ(file[at], 2);
    file[at] = 3;
    const std::size_t hashed = file.size() - 16 * record_size() - 8;
    const std::uint64_t h = XXH64(file.data(), hashed, 0);
    for (int i = 0; i < 8; ++i) file[hashed + i] = static_cast<std::uint8_t>(h >> (8 * i));
    expect_refusal(file, "octopus", kSpec, {}, "codebook revision 3 (format version 2)");
}

}  // namespace

