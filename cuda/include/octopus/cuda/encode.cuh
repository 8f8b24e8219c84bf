// Batched encode on the GPU: rotation, quantization and packing of new keys or values for many heads,
// byte for byte what the CPU encoder writes for the same codec.
//
// One warp per vector. Every decision reproduces the CPU's arithmetic exactly: the norm in double over
// eight interleaved partial sums combined in the CPU's tree, 1/|x| and x·(1/|x|) as single roundings,
// the rotation of warp_rotation.cuh, TurboQuant's threshold counts, OCTOPUS's nearest-point search
// (its buckets, ranks and ties as nearest_point.hpp specifies them, the work split over lanes), and
// the paper variant's encoder (TripletTables::encode: padded searches by ring, row and column, the
// octahedral map with IEEE division, the triplet norm with each product rounded).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "octopus/contract.hpp"
#include "octopus/cuda/device_codec.cuh"
#include "octopus/cuda/error.cuh"
#include "octopus/cuda/paged_cache.cuh"
#include "octopus/cuda/preconditioning.cuh"
#include "octopus/cuda/warp_rotation.cuh"

namespace octopus::cuda {

/// Where encode writes: record of vector (b, h) at ((b·heads + h)·capacity + position[b])·record_bytes
/// bytes from `cache`. A plain contiguous batch is heads = n, batch = 1, capacity = 1, no positions.
struct CacheTarget {
    std::uint8_t* cache = nullptr;
    int batch = 1;
    int heads = 1;
    int capacity = 1;
    const int* positions = nullptr;  // device, one per batch entry; null means position 0
};

namespace detail {

inline constexpr int kEncodeWarps = 4;

/// The element types encode takes.
template <class T>
inline constexpr bool kEncodable = std::is_same_v<T, float> || std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

__device__ inline float to_float(float x) { return x; }
__device__ inline float to_float(__half x) { return __half2float(x); }
__device__ inline float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

/// Most scalar thresholds of any codec: TurboQuant's and OCTOPUS's leftover codebooks have ≤ 4 bits.
inline constexpr int kMaxThresholds = (1 << octopus::kMaxScalarBits) - 1;

/// How many of the `count` ascending `thresholds` (the codec's, copied to the warp's shared memory)
/// each y[j] reaches: the CPU's count, found by binary lifting, all N searches in step, so a b-bit
/// code waits on b shared loads in a row instead of 2^b − 1.
template <int N>
__device__ inline void scalar_codes(const float* thresholds, int count, const float (&y)[N], std::uint32_t (&code)[N]) {
#pragma unroll
    for (int j = 0; j < N; ++j) code[j] = 0;
    for (int step = count > 0 ? 1 << (31 - __clz(count)) : 0; step > 0; step /= 2)
#pragma unroll
        for (int j = 0; j < N; ++j) {
            const int probe = static_cast<int>(code[j]) + step;  // thresholds [0, probe) all ≤ y[j]?
            if (probe <= count && y[j] >= thresholds[probe - 1]) code[j] = static_cast<std::uint32_t>(probe);
        }
}

/// Triplets whose candidate lists a warp ranks in one pass, three rounds of 16: D = 128's 42 triplets
/// in one pass, so that all their loads are in flight together; D = 256 takes two.
inline constexpr int kTripletsAtOnce = 48;

/// `octopus`'s codes of the warp's D/3 triplets (shared `y`, coordinates 3m…3m+2), handed to
/// put(code, m): the CPU's nearest-point search (triplet_point_code) split over lanes. First a lane
/// a triplet finds each triplet's bucket and list (`spans`, shared); then a pair of lanes ranks a
/// list, lane h taking candidates 4h…4h+3 of each group of eight, 16 triplets a round, and the two
/// lanes' bests are combined: the least rank, the lowest index among equal ranks, which is the list's
/// first best (lists hold indices in ascending order, and a lane keeps its first best). A lane a
/// triplet read up to 32 cache lines an instruction, sixteen instructions a group, and kept the L1
/// 98% busy; eight lanes a triplet read fewer lines but took 45% more instructions (shuffles, 11
/// rounds); a pair reads its half of a group in two 16-byte loads.
template <int D, class Put>
__device__ inline void nearest_point_codes(const CodecView& c, const float* y, uint2* spans, int lane, const Put& put) {
    using octopus::detail::nearest_point_bucket;
    using octopus::detail::point_rank;
    constexpr int kTriplets = D / 3;
    const auto folded = [&](float t) { return c.folded ? fabsf(t) : t; };
#pragma unroll
    for (int m = lane; m < kTriplets; m += 32) {
        const std::uint32_t bucket = nearest_point_bucket(c.nearest, folded(y[3 * m]), folded(y[3 * m + 1]), folded(y[3 * m + 2]));
        spans[m] = make_uint2(__ldg(c.nearest.first_group + bucket), __ldg(c.nearest.first_group + bucket + 1));
    }
    __syncwarp();
    const int h = lane % 2, pair = lane / 2;
    // Candidates 4h…4h+3 of group g ranked against triplet m, in index order, keeping the first best;
    // |p|² as every list holds it (point_sq).
    const auto rank = [&](std::uint32_t g, int m, float& best, std::uint32_t& index) {
        const float x = folded(y[3 * m]), yy = folded(y[3 * m + 1]), z = folded(y[3 * m + 2]);
        const auto* p = reinterpret_cast<const uint4*>(c.candidates + 8 * g + 4 * h);
        const uint4 first = __ldg(p), second = __ldg(p + 1);
        const uint2 q[4] = {{first.x, first.y}, {first.z, first.w}, {second.x, second.y}, {second.z, second.w}};
        const auto half_at = [](std::uint32_t word, int shift) {
            return __half2float(__ushort_as_half(static_cast<unsigned short>(word >> shift)));
        };
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const float px = half_at(q[j].x, 0), py = half_at(q[j].x, 16), pz = half_at(q[j].y, 0);
            const std::uint32_t i = q[j].y >> 16;
            const float sq = i == kPaddingCandidate ? INFINITY : octopus::detail::point_sq(px, py, pz);
            const float e = point_rank(x, yy, z, px, py, pz, sq);
            if (e < best) {
                best = e;
                index = i;
            }
        }
    };
    for (int base = 0; base < kTriplets; base += kTripletsAtOnce) {
        constexpr int kRounds = (std::min(kTriplets, kTripletsAtOnce) + 15) / 16;
        float best[kRounds];
        std::uint32_t index[kRounds];
        // Every list's first group, all rounds' loads issued together (no list is empty, but an
        // empty one would be skipped); then the few longer lists.
#pragma unroll
        for (int r = 0; r < kRounds; ++r) {
            const int m = base + 16 * r + pair;
            const uint2 span = m < kTriplets ? spans[m] : make_uint2(0, 0);
            best[r] = INFINITY;
            index[r] = 0;
            if (span.x < span.y) rank(span.x, m, best[r], index[r]);
        }
#pragma unroll
        for (int r = 0; r < kRounds; ++r) {
            const int m = base + 16 * r + pair;
            const uint2 span = m < kTriplets ? spans[m] : make_uint2(0, 0);
            for (std::uint32_t g = span.x + 1; g < span.y; ++g) rank(g, m, best[r], index[r]);
        }
#pragma unroll
        for (int r = 0; r < kRounds; ++r) {
            const float other = __shfl_xor_sync(kFullMask, best[r], 1);
            const std::uint32_t other_index = __shfl_xor_sync(kFullMask, index[r], 1);
            if (other < best[r] || (other == best[r] && other_index < index[r])) index[r] = other_index;
            const int m = base + 16 * r + pair;
            if (h == 0 && m < kTriplets) {
                const std::uint32_t code =
                    c.folded ? octopus::detail::folded_code(index[r], y[3 * m], y[3 * m + 1], y[3 * m + 2]) : index[r];
                put(code, m);
            }
        }
    }
}

/// `octopus-paper`'s triplet encoder on the GPU (TripletTables::encode), through the same shared
/// functions: padded searches by ring, row and column.
__device__ inline std::uint32_t padded_triplet_code(const CodecView& c, float x, float y, float z) {
    using octopus::detail::padded_search;
    const float r = octopus::detail::triplet_norm(x, y, z);
    const std::uint32_t ring = padded_search(c.ring_table, static_cast<unsigned>(c.ring_steps), r);
    const SquarePoint<float> s = octopus::octahedral_encode(x, y, z);
    const int row_size = (1 << c.row_steps) - 1, column_size = (1 << c.column_steps) - 1;
    const std::uint32_t row = padded_search(c.row_table + ring * row_size, static_cast<unsigned>(c.row_steps), s.u);
    const std::uint32_t slot = ring * static_cast<std::uint32_t>(c.rows_per_ring) + row;
    return __ldg(c.row_base + slot) + padded_search(c.column_table + slot * column_size, static_cast<unsigned>(c.column_steps), s.v);
}

/// Where a launch writes, either form: contiguous records (CacheTarget) or pages (PagedTarget, when
/// block_table is not null). Vector v of the launch is new token j of head h of sequence b, v = (b·tokens
/// + j)·heads + h, at position positions[b] + j.
struct Destination {
    std::uint8_t* cache = nullptr;
    int batch = 1, heads = 1, tokens = 1;
    const int* positions = nullptr;
    int capacity = 1;                  // contiguous: tokens per (sequence, head)
    const int* block_table = nullptr;  // paged
    int max_pages = 0, pages = 0;
    PageLayout layout{};

    Destination() = default;
    Destination(const CacheTarget& t) : cache(t.cache), batch(t.batch), heads(t.heads), positions(t.positions), capacity(t.capacity) {}
    Destination(const PagedTarget& t, PageLayout l)
        : cache(t.pool), batch(t.batch), heads(t.kv_heads), tokens(t.tokens), positions(t.positions),
          block_table(t.block_table), max_pages(t.max_pages_per_sequence), pages(t.pages), layout(l) {}
    __host__ __device__ int vectors() const { return batch * tokens * heads; }
};

/// One set of vectors a launch encodes: `x` into `target` with codec `c`, each vector first mapped
/// to (x − offset) / scale when those [batch][heads][dim] arrays are given (Preconditioning).
template <class T>
struct EncodeJob {
    CodecView c;
    const T* x;
    Destination target;
    const float* offset = nullptr;
    const float* scale = nullptr;
};

/// The block's warps' vectors of one job (vector blockIdx.x · kEncodeWarps + warp). `Nearest`: built
/// with `octopus`'s nearest-point search, which the launch asks for only when a job needs it (its
/// registers, 40 against 32 at d = 128, would otherwise cost every other codec a quarter of its warps).
template <int D, bool Nearest, class T>
__device__ inline void encode_vectors(const CodecView& c, const T* x, const Destination& target, const float* offset,
                                      const float* scale, unsigned* rejected) {
    constexpr int E = D / 32;
    __shared__ float rotated[kEncodeWarps][D];
    __shared__ std::uint32_t words[kEncodeWarps][D / 2 + 2];  // ≥ the largest record, as 32-bit words
    __shared__ uint2 spans[kEncodeWarps][Nearest ? D / 3 : 1];  // each triplet's candidate groups
    __shared__ float thresholds[kEncodeWarps][kMaxThresholds];
    const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
    const int vector = static_cast<int>(blockIdx.x) * kEncodeWarps + warp;
    if (vector >= target.vectors()) return;
    const int head = vector % target.heads, batch = vector / (target.heads * target.tokens);
    // The vector's loads, then the position's and the page's, are all issued before any is used: one
    // decode step's encode is a chain of waits, not of work (with each input load behind the previous
    // coordinate's preconditioning, four memory latencies ran in a row).
    const long long first = static_cast<long long>(vector) * D + lane * E;
    const long long row = (static_cast<long long>(batch) * target.heads + head) * D + lane * E;  // of offset, scale
    T raw[E];
#pragma unroll
    for (int j = 0; j < E; ++j) raw[j] = x[first + j];
    if (lane < c.scalar_threshold_count) thresholds[warp][lane] = __ldg(c.scalar_thresholds + lane);
    const int position = (target.positions != nullptr ? target.positions[batch] : 0) + (vector / target.heads) % target.tokens;
    // Where the record's codes and norm go. A position outside the cache, or (paged) a page id outside
    // the pool, would write into another head's records: refuse it, like NaN input.
    std::uint8_t* codes = nullptr;
    std::uint8_t* norm_out = nullptr;
    bool inside = position >= 0;
    if (target.block_table == nullptr) {
        inside = inside && position < target.capacity;
        codes = target.cache + ((static_cast<long long>(batch) * target.heads + head) * target.capacity + position) * c.record_bytes;
        norm_out = codes + c.code_bytes;
    } else if (inside && position / target.layout.tokens < target.max_pages) {
        const int page = target.block_table[static_cast<long long>(batch) * target.max_pages + position / target.layout.tokens];
        const int slot = position % target.layout.tokens;
        inside = page >= 0 && page < target.pages;
        std::uint8_t* head_page = target.cache + target.layout.head_page_offset(page, head, target.heads);
        codes = head_page + target.layout.code_offset(slot);
        norm_out = head_page + target.layout.norm_offset(slot);
    } else {
        inside = false;
    }
    if (!inside) {
        if (lane == 0 && rejected != nullptr) atomicAdd(rejected, 1u);
        return;
    }

    float v[E];
#pragma unroll
    for (int j = 0; j < E; ++j) v[j] = to_float(raw[j]);
    if (offset != nullptr || scale != nullptr) {
        // HeadPreconditioner::transform_key / transform_value: one rounded subtraction, one rounded
        // division (the transformed vector must be finite too: the CPU's codec refuses it otherwise).
        float shift[E], divisor[E];
#pragma unroll
        for (int j = 0; j < E; ++j) {
            shift[j] = offset != nullptr ? __ldg(offset + row + j) : 0.0f;
            divisor[j] = scale != nullptr ? __ldg(scale + row + j) : 1.0f;
        }
#pragma unroll
        for (int j = 0; j < E; ++j) {
            if (offset != nullptr) v[j] = __fsub_rn(v[j], shift[j]);
            if (scale != nullptr) v[j] = __fdiv_rn(v[j], divisor[j]);
        }
    }
    bool finite = true;
#pragma unroll
    for (int j = 0; j < E; ++j) finite = finite && isfinite(v[j]);
#pragma unroll
    for (int j = 0; j < E; ++j) rotated[warp][lane * E + j] = v[j];
    if (!__all_sync(kFullMask, finite)) {
        if (lane == 0 && rejected != nullptr) atomicAdd(rejected, 1u);
        return;
    }
    __syncwarp();
    // vector_norm: partial k sums x_i² over i ≡ k (mod 8) in order (lane k), combined in the CPU's
    // tree, combine_norm_partials's ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)): three butterfly
    // steps over lanes 0–7 build it in lane 0 (each sum is one IEEE addition, in whichever operand
    // order, so the same bits), then the norm is broadcast: 7 shuffles where gathering all eight
    // partials into every lane took 16.
    double partial = 0.0;
    if (lane < 8)
        for (int i = lane; i < D; i += 8) {
            const double xi = rotated[warp][i];
            partial = __dadd_rn(partial, __dmul_rn(xi, xi));
        }
#pragma unroll
    for (int step = 1; step < 8; step *= 2) partial = __dadd_rn(partial, __shfl_xor_sync(kFullMask, partial, step));
    const float norm = __shfl_sync(kFullMask, __double2float_rn(__dsqrt_rn(partial)), 0);
    if (!octopus::norm_fits(norm, c.norm_fp16)) {  // check_norm_fits: refuse, never clamp
        if (lane == 0 && rejected != nullptr) atomicAdd(rejected, 1u);
        return;
    }
    const float inverse = norm > 0.0f ? __fdiv_rn(1.0f, norm) : 0.0f;
#pragma unroll
    for (int j = 0; j < E; ++j) v[j] = __fmul_rn(v[j], inverse);
    warp_rotate(v, c.signs);
    __syncwarp();
    if (c.scheme != Scheme::turboquant) {  // OCTOPUS's triplets span lanes; TurboQuant codes each lane's own
#pragma unroll
        for (int j = 0; j < E; ++j) rotated[warp][lane * E + j] = v[j];
    }
    for (int i = lane; i < D / 2 + 2; i += 32) words[warp][i] = 0;
    __syncwarp();

    const auto put = [&](std::uint32_t code, int position) {
        atomicOr(&words[warp][position >> 5], code << (position & 31));
        const std::uint32_t high = (position & 31) != 0 ? code >> (32 - (position & 31)) : 0u;
        if (high != 0) atomicOr(&words[warp][(position >> 5) + 1], high);
    };
    const float* y = rotated[warp];
    if (c.scheme == Scheme::turboquant) {
        // The lane's E coordinates lane·E…lane·E + E − 1 are consecutive codes, E·b ≤ 32 bits: one put
        // (E shared atomics a lane, up to 11 lanes on a word, were the largest share of the L1's work).
        std::uint32_t code[E];
        scalar_codes(thresholds[warp], c.scalar_threshold_count, v, code);
        std::uint32_t run = 0;
#pragma unroll
        for (int j = 0; j < E; ++j) run |= code[j] << (j * c.code_bits);
        static_assert(E * octopus::kMaxScalarBits <= 32, "a lane's codes fit one word");
        put(run, lane * E * c.code_bits);
    } else {
        if (c.candidates != nullptr) {
            if constexpr (Nearest)
                nearest_point_codes<D>(c, y, spans[warp], lane, [&](std::uint32_t code, int m) { put(code, m * c.code_bits); });
            else
                __trap();  // launch_encode picks Nearest whenever a job searches points
        } else
            for (int m = lane; m < c.triplets; m += 32) put(padded_triplet_code(c, y[3 * m], y[3 * m + 1], y[3 * m + 2]), m * c.code_bits);
        for (int j = 3 * c.triplets + lane; j < D; j += 32) {
            const float leftover[1] = {y[j]};
            std::uint32_t code[1];
            scalar_codes(thresholds[warp], c.scalar_threshold_count, leftover, code);
            put(code[0], c.triplets * c.code_bits + (j - 3 * c.triplets) * c.leftover_bits);
        }
    }
    __syncwarp();

    const auto* code_bytes = reinterpret_cast<const std::uint8_t*>(words[warp]);
    std::uint32_t norm_bits = __float_as_uint(norm);
    if (c.norm_fp16) norm_bits = __half_as_ushort(__float2half_rn(norm));
    for (int k = lane; k < c.record_bytes; k += 32) {
        if (k < c.code_bytes) codes[k] = code_bytes[k];
        else norm_out[k - c.code_bytes] = static_cast<std::uint8_t>(norm_bits >> (8 * (k - c.code_bytes)));
    }
}

/// Row blockIdx.y of the grid encodes job `first` (0) or `second` (1): a new token's keys and values
/// in one launch (encode_kv). Each branch names its own kernel parameter, so neither is copied to
/// local memory to be picked at run time.
template <int D, bool Nearest, class T>
__global__ void __launch_bounds__(32 * kEncodeWarps) encode_kernel(EncodeJob<T> first, EncodeJob<T> second,
                                                                  unsigned* rejected) {
    if (blockIdx.y == 0) encode_vectors<D, Nearest>(first.c, first.x, first.target, first.offset, first.scale, rejected);
    else encode_vectors<D, Nearest>(second.c, second.x, second.target, second.offset, second.scale, rejected);
}

/// Launches the encode of `jobs` (1 or 2) jobs of one head dim.
template <class T>
void launch_encode(const EncodeJob<T>& first, const EncodeJob<T>& second, int jobs, unsigned* rejected,
                   cudaStream_t stream) {
    const int vectors = std::max(first.target.vectors(), jobs > 1 ? second.target.vectors() : 0);
    const dim3 grid(static_cast<unsigned>((vectors + kEncodeWarps - 1) / kEncodeWarps), static_cast<unsigned>(jobs));
    const dim3 block(32 * kEncodeWarps);
    const bool nearest = first.c.candidates != nullptr || (jobs > 1 && second.c.candidates != nullptr);
    octopus::for_each_gpu_head_dim([&]<int D>() {
        if (first.c.dim != D) return;
        if (nearest) encode_kernel<D, true, T><<<grid, block, 0, stream>>>(first, second, rejected);
        else encode_kernel<D, false, T><<<grid, block, 0, stream>>>(first, second, rejected);
    });
    OCTOPUS_CUDA_CHECK(cudaGetLastError());
}

/// The checks of every encode: a head dim the kernels are built for, an input.
inline void check_encode_input(const DeviceCodec& codec, const void* x) {
    using octopus::detail::require;
    require(octopus::is_gpu_head_dim(static_cast<std::size_t>(codec.dim())),
            "octopus::cuda::encode: head dim " + std::to_string(codec.dim()) + " is not one of the GPU's " +
                octopus::gpu_head_dims_text());
    require(x != nullptr, "octopus::cuda::encode: null input pointer");
}

inline void check_encode_arguments(const DeviceCodec& codec, const void* x, const CacheTarget& target) {
    using octopus::detail::require;
    check_encode_input(codec, x);
    require(target.cache != nullptr, "octopus::cuda::encode: null cache pointer");
    require(target.batch >= 1 && target.heads >= 1 && target.capacity >= 1,
            "octopus::cuda::encode: batch, heads and capacity must be ≥ 1 (got " + std::to_string(target.batch) + ", " +
                std::to_string(target.heads) + ", " + std::to_string(target.capacity) + ")");
    require(static_cast<long long>(target.batch) * target.heads < (1LL << 31) / 32,
            "octopus::cuda::encode: too many vectors in one call");
}

/// encode_kv's launch, after each form's own checks: keys into `key_target`, values into
/// `value_target`, preconditioned when asked.
template <class T>
void launch_encode_kv(const DeviceCodec& keys, const T* k, const Destination& key_target, const DeviceCodec& values,
                      const T* v, const Destination& value_target, unsigned* rejected, cudaStream_t stream,
                      const Preconditioning& preconditioning) {
    octopus::detail::require(keys.dim() == values.dim(), "octopus::cuda::encode_kv: keys have head dim " +
                                                             std::to_string(keys.dim()) + ", values " +
                                                             std::to_string(values.dim()));
    launch_encode(EncodeJob<T>{keys.view(), k, key_target, preconditioning.key_offset, preconditioning.key_scale},
                  EncodeJob<T>{values.view(), v, value_target, preconditioning.value_offset, nullptr}, 2, rejected, stream);
}

}  // namespace detail

/// Encodes vectors (row-major, dim floats / halves / bfloat16s each, on the device) into `target`,
/// asynchronously on `stream`. A vector holding NaN or Inf, or whose norm an fp16 norm cannot hold,
/// is not written (its slot keeps its old bytes) and is counted into *rejected (device memory, may
/// be null): the kernel cannot throw, so the caller reads the count when it next synchronizes.
/// A vector whose sequence's position lies outside [0, capacity) is refused and counted the same way.
/// Throws octopus::error for bad shapes before launching anything.
template <class T>
void encode(const DeviceCodec& codec, const T* x, const CacheTarget& target, unsigned* rejected = nullptr,
            cudaStream_t stream = nullptr) {
    static_assert(detail::kEncodable<T>, "octopus::cuda::encode takes float, __half or __nv_bfloat16 vectors");
    detail::check_encode_arguments(codec, x, target);
    const detail::EncodeJob<T> job{codec.view(), x, target};
    detail::launch_encode(job, job, 1, rejected, stream);
}

/// A new token's keys `k` into `key_target` and values `v` into `value_target` in one launch: the
/// bytes of encode(keys, k, key_target) and encode(values, v, value_target), for one launch instead
/// of two (at batch 1 the launch is most of an encode's time). Keys and values may use different
/// codecs of one head dim; rejected vectors of both are counted into *rejected. With
/// `preconditioning` (arrays [batch][heads][dim] of the targets' shape), keys are coded as
/// (k − key_offset) / key_scale and values as v − value_offset: HeadCodec's bytes. Throws
/// octopus::error for bad shapes or differing head dims before launching anything.
template <class T>
void encode_kv(const DeviceCodec& keys, const T* k, const CacheTarget& key_target, const DeviceCodec& values, const T* v,
               const CacheTarget& value_target, unsigned* rejected = nullptr, cudaStream_t stream = nullptr,
               const Preconditioning& preconditioning = {}) {
    static_assert(detail::kEncodable<T>, "octopus::cuda::encode_kv takes float, __half or __nv_bfloat16 vectors");
    detail::check_encode_arguments(keys, k, key_target);
    detail::check_encode_arguments(values, v, value_target);
    detail::launch_encode_kv(keys, k, key_target, values, v, value_target, rejected, stream, preconditioning);
}

/// Encodes x[b][j][h] (row-major [batch][tokens][kv_heads][dim] floats / halves / bfloat16s on the
/// device) into the pages of `target` (paged_cache.cuh): new token j of sequence b at position
/// positions[b] + j, asynchronously on `stream`. The bytes are the CPU's encode_page's. A vector
/// holding NaN or Inf, whose norm an fp16 norm cannot hold, whose position is negative or past the
/// block table's row, or whose page id lies outside [0, pages), is not written and is counted into
/// *rejected (device memory, may be null). Throws octopus::error for bad shapes before launching.
template <class T>
void encode(const DeviceCodec& codec, const T* x, const PagedTarget& target, unsigned* rejected = nullptr,
            cudaStream_t stream = nullptr) {
    static_assert(detail::kEncodable<T>, "octopus::cuda::encode takes float, __half or __nv_bfloat16 vectors");
    detail::check_encode_input(codec, x);
    detail::check_paged_target(codec, target, "encode");
    const detail::EncodeJob<T> job{codec.view(), x, detail::Destination(target, page_layout(codec, target.page_tokens))};
    detail::launch_encode(job, job, 1, rejected, stream);
}

/// New keys `k` and values `v` (each [batch][tokens][kv_heads][dim]) into their pools' pages in one
/// launch: the bytes of encode(keys, k, key_target) and encode(values, v, value_target). The two
/// targets share their shape (batch, tokens, kv_heads; usually the block table and positions too);
/// keys and values may use different codecs of one head dim. With `preconditioning`
/// ([batch][kv_heads][dim] arrays), keys are coded as (k − key_offset) / key_scale and values as v −
/// value_offset. Throws octopus::error for bad shapes before launching anything.
template <class T>
void encode_kv(const DeviceCodec& keys, const T* k, const PagedTarget& key_target, const DeviceCodec& values, const T* v,
               const PagedTarget& value_target, unsigned* rejected = nullptr, cudaStream_t stream = nullptr,
               const Preconditioning& preconditioning = {}) {
    static_assert(detail::kEncodable<T>, "octopus::cuda::encode_kv takes float, __half or __nv_bfloat16 vectors");
    detail::check_encode_input(keys, k);
    detail::check_encode_input(values, v);
    detail::check_paged_target(keys, key_target, "encode_kv");
    detail::check_paged_target(values, value_target, "encode_kv");
    octopus::detail::require(key_target.batch == value_target.batch && key_target.tokens == value_target.tokens &&
                                 key_target.kv_heads == value_target.kv_heads,
                             "octopus::cuda::encode_kv: the key and value targets differ in batch, tokens or kv_heads");
    detail::launch_encode_kv(keys, k, detail::Destination(key_target, page_layout(keys, key_target.page_tokens)), values, v,
                             detail::Destination(value_target, page_layout(values, value_target.page_tokens)), rejected,
                             stream, preconditioning);
}

/// Encodes n contiguous vectors into n contiguous records (n·record_bytes bytes at `packed`).
template <class T>
void encode(const DeviceCodec& codec, const T* x, int n, std::uint8_t* packed, unsigned* rejected = nullptr,
            cudaStream_t stream = nullptr) {
    encode(codec, x, CacheTarget{packed, 1, n, 1, nullptr}, rejected, stream);
}

}  // namespace octopus::cuda
