// Fused decode attention with keys in the scan layout (scan_keys.hpp): the G heads' scores of each
// block of 32 keys come from table lookups (scan_scores.hpp), four heads per pass over the block's
// codes; softmax, values and the merge over threads are attention.hpp's, so the values may be any
// codec decode_attention takes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "octopus/attention.hpp"
#include "octopus/scan_scores.hpp"

namespace octopus {

namespace detail {

/// The key_scores of attend_chunk over ScanKeys of B-bit codes: blocks start on kScanBlock tokens.
template <unsigned B>
struct ScanKeyScores {
    const ScanKeys& keys;
    const ScanQuery* queries;  // G of them
    std::size_t heads;
    float scale;

    static_assert(kAttentionBlock % kScanBlock == 0, "attention blocks are whole scan blocks");

    bool operator()(std::size_t first, std::size_t n, std::array<std::array<float, kAttentionBlock>, kMaxQueryGroup>& weight) const {
        alignas(32) std::uint32_t sums[4][kScanBlock];
        alignas(32) float norms[kScanBlock];
        const std::size_t code_bytes = keys.codec().code_bytes();
        for (std::size_t offset = 0; offset < n; offset += kScanBlock) {
            const std::uint8_t* block = keys.block((first + offset) / kScanBlock);
            block_norms(keys, block, norms);
            for (std::size_t h = 0; h < heads; h += 4) {
                const std::size_t group = std::min<std::size_t>(4, heads - h);
                const ScanQuery* four[4];
                for (std::size_t j = 0; j < group; ++j) four[j] = queries + h + j;
                scan_block<B>(block, code_bytes, four, group, sums);
                for (std::size_t j = 0; j < group; ++j) block_scores(queries[h + j], sums[j], norms, scale, weight[h + j].data() + offset);
            }
        }
        return true;  // append_records checked every record
    }
};

}  // namespace detail

/// Decode attention of G = queries.size() / dim query heads over the keys of `keys` (scored by table
/// lookup: each score within |k|·max_error() of the exact one, see scan_scores.hpp) and as many packed
/// values of `value_codec`: out[g] = Σ_t softmax_t(scale · q_g·k̂_t) v̂_t, as decode_attention in
/// attention.hpp. Allocates the G queries' tables (G · lookups · 32 bytes) per call, and with
/// threads > 1 the threads' partial sums. Throws octopus::error, before writing out, for a value codec
/// of another dim, G outside 1..kMaxQueryGroup, mismatched sizes, NaN/Inf in a query, a non-finite
/// scale, threads < 1, or a damaged value record.
template <class ValueCodec>
void decode_attention(const ScanKeys& keys, const ValueCodec& value_codec, std::span<const float> queries,
                      std::span<const std::uint8_t> packed_values, float scale, std::span<float> out, int threads = 1) {
    using detail::require;
    const std::size_t d = keys.dim();
    detail::check_value_codec(value_codec, d, "the keys'");
    const std::size_t heads = detail::check_attention_arguments(d, queries, out, scale, threads);
    const std::size_t n = keys.size(), value_bytes = value_codec.bytes_per_vector();
    require(packed_values.size() == n * value_bytes, "decode_attention: " + std::to_string(packed_values.size()) + " value bytes are not " +
                                                         std::to_string(n) + " records of " + std::to_string(value_bytes) +
                                                         " bytes, one per key");
    std::vector<ScanQuery> tables(heads);
    for (std::size_t h = 0; h < heads; ++h) tables[h].assign(keys.codec(), queries.subspan(h * d, d));
    detail::with_bits<1, kMaxScalarBits>(keys.bits(), [&]<unsigned B>() {
        const detail::ScanKeyScores<B> key_scores{keys, tables.data(), heads, scale};
        detail::run_attention(key_scores, value_codec, packed_values.data(), heads, n, threads, out);
    });
}

}  // namespace octopus
