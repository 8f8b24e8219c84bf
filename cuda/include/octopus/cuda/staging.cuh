// Shared-memory staging of record tiles (cp.async, per warp, several stages deep), the fused
// kernels' shared-memory layout, and the block set-up that rotates each head's query once and builds
// its operands.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "octopus/contract.hpp"
#include "octopus/cuda/bits.cuh"
#include "octopus/cuda/device_codec.cuh"
#include "octopus/cuda/elements.cuh"
#include "octopus/cuda/mma.cuh"
#include "octopus/cuda/warp_rotation.cuh"

namespace octopus::cuda::detail {

/// Tokens per tile: two 8-key score tiles, one 16-key k-block of P·V.
inline constexpr int kTileTokens = 16;
static_assert(kTileTokens == octopus::kPageGroupTokens, "a tile is a group of a head page");

/// Bytes of one staged tile of records: 16 records (a multiple of 16 bytes) and a 16-byte tail that
/// the word-window reads of the last record may touch.
__host__ __device__ constexpr int tile_bytes(int record_bytes) { return kTileTokens * record_bytes + 16; }

__device__ inline void copy_async_16(void* shared, const void* global) {
    const auto address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(address), "l"(global));
}
__device__ inline void commit_async() { asm volatile("cp.async.commit_group;\n" ::); }
template <int Pending>
__device__ inline void wait_async() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}

/// One lane's share of copying a warp's tiles of 16 tokens out of one pool into shared memory, from
/// contiguous records or from pages, by one rule: tile n of the source is the run of `bytes` bytes
/// n · bytes after tile 0, and the lane copies its 16-byte pieces lane, lane + 32, ... of it.
/// - Pages (PageLayout): a tile is a group of 16 slots of a head page, their codes then their norms;
///   `first` is KV head h's first head page, and the group's tile number counts the groups of every
///   head page before it (page · kv_heads · P/16 + the group in its page; the caller works it out).
/// - Records: a tile is 16 records back to back; `first` is the (sequence, KV head)'s first record.
/// Either way a tile is 16 records' bytes, so its address is one multiply-add and its pieces the same
/// predicated copies at constant offsets. Few registers stay live for copying through the tile loops,
/// whose decode needs them: with a run for codes and one for norms, each piece choosing, OCTOPUS's
/// decode plans were pushed out of registers and rebuilt every tile (bench/results/cuda_paged_h200.md).
/// `first` holds the lane's offset and is pinned: left to itself, the compiler re-added the pool's
/// base from the kernel parameters for every piece.
struct TileSource {
    const std::uint8_t* first;  // the lane's first piece of tile 0
    int bytes;                  // of a tile: 16 records

    /// Records of `record_bytes` bytes from `records` on, for the lane whose pieces start `lane_bytes`
    /// into a tile.
    __device__ static TileSource records(const std::uint8_t* records, int record_bytes, int lane_bytes) {
        const std::uint8_t* first = records + lane_bytes;
        asm volatile("" : "+l"(first));
        return {first, kTileTokens * record_bytes};
    }
    /// KV head `head`'s head pages in a pool of pages of `kv_heads` heads laid out by `l`, for the
    /// lane whose pieces start `lane_bytes` into a tile.
    __device__ static TileSource pages(const std::uint8_t* pool, const PageLayout& l, int head, int kv_heads, int lane_bytes) {
        const std::uint8_t* first = pool + l.head_page_offset(0, head, kv_heads) + lane_bytes;
        asm volatile("" : "+l"(first));
        return {first, static_cast<int>(l.group_bytes())};
    }

    /// Starts copying tile `tile` into `target`, the lane's pieces from `lane_bytes` on.
    template <int MaxRecordBytes>
    __device__ void copy(std::uint8_t* target, unsigned tile, int lane_bytes) const {
        constexpr int kPieces = (kTileTokens * MaxRecordBytes + 511) / 512;
        const std::uint8_t* from = first + static_cast<unsigned long long>(tile) * static_cast<unsigned>(bytes);
#pragma unroll
        for (int p = 0; p < kPieces; ++p)
            if (lane_bytes + 512 * p < bytes) copy_async_16(target + lane_bytes + 512 * p, from + 512 * p);
    }
};

/// Deepest staging pipeline the fused kernels run (stages of tiles per warp in flight); the launchers
/// choose 2 to kMaxStages by what the device's shared memory holds (pipeline_stages, scores.cuh).
inline constexpr int kMaxStages = 4;

/// Waits until at most stages − 1 committed groups of copies are pending (the count must be an
/// immediate: one uniform branch picks it).
__device__ inline void wait_for_oldest(int stages) {
    if (stages >= 4) wait_async<3>();
    else if (stages == 3) wait_async<2>();
    else wait_async<1>();
}

/// Stages a warp's tiles [from, to) of its first stages − 1 (issue(slot) stages the warp's next tile in
/// `slot`; one commit group each, tile or not, so run_pipeline's count holds), so that they load while
/// the block sets up (tables, queries); run_pipeline goes on from there once all stages − 1 are staged.
template <class Issue>
__device__ inline void start_pipeline(int tiles, int from, int to, Issue&& issue) {
    for (int s = from; s < to; ++s) {
        if (s < tiles) issue(s);
        commit_async();
    }
}

/// Runs compute(i, slot) over a warp's `tiles` tiles, started by start_pipeline, while the next
/// stages − 1 tiles load (stages in [2, kMaxStages]; tile i is staged in slot i mod stages).
template <class Issue, class Compute>
__device__ inline void run_pipeline(int tiles, int stages, Issue&& issue, Compute&& compute) {
    int ahead = stages - 1, current = 0;  // the slots of tiles i + stages − 1 and i
    for (int i = 0; i < tiles; ++i) {
        if (i + stages - 1 < tiles) issue(ahead);
        commit_async();
        wait_for_oldest(stages);
        __syncwarp();
        compute(i, current);
        __syncwarp();
        ahead = ahead + 1 == stages ? 0 : ahead + 1;
        current = current + 1 == stages ? 0 : current + 1;
    }
}

/// A block's 16 rotated query rows in shared memory, fp32, with a float of padding after every 32:
/// query_operands has lanes (g, t) read coordinate t·D/4 + s of row g mod 4 at once, which without
/// the padding all fall on one bank (16-way conflicts in every block's set-up).
template <int D>
struct QueryRows {
    float data[16][D + D / 32];
    __device__ float& at(int row, int coordinate) { return data[row][coordinate + coordinate / 32]; }
    __device__ float at(int row, int coordinate) const { return data[row][coordinate + coordinate / 32]; }
};

/// The rows of a block's 16 query rows that one warp rotates (warp, warp + Warps, ...), as read from
/// global memory (fetch_queries) before prepare_queries rotates them, and the lane's part of each
/// row's q·μ.
template <int D, int Warps>
struct QueryShare {
    static constexpr int kRows = (16 + Warps - 1) / Warps;
    float v[kRows][D / 32];
    float offset[kRows];
};

/// Reads the warp's rows of the block's queries (rows [0, rows) from q, as floats; the rest are zero), each
/// multiplied by the KV head's channel scales `scale` and its part of q·μ taken with `key_offset`
/// (either may be null: Preconditioning).
template <int D, int Warps>
__device__ inline QueryShare<D, Warps> fetch_queries(Elements q, int rows, const float* scale, const float* key_offset) {
    constexpr int E = D / 32;
    const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
    QueryShare<D, Warps> share;
#pragma unroll
    for (int r = 0; r < QueryShare<D, Warps>::kRows; ++r) {
        share.offset[r] = 0.0f;
#pragma unroll
        for (int j = 0; j < E; ++j) {
            float x = warp + r * Warps < rows ? q[(warp + r * Warps) * D + lane * E + j] : 0.0f;
            if (key_offset != nullptr) share.offset[r] = fmaf(x, __ldg(key_offset + lane * E + j), share.offset[r]);
            if (scale != nullptr) x *= __ldg(scale + lane * E + j);
            share.v[r][j] = x;
        }
    }
    return share;
}

/// Rotated, normalized queries of one block from the warps' shares: rows [0, rows) rotated and
/// normalized, the rest zero; scale[row] = |q_row| · extra; offset[row] = q_row·μ (0 without μ).
template <int D, int Warps>
__device__ inline void prepare_queries(QueryRows<D>& rotated, float* scale, float* offset, const QueryShare<D, Warps>& share,
                                       int rows, const float* signs, float extra) {
    constexpr int E = D / 32;
    const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
#pragma unroll
    for (int r = 0; r < QueryShare<D, Warps>::kRows; ++r) {
        const int row = warp + r * Warps;
        if (row >= 16) break;
        if (row >= rows) {  // heads the block does not have (padding columns of the mma): zero, nothing to rotate
#pragma unroll
            for (int j = 0; j < E; ++j) rotated.at(row, lane * E + j) = 0.0f;
            if (lane == 0) scale[row] = offset[row] = 0.0f;
            continue;
        }
        float v[E];
        float sum = 0.0f, dot = share.offset[r];
#pragma unroll
        for (int j = 0; j < E; ++j) {
            v[j] = share.v[r][j];
            sum += v[j] * v[j];
        }
#pragma unroll
        for (int m = 16; m >= 1; m /= 2) {
            sum += __shfl_xor_sync(kFullMask, sum, m);
            dot += __shfl_xor_sync(kFullMask, dot, m);
        }
        const float norm = sqrtf(sum), inverse = norm > 0.0f ? 1.0f / norm : 0.0f;
        warp_rotate(v, signs);
#pragma unroll
        for (int j = 0; j < E; ++j) rotated.at(row, lane * E + j) = v[j] * inverse;
        if (lane == 0) scale[row] = norm * extra, offset[row] = dot;
    }
}

/// The columns of the fused products for a block of `Heads` query heads (4, 8 or 16) of one KV head.
/// Sᵀ = K·Qᵀ takes each head twice, as q = hi + lo (each fp16, so scores keep fp32 accuracy): with
/// 4 heads one n-block holds head h's hi part in column 2h and its lo part in column 2h + 1, so that
/// lane t sums both parts of head t in its own registers; with 8 or 16, n-block 2p + 1 holds the lo
/// parts of n-block 2p's heads. Oᵀ = Vᵀ·Pᵀ takes one column per head, in kWeightBlocks n-blocks of 8
/// (with 4 heads, head h in column 2h; the odd columns are zero and never stored).
template <int Heads>
struct HeadColumns {
    static_assert(Heads == 4 || Heads == 8 || Heads == 16, "4, 8 or 16 query heads per block");
    static constexpr int kQueryBlocks = Heads / 4, kWeightBlocks = Heads > 8 ? 2 : 1;
    /// Heads a lane holds per weight block: columns 2t and 2t + 1, or with 4 heads column 2t alone.
    static constexpr int kLaneHeads = Heads == 4 ? 1 : 2;

    /// The head lane t holds in column 2t + e (e < kLaneHeads) of weight block p, or −1 past the
    /// block's `rows` heads (a group need not fill its last block).
    __device__ static int lane_head(int p, int e, int t, int rows) {
        const int h = Heads == 4 ? t : 8 * p + 2 * t + e;
        return h < rows ? h : -1;
    }

    /// B operands of Sᵀ = K·Qᵀ for lane (g, t) from the block's rotated, normalized queries.
    template <class Fragments, int D>
    __device__ static void query_operands(const QueryRows<D>& rotated, int g, int t,
                                          std::uint32_t (&q)[kQueryBlocks][D / 16][2]) {
#pragma unroll
        for (int n = 0; n < kQueryBlocks; ++n) {
            const int row = Heads == 4 ? g / 2 : 8 * (n / 2) + g;
            const bool lo = Heads == 4 ? g % 2 == 1 : n % 2 == 1;
#pragma unroll
            for (int j = 0; j < D / 16; ++j)
#pragma unroll
                for (int k = 0; k < 2; ++k) {
                    const float v0 = rotated.at(row, Fragments::key_coordinate(t, 4 * j + 2 * k));
                    const float v1 = rotated.at(row, Fragments::key_coordinate(t, 4 * j + 2 * k + 1));
                    const __half h0 = __float2half_rn(v0), h1 = __float2half_rn(v1);
                    q[n][j][k] = lo ? pack_as_halves(v0 - __half2float(h0), v1 - __half2float(h1)) : pack_as_halves(v0, v1);
                }
        }
    }

    /// Sᵀ = K·Qᵀ over the 16 keys of a tile and the hi and lo parts summed: s[p][2k + e] holds, for
    /// lane (g, t), key g + 8k against the head of column 2t + e of weight block p (e < kLaneHeads).
    template <class Fragments, int D>
    __device__ static void tile_scores(const typename Fragments::Tables& tables, const std::uint32_t* words,
                                       const typename Fragments::KeyPlan& plan,
                                       const std::uint32_t (&q)[kQueryBlocks][D / 16][2], float (&s)[kWeightBlocks][4]) {
        std::uint32_t low[D / 16][2], high[D / 16][2];
        Fragments::key_fragments(tables, words, plan, 0, low);
        Fragments::key_fragments(tables, words, plan, 1, high);
        // Two accumulators per n-block, so that consecutive mma instructions do not wait on each other.
        float c[kQueryBlocks][2][4] = {};
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
            const std::uint32_t a[4] = {low[j][0], high[j][0], low[j][1], high[j][1]};
#pragma unroll
            for (int n = 0; n < kQueryBlocks; ++n) mma_16816(c[n][j % 2], a, q[n][j][0], q[n][j][1]);
        }
#pragma unroll
        for (int p = 0; p < kWeightBlocks; ++p)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                if constexpr (Heads == 4) {  // columns 2t and 2t + 1: the hi and lo parts of head t
                    s[p][i] = i % 2 == 1 ? 0.0f : (c[0][0][i] + c[0][1][i]) + (c[0][0][i + 1] + c[0][1][i + 1]);
                } else {
                    s[p][i] = (c[2 * p][0][i] + c[2 * p][1][i]) + (c[2 * p + 1][0][i] + c[2 * p + 1][1][i]);
                }
            }
    }
};

/// A fused kernel's block set-up: codebook tables into shared memory, the block's query rows (times
/// the KV head's `channel_scale`, when not null) rotated and normalized (scale[row] = |q_row| · extra,
/// offset[row] = q_row·key_offset, 0 without one), and this lane's Sᵀ = K·Qᵀ query operands, with
/// `start_tiles()` staging the first tiles in between. The set-up's global reads are issued before
/// those copies and the rest after them, so that the tiles load while the tables are written and the
/// queries rotated, rather than behind the copies.
/// `values` is the value codec, whose table the block also needs when it differs from the keys'
/// (MixedFragments); the keys' codec `c` otherwise serves both.
template <class Fragments, int D, int Heads, int Warps, class StartTiles>
__device__ inline void set_up_block(typename Fragments::Tables& tables, QueryRows<D>& rotated, float* scale, float* offset,
                                    const CodecView& c, const CodecView& values, Elements q, int rows,
                                    const float* channel_scale, const float* key_offset, float extra, StartTiles&& start_tiles,
                                    std::uint32_t (&q_operands)[HeadColumns<Heads>::kQueryBlocks][D / 16][2]) {
    const int thread = static_cast<int>(threadIdx.x), lane = thread % 32;
    const auto table_share = [&] {
        if constexpr (requires { Fragments::template fetch<32 * Warps>(c, values, thread); })
            return Fragments::template fetch<32 * Warps>(c, values, thread);
        else
            return Fragments::template fetch<32 * Warps>(c, thread);
    }();
    const auto query_share = fetch_queries<D, Warps>(q, rows, channel_scale, key_offset);
    start_tiles();
    Fragments::store(tables, table_share, thread);
    prepare_queries<D, Warps>(rotated, scale, offset, query_share, rows, c.signs, extra);
    __syncthreads();
    HeadColumns<Heads>::template query_operands<Fragments, D>(rotated, lane / 4, lane % 4, q_operands);
}

}  // namespace octopus::cuda::detail
