// The attention kernel's layout and arguments: its blocks' shared variables, how many warps a block
// runs and whether that fits the device, what a launch passes, and the device helpers of its merge.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "octopus/cuda/cache_shape.cuh"
#include "octopus/cuda/device_codec.cuh"
#include "octopus/cuda/elements.cuh"
#include "octopus/cuda/fragments.cuh"
#include "octopus/cuda/paged_cache.cuh"
#include "octopus/cuda/preconditioning.cuh"
#include "octopus/cuda/scores.cuh"

namespace octopus::cuda::detail {

/// An attention block's own shared variables, beside its FusedLayout.
template <int Heads, int Warps>
struct AttentionShared {
    float warp_max[Warps][Heads], warp_sum[Warps][Heads];  // each warp's softmax state; then its weight in the merge
    bool last_block;
};

/// Bytes of shared memory where an attention block merges its warps (the staging space, once every
/// warp is past its last tile): each warp's weighted values of every head, in fp32.
template <int D, int Heads, int Warps>
constexpr int merge_bytes() {
    return Warps * Heads * D * static_cast<int>(sizeof(float));
}

/// Whether an attention block of `Warps` warps with two stages of tiles fits 160 KB of shared memory.
template <class Fragments, int Heads, int Warps>
constexpr bool attention_fits() {
    constexpr int D = Fragments::kKeySlots * 4, two_stages = 2 * 2 * tile_bytes(Fragments::kMaxRecordBytes);  // keys, values
    return FusedLayout<Fragments, D>::kStaging + std::max(Warps * two_stages, merge_bytes<D, Heads, Warps>()) +
               static_cast<int>(sizeof(AttentionShared<Heads, Warps>)) <=
           160 * 1024;
}

/// Warps of an attention block (one block per multiprocessor, so that all share one set of table
/// copies): 12 for blocks of 4 or 8 heads, leaving each thread the registers its decode overlaps
/// with, 8 for 16 heads (twice the query operands and accumulators). Fewer where a device with 160 KB
/// of shared memory a block would not hold two stages of their tiles or their merge (head dim 256).
/// bench/results/cuda_h100.md has the measurements behind these counts.
template <class Fragments, int Heads>
constexpr int attention_warps() {
    constexpr int most = Heads <= 8 ? 12 : 8;
    if constexpr (attention_fits<Fragments, Heads, most>()) return most;
    else if constexpr (attention_fits<Fragments, Heads, most - 4>()) return most - 4;
    else return 4;
}

struct AttentionArguments {
    CodecView keys, values;
    Elements q;
    const std::uint8_t* key_cache;    // contiguous records, or the key pool (pages.block_table set)
    const std::uint8_t* value_cache;
    CacheShape shape;                 // (paged: capacity unused)
    PageSource pages;
    float scale_log2;  // softmax scale · log2(e): the kernel works in base 2
    int splits, split_tokens, stages;
    TileOrder order;   // which token of a tile each row of the products stands for
    Preconditioning preconditioning;  // s multiplies queries, μ_v is added to outputs (μ is left out)
    OutputElements out;
    float* partial_values;  // [batch][q_heads][splits][dim]
    float* partial_max_sum; // [batch][q_heads][splits][2]
    unsigned* counters;
};

/// 2^x for x ≤ 0 in one instruction (relative error about 2^-22; results below 2^-126 are 0, which
/// a softmax weight can afford), where exp2f spends four on subnormal results.
__device__ inline float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

/// Where a head's running maximum starts: the lowest finite float, not −∞, so that a head that has
/// seen only masked keys (scores −∞) gets weights 2^(−∞ − kNoMax) = 0, not NaN, without a test, and
/// keeps max kNoMax and sum 0, which the merges then weigh to nothing.
inline constexpr float kNoMax = -3.40282347e38f;

/// x[0..E) = p[0..E) from global memory through L2 (another block wrote it), in 16-byte loads, or one
/// 8-byte load for E = 2 (head dim 64); p aligned to them.
template <int E>
__device__ inline void load_global_cg(const float* p, float (&x)[E]) {
    static_assert(E % 4 == 0 || E == 2, "head dims 64, 128, 256: E = 2, 4, 8");
    if constexpr (E == 2) {
        const float2 q = __ldcg(reinterpret_cast<const float2*>(p));
        x[0] = q.x, x[1] = q.y;
    } else {
#pragma unroll
        for (int j = 0; j < E; j += 4) {
            const float4 q = __ldcg(reinterpret_cast<const float4*>(p + j));
            x[j] = q.x, x[j + 1] = q.y, x[j + 2] = q.z, x[j + 3] = q.w;
        }
    }
}

}  // namespace octopus::cuda::detail
