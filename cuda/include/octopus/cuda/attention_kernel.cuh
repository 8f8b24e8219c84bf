// The fused decode attention kernel (attention.cuh's header comment describes the algorithm): one
// block per split of a (sequence, KV head)'s context, the online softmax over 16-token tiles decoded
// straight into tensor-core operands, and the merge of the splits by the last block to finish.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "octopus/cuda/attention_layout.cuh"
#include "octopus/cuda/fragments.cuh"
#include "octopus/cuda/warp_rotation.cuh"

namespace octopus::cuda::detail {

template <class Fragments, int D, int Heads, int Warps>
__global__ void __launch_bounds__(32 * Warps, 1) attention_kernel(AttentionArguments p) {
    extern __shared__ __align__(16) unsigned char shared[];
    __shared__ AttentionShared<Heads, Warps> own;
    auto& [warp_max, warp_sum, last_block] = own;
    using Layout = FusedLayout<Fragments, D>;
    using Columns = HeadColumns<Heads>;
    constexpr int P = Columns::kWeightBlocks, M = D / 16;  // weight n-blocks; m-blocks of value slots
    auto& tables = Layout::tables(shared);
    float* query_scale = Layout::scales(shared);
    float* query_offset = Layout::offsets(shared);  // (no μ is passed: softmax ignores q·μ)
    std::uint8_t* staging = Layout::staging(shared);
    auto& rotated = Layout::rotated(shared);

    const CacheShape& shape = p.shape;
    const int group = shape.q_heads / shape.kv_heads, chunks = (group + Heads - 1) / Heads;
    const int kv_head = static_cast<int>(blockIdx.y) / chunks, chunk = static_cast<int>(blockIdx.y) % chunks;
    const int first_head = kv_head * group + chunk * Heads, rows = min(Heads, group - chunk * Heads);
    const int b = static_cast<int>(blockIdx.z), split = static_cast<int>(blockIdx.x), length = clamp_length(shape.lengths[b], shape.max_length);
    const int start = split * p.split_tokens, end = min(start + p.split_tokens, length);
    const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
    // g pinned: the tile loop's shuffles and masks read it, and left to itself the compiler read the
    // thread index again on every tile for them.
    const int g = pinned(lane / 4), t = lane % 4;

    const int kb = p.keys.record_bytes, vb = p.values.record_bytes;
    const int key_tile = tile_bytes(kb), value_tile = tile_bytes(vb), stage_bytes = key_tile + value_tile;
    const int tiles = end > start ? (end - start + kTileTokens - 1) / kTileTokens : 0;
    const int my_tiles = warp < tiles ? (tiles - warp + Warps - 1) / Warps : 0;  // tiles warp, warp + Warps, ...
    // A staged tile is its 16 tokens' codes at `stride` bytes apart, and their norms from norm_base on,
    // norm_stride apart: records (stride = record bytes, each norm after its codes), or a group of a
    // head page (codes back to back, then the norms).
    const bool paged = p.pages.block_table != nullptr;
    const int key_stride = paged ? p.keys.code_bytes : kb, value_stride = paged ? p.values.code_bytes : vb;
    const int key_norm_base = paged ? kTileTokens * p.keys.code_bytes : p.keys.code_bytes;
    const int value_norm_base = paged ? kTileTokens * p.values.code_bytes : p.values.code_bytes;
    const int key_norm_stride = paged ? kb - p.keys.code_bytes : kb, value_norm_stride = paged ? vb - p.values.code_bytes : vb;
    // The warp's staging, pinned like warp_left below (else rebuilt from the thread index every tile).
    std::uint8_t* mine = staging + pinned(warp * p.stages * stage_bytes);
    // The warp's tiles: of records, tile token / 16 of its (sequence, KV head); of pages, the page id
    // of its next tile is read one issue ahead, so that a copy never waits on the block table.
    const long long first_record = (static_cast<long long>(b) * shape.kv_heads + kv_head) * shape.capacity;
    const TileSource key_source = paged ? TileSource::pages(p.key_cache, p.pages.keys, kv_head, shape.kv_heads, lane * 16)
                                        : TileSource::records(p.key_cache + first_record * kb, kb, lane * 16);
    const TileSource value_source = paged ? TileSource::pages(p.value_cache, p.pages.values, kv_head, shape.kv_heads, lane * 16)
                                          : TileSource::records(p.value_cache + first_record * vb, vb, lane * 16);
    const int* table_row = paged ? p.pages.block_table + static_cast<long long>(b) * p.pages.max_pages : nullptr;
    // A tile's number in its source: of records, its first token / 16; of pages, page · page_tiles +
    // its group in the page, (token / 16) & group_mask (check_paged_cache keeps it below 2^32).
    const int group_mask = paged ? (p.pages.keys.tokens >> 4) - 1 : 0;
    const unsigned page_tiles = paged ? static_cast<unsigned>(shape.kv_heads * (group_mask + 1)) : 0u;
    const int lane_bytes = pinned(lane * 16);  // the lane's first 16 bytes of a staged tile
    int tile_token = start + warp * kTileTokens;  // the first token of the warp's next tile to issue
    int next_page = paged && my_tiles > 0 ? __ldg(table_row + (tile_token >> p.pages.page_shift)) : 0;
    const auto issue = [&](int stage) {
        std::uint8_t* target = mine + stage * stage_bytes;
        const unsigned group = static_cast<unsigned>(tile_token >> 4);
        const unsigned tile = paged ? page_in_pool(next_page, p.pages.pages) * page_tiles + (group & group_mask) : group;
        tile_token += Warps * kTileTokens;
        if (paged && tile_token < end) next_page = __ldg(table_row + (tile_token >> p.pages.page_shift));
        key_source.copy<Fragments::kMaxRecordBytes>(target, tile, lane_bytes);
        value_source.copy<Fragments::kMaxRecordBytes>(target + key_tile, tile, lane_bytes);
    };
    // One tile per warp loads during the set-up, the next stages − 2 after it: with all of them ahead,
    // the set-up's query rows would wait behind every block's copies, which dominates short calls.
    std::uint32_t q_operands[Columns::kQueryBlocks][D / 16][2];
    const long long kv_index = static_cast<long long>(b) * shape.kv_heads + kv_head;
    set_up_block<Fragments, D, Heads, Warps>(tables, rotated, query_scale, query_offset, p.keys, p.values,
                                             p.q.from((static_cast<long long>(b) * shape.q_heads + first_head) * D), rows,
                                             head_row(p.preconditioning.key_scale, kv_index, D), nullptr, p.scale_log2,
                                             [&] { start_pipeline(my_tiles, 0, 1, issue); }, q_operands);
    start_pipeline(my_tiles, 1, p.stages - 1, issue);
    // This lane's heads are columns 2t + e, e < L, of each weight block (head_of: −1 for none).
    constexpr int L = Columns::kLaneHeads;
    int head_of[P][L];
    float head_scale[P][L];
#pragma unroll
    for (int w = 0; w < P; ++w)
#pragma unroll
        for (int e = 0; e < L; ++e) {
            head_of[w][e] = Columns::lane_head(w, e, t, rows);
            head_scale[w][e] = head_of[w][e] >= 0 ? query_scale[head_of[w][e]] : 0.0f;
        }

    // Online softmax state of the lane's heads; acc[w][m] holds value slots 2m, 2m + 1 of lane g
    // (accumulator rows g, g + 8) for those heads (columns 2t, 2t + 1): {slot 2m: e = 0, 1; slot 2m + 1: e = 0, 1}.
    float row_max[P][L], row_sum[P][L];
    float acc[P][M][4];
#pragma unroll
    for (int w = 0; w < P; ++w) {
#pragma unroll
        for (int e = 0; e < L; ++e) {
            row_max[w][e] = kNoMax;
            row_sum[w][e] = 0.0f;
        }
#pragma unroll
        for (int m = 0; m < M; ++m)
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[w][m][i] = 0.0f;
    }

    const TileOrder order = Fragments::kReorders ? p.order : TileOrder{};
    const typename Fragments::KeyPlan key_plan = Fragments::key_plan(lane, key_stride * 8, order);
    const typename Fragments::ValuePlan value_plan = Fragments::value_plan(lane, value_stride * 8, order);
    // The tile's 16 key norms (lanes 0–15) and 16 value norms (lanes 16–31) of the tokens of rows 0–15
    // (order), one read per lane (bit norm_bit of the stage), handed to the lanes of keys g and g + 8
    // by shuffles.
    const bool value_lane = lane >= kTileTokens;
    const int row_token = order(lane % kTileTokens);
    const int norm_bit = pinned(value_lane ? (key_tile + value_norm_base + row_token * value_norm_stride) * 8
                                           : (key_norm_base + row_token * key_norm_stride) * 8);
    const bool norm_fp16 = pinned<int>(value_lane ? p.values.norm_fp16 : p.keys.norm_fp16) != 0;

    // Tokens from the warp's first, held in a register (pinned): left to itself, the compiler rebuilt
    // the tile's first token from the thread index on every tile.
    const int warp_left = pinned(end - start - warp * kTileTokens);
    const int key_token = pinned(order(g));  // the token of key g (key g + 8's: 8 further)
    run_pipeline(my_tiles, p.stages, issue, [&](int i, int stage) {
        const int tile_left = warp_left - i * (Warps * kTileTokens);  // tokens of the tile (and after) to read
        const auto* key_words = reinterpret_cast<const std::uint32_t*>(mine + stage * stage_bytes);
        const auto* value_words = reinterpret_cast<const std::uint32_t*>(mine + stage * stage_bytes + key_tile);
        const float lane_norm = norm_at(key_words, norm_bit, norm_fp16);
        // Base-2 logits: s[w][2k + e] is key g + 8k against the head of column 2t + e.
        float s[P][4];
        Columns::template tile_scores<Fragments, D>(tables, key_words, key_plan, q_operands, s);
        float value_norm[2];
#pragma unroll
        for (int k = 0; k < 2; ++k) {
            const int row = g + 8 * k;
            const bool valid = key_token + 8 * k < tile_left;
            const float key_norm = __shfl_sync(kFullMask, lane_norm, row);
            const float token_value_norm = __shfl_sync(kFullMask, lane_norm, kTileTokens + row);
            value_norm[k] = valid ? token_value_norm : 0.0f;
#pragma unroll
            for (int w = 0; w < P; ++w)
#pragma unroll
                for (int e = 0; e < L; ++e) s[w][2 * k + e] = valid ? s[w][2 * k + e] * head_scale[w][e] * key_norm : -INFINITY;
        }
        // A head's running maximum moves only when one of the tile's scores is above it: once the maxima
        // settle, no lane sees one, and the tile skips finding its maxima across the lanes (shuffles on
        // the loop's critical path) and the rescale.
        bool above = false;
#pragma unroll
        for (int w = 0; w < P; ++w)
#pragma unroll
            for (int e = 0; e < L; ++e) above = above || fmaxf(s[w][e], s[w][2 + e]) > row_max[w][e];
        if (__any_sync(kFullMask, above)) {
            float keep[P][L];
#pragma unroll
            for (int w = 0; w < P; ++w)
#pragma unroll
                for (int e = 0; e < L; ++e) {
                    float tile_max = fmaxf(s[w][e], s[w][2 + e]);
#pragma unroll
                    for (int m = 4; m <= 16; m *= 2) tile_max = fmaxf(tile_max, __shfl_xor_sync(kFullMask, tile_max, m));
                    const float new_max = fmaxf(row_max[w][e], tile_max);
                    keep[w][e] = fast_exp2(row_max[w][e] - new_max);
                    row_max[w][e] = new_max;
                    row_sum[w][e] *= keep[w][e];
                }
#pragma unroll
            for (int w = 0; w < P; ++w)
#pragma unroll
                for (int m = 0; m < M; ++m)
#pragma unroll
                    for (int i = 0; i < 4; ++i)
                        if (i % 2 < L) acc[w][m][i] *= keep[w][i % 2];  // (with L = 1 the odd columns stay 0)
        }
        // Weights (masked keys: 2^−∞ = 0; the maxima are finite, kNoMax, so there is no ∞ − ∞).
#pragma unroll
        for (int w = 0; w < P; ++w)
#pragma unroll
            for (int e = 0; e < L; ++e) {
#pragma unroll
                for (int k = 0; k < 2; ++k) s[w][2 * k + e] = fast_exp2(s[w][2 * k + e] - row_max[w][e]);
                row_sum[w][e] += s[w][e] + s[w][2 + e];
            }
        // Pᵀ, the B operand of Oᵀ = Vᵀ·Pᵀ: weights · |v| of keys g, g + 8 for columns (2t, 2t + 1),
        // transposed to columns (heads) g and keys (2t, 2t + 1), (2t + 8, 2t + 9).
        std::uint32_t pw[P][2];
#pragma unroll
        for (int w = 0; w < P; ++w)
#pragma unroll
            for (int k = 0; k < 2; ++k)
                pw[w][k] = transpose_8x8(pack_as_halves(s[w][2 * k] * value_norm[k], L == 2 ? s[w][2 * k + 1] * value_norm[k] : 0.0f));
        // Vᵀ in two chunks of value slots, each going to the tensor cores as soon as its m-blocks are
        // whole (a chunk of odd length leaves its last slot for the next).
        constexpr int kSplit = Fragments::kValueSplit, kRest = D / 8 - kSplit;
        std::uint32_t v0[kSplit][2] = {}, v1[kRest][2] = {};  // (both written in full before any read)
        const auto slot = [&](int c, int k) { return c < kSplit ? v0[c][k] : v1[c - kSplit][k]; };
        const auto multiply = [&](int m) {
            const std::uint32_t a[4] = {slot(2 * m, 0), slot(2 * m + 1, 0), slot(2 * m, 1), slot(2 * m + 1, 1)};
#pragma unroll
            for (int w = 0; w < P; ++w) mma_16816(acc[w][m], a, pw[w][0], pw[w][1]);
        };
        Fragments::template value_fragments<0, kSplit>(tables, value_words, value_plan, v0);
#pragma unroll
        for (int m = 0; m < kSplit / 2; ++m) multiply(m);
        Fragments::template value_fragments<kSplit, kRest>(tables, value_words, value_plan, v1);
#pragma unroll
        for (int m = kSplit / 2; m < M; ++m) multiply(m);
    });

    // Row sums over the eight lanes g of a head; then the warps merge in shared memory, all threads
    // at once (the staging is free once every warp is past its last tile).
#pragma unroll
    for (int w = 0; w < P; ++w)
#pragma unroll
        for (int e = 0; e < L; ++e)
#pragma unroll
            for (int m = 4; m <= 16; m *= 2) row_sum[w][e] += __shfl_xor_sync(kFullMask, row_sum[w][e], m);
    __syncthreads();
    auto* values = reinterpret_cast<float(*)[Heads][D]>(staging);  // [warp][head][coordinate], true order
#pragma unroll
    for (int w = 0; w < P; ++w)
#pragma unroll
        for (int e = 0; e < L; ++e) {
            const int head = head_of[w][e];
            if (head < 0) continue;
#pragma unroll
            for (int m = 0; m < M; ++m)
#pragma unroll
                for (int r = 0; r < 2; ++r) values[warp][head][Fragments::value_coordinate(g, 2 * m + r)] = acc[w][m][2 * r + e];
            if (g == 0) {
                warp_max[warp][head] = row_max[w][e];
                warp_sum[warp][head] = row_sum[w][e];
            }
        }
    __syncthreads();
    // One thread per head: the split's maximum and sum, and each warp's weight (in place of its max).
    const long long slot0 = (static_cast<long long>(b) * shape.q_heads + first_head) * p.splits;
    if (threadIdx.x < static_cast<unsigned>(rows)) {
        const int head = static_cast<int>(threadIdx.x);
        float total_max = kNoMax, total_sum = 0.0f;  // (a warp that saw only masked keys: max kNoMax, sum 0)
        for (int w = 0; w < Warps; ++w) total_max = fmaxf(total_max, warp_max[w][head]);
        for (int w = 0; w < Warps; ++w) {
            const float weight = fast_exp2(warp_max[w][head] - total_max);
            total_sum += weight * warp_sum[w][head];
            warp_max[w][head] = weight;
        }
        const long long slot = slot0 + static_cast<long long>(head) * p.splits + split;
        p.partial_max_sum[2 * slot] = total_max;
        p.partial_max_sum[2 * slot + 1] = total_sum;
        warp_sum[0][head] = total_sum;  // (for a single split, below)
    }
    __syncthreads();
    // A row's output from its weighted values v (lane l: coordinates l·E ... l·E + E − 1) and the sum
    // of its weights: normalized, rotated back, μ_v added (not to an empty context's zero row), stored.
    constexpr int E = D / 32;
    const float* value_offset = head_row(p.preconditioning.value_offset, kv_index, D);
    const auto finish = [&](int row, float (&v)[E], float total_sum) {
        const float inverse = total_sum > 0.0f ? 1.0f / total_sum : 0.0f;
#pragma unroll
        for (int j = 0; j < E; ++j) v[j] *= inverse;
        warp_inverse_rotate(v, p.values.signs);
        const long long out = (static_cast<long long>(b) * shape.q_heads + first_head + row) * D + lane * E;
#pragma unroll
        for (int j = 0; j < E; ++j) p.out.store(out + j, value_offset != nullptr && total_sum > 0.0f ? v[j] + value_offset[lane * E + j] : v[j]);
    };
    if (p.splits == 1) {  // the block saw the whole context (sequences × KV heads fill the GPU): no merge of splits
        for (int row = warp; row < rows; row += Warps) {
            float v[E];
#pragma unroll
            for (int j = 0; j < E; ++j) {
                v[j] = 0.0f;
#pragma unroll
                for (int w = 0; w < Warps; ++w) v[j] += warp_max[w][row] * values[w][row][lane * E + j];
            }
            finish(row, v, warp_sum[0][row]);
        }
        return;
    }
    for (int i = static_cast<int>(threadIdx.x); i < rows * D; i += 32 * Warps) {
        const int row = i / D, coordinate = i % D;
        float sum = 0.0f;
#pragma unroll
        for (int w = 0; w < Warps; ++w) sum += warp_max[w][row] * values[w][row][coordinate];
        p.partial_values[((slot0 + static_cast<long long>(row) * p.splits) + split) * D + coordinate] = sum;
    }
    // The last block of the (sequence, KV head, chunk) to finish merges the splits.
    __threadfence();
    __syncthreads();
    unsigned* counter = p.counters + (static_cast<long long>(b) * shape.kv_heads + kv_head) * chunks + chunk;
    if (threadIdx.x == 0) last_block = atomicAdd(counter, 1u) == static_cast<unsigned>(p.splits - 1);
    __syncthreads();
    if (!last_block) return;
    __threadfence();

    // One warp per row; lane l takes splits l, l + 32, ...: their weights, then the weighted values
    // summed split by split, each split's weight handed round by a shuffle, eight splits' values in
    // flight at once, 16 bytes a load (this is the tail of every call). Each split's max is read
    // twice rather than kept in a register: holding it changes how the compiler allocates the tile
    // loop above, for the worse (bench/results/cuda_h100.md).
    for (int row = warp; row < rows; row += Warps) {
        const long long slot = slot0 + static_cast<long long>(row) * p.splits;
        const float* max_sum = p.partial_max_sum + 2 * slot;
        float total_max = kNoMax;
        for (int s = lane; s < p.splits; s += 32) total_max = fmaxf(total_max, __ldcg(max_sum + 2 * s));
#pragma unroll
        for (int m = 16; m >= 1; m /= 2) total_max = fmaxf(total_max, __shfl_xor_sync(kFullMask, total_max, m));
        float total_sum = 0.0f, v[E];
#pragma unroll
        for (int j = 0; j < E; ++j) v[j] = 0.0f;
        for (int first = 0; first < p.splits; first += 32) {
            const int s = first + lane, count = min(32, p.splits - first);
            const float2 split_max_sum =
                s < p.splits ? __ldcg(reinterpret_cast<const float2*>(max_sum) + s) : make_float2(-INFINITY, 0.0f);
            const float weight = exp2f(split_max_sum.x - total_max);  // 0 for lanes past the last split
            total_sum += weight * split_max_sum.y;
            const float* values = p.partial_values + (slot + first) * D + lane * E;
#pragma unroll 8
            for (int k = 0; k < count; ++k) {
                const float w = __shfl_sync(kFullMask, weight, k);
                float x[E];
                load_global_cg(values + k * D, x);
#pragma unroll
                for (int j = 0; j < E; ++j) v[j] += w * x[j];
            }
        }
#pragma unroll
        for (int m = 16; m >= 1; m /= 2) total_sum += __shfl_xor_sync(kFullMask, total_sum, m);
        finish(row, v, total_sum);
    }
    if (threadIdx.x == 0) *counter = 0;  // ready for the next call
}

}  // namespace octopus::cuda::detail
