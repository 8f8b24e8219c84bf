#include <octopus/detail/prng.hpp>
#include <octopus/packing.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace {

TEST(Packing, RoundTripsEveryWidth) {
    octopus::detail::SplitMix64 rng(3);
    for (unsigned width = 1; width <= 32; ++width)
        for (std::size_t count : {1u, 7u, 8u, 42u, 128u, 129u}) {
            std::vector<std::uint32_t> codes(count);
            const std::uint64_t limit = std::uint64_t{1} << width;
            for (auto& c : codes) c = static_cast<std::uint32_t>(rng.next() % limit);
            std::vector<std::uint8_t> bytes(octopus::packed_bytes(count, width));
            EXPECT_EQ(bytes.size(), (count * width + 7) / 8);
            octopus::pack_codes(codes, width, bytes);
            std::vector<std::uint32_t> back(count);
            octopus::unpack_codes(bytes, width, back);
            EXPECT_EQ(back, codes) << "width " << width << " count " << count;
        }
}

TEST(Packing, FastPathMatchesTheCheckedOne) {
    octopus::detail::SplitMix64 rng(8);
    for (unsigned width = 1; width <= 16; ++width)
        for (std::size_t count : {5u, 8u, 42u, 128u, 256u}) {
            std::vector<std::uint32_t> codes(count);
            for (auto& c : codes) c = static_cast<std::uint32_t>(rng.next() % (1u << width));
            std::vector<std::uint8_t> checked(octopus::packed_bytes(count, width)), fast(checked.size());
            octopus::pack_codes(codes, width, checked);
            octopus::pack_codes_unchecked(codes.data(), count, width, fast.data());
            EXPECT_EQ(fast, checked) << "width " << width << " count " << count;
        }
}

TEST(Packing, LayoutIsLeastSignificantBitFirst) {
    const std::vector<std::uint32_t> codes = {1, 2, 3, 0, 3};
    std::vector<std::uint8_t> bytes(octopus::packed_bytes(codes.size(), 2));
    octopus::pack_codes(codes, 2, bytes);
    ASSERT_EQ(bytes.size(), 2u);
    EXPECT_EQ(bytes[0], 0b00111001);  // codes 0..3 from the low bits up
    EXPECT_EQ(bytes[1], 0b00000011);  // the fifth code, then zero padding
    const std::vector<std::uint32_t> wide = {0xABC, 0x123};
    std::vector<std::uint8_t> three(3);
    octopus::pack_codes(wide, 12, three);
    EXPECT_EQ(three, (std::vector<std::uint8_t>{0xBC, 0x3A, 0x12}));
}

TEST(Packing, RefusesBadArguments) {
    std::vector<std::uint32_t> codes = {1, 2, 4};
    std::vector<std::uint8_t> bytes(octopus::packed_bytes(3, 2), 0x5A);
    const auto before = bytes;
    EXPECT_THROW(octopus::pack_codes(codes, 2, bytes), octopus::error);  // 4 needs 3 bits
    EXPECT_EQ(bytes, before);
    EXPECT_THROW(octopus::pack_codes(codes, 0, bytes), octopus::error);
    EXPECT_THROW(octopus::pack_codes(codes, 33, bytes), octopus::error);
    std::vector<std::uint8_t> short_buffer(1);
    EXPECT_THROW(octopus::pack_codes(codes, 3, short_buffer), octopus::error);
    std::vector<std::uint32_t> out(3);
    EXPECT_THROW(octopus::unpack_codes(short_buffer, 3, out), octopus::error);
}

}  // namespace
