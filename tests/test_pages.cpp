// The paged cache's page format on the CPU (pages.hpp, PageLayout in contract.hpp): records stored in
// a head page come back byte for byte and leave every other byte alone; encode_page, decode_page and
// dot_page give exactly the codec's own encode, decode and dot; the layout is the one the contract
// states (an independent computation of every offset); bad input is refused and changes nothing.
#include <octopus/octopus.hpp>
#include <octopus/pages.hpp>

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

template <class C>
void check_codec(const C& codec, int tokens) {
    const std::size_t d = codec.dim(), record = codec.bytes_per_vector();
    const octopus::PageLayout layout = octopus::page_layout(codec, tokens);
    ASSERT_EQ(layout.code_bytes + layout.norm_bytes, static_cast<int>(record));
    ASSERT_EQ(layout.head_page_bytes() % 16, 0);
    // A page filled in three encodes that start and end inside it; the bytes the layout puts nowhere
    // would be the junk 0xEE, but there are none: codes and norms tile the page exactly.
    std::vector<std::uint8_t> page(static_cast<std::size_t>(layout.head_page_bytes()), 0xEE);
    const auto x = spread_keys(static_cast<std::size_t>(tokens), d, 11 + tokens);
    const int cuts[] = {0, 5, tokens - 3, tokens};
    for (int i = 0; i < 3; ++i)
        octopus::encode_page(codec, layout, std::span<const float>(x.data() + cuts[i] * d, (cuts[i + 1] - cuts[i]) * d),
                             std::span<std::uint8_t>(page), cuts[i]);
    const auto expected = codec.encode(x);
    // The layout, computed independently: groups of 16 slots, 16 records' bytes each; in group g, the
    // codes of slot 16g + i at i·code_bytes, the norms after all 16 codes.
    const std::size_t cb = codec.code_bytes(), nb = record - cb;
    for (int s = 0; s < tokens; ++s) {
        const std::uint8_t* group = page.data() + s / 16 * 16 * record;
        ASSERT_EQ(0, std::memcmp(group + s % 16 * cb, expected.data() + s * record, cb)) << "codes of slot " << s;
        ASSERT_EQ(0, std::memcmp(group + 16 * cb + s % 16 * nb, expected.data() + s * record + cb, nb))
            << "norm of slot " << s;
    }
    std::vector<std::uint8_t> back(expected.size());
    octopus::load_records(layout, page, 0, back);
    EXPECT_EQ(back, expected);

    std::vector<float> decoded(x.size()), scores(tokens), expected_scores(tokens);
    octopus::decode_page(codec, layout, page, 0, decoded);
    EXPECT_EQ(decoded, codec.decode(expected));
    const std::vector<float> q(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(d));
    octopus::dot_page(codec, layout, q, page, 0, scores);
    codec.dot(q, expected, expected_scores);
    EXPECT_EQ(scores, expected_scores);
    // A run of slots from the middle.
    std::vector<float> middle(3), expected_middle(3);
    octopus::dot_page(codec, layout, q, page, 7, middle);
    for (int i = 0; i < 3; ++i) expected_middle[i] = expected_scores[7 + i];
    EXPECT_EQ(middle, expected_middle);
}

TEST(Pages, HoldTheCodecsRecordsByteForByte) {
    for (std::size_t d : {64u, 128u, 256u})
        for (int tokens : {16, 32, 64})
            for (NormFormat norm : {NormFormat::fp32, NormFormat::fp16}) {
                for (double bits : {2.0, 3.0, 4.0}) check_codec(octopus::TurboQuant(CodecSpec{d, bits, 3, norm}), tokens);
                for (double bits : {2.0, 8.0 / 3, 3.0, 4.0}) check_codec(octopus::Octopus(CodecSpec{d, bits, 3, norm}), tokens);
            }
    check_codec(octopus::TurboQuant(CodecSpec{80, 3.0, 3, NormFormat::fp32}), 16);  // a dim the GPU has no build for
}

TEST(Pages, ThePoolAddressesHeadPagesInOrder) {
    const octopus::PageLayout layout{32, 48, 4};
    EXPECT_EQ(layout.head_page_bytes(), 32 * 52);
    EXPECT_EQ(layout.head_page_offset(0, 0, 8), 0);
    EXPECT_EQ(layout.head_page_offset(0, 3, 8), 3 * 32 * 52);
    EXPECT_EQ(layout.head_page_offset(5, 2, 8), (5 * 8 + 2) * 32 * 52);
    EXPECT_EQ(layout.group_bytes(), 16 * 52);
    EXPECT_EQ(layout.code_offset(15), 15 * 48);
    EXPECT_EQ(layout.norm_offset(0), 16 * 48);
    EXPECT_EQ(layout.norm_offset(15), 16 * 48 + 15 * 4);
    EXPECT_EQ(layout.code_offset(16), 16 * 52);
    EXPECT_EQ(layout.code_offset(31), 16 * 52 + 15 * 48);
    EXPECT_EQ(layout.norm_offset(31), 16 * 52 + 16 * 48 + 15 * 4);
}

TEST(Pages, RefuseBadInputAndChangeNothing) {
    const octopus::TurboQuant codec(CodecSpec{128, 3.0, 3, NormFormat::fp16});
    for (int tokens : {0, 8, 15, 48, 128}) EXPECT_THROW((void)octopus::page_layout(codec, tokens), octopus::error);
    const octopus::PageLayout layout = octopus::page_layout(codec, 16);
    std::vector<std::uint8_t> page(static_cast<std::size_t>(layout.head_page_bytes()), 0x5A);
    const std::vector<std::uint8_t> before = page;
    auto x = spread_keys(4, 128, 1);
    const auto encode = [&](std::span<const float> rows, std::span<std::uint8_t> into, int slot) {
        octopus::encode_page(codec, layout, rows, into, slot);
    };
    EXPECT_THROW(encode(x, page, 13), octopus::error);                                   // past the page
    EXPECT_THROW(encode(x, page, -1), octopus::error);                                   // before it
    EXPECT_THROW(encode(std::span<const float>(x.data(), 100), page, 0), octopus::error);  // not whole rows
    EXPECT_THROW(encode(x, std::span<std::uint8_t>(page.data(), page.size() - 1), 0), octopus::error);
    x[3 * 128 + 7] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_THROW(encode(x, page, 0), octopus::error);
    x[3 * 128 + 7] = 1e6f;  // a norm an fp16 norm cannot hold
    EXPECT_THROW(encode(x, page, 0), octopus::error);
    EXPECT_EQ(page, before);

    // A damaged norm is refused by decode and dot, naming the record.
    x[3 * 128 + 7] = 0.5f;
    encode(x, page, 0);
    std::vector<float> out(4 * 128), scores(4);
    page[static_cast<std::size_t>(layout.norm_offset(2)) + 1] = 0xFF;  // fp16 NaN
    EXPECT_THROW(octopus::decode_page(codec, layout, page, 0, out), octopus::error);
    EXPECT_THROW(octopus::dot_page(codec, layout, std::vector<float>(128, 1.0f), page, 0, scores), octopus::error);
    std::vector<std::uint8_t> odd(codec.bytes_per_vector() + 1);
    EXPECT_THROW(octopus::load_records(layout, page, 0, odd), octopus::error);
    EXPECT_THROW(octopus::store_records(layout, odd, page, 0), octopus::error);
}

}  // namespace
