// Fused decode attention over a compressed KV cache on the CPU: for the G query heads that share one
// KV head (grouped-query attention), out_g = softmax(scale · q_g·Kᵀ)·V computed from the codes.
//
// Each key and value record is decoded once for all G heads, into the rotated domain only: scores are
// q'_g·k'_t·|k_t| with q'_g = R_k q_g rotated once per call, and values accumulate as Σ p·|v_t|·v'_t in
// the value codec's rotated domain, rotated back once per output (R_v⁻¹ is linear). No record is
// inverse-rotated. The context is processed in blocks of kAttentionBlock tokens: the block's scores
// (each key row met by four heads at once), one rescale of the running sums, exp eight at a time,
// then the values kValueRows at a time, each slice of four outputs held in registers across the rows
// (rows.hpp; TurboQuant decodes its value rows straight into those registers, add_weighted_rotated).
// How a block's scores are made is the caller's: decoded records here (DecodedKeyScores), table
// lookups over the scan layout in scan_attention.hpp. Over `threads` OpenMP threads the context is split in chunks whose (max, Σ exp, Σ exp·v)
// are merged at the end (flash-decoding).
//
// KeyCodec and ValueCodec are concrete codecs with decode_rotated (TurboQuant, Octopus, OctopusPaper),
// or a Codec holding one (one virtual call per record, about 10% slower); they may differ (keys at 3
// bits, values at 2, say).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "octopus/codec.hpp"
#include "octopus/contract.hpp"
#include "octopus/detail/rows.hpp"
#include "octopus/error.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace octopus {

/// Most query heads per KV head decode_attention takes (Llama-3 70B has 8, Qwen2.5-0.5B 7).
inline constexpr std::size_t kMaxQueryGroup = 16;
/// Tokens whose scores are held at once: the running sums are rescaled once per block.
inline constexpr std::size_t kAttentionBlock = 64;

namespace detail {

/// What one chunk of the context leaves for the merge, per head: the max score, Σ exp and Σ exp·|v|·v'.
struct AttentionState {
    std::array<float, kMaxQueryGroup> max, sum;
    float* acc;  // G × d
};

/// x ← R⁻¹ x in the codec's rotation: a concrete codec's Rotation, or a Codec's virtual call.
template <class C>
void inverse_rotate(const C& codec, float* x) {
    if constexpr (requires { codec.rotation(); }) codec.rotation().apply_inverse(x);
    else codec.inverse_rotate(x);
}

/// Value rows decoded at once, then weighted into the outputs with each output slice in registers.
inline constexpr std::size_t kValueRows = 16;

/// Tokens [begin, end) into `state` (initialized by the caller): `key_scores(first, n, weight)` writes
/// weight[h][t] = scale · q_h·k_{first+t} for the block's n ≤ kAttentionBlock tokens and returns false
/// if a key record was damaged; this function does the softmax and the values. Returns false if a
/// record was damaged.
template <class KeyScores, class ValueCodec>
bool attend_chunk(KeyScores&& key_scores, const ValueCodec& value_codec, std::size_t heads, const std::uint8_t* values, std::size_t begin,
                  std::size_t end, AttentionState& state) {
    const std::size_t d = value_codec.dim(), value_bytes = value_codec.bytes_per_vector();
    alignas(32) std::array<float, kValueRows * kMaxDim> rows;
    alignas(32) std::array<std::array<float, kAttentionBlock>, kMaxQueryGroup> weight;
    std::array<float, kMaxQueryGroup * kValueRows> scaled;
    bool valid = true;
    for (std::size_t first = begin; first < end; first += kAttentionBlock) {
        const std::size_t n = std::min(kAttentionBlock, end - first);
        valid &= key_scores(first, n, weight);
        // Weights against the running max, the running sums rescaled once if it grew.
        for (std::size_t h = 0; h < heads; ++h) {
            float top = state.max[h];
            for (std::size_t t = 0; t < n; ++t) top = std::max(top, weight[h][t]);
            if (top > state.max[h]) {
                const float shrink = std::exp(state.max[h] - top);
                state.sum[h] *= shrink;
                for (std::size_t c = 0; c < d; ++c) state.acc[h * d + c] *= shrink;
                state.max[h] = top;
            }
            for (std::size_t t = 0; t < n; ++t) weight[h][t] -= top;
            exp_nonpositive(weight[h].data(), n);
            for (std::size_t t = 0; t < n; ++t) state.sum[h] += weight[h][t];
        }
        // Values: a codec that adds weighted records itself decodes them in registers (TurboQuant);
        // otherwise a few rows are decoded, then added to every output with its weight × the row's norm.
        if constexpr (requires { value_codec.add_weighted_rotated(values, n, weight[0].data(), kAttentionBlock, heads, state.acc); }) {
            valid &= value_codec.add_weighted_rotated(values + first * value_bytes, n, weight[0].data(), kAttentionBlock, heads, state.acc);
            continue;
        }
        for (std::size_t t0 = 0; t0 < n; t0 += kValueRows) {
            const std::size_t m = std::min(kValueRows, n - t0);
            for (std::size_t t = 0; t < m; ++t) {
                const std::uint8_t* record = values + (first + t0 + t) * value_bytes;
                valid &= value_codec.vector_is_valid(record);
                const float norm = value_codec.decode_rotated(record, rows.data() + t * d);
                for (std::size_t h = 0; h < heads; ++h) scaled[h * kValueRows + t] = weight[h][t0 + t] * norm;
            }
            for (std::size_t h = 0; h < heads; h += 4)
                rows_weighted_sum(scaled.data() + h * kValueRows, kValueRows, std::min<std::size_t>(4, heads - h), rows.data(), m, d,
                                  state.acc + h * d);
        }
    }
    return valid;
}

/// The key_scores of attend_chunk for a codec with decode_rotated: each key decoded once into its
/// rotated domain and met by the rotated queries four at a time.
template <class KeyCodec>
struct DecodedKeyScores {
    const KeyCodec& codec;
    const float* rotated_queries;
    std::size_t heads;
    const std::uint8_t* keys;
    float scale;

    bool operator()(std::size_t first, std::size_t n, std::array<std::array<float, kAttentionBlock>, kMaxQueryGroup>& weight) const {
        const std::size_t d = codec.dim(), key_bytes = codec.bytes_per_vector();
        alignas(32) std::array<float, kMaxDim> row;
        bool valid = true;
        for (std::size_t t = 0; t < n; ++t) {
            const std::uint8_t* record = keys + (first + t) * key_bytes;
            valid &= codec.vector_is_valid(record);
            const float norm = scale * codec.decode_rotated(record, row.data());
            for (std::size_t h = 0; h < heads; h += 4) {
                float s[4];
                rows_dot(rotated_queries + h * d, std::min<std::size_t>(4, heads - h), row.data(), d, s);
                for (std::size_t j = 0; j < 4 && h + j < heads; ++j) weight[h + j][t] = norm * s[j];
            }
        }
        return valid;
    }
};

/// Checks what every decode_attention checks: G = queries.size() / d in 1..kMaxQueryGroup, the output's
/// size, a finite scale, threads ≥ 1, finite queries. Returns G.
inline std::size_t check_attention_arguments(std::size_t d, std::span<const float> queries, std::span<float> out, float scale, int threads) {
    const std::size_t heads = queries.size() / d;
    require(queries.size() % d == 0 && heads >= 1 && heads <= kMaxQueryGroup,
            "decode_attention: " + std::to_string(queries.size()) + " query floats are not 1 to " + std::to_string(kMaxQueryGroup) +
                " rows of dim " + std::to_string(d));
    require(out.size() == queries.size(), "decode_attention: output has " + std::to_string(out.size()) + " floats, " +
                                              std::to_string(heads) + " queries need " + std::to_string(queries.size()));
    require(std::isfinite(scale), "decode_attention: scale is not finite");
    require(threads >= 1, "decode_attention: threads must be at least 1, got " + std::to_string(threads));
    for (std::size_t i = 0; i < queries.size(); ++i)
        if (!std::isfinite(queries[i]))  // the message is built only on failure
            throw error("decode_attention: query " + std::to_string(i / d) + " has a non-finite value at coordinate " + std::to_string(i % d));
    return heads;
}

/// Throws unless `value_codec` decodes into a rotated domain (a Codec may not) and has dim d.
template <class ValueCodec>
void check_value_codec(const ValueCodec& value_codec, std::size_t d, const char* keys) {
    if constexpr (std::is_same_v<ValueCodec, Codec>)
        require(value_codec.decodes_rotated(), std::string("decode_attention: codec '") + value_codec.name() +
                                                   "' does not decode into a rotated domain; fused attention takes turboquant, "
                                                   "octopus and octopus-paper");
    require(value_codec.dim() == d, std::string("decode_attention: ") + keys + " dim " + std::to_string(d) +
                                        " differs from the value codec's " + std::to_string(value_codec.dim()));
}

/// The context of n tokens split over up to `threads` chunks of whole kAttentionBlock blocks, each run
/// by attend_chunk with `key_scores` and the n packed `values`, merged, normalized and rotated back by
/// the value codec into out (G × d). Throws, before writing out, if a chunk found a damaged record.
template <class KeyScores, class ValueCodec>
void run_attention(const KeyScores& key_scores, const ValueCodec& value_codec, const std::uint8_t* values, std::size_t heads,
                   std::size_t n, int threads, std::span<float> out) {
    const std::size_t d = value_codec.dim();
    const std::size_t chunks = std::min<std::size_t>(static_cast<std::size_t>(threads), std::max<std::size_t>(n / kAttentionBlock, 1));
    std::array<float, kMaxQueryGroup * kMaxDim> single_acc;
    std::vector<float> shared_acc(chunks > 1 ? chunks * heads * d : 0);
    std::vector<AttentionState> states(chunks > 1 ? chunks : 0);
    AttentionState single;
    const auto state_of = [&](std::size_t c) -> AttentionState& { return chunks > 1 ? states[c] : single; };
    for (std::size_t c = 0; c < chunks; ++c) {
        AttentionState& s = state_of(c);
        s.max.fill(-std::numeric_limits<float>::infinity());
        s.sum.fill(0.0f);
        s.acc = chunks > 1 ? shared_acc.data() + c * heads * d : single_acc.data();
        std::fill(s.acc, s.acc + heads * d, 0.0f);
    }
    // Chunks start on block boundaries so that every chunk but the last is whole blocks.
    const std::size_t per = (n / kAttentionBlock + chunks - 1) / chunks * kAttentionBlock;
    bool valid = true;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1) reduction(&& : valid) if (chunks > 1)
#endif
    for (std::size_t c = 0; c < chunks; ++c) {
        const std::size_t begin = std::min(n, c * per), end = c + 1 == chunks ? n : std::min(n, begin + per);
        valid = attend_chunk(key_scores, value_codec, heads, values, begin, end, state_of(c)) && valid;
    }
    require(valid, "decode_attention: a key or value record is damaged (non-finite or negative norm, or nonzero padding bits)");

    for (std::size_t h = 0; h < heads; ++h) {
        float* o = out.data() + h * d;
        std::fill(o, o + d, 0.0f);
        if (n == 0) continue;
        float top = -std::numeric_limits<float>::infinity();
        for (std::size_t c = 0; c < chunks; ++c) top = std::max(top, state_of(c).max[h]);
        float total = 0.0f;
        for (std::size_t c = 0; c < chunks; ++c) {
            const AttentionState& s = state_of(c);
            if (s.sum[h] == 0.0f) continue;
            const float w = std::exp(s.max[h] - top);
            total += w * s.sum[h];
            row_axpy(w, s.acc + h * d, o, d);
        }
        for (std::size_t c = 0; c < d; ++c) o[c] /= total;
        inverse_rotate(value_codec, o);
    }
}

}  // namespace detail

/// Decode attention of G = queries.size() / dim query heads over n packed keys and values:
/// out[g] = Σ_t softmax_t(scale · q_g·k̂_t) v̂_t (G×dim floats, row-major; zero rows when n = 0), where k̂
/// and v̂ are what the codecs decode. `threads` > 1 splits the context over that many OpenMP threads
/// (where the build has OpenMP) and allocates their partial sums, threads·G·dim floats, per call; one
/// thread allocates nothing. Throws octopus::error, before writing `out`, for codecs of different
/// dims, G outside 1..kMaxQueryGroup, mismatched sizes, NaN/Inf in a query, a non-finite scale,
/// threads < 1, or a damaged record (found while attending).
template <class KeyCodec, class ValueCodec>
void decode_attention(const KeyCodec& key_codec, const ValueCodec& value_codec, std::span<const float> queries,
                      std::span<const std::uint8_t> packed_keys, std::span<const std::uint8_t> packed_values, float scale,
                      std::span<float> out, int threads = 1) {
    using detail::require;
    if constexpr (std::is_same_v<KeyCodec, Codec>)
        require(key_codec.decodes_rotated(), std::string("decode_attention: codec '") + key_codec.name() +
                                                 "' does not decode into a rotated domain; fused attention takes turboquant, octopus "
                                                 "and octopus-paper");
    const std::size_t d = key_codec.dim();
    detail::check_value_codec(value_codec, d, "the key codec's");
    const std::size_t heads = detail::check_attention_arguments(d, queries, out, scale, threads);
    const std::size_t key_bytes = key_codec.bytes_per_vector(), value_bytes = value_codec.bytes_per_vector();
    const std::size_t n = packed_keys.size() / key_bytes;
    require(packed_keys.size() % key_bytes == 0 && packed_values.size() % value_bytes == 0 && packed_values.size() / value_bytes == n,
            "decode_attention: " + std::to_string(packed_keys.size()) + " key bytes and " + std::to_string(packed_values.size()) +
                " value bytes are not the same whole number of " + std::to_string(key_bytes) + "- and " + std::to_string(value_bytes) +
                "-byte records");

    std::array<float, kMaxQueryGroup * kMaxDim> rotated;
    for (std::size_t h = 0; h < heads; ++h) key_codec.prepare_query(queries.data() + h * d, rotated.data() + h * d);
    const detail::DecodedKeyScores<KeyCodec> key_scores{key_codec, rotated.data(), heads, packed_keys.data(), scale};
    detail::run_attention(key_scores, value_codec, packed_values.data(), heads, n, threads, out);
}

}  // namespace octopus
