// Fused scores: s[b, i, t] = q_{b,i} · k̂_{b, i/G, t}, read straight from packed codes and norms.
//
// Per block: one sequence, one KV head, up to 16 of its query heads (columns of the mma), one range of
// tokens. The queries are rotated once per block into the codebooks' domain; keys are never decoded
// to memory: each warp stages 16 records at a time into shared memory (cp.async) and turns codes into
// tensor-core operands in registers (fragments.cuh). s = (q̂·k̃)·|q|·|k| with q̂ = Rq/|q| and k̃ the
// codebook point, so the fp16 operands stay near unit scale whatever the magnitudes.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "octopus/cuda/cache_shape.cuh"
#include "octopus/cuda/device_codec.cuh"
#include "octopus/cuda/error.cuh"
#include "octopus/cuda/fragments.cuh"
#include "octopus/cuda/preconditioning.cuh"

namespace octopus::cuda {
namespace detail {

/// Shared memory for a block's codebook copies (CopiedTable), both fused kernels: 68 KB buy 16 copies
/// of every OCTOPUS table up to B = 9, 32 of TurboQuant's 3- and 4-bit pair tables and 16 of its 2-bit
/// quad table.
inline constexpr int kTableBudget = 68 * 1024;

// Eight warps share a block's tables, two blocks a multiprocessor: up to 128 registers a thread, so
// that the per-lane copy state, plans and query operands stay in registers across tiles (left to
// itself the compiler packs four blocks at 64 registers and recomputes them every tile, which is slower).
inline constexpr int kScoreWarps = 8, kScoreBlocksPerSM = 2;

/// Attribute `Attribute` of the current device, asked of the driver once per device (the fused kernels
/// run once per decoded token; a driver call per launch would show).
template <cudaDeviceAttr Attribute>
int device_attribute() {
    static std::atomic<int> cached[64] = {};
    int device = 0;
    OCTOPUS_CUDA_CHECK(cudaGetDevice(&device));
    if (device < 64 && cached[device].load(std::memory_order_relaxed) != 0) return cached[device].load(std::memory_order_relaxed);
    int value = 0;
    OCTOPUS_CUDA_CHECK(cudaDeviceGetAttribute(&value, Attribute, device));
    if (device < 64) cached[device].store(value, std::memory_order_relaxed);
    return value;
}
/// Multiprocessors of the current device.
inline int multiprocessors() { return device_attribute<cudaDevAttrMultiProcessorCount>(); }
/// Shared memory one block may use on the current device (after opting in, prepare_kernel).
inline int shared_memory_per_block() { return device_attribute<cudaDevAttrMaxSharedMemoryPerBlockOptin>(); }

/// Raises `kernel`'s dynamic shared-memory limit to `bytes` and returns how many of its blocks of
/// `threads` fit on one multiprocessor. Asked of the driver once per (kernel, device, bytes): the
/// fused kernels run once per decoded token, and two driver calls per launch would cost more than
/// a short kernel.
template <class Kernel>
int prepare_kernel(Kernel kernel, int threads, int bytes) {
    struct Entry {
        const void* kernel;
        int device, threads, bytes, blocks;
    };
    static std::mutex mutex;
    static std::vector<Entry> entries;
    int device = 0;
    OCTOPUS_CUDA_CHECK(cudaGetDevice(&device));
    const void* key = reinterpret_cast<const void*>(kernel);
    const std::lock_guard<std::mutex> lock(mutex);
    for (const Entry& e : entries)
        if (e.kernel == key && e.device == device && e.threads == threads && e.bytes == bytes) return e.blocks;
    OCTOPUS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    int blocks = 0;
    OCTOPUS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, bytes));
    entries.push_back({key, device, threads, bytes, blocks});
    return blocks;
}

__host__ __device__ constexpr int round_up_16(int bytes) { return (bytes + 15) / 16 * 16; }

/// Shared memory of both fused kernels: the codebook tables, 16 query scales and 16 query offsets
/// (q·μ), the 16 rotated query rows, then the warps' staging (which attention reuses to merge its warps
/// after the last tile).
/// The queries have their own room so that the first tiles can load while they are rotated.
template <class Fragments, int D>
struct FusedLayout {
    static constexpr int kScales = round_up_16(static_cast<int>(sizeof(typename Fragments::Tables)));
    static constexpr int kRotated = kScales + 32 * static_cast<int>(sizeof(float));
    static constexpr int kStaging = kRotated + round_up_16(static_cast<int>(sizeof(QueryRows<D>)));

    /// Bytes for `staging` bytes of staging.
    static int bytes(int staging) { return kStaging + staging; }
    __device__ static auto& tables(unsigned char* shared) { return *reinterpret_cast<typename Fragments::Tables*>(shared); }
    __device__ static float* scales(unsigned char* shared) { return reinterpret_cast<float*>(shared + kScales); }
    __device__ static float* offsets(unsigned char* shared) { return reinterpret_cast<float*>(shared + kScales) + 16; }
    __device__ static QueryRows<D>& rotated(unsigned char* shared) { return *reinterpret_cast<QueryRows<D>*>(shared + kRotated); }
    __device__ static std::uint8_t* staging(unsigned char* shared) { return shared + kStaging; }
};

/// The deepest pipeline (2 to kMaxStages stages) whose staging, `stage_bytes` per warp and stage for
/// `warps` warps but at least `at_least` bytes, fits the device's shared memory per block beside the
/// rest of FusedLayout and the kernel's `own` bytes of static shared variables; throws
/// octopus::error when not even two stages fit.
template <class Fragments, int D>
int pipeline_stages(int warps, int stage_bytes, int at_least, int own, const char* what) {
    const int limit = shared_memory_per_block() - round_up_16(own);
    const auto bytes = [&](int stages) { return FusedLayout<Fragments, D>::bytes(std::max(warps * stages * stage_bytes, at_least)); };
    int stages = kMaxStages;
    while (stages > 2 && bytes(stages) > limit) --stages;
    octopus::detail::require(bytes(stages) <= limit,
                             std::string("octopus::cuda::") + what + ": the device's shared memory per block is too small");
    return stages;
}

template <class Fragments, int D, int Heads, int Warps>
__global__ void __launch_bounds__(32 * Warps, kScoreBlocksPerSM)
    scores_kernel(CodecView c, const float* q, const std::uint8_t* cache, CacheShape shape, int tokens_per_block,
                  int stages, Preconditioning preconditioning, float* out) {
    extern __shared__ __align__(16) unsigned char shared[];
    using Layout = FusedLayout<Fragments, D>;
    using Columns = HeadColumns<Heads>;
    constexpr int P = Columns::kWeightBlocks;
    auto& tables = Layout::tables(shared);
    float* query_scale = Layout::scales(shared);
    float* query_offset = Layout::offsets(shared);
    std::uint8_t* staging = Layout::staging(shared);
    auto& rotated = Layout::rotated(shared);

    const int group = shape.q_heads / shape.kv_heads, chunks = (group + Heads - 1) / Heads;
    const int kv_head = static_cast<int>(blockIdx.y) / chunks, chunk = static_cast<int>(blockIdx.y) % chunks;
    const int first_head = kv_head * group + chunk * Heads, rows = min(Heads, group - chunk * Heads);
    const int b = static_cast<int>(blockIdx.z), length = clamp_length(shape.lengths[b], shape.max_length);
    const int start = static_cast<int>(blockIdx.x) * tokens_per_block, end = min(start + tokens_per_block, length);
    if (start >= end) return;
    const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
    const int g = lane / 4, t = lane % 4;

    const int rb = c.record_bytes, tile = tile_bytes(rb);
    const int tiles = (end - start + kTileTokens - 1) / kTileTokens;
    const int my_tiles = warp < tiles ? (tiles - warp + Warps - 1) / Warps : 0;  // tiles warp, warp + Warps, ...
    const std::uint8_t* records = cache + (static_cast<long long>(b) * shape.kv_heads + kv_head) * shape.capacity * rb;
    std::uint8_t* mine = staging + warp * stages * tile;
    const int lane_bytes = pinned(lane * 16);
    const TileSource source = TileSource::records(records, rb, lane_bytes);
    unsigned next_tile = static_cast<unsigned>(start / kTileTokens + warp);  // the warp's tiles: warp, warp + Warps, ...
    const auto issue = [&](int stage) {
        source.copy<Fragments::kMaxRecordBytes>(mine + stage * tile, next_tile, lane_bytes);
        next_tile += Warps;
    };
    std::uint32_t q_operands[Columns::kQueryBlocks][D / 16][2];
    const long long kv_index = static_cast<long long>(b) * shape.kv_heads + kv_head;
    set_up_block<Fragments, D, Heads, Warps>(tables, rotated, query_scale, query_offset, c, c,
                                             Elements{q + (static_cast<long long>(b) * shape.q_heads + first_head) * D}, rows,
                                             head_row(preconditioning.key_scale, kv_index, D),
                                             head_row(preconditioning.key_offset, kv_index, D), 1.0f,
                                             [&] { start_pipeline(my_tiles, 0, stages - 1, issue); }, q_operands);
    // This lane's heads (columns 2t + e of each weight block): scale, q·μ, and where their rows start.
    constexpr int L = Columns::kLaneHeads;
    float head_scale[P][L], head_offset[P][L];
    float* out_rows[P][L];
#pragma unroll
    for (int p = 0; p < P; ++p)
#pragma unroll
        for (int e = 0; e < L; ++e) {
            const int head = Columns::lane_head(p, e, t, rows);
            head_scale[p][e] = head >= 0 ? query_scale[head] : 0.0f;
            head_offset[p][e] = head >= 0 ? query_offset[head] : 0.0f;
            out_rows[p][e] = head >= 0 ? out + (static_cast<long long>(b) * shape.q_heads + first_head + head) * shape.max_length : nullptr;
        }
    // Tokens in order: for keys alone, at every record size the kernels take, swapping pairs reads in no
    // fewer wavefronts (choose_tile_order with no values; the TileOrder test).
    const typename Fragments::KeyPlan key_plan = Fragments::key_plan(lane, rb * 8, TileOrder{});
    // Lane i < 16 reads token i's norm; the lanes that scale a token's scores get it by shuffle.
    const int norm_bit = pinned(((lane % kTileTokens) * rb + c.code_bytes) * 8);

    run_pipeline(my_tiles, stages, issue, [&](int i, int stage) {
        const int first = start + (warp + i * Warps) * kTileTokens;
        const auto* words = reinterpret_cast<const std::uint32_t*>(mine + stage * tile);
        const float lane_norm = norm_at(words, norm_bit, c.norm_fp16);
        float s[P][4];
        Columns::template tile_scores<Fragments, D>(tables, words, key_plan, q_operands, s);
#pragma unroll
        for (int k = 0; k < 2; ++k) {
            const int token = g + 8 * k;
            const float norm = __shfl_sync(kFullMask, lane_norm, token);
            if (first + token >= end) continue;
#pragma unroll
            for (int p = 0; p < P; ++p)
#pragma unroll
                for (int e = 0; e < L; ++e)
                    if (out_rows[p][e] != nullptr)
                        out_rows[p][e][first + token] = fmaf(s[p][2 * k + e] * head_scale[p][e], norm, head_offset[p][e]);
        }
    });
}

/// The query heads one block takes (4, 8 or 16: the columns of the fused products, HeadColumns) for
/// groups of `group` query heads per KV head; larger groups take several blocks.
inline int block_heads(int group) { return group <= 4 ? 4 : group <= 8 ? 8 : 16; }

/// Runs f.template operator()<Fragments, Heads>() for the codec and the group size (Heads =
/// block_heads(group)), tables within Budget bytes.
template <int Budget, class F>
bool with_kernel_shape(const CodecView& c, int group, F&& f) {
    return with_fragments<Budget>(c, [&]<class Fragments>() {
        switch (block_heads(group)) {
        case 4: f.template operator()<Fragments, 4>(); break;
        case 8: f.template operator()<Fragments, 8>(); break;
        default: f.template operator()<Fragments, 16>(); break;
        }
    });
}

}  // namespace detail

/// scores[b, i, t] = q[b, i] · (decoded key t of KV head i / G of sequence b), for t < lengths[b];
/// entries t ≥ lengths[b] are left untouched. q: [batch][q_heads][dim] floats; scores:
/// [batch][q_heads][max_length] floats; both on the device. With `preconditioning` (keys encoded by
/// encode_kv with it), the decoded key is the restored one, s∘k̂' + μ: queries are multiplied by s and
/// q·μ is added, HeadCodec::dot's scores. Asynchronous on `stream`. Throws octopus::error for shapes or
/// codecs the kernels do not take, before launching anything.
inline void scores(const DeviceCodec& keys, const float* q, const std::uint8_t* cache, const CacheShape& shape,
                   float* out, cudaStream_t stream = nullptr, const Preconditioning& preconditioning = {}) {
    detail::check_cache(keys, cache, shape, "scores");
    octopus::detail::require(q != nullptr && out != nullptr, "octopus::cuda::scores: null query or output pointer");
    if (shape.max_length == 0) return;
    const CodecView& c = keys.view();
    const int group = shape.q_heads / shape.kv_heads;
    const bool found = detail::with_kernel_shape<detail::kTableBudget>(c, group, [&]<class Fragments, int Heads>() {
        constexpr int D = Fragments::kKeySlots * 4;
        constexpr int W = detail::kScoreWarps;
        auto kernel = detail::scores_kernel<Fragments, D, Heads, W>;
        const int stages = detail::pipeline_stages<Fragments, D>(W, detail::tile_bytes(c.record_bytes), 0, 0, "scores");
        const int smem = detail::FusedLayout<Fragments, D>::bytes(W * stages * detail::tile_bytes(c.record_bytes));
        octopus::detail::require(c.record_bytes <= Fragments::kMaxRecordBytes,
                                 "octopus::cuda::scores: records longer than the kernel stages");
        const int per_multiprocessor = detail::prepare_kernel(kernel, 32 * W, smem);
        // One wave of blocks, each over a run of whole tiles per warp: the longer the run, the less
        // each token pays for a block's set-up (tables, rotated queries).
        const int chunks = (group + Heads - 1) / Heads;
        const long long rows_of_blocks = static_cast<long long>(shape.batch) * shape.kv_heads * chunks;
        // Two blocks a multiprocessor even where a third would fit (TurboQuant's need 80 registers a
        // thread): a third block's set-up costs more than its share of the tokens saves.
        const int resident = std::clamp(per_multiprocessor, 1, detail::kScoreBlocksPerSM);
        const long long wave = static_cast<long long>(resident) * detail::multiprocessors();
        const long long blocks_per_row = std::max(1LL, wave / rows_of_blocks);
        const int step = W * detail::kTileTokens;
        const long long per_block = (shape.max_length + blocks_per_row - 1) / blocks_per_row;
        const int tokens_per_block = static_cast<int>(std::max<long long>(step, (per_block + step - 1) / step * step));
        const dim3 grid(static_cast<unsigned>((shape.max_length + tokens_per_block - 1) / tokens_per_block),
                        static_cast<unsigned>(shape.kv_heads * chunks), static_cast<unsigned>(shape.batch));
        kernel<<<grid, 32 * W, smem, stream>>>(c, q, cache, shape, tokens_per_block, stages, preconditioning, out);
        OCTOPUS_CUDA_CHECK(cudaGetLastError());
    });
    octopus::detail::require(found, "octopus::cuda::scores: no GPU kernel for this codec (dims " + octopus::gpu_head_dims_text() + "; TurboQuant "
                                    "at 2, 3, 4 bits; OCTOPUS at 2 to 4 bits in thirds)");
}

}  // namespace octopus::cuda
