// The paged cache's page format on the CPU: the very bytes the GPU's paged cache holds
// (cuda/include/octopus/cuda/paged_cache.cuh), so that pages written on either side are read on the
// other, and tests compare them byte for byte. The layout rule itself (a head page's slots in groups of
// 16, each group's codes, then their norms) is PageLayout in contract.hpp, which both sides include.
//
// These functions work on one head page: the P slots of one KV head of one page. An engine that keeps
// its cache on the CPU finds head page (page, h) of a pool at PageLayout::head_page_offset(page, h,
// kv_heads). They take TurboQuant and OCTOPUS codecs (the codecs the GPU runs): any codec whose record
// is its codes followed by one norm (RotatedCodec).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "octopus/contract.hpp"
#include "octopus/error.hpp"
#include "octopus/rotated_codec.hpp"

namespace octopus {

/// A codec whose record is its codes then one norm, so that a page can hold the two apart.
template <class C>
concept PageCodec = std::derived_from<C, RotatedCodec> && requires(const C& c) {
    { c.bytes_per_vector() } -> std::convertible_to<std::size_t>;
};

/// The layout of `codec`'s records in head pages of `tokens` slots. Throws octopus::error unless
/// tokens is one of kPageTokenChoices.
template <PageCodec C>
PageLayout page_layout(const C& codec, int tokens) {
    detail::require(is_page_tokens(tokens), "page_layout: pages hold 16, 32 or 64 tokens, not " + std::to_string(tokens));
    return PageLayout{tokens, static_cast<int>(codec.code_bytes()),
                      static_cast<int>(codec.bytes_per_vector() - codec.code_bytes())};
}

namespace detail {

inline void check_page_span(const PageLayout& layout, std::size_t page_bytes, int first_slot, std::size_t count,
                            const char* call) {
    require(page_bytes == static_cast<std::size_t>(layout.head_page_bytes()),
            std::string(call) + ": the head page has " + std::to_string(page_bytes) + " bytes, the layout's has " +
                std::to_string(layout.head_page_bytes()));
    require(first_slot >= 0 && first_slot <= layout.tokens && count <= static_cast<std::size_t>(layout.tokens - first_slot),
            std::string(call) + ": slots [" + std::to_string(first_slot) + ", " + std::to_string(first_slot) + " + " +
                std::to_string(count) + ") are outside the page's " + std::to_string(layout.tokens));
}

}  // namespace detail

/// Copies `records` (whole records of the layout, back to back) into slots first_slot, first_slot + 1,
/// ... of `head_page`; every other byte of the page is left as it was. Throws octopus::error before
/// writing anything if the records do not fit the page.
inline void store_records(const PageLayout& layout, std::span<const std::uint8_t> records, std::span<std::uint8_t> head_page,
                          int first_slot) {
    const std::size_t record = static_cast<std::size_t>(layout.code_bytes + layout.norm_bytes);
    detail::require(records.size() % record == 0, "store_records: " + std::to_string(records.size()) +
                                                      " bytes are not whole " + std::to_string(record) + "-byte records");
    const std::size_t n = records.size() / record;
    detail::check_page_span(layout, head_page.size(), first_slot, n, "store_records");
    for (std::size_t i = 0; i < n; ++i) {
        const int slot = first_slot + static_cast<int>(i);
        std::memcpy(head_page.data() + layout.code_offset(slot), records.data() + i * record, layout.code_bytes);
        std::memcpy(head_page.data() + layout.norm_offset(slot), records.data() + i * record + layout.code_bytes,
                    layout.norm_bytes);
    }
}

/// The records of slots [first_slot, first_slot + n) of `head_page`, n = records.size() / record
/// bytes, back to back as the codec writes them. Throws octopus::error for sizes that do not fit.
inline void load_records(const PageLayout& layout, std::span<const std::uint8_t> head_page, int first_slot,
                         std::span<std::uint8_t> records) {
    const std::size_t record = static_cast<std::size_t>(layout.code_bytes + layout.norm_bytes);
    detail::require(records.size() % record == 0, "load_records: " + std::to_string(records.size()) +
                                                      " bytes are not whole " + std::to_string(record) + "-byte records");
    const std::size_t n = records.size() / record;
    detail::check_page_span(layout, head_page.size(), first_slot, n, "load_records");
    for (std::size_t i = 0; i < n; ++i) {
        const int slot = first_slot + static_cast<int>(i);
        std::memcpy(records.data() + i * record, head_page.data() + layout.code_offset(slot), layout.code_bytes);
        std::memcpy(records.data() + i * record + layout.code_bytes, head_page.data() + layout.norm_offset(slot),
                    layout.norm_bytes);
    }
}

/// Encodes the row-major n×dim `x` into slots [first_slot, first_slot + n) of `head_page`: the bytes
/// the GPU's paged encode writes. Throws octopus::error before writing anything for sizes that do not
/// fit, NaN/Inf, or a norm the codec's norm format cannot hold. Allocates the n records once per call.
template <PageCodec C, class T>
void encode_page(const C& codec, const PageLayout& layout, std::span<const T> x, std::span<std::uint8_t> head_page,
                 int first_slot) {
    detail::require(x.size() % codec.dim() == 0, "encode_page: " + std::to_string(x.size()) +
                                                     " elements are not whole rows of dim " + std::to_string(codec.dim()));
    detail::check_page_span(layout, head_page.size(), first_slot, x.size() / codec.dim(), "encode_page");
    const std::vector<std::uint8_t> records = codec.encode(x);
    store_records(layout, records, head_page, first_slot);
}

/// Decodes slots [first_slot, first_slot + n) of `head_page` into the row-major n×dim `out`. Throws
/// octopus::error for sizes that do not fit or a damaged record, before writing. Allocates the
/// records once per call (a page at a time: the reference path, not a hot loop).
template <PageCodec C>
void decode_page(const C& codec, const PageLayout& layout, std::span<const std::uint8_t> head_page, int first_slot,
                 std::span<float> out) {
    detail::require(out.size() % codec.dim() == 0, "decode_page: " + std::to_string(out.size()) +
                                                       " floats are not whole rows of dim " + std::to_string(codec.dim()));
    std::vector<std::uint8_t> records(out.size() / codec.dim() * codec.bytes_per_vector());
    load_records(layout, head_page, first_slot, records);
    codec.decode(records, out);
}

/// scores[i] = query · (decoded slot first_slot + i) from the codes of `head_page`, as the codec's
/// dot computes it. Throws octopus::error for sizes that do not fit or a damaged record. Allocates
/// the records once per call, like decode_page.
template <PageCodec C>
void dot_page(const C& codec, const PageLayout& layout, std::span<const float> query, std::span<const std::uint8_t> head_page,
              int first_slot, std::span<float> scores) {
    std::vector<std::uint8_t> records(scores.size() * codec.bytes_per_vector());
    load_records(layout, head_page, first_slot, records);
    codec.dot(query, records, scores);
}

}  // namespace octopus
