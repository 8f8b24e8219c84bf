// Golden hashes: the bytes every codec writes, and the floats it decodes and scores, for a fixed input
// set at every rate, at a spread of supported head dims and with both norm formats. A change of
// rotation, codebook, search, packing or rounding anywhere shows here as a hash mismatch.
//
// Codes must match on every build; the decoded and scored floats are pinned for the reference build's
// flags (g++ -O3 -march=x86-64-v3 -mtune=znver3, tests/CMakeLists.txt), since where multiply-adds fuse
// changes their last bits, and -march=native would tune that to the host. The table lives in golden_hashes.inc. After a change that is meant to change codes (a new codebook,
// say), regenerate it and review the diff:
//
//     build/tests/test_golden --print > tests/golden_hashes.inc
#include <octopus/octopus.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

struct Golden {
    const char* codec;
    std::size_t dim;
    double bits;
    const char* norm;
    std::uint64_t codes, decoded, scores;
};

const Golden kGolden[] = {
#include "golden_hashes.inc"
};

// The determinism builds (another compiler, -O0, no AVX2: tests/CMakeLists.txt) compare codes only.
#if defined(OCTOPUS_GOLDEN_CODES_ONLY)
constexpr bool kCompareFloats = false;
#else
constexpr bool kCompareFloats = true;
#endif

const std::size_t kDims[] = {32, 48, 64, 80, 96, 112, 128, 160, 192, 256, 1024};

std::vector<double> rates(const std::string& codec) {
    if (codec == "octopus" || codec == "octopus-paper") return {1, 4.0 / 3, 5.0 / 3, 2, 7.0 / 3, 8.0 / 3, 3, 10.0 / 3, 11.0 / 3, 4};
    if (codec == "uniform") return {1, 2, 3, 4, 5, 6, 7, 8};
    return {1, 2, 3, 4};
}

/// Uniform unit keys, a one-hot key, an all-ones key, a key with one outlier channel, a zero key and
/// large and tiny norms: what the codecs must all handle the same way on every build.
std::vector<float> golden_keys(std::size_t d) {
    std::vector<float> keys = octopus::uniform_unit_vectors(12, d, 7);
    std::vector<float> extra(6 * d, 0.0f);
    extra[0] = 1.0f;                                                   // one-hot
    for (std::size_t j = 0; j < d; ++j) extra[d + j] = 0.25f;          // all-ones
    const auto noise = octopus::uniform_unit_vectors(3, d, 8);
    for (std::size_t j = 0; j < d; ++j) extra[2 * d + j] = noise[j] + (j == 3 ? 20.0f : 0.0f);  // outlier channel
    for (std::size_t j = 0; j < d; ++j) extra[4 * d + j] = 300.0f * noise[d + j];              // large norm
    for (std::size_t j = 0; j < d; ++j) extra[5 * d + j] = 1e-3f * noise[2 * d + j];           // small norm
    keys.insert(keys.end(), extra.begin(), extra.end());                                        // row 3 of extra: zero
    return keys;
}

std::uint64_t float_hash(const std::vector<float>& x) {
    std::vector<std::uint8_t> bytes(x.size() * sizeof(float));
    std::memcpy(bytes.data(), x.data(), bytes.size());
    return octopus_test::fnv1a(bytes);
}

Golden measure(const char* codec, std::size_t d, double bits, octopus::NormFormat norm) {
    const octopus::Codec c = octopus::make_codec(codec, {d, bits, 42, norm});
    const auto keys = golden_keys(d);
    const auto packed = c.encode(std::span<const float>(keys));
    const auto query = octopus::uniform_unit_vectors(1, d, 9);
    return {codec, d, bits, norm == octopus::NormFormat::fp32 ? "fp32" : "fp16", octopus_test::fnv1a(packed),
            float_hash(c.decode(packed)), float_hash(c.dot(query, packed))};
}

template <class F>
void for_each_case(F f) {
    for (const std::string& name : octopus::codec_names())
        for (std::size_t d : kDims)
            for (double bits : rates(name))
                for (octopus::NormFormat norm : {octopus::NormFormat::fp32, octopus::NormFormat::fp16}) f(name, d, bits, norm);
}

TEST(Golden, EveryCodecWritesDecodesAndScoresThePinnedBits) {
    std::size_t checked = 0;
    for_each_case([&](const std::string& name, std::size_t d, double bits, octopus::NormFormat norm) {
        const Golden now = measure(name.c_str(), d, bits, norm);
        const Golden* pinned = nullptr;
        for (const Golden& g : kGolden)
            if (name == g.codec && g.dim == d && g.bits == bits && std::strcmp(g.norm, now.norm) == 0) pinned = &g;
        ASSERT_NE(pinned, nullptr) << name << " d " << d << " bits " << bits << " " << now.norm
                                   << " has no pinned hash: regenerate golden_hashes.inc (see the header)";
        EXPECT_EQ(now.codes, pinned->codes) << name << " d " << d << " bits " << bits << " " << now.norm << ": codes";
        if (kCompareFloats) {
            EXPECT_EQ(now.decoded, pinned->decoded) << name << " d " << d << " bits " << bits << " " << now.norm << ": decode";
            EXPECT_EQ(now.scores, pinned->scores) << name << " d " << d << " bits " << bits << " " << now.norm << ": dot";
        }
        ++checked;
    });
    EXPECT_EQ(checked, std::size(kGolden)) << "the table pins cases this test no longer makes";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::string(argv[1]) == "--print") {
        std::printf("// codec, dim, bits, norm, FNV-1a of the codes, of the decoded floats, of the dot scores.\n");
        std::printf("// Written by `build/tests/test_golden --print > tests/golden_hashes.inc` (see test_golden.cpp).\n");
        for_each_case([](const std::string& name, std::size_t d, double bits, octopus::NormFormat norm) {
            const Golden g = measure(name.c_str(), d, bits, norm);
            std::printf("{\"%s\", %zu, %.17g, \"%s\", 0x%016llxULL, 0x%016llxULL, 0x%016llxULL},\n", g.codec, g.dim, g.bits, g.norm,
                        static_cast<unsigned long long>(g.codes), static_cast<unsigned long long>(g.decoded),
                        static_cast<unsigned long long>(g.scores));
        });
        return 0;
    }
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
