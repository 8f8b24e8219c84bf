// The limits each API states, and a clear refusal past them, with no size arithmetic that wraps:
// head dims up to kMaxDim, bit widths, and counts near 2^31 and 2^63 wherever a size is computed
// from them (batched calls, cache files, .npy shapes, synthetic keys). Buffers "near 2^63 bytes"
// are spans over a small real buffer: every check happens before a byte is read, so a refusal
// touches only the sizes; each test also checks that the output is unchanged.
#include <npy.hpp>
#include <octopus/cache_file.hpp>
#include <octopus/codec_config.hpp>
#include <octopus/synthetic.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kHuge[] = {std::size_t{1} << 31, (std::size_t{1} << 31) + 1, std::size_t{1} << 32, std::size_t{1} << 62,
                                 std::size_t{1} << 63, std::numeric_limits<std::size_t>::max()};

template <class F>
void expect_refusal(F f, const std::string& fragment) {
    try {
        f();
        ADD_FAILURE() << "accepted; expected a refusal mentioning '" << fragment << "'";
    } catch (const octopus::error& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

TEST(Limits, HeadDimsUpToKMaxDimAndNoFurther) {
    for (const std::string& name : octopus::codec_names()) {
        EXPECT_EQ(octopus::make_codec(name, {octopus::kMaxDim, 2, 1}).dim(), octopus::kMaxDim) << name;
        for (std::size_t d : {octopus::kMaxDim + 1, 2 * octopus::kMaxDim, std::size_t{0}, std::size_t{31}})
            expect_refusal([&] { (void)octopus::make_codec(name, {d, 2, 1}); }, "head dim " + std::to_string(d) + " is not supported");
        for (std::size_t d : kHuge)
            expect_refusal([&] { (void)octopus::make_codec(name, {d, 2, 1}); }, "head dim " + std::to_string(d) + " is not supported");
    }
}

TEST(Limits, BitWidthsOutOfRangeAreRefusedNamingTheBits) {
    const double bad[] = {0.0, -1.0, 0.5, 9.0, 1e300, 2147483648.0, std::numeric_limits<double>::quiet_NaN(),
                          std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
    for (const std::string& name : octopus::codec_names())
        for (double bits : bad)
            expect_refusal([&] { (void)octopus::make_codec(name, {128, bits, 1}); }, name + ": ");
    expect_refusal([] { (void)octopus::make_codec("turboquant", {128, 5, 1}); }, "turboquant: bits 5 is not one of 1, 2, 3, 4");
    expect_refusal([] { (void)octopus::make_codec("octopus", {128, 4.34, 1}); }, "(13 bits per triplet) is outside 3..12");
    expect_refusal([] { (void)octopus::make_codec("uniform", {128, 9, 1}); }, "is not one of 1, 2, 3, 4, 5, 6, 7, 8");
}

TEST(Limits, BatchedCallsCompareSizesNearTwoToThe63WithoutWrapping) {
    for (const char* text : {"turboquant:dim=64,bits=1", "octopus:dim=128,bits=3", "uniform:dim=32,bits=8,norm=fp16"}) {
        const octopus::Codec codec = octopus::make_codec(octopus::parse_codec_config(text));
        const std::size_t d = codec.dim(), bytes = codec.bytes_per_vector();
        std::vector<float> floats(4 * d, 0.5f);
        std::vector<std::uint8_t> packed = codec.encode(std::span<const float>(floats.data(), d));
        packed.resize(4 * bytes, 0);
        const auto floats_before = floats;
        const auto packed_before = packed;
        for (std::size_t count : kHuge) {
            // encode: keys claim `count` rows (or as many as a span can), the packed buffer holds one.
            const std::size_t rows = std::min(count, std::numeric_limits<std::size_t>::max() / 4 / d);
            expect_refusal([&] { codec.encode(std::span<const float>(floats.data(), rows * d), std::span<std::uint8_t>(packed.data(), bytes)); },
                           "encode: packed buffer has " + std::to_string(bytes) + " bytes, " + std::to_string(rows) + " vectors need");
            // decode and dot: records claim `count` vectors, the outputs hold one.
            const std::size_t records = std::min(count, std::numeric_limits<std::size_t>::max() / bytes);
            const std::span<const std::uint8_t> claimed(packed.data(), records * bytes);
            expect_refusal([&] { codec.decode(claimed, std::span<float>(floats.data(), d)); },
                           "decode: output has " + std::to_string(d) + " floats, " + std::to_string(records) + " vectors need");
            expect_refusal([&] { codec.dot(std::span<const float>(floats.data(), d), claimed, std::span<float>(floats.data() + d, 1)); },
                           "dot: scores has 1 floats, " + std::to_string(records) + " vectors need as many");
            // A size one byte past whole records.
            expect_refusal([&] { codec.decode(std::span<const std::uint8_t>(packed.data(), records * bytes - 1), std::span<float>(floats)); },
                           "is not a whole number of");
        }
        EXPECT_EQ(floats, floats_before) << text;
        EXPECT_EQ(packed, packed_before) << text;
    }
}

TEST(Limits, CacheFileRecordCountsNearTwoToThe64AreRefused) {
    const octopus::CodecSpec spec{64, 3, 7};
    const auto codec = octopus::make_codec("octopus", spec);
    const auto payload = codec.encode(std::span<const float>(octopus::uniform_unit_vectors(4, 64, 1)));
    const auto file = octopus::save_cache("octopus", spec, payload);
    // The record count sits after magic 8, version 4, name length 2, "octopus" 7, codebook revision 4, dim 4, bits 4,
    // seed 8, norm 1, layout 1, page size 4, record size 4; the header checksum covers all before it.
    constexpr std::size_t kRecords = 51, kHeaderHash = kRecords + 16;
    for (std::uint64_t count : {std::uint64_t{1} << 31, std::uint64_t{1} << 63, ~std::uint64_t{0}, ~std::uint64_t{0} / codec.bytes_per_vector()}) {
        auto bad = file;
        for (int i = 0; i < 8; ++i) bad[kRecords + i] = static_cast<std::uint8_t>(count >> (8 * i));
        const std::uint64_t hash = XXH64(bad.data(), kHeaderHash, 0);
        for (int i = 0; i < 8; ++i) bad[kHeaderHash + i] = static_cast<std::uint8_t>(hash >> (8 * i));
        std::vector<std::uint8_t> out = {7};
        expect_refusal([&] { octopus::load_cache(bad, "octopus", spec, out); },
                       std::to_string(count) + " records of " + std::to_string(codec.bytes_per_vector()) + " need");
        EXPECT_EQ(out, std::vector<std::uint8_t>{7});
    }
}

TEST(Limits, NpyShapesBeyondTheFileAreRefusedBeforeAllocating) {
    const auto npy = [](const std::string& shape, std::size_t data_bytes) {
        std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
        while ((10 + header.size() + 1) % 64) header += ' ';
        header += '\n';
        return std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size() & 0xff) + static_cast<char>(header.size() >> 8) +
               header + std::string(data_bytes, '\0');
    };
    const std::pair<std::string, std::string> cases[] = {
        {"(2147483648, 2)", "needs more than the file's 32 bytes of data (truncated"},
        {"(4, 2147483649)", "needs more than the file's 32 bytes of data (truncated"},
        {"(9223372036854775807, 2)", "needs more than the file's 32 bytes"},
        {"(4294967296, 4294967296)", "needs more than the file's 32 bytes"},
        {"(18446744073709551615,)", "needs more than the file's 32 bytes"},
        {"(18446744073709551616,)", "overflows"},
        {"(99999999999999999999999999, 0)", "overflows"},
        {"(3,)", "the header promises 12 bytes of data, the file has 32 (trailing bytes)"},
        {"(16,)", "shape (16,) needs more than the file's 32 bytes of data"},
    };
    for (const auto& [shape, fragment] : cases) {
        std::istringstream stream(npy(shape, 32));
        expect_refusal([&] { (void)octopus::sweep::read_npy(stream, "x.npy"); }, fragment);
    }
    std::istringstream empty(npy("(0, 4294967296)", 0));
    EXPECT_EQ(octopus::sweep::read_npy(empty, "empty.npy").data.size(), 0u);
}

TEST(Limits, SyntheticKeysRefuseCountsNoVectorHolds) {
    for (std::size_t n : {std::size_t{1} << 62, std::size_t{1} << 63, std::numeric_limits<std::size_t>::max()})
        expect_refusal([&] { (void)octopus::uniform_unit_vectors(n, 1024, 1); }, "exceed the largest float vector");
    EXPECT_EQ(octopus::uniform_unit_vectors(0, 1024, 1).size(), 0u);
}

}  // namespace
