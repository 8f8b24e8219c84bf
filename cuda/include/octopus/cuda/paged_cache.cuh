// The paged KV cache as engines hold it (vLLM, FlashInfer): one pool of pages per layer for keys and
// one for values, each page P tokens of every KV head, and a block table per sequence naming its pages
// in order. Pages can be shared read-only between sequences (a common prefix): attention only reads
// them, and encode writes only the slots it is told to. Inside a page, head h's part holds its slots
// in groups of 16, each group's codes, then their norms (PageLayout, contract.hpp), byte for byte what
// the CPU's encode_page writes (pages.hpp). Keys and values may use different codecs and bit widths:
// each pool has its own layout.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "octopus/contract.hpp"
#include "octopus/cuda/device_codec.cuh"
#include "octopus/error.hpp"

namespace octopus::cuda {

/// The layout of `codec`'s records in pages of `page_tokens` tokens (16, 32 or 64); throws
/// octopus::error for another page size. A pool of n pages of kv_heads heads takes
/// n · kv_heads · head_page_bytes() bytes.
inline PageLayout page_layout(const DeviceCodec& codec, int page_tokens) {
    octopus::detail::require(is_page_tokens(page_tokens), "octopus::cuda::page_layout: pages hold 16, 32 or 64 tokens, not " +
                                                              std::to_string(page_tokens));
    const CodecView& c = codec.view();
    return PageLayout{page_tokens, c.code_bytes, c.record_bytes - c.code_bytes};
}

/// A layer's paged cache as decode attention reads it. Token t of sequence b is slot t mod P of page
/// block_table[b][t / P]; its key is in the key pool, its value in the value pool, under the same page
/// id. Page ids outside [0, pages) are held to that range on the device (a block table lives on the
/// device, where nothing can throw; the contract is that it never happens).
struct PagedCache {
    const std::uint8_t* keys = nullptr;    ///< key pool (16-byte aligned): pages × kv_heads head pages
    const std::uint8_t* values = nullptr;  ///< value pool, same page ids
    int pages = 0;                         ///< pages in each pool
    int page_tokens = 16;                  ///< P: 16, 32 or 64
    int batch = 1;
    int q_heads = 1;
    int kv_heads = 1;                      ///< query head i reads KV head i / (q_heads / kv_heads)
    const int* block_table = nullptr;      ///< device, [batch][max_pages_per_sequence] page ids
    int max_pages_per_sequence = 0;        ///< the block table's row length
    const int* lengths = nullptr;          ///< device, tokens per sequence, each in [0, max_length]
    int max_length = 0;                    ///< a bound the host knows on every length, ≤ max_pages_per_sequence · P
};

/// Where a paged encode writes: new tokens j = 0 .. tokens − 1 of sequence b (vectors x[b][j][h],
/// h < kv_heads) go to positions positions[b] + j, that is slot (position mod P) of page
/// block_table[b][position / P] of `pool`. One decode step is tokens = 1 for the whole batch; a
/// prefill is many tokens of one or more sequences.
struct PagedTarget {
    std::uint8_t* pool = nullptr;      ///< 16-byte aligned: pages × kv_heads head pages
    int pages = 0;
    int page_tokens = 16;
    int kv_heads = 1;
    const int* block_table = nullptr;  ///< device, [batch][max_pages_per_sequence]
    int max_pages_per_sequence = 0;
    int batch = 1;
    int tokens = 1;                    ///< new tokens per sequence
    const int* positions = nullptr;    ///< device, one per sequence: its first new token's position; null: 0
};

namespace detail {

/// What the attention kernel needs of a paged cache (block_table null: contiguous records).
struct PageSource {
    const int* block_table = nullptr;
    int max_pages = 0;
    int pages = 0;
    int page_shift = 4;  // log2 of the page's tokens
    PageLayout keys{}, values{};
};

/// A page id as the block table holds it, held to [0, pages) where it is used, not where it is read:
/// the read's latency then passes while the warp decodes a tile.
__device__ inline unsigned page_in_pool(int id, int pages) { return static_cast<unsigned>(min(max(id, 0), pages - 1)); }

inline void check_paged_cache(const DeviceCodec& keys, const DeviceCodec& values, const PagedCache& c, const char* call) {
    using octopus::detail::require;
    const std::string where = std::string("octopus::cuda::") + call + ": ";
    require(c.keys != nullptr && c.values != nullptr && c.block_table != nullptr && c.lengths != nullptr,
            where + "null pool, block table or lengths pointer");
    require(reinterpret_cast<std::uintptr_t>(c.keys) % 16 == 0 && reinterpret_cast<std::uintptr_t>(c.values) % 16 == 0,
            where + "the pools must be 16-byte aligned");
    require(is_page_tokens(c.page_tokens), where + "pages hold 16, 32 or 64 tokens, not " + std::to_string(c.page_tokens));
    require(c.batch >= 1 && c.kv_heads >= 1 && c.q_heads >= c.kv_heads && c.q_heads % c.kv_heads == 0,
            where + "q_heads (" + std::to_string(c.q_heads) + ") must be a positive multiple of kv_heads (" +
                std::to_string(c.kv_heads) + "), batch >= 1");
    require(c.pages >= 1 && c.max_pages_per_sequence >= 1, where + "the pool and the block table need at least one page");
    require(c.max_length >= 0 && static_cast<long long>(c.max_length) <= static_cast<long long>(c.max_pages_per_sequence) * c.page_tokens,
            where + "max_length " + std::to_string(c.max_length) + " is outside [0, max_pages_per_sequence x page_tokens = " +
                std::to_string(static_cast<long long>(c.max_pages_per_sequence) * c.page_tokens) + "]");
    require(static_cast<long long>(c.pages) * c.kv_heads * c.page_tokens * (keys.record_bytes() + values.record_bytes()) < (1LL << 62),
            where + "pool too large");
    require(static_cast<long long>(c.kv_heads) * c.page_tokens * std::max(keys.record_bytes(), values.record_bytes()) < (1LL << 31),
            where + "a page of " + std::to_string(c.kv_heads) + " KV heads takes 2 GiB or more");
    require(static_cast<long long>(c.pages) * c.kv_heads * (c.page_tokens / kPageGroupTokens) < (1LL << 32),
            where + "a pool of 2^32 or more groups of 16 slots (pages x kv_heads x page_tokens / 16)");
}

inline void check_paged_target(const DeviceCodec& codec, const PagedTarget& t, const char* call) {
    using octopus::detail::require;
    const std::string where = std::string("octopus::cuda::") + call + ": ";
    require(t.pool != nullptr && t.block_table != nullptr, where + "null pool or block table pointer");
    require(reinterpret_cast<std::uintptr_t>(t.pool) % 16 == 0, where + "the pool must be 16-byte aligned");
    require(is_page_tokens(t.page_tokens), where + "pages hold 16, 32 or 64 tokens, not " + std::to_string(t.page_tokens));
    require(t.pages >= 1 && t.kv_heads >= 1 && t.batch >= 1 && t.tokens >= 1 && t.max_pages_per_sequence >= 1,
            where + "pages, kv_heads, batch, tokens and max_pages_per_sequence must be >= 1");
    require(static_cast<long long>(t.batch) * t.tokens * t.kv_heads < (1LL << 31) / 32, where + "too many vectors in one call");
    require(static_cast<long long>(t.pages) * t.kv_heads * t.page_tokens * codec.record_bytes() < (1LL << 62), where + "pool too large");
}

}  // namespace detail
}  // namespace octopus::cuda
