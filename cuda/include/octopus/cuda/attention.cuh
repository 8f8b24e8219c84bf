// Fused decode attention over a compressed KV cache: out = softmax(scale · q·Kᵀ)·V for one new query
// per head, K and V read as packed codes and norms, never decoded to memory.
//
// Flash-decoding: the context of each (sequence, KV head) is split over several blocks so that even one
// sequence fills the GPU; each block runs the online softmax over its tokens, 16 at a time per warp (scores
// and the weighted sum of values are both tensor-core products on operands decoded in registers,
// fragments.cuh), merges its warps, and writes (max, sum, weighted values) for its split. The last block of
// a (sequence, KV head) to finish merges the splits (a block with the whole context finishes its rows
// itself), and, because values were summed in the rotated domain (Σ p_t |v_t| ṽ_t, ṽ the codebook point),
// applies the inverse rotation once per output row. All query heads of a group (GQA) share each decoded key
// and value: they are the columns of the mma (Sᵀ = K·Qᵀ, Oᵀ = Vᵀ·Pᵀ; the weights cross from one to the
// other by an 8×8 transpose in registers).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>

#include "octopus/cuda/attention_kernel.cuh"
#include "octopus/cuda/attention_layout.cuh"
#include "octopus/cuda/cache_shape.cuh"
#include "octopus/cuda/device_codec.cuh"
#include "octopus/cuda/error.cuh"
#include "octopus/cuda/fragments.cuh"
#include "octopus/cuda/mixed_fragments.cuh"
#include "octopus/cuda/paged_cache.cuh"
#include "octopus/cuda/scores.cuh"

namespace octopus::cuda {

/// Scratch for decode_attention: per split partial results and one counter per (sequence, KV head,
/// 16-head chunk). Allocate once for the largest shapes and reuse; one attention call at a time per
/// workspace (calls on one stream are ordered, so reuse on a stream is safe).
class AttentionWorkspace {
public:
    /// Room for `batch` sequences of `kv_heads` KV heads, `q_heads` query heads of head dim `dim`,
    /// split at most `max_splits` ways.
    AttentionWorkspace(int batch, int q_heads, int kv_heads, int dim, int max_splits = 128)
        : batch_(batch), q_heads_(q_heads), kv_heads_(kv_heads), dim_(dim), max_splits_(max_splits) {
        octopus::detail::require(batch >= 1 && kv_heads >= 1 && q_heads >= kv_heads && q_heads % kv_heads == 0 &&
                                     dim >= 1 && max_splits >= 1,
                                 "octopus::cuda::AttentionWorkspace: bad shape");
        const long long slots = static_cast<long long>(batch) * q_heads * max_splits;
        OCTOPUS_CUDA_CHECK(cudaMalloc(&values_, slots * dim * sizeof(float)));
        OCTOPUS_CUDA_CHECK(cudaMalloc(&max_sum_, slots * 2 * sizeof(float)));
        OCTOPUS_CUDA_CHECK(cudaMalloc(&counters_, counters() * sizeof(unsigned)));
        OCTOPUS_CUDA_CHECK(cudaMemset(counters_, 0, counters() * sizeof(unsigned)));
    }
    AttentionWorkspace(const AttentionWorkspace&) = delete;
    AttentionWorkspace& operator=(const AttentionWorkspace&) = delete;
    ~AttentionWorkspace() {
        cudaFree(values_);
        cudaFree(max_sum_);
        cudaFree(counters_);
    }

    int batch() const { return batch_; }
    int q_heads() const { return q_heads_; }
    int kv_heads() const { return kv_heads_; }
    int dim() const { return dim_; }
    int max_splits() const { return max_splits_; }
    float* values() const { return values_; }
    float* max_sum() const { return max_sum_; }
    unsigned* counters_data() const { return counters_; }

private:
    long long counters() const {
        const int group = q_heads_ / kv_heads_;
        return static_cast<long long>(batch_) * kv_heads_ * ((group + 7) / 8);  // blocks of ≥ 8 heads beyond 4 (block_heads)
    }
    int batch_, q_heads_, kv_heads_, dim_, max_splits_;
    float* values_ = nullptr;
    float* max_sum_ = nullptr;
    unsigned* counters_ = nullptr;
};

namespace detail {

/// The launch behind both decode_attention forms, after their checks: `shape` gives the batch, heads,
/// lengths and bound (its capacity only for contiguous records), `pages` the page source (a null
/// block table for contiguous records).
inline void launch_attention(const CodecView& k, const CodecView& v, Elements q, const std::uint8_t* key_cache,
                             const std::uint8_t* value_cache, const CacheShape& shape, const PageSource& pages, float scale,
                             OutputElements out, AttentionWorkspace& workspace, cudaStream_t stream,
                             const Preconditioning& preconditioning) {
    using octopus::detail::require;
    require(k.scheme == v.scheme && k.dim == v.dim && (k.code_bits == v.code_bits || k.scheme == Scheme::turboquant),
            "octopus::cuda::decode_attention: keys and values must use the same codec kind and dim, and OCTOPUS keys and "
            "values the same bits (TurboQuant keys and values may differ in bits)");
    require(std::isfinite(scale), "octopus::cuda::decode_attention: scale is not finite");
    require(workspace.batch() >= shape.batch && workspace.q_heads() == shape.q_heads &&
                workspace.kv_heads() == shape.kv_heads && workspace.dim() == k.dim,
            "octopus::cuda::decode_attention: the workspace was made for other shapes");
    const bool paged = pages.block_table != nullptr;
    const int group = shape.q_heads / shape.kv_heads;
    const auto launch = [&]<class Fragments, int Heads>() {
        constexpr int D = Fragments::kKeySlots * 4;
        constexpr int W = attention_warps<Fragments, Heads>();
        require(k.record_bytes <= Fragments::kMaxRecordBytes && v.record_bytes <= Fragments::kMaxRecordBytes,
                "octopus::cuda::decode_attention: records longer than the kernel stages");
        auto kernel = attention_kernel<Fragments, D, Heads, W>;
        const int stage_bytes = tile_bytes(k.record_bytes) + tile_bytes(v.record_bytes);
        constexpr int kMerge = merge_bytes<D, Heads, W>();
        const int stages = pipeline_stages<Fragments, D>(W, stage_bytes, kMerge, sizeof(AttentionShared<Heads, W>), "decode_attention");
        const int smem = FusedLayout<Fragments, D>::bytes(std::max(W * stages * stage_bytes, kMerge));
        const int per_multiprocessor = prepare_kernel(kernel, 32 * W, smem);
        // At most one wave of blocks over all (sequence, KV head, chunk, split), splits of whole tiles
        // and at least one tile per warp. Rounding the splits down keeps the grid within the wave: a
        // second, mostly empty wave would leave its multiprocessors idle for as long as the first.
        const int chunks = (group + Heads - 1) / Heads;
        const long long heads = static_cast<long long>(shape.batch) * shape.kv_heads * chunks;
        const long long wave = static_cast<long long>(std::max(1, per_multiprocessor)) * multiprocessors();
        const int min_tokens = W * kTileTokens;
        const int most = std::max(1, (shape.max_length + min_tokens - 1) / min_tokens);
        int splits = static_cast<int>(std::clamp<long long>(wave / heads, 1, std::min(most, workspace.max_splits())));
        const int per_split = (shape.max_length + splits - 1) / splits;
        const int split_tokens = std::max(kTileTokens, (per_split + kTileTokens - 1) / kTileTokens * kTileTokens);
        splits = std::max(1, (shape.max_length + split_tokens - 1) / split_tokens);
        // The order that reads the staged tile in fewest wavefronts, for its code stride.
        const TileOrder order = choose_tile_order<Fragments>(paged ? k.code_bytes : k.record_bytes,
                                                             paged ? v.code_bytes : v.record_bytes);
        AttentionArguments args{k, v, q, key_cache, value_cache, shape, pages, scale * 1.4426950408889634f,
                                splits, split_tokens, stages, order, preconditioning, out, workspace.values(),
                                workspace.max_sum(), workspace.counters_data()};
        const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(shape.kv_heads * chunks),
                        static_cast<unsigned>(shape.batch));
        kernel<<<grid, 32 * W, smem, stream>>>(args);
        OCTOPUS_CUDA_CHECK(cudaGetLastError());
    };
    const bool found = k.code_bits == v.code_bits
                           ? with_kernel_shape<kTableBudget>(k, group, launch)
                           : with_mixed_fragments<kTableBudget>(k, v, [&]<class Fragments>() {
                                 switch (block_heads(group)) {
                                 case 4: launch.template operator()<Fragments, 4>(); break;
                                 case 8: launch.template operator()<Fragments, 8>(); break;
                                 default: launch.template operator()<Fragments, 16>(); break;
                                 }
                             });
    require(found, "octopus::cuda::decode_attention: no GPU kernel for this codec (dims " + octopus::gpu_head_dims_text() + "; TurboQuant at "
                   "2, 3, 4 bits; OCTOPUS at 2 to 4 bits in thirds)");
}

}  // namespace detail

/// out[b, i] = Σ_t softmax_t(scale · q[b, i]·k̂_t) v̂_t over the first lengths[b] tokens of KV head
/// i / G of sequence b (zero when lengths[b] = 0). q, out: [batch][q_heads][dim] floats on the device.
/// Keys and values must use the same kind of codec (scheme, dim; seeds and norm formats may differ)
/// and, for OCTOPUS, the same bits: TurboQuant keys and values may have different widths (2, 3, 4).
/// With `preconditioning` (the cache encoded by encode_kv with it), k̂ and v̂ are the restored vectors,
/// HeadCodec::attend's output: queries are multiplied by s and μ_v added to each row.
/// Asynchronous on `stream`; throws octopus::error for shapes or codecs the kernels do not take, before
/// launching anything. A damaged norm (NaN) shows as NaN in the rows that read it.
inline void decode_attention(const DeviceCodec& keys, const DeviceCodec& values, const float* q,
                             const std::uint8_t* key_cache, const std::uint8_t* value_cache, const CacheShape& shape,
                             float scale, float* out, AttentionWorkspace& workspace, cudaStream_t stream = nullptr,
                             const Preconditioning& preconditioning = {}) {
    detail::check_cache(keys, key_cache, shape, "decode_attention");
    detail::check_cache(values, value_cache, shape, "decode_attention");
    octopus::detail::require(q != nullptr && out != nullptr, "octopus::cuda::decode_attention: null query or output pointer");
    detail::launch_attention(keys.view(), values.view(), detail::Elements{q}, key_cache, value_cache, shape, detail::PageSource{},
                             scale, detail::OutputElements{out}, workspace, stream, preconditioning);
}

/// The same attention over a paged cache (paged_cache.cuh): out[b, i] = Σ_t softmax_t(scale ·
/// q[b, i]·k̂_t) v̂_t over the first lengths[b] tokens of sequence b, token t read from page
/// block_table[b][t / P]. q and out are [batch][q_heads][dim] arrays of T (float, __half or
/// __nv_bfloat16; the kernels compute in fp32 and round once into out). Pages may be shared between
/// sequences. Everything else is as for the contiguous form above.
template <class T>
void decode_attention(const DeviceCodec& keys, const DeviceCodec& values, const T* q, const PagedCache& cache, float scale,
                      T* out, AttentionWorkspace& workspace, cudaStream_t stream = nullptr,
                      const Preconditioning& preconditioning = {}) {
    constexpr ElementType type = element_type<T>();
    detail::check_paged_cache(keys, values, cache, "decode_attention");
    octopus::detail::require(q != nullptr && out != nullptr, "octopus::cuda::decode_attention: null query or output pointer");
    const detail::PageSource pages{cache.block_table, cache.max_pages_per_sequence, cache.pages,
                                   std::countr_zero(static_cast<unsigned>(cache.page_tokens)), page_layout(keys, cache.page_tokens),
                                   page_layout(values, cache.page_tokens)};
    const CacheShape shape{cache.batch, cache.q_heads, cache.kv_heads, 0, cache.lengths, cache.max_length};
    detail::launch_attention(keys.view(), values.view(), detail::Elements{q, type}, cache.keys, cache.values, shape, pages,
                             scale, detail::OutputElements{out, type}, workspace, stream, preconditioning);
}

}  // namespace octopus::cuda
