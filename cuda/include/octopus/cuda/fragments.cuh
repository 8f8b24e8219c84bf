// Packed codes straight into tensor-core operands: what the fused kernels share.
//
// Scores and the attention's weighted sum are mma.sync m16n8k16 products (fp16 operands, fp32
// accumulators). A dot product does not care in which order its terms are summed, so the kernels
// choose which coordinate each operand slot stands for: a lane's slots are whole triplets (OCTOPUS)
// or a contiguous run of coordinates (TurboQuant), so that each lane reads one run of bits per key and
// every code it extracts lands in its own registers. The query is permuted the same way once per
// block, and the output is un-permuted once when it is stored.
//
// m16n8k16 lane roles (g = lane / 4, t = lane % 4): A row g / g+8, k pairs (2t, 2t+1) and (2t+8, 2t+9);
// B k pairs (2t, 2t+1) and (2t+8, 2t+9), column g; C rows g / g+8, columns (2t, 2t+1).
//   Scores S = Q·Kᵀ: lane (g, t) decodes key g of an 8-key tile at its D/4 key slots: slot 4j + {0, 1}
//   is k = 2t + {0, 1} of k-block j, slot 4j + {2, 3} is k = 2t + 8 + {0, 1}.
//   Output O = P·V: lane (g, t) decodes keys 2t, 2t+1, 2t+8, 2t+9 of a 16-key tile at its D/8 value
//   slots: slot c is column g of n-block c.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "octopus/cuda/bits.cuh"
#include "octopus/cuda/device_codec.cuh"
#include "octopus/cuda/warp_rotation.cuh"

namespace octopus::cuda::detail {

__device__ inline std::uint32_t pack_halves(__half lo, __half hi) {
    const __half2 pair = __halves2half2(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&pair);
}

/// c += a·b, m16n8k16, fp16 inputs, fp32 accumulators.
__device__ inline void mma_16816(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// TurboQuant at b bits: lane t's key slots are coordinates t·D/4 + s, its value slots g·D/8 + c.
template <int D, int Bits>
struct TurboQuantFragments {
    static constexpr int kKeySlots = D / 4, kValueSlots = D / 8;
    struct Tables {
        __half2 pairs[1 << (2 * Bits)];
        __half levels[1 << Bits];
    };
    static bool matches(const CodecView& c) { return c.scheme == Scheme::turboquant && c.bits == Bits && c.dim == D; }

    __device__ static void load(Tables& s, const CodecView& c, int thread, int threads) {
        for (int i = thread; i < (1 << (2 * Bits)); i += threads) s.pairs[i] = c.level_pairs[i];
        for (int i = thread; i < (1 << Bits); i += threads) s.levels[i] = c.scalar_levels[i];
    }
    __device__ static int key_coordinate(int t, int slot) { return t * kKeySlots + slot; }
    __device__ static int value_coordinate(int g, int slot) { return g * kValueSlots + slot; }

    /// B operands of S = Q·Kᵀ for the key whose record starts at bit `record` of `words`.
    __device__ static void key_fragments(const Tables& s, const std::uint32_t* words, int record, int t,
                                         std::uint32_t (&b)[D / 16][2]) {
        std::uint32_t pairs[D / 8];
        fields_at<D / 8, 2 * Bits>(words, record + t * kKeySlots * Bits, pairs);
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
            b[j][0] = *reinterpret_cast<const std::uint32_t*>(&s.pairs[pairs[2 * j]]);
            b[j][1] = *reinterpret_cast<const std::uint32_t*>(&s.pairs[pairs[2 * j + 1]]);
        }
    }
    /// Lane group g's value slots of one key.
    __device__ static void value_halves(const Tables& s, const std::uint32_t* words, int record, int g,
                                        __half (&v)[D / 8]) {
        std::uint32_t codes[D / 8];
        fields_at<D / 8, Bits>(words, record + g * kValueSlots * Bits, codes);
#pragma unroll
        for (int c = 0; c < D / 8; ++c) v[c] = s.levels[codes[c]];
    }
};

/// OCTOPUS at B bits per triplet: a lane's slots are whole triplets first (kKeyTriplets or
/// kValueTriplets of them, consecutive), then a short tail covering the last triplets and the d mod 3
/// leftovers, read coordinate by coordinate.
template <int D, int B>
struct OctopusFragments {
    static constexpr int kTriplets = D / 3, kLeftoverBits = B / 3 > 1 ? B / 3 : 1;
    static constexpr int kKeySlots = D / 4, kKeyTriplets = D / 12, kKeyTail = kKeySlots - 3 * kKeyTriplets;
    static constexpr int kValueSlots = D / 8, kValueTriplets = D / 24, kValueTail = kValueSlots - 3 * kValueTriplets;
    struct Tables {
        uint2 points[1 << B];
        __half levels[1 << kLeftoverBits];
    };
    static bool matches(const CodecView& c) {
        return c.scheme == Scheme::octopus && c.bits == B && c.dim == D && c.leftover_bits == kLeftoverBits;
    }

    __device__ static void load(Tables& s, const CodecView& c, int thread, int threads) {
        for (int i = thread; i < (1 << B); i += threads) s.points[i] = c.points[i];
        for (int i = thread; i < (1 << kLeftoverBits); i += threads) s.levels[i] = c.scalar_levels[i];
    }
    __device__ static int key_coordinate(int t, int slot) {
        return slot < 3 * kKeyTriplets ? 3 * kKeyTriplets * t + slot : 12 * kKeyTriplets + kKeyTail * t + slot - 3 * kKeyTriplets;
    }
    __device__ static int value_coordinate(int g, int slot) {
        return slot < 3 * kValueTriplets ? 3 * kValueTriplets * g + slot
                                         : 24 * kValueTriplets + kValueTail * g + slot - 3 * kValueTriplets;
    }

    __device__ static __half component(uint2 point, int k) {
        const std::uint32_t word = k < 2 ? point.x : point.y;
        return __ushort_as_half(static_cast<unsigned short>(k == 1 ? word >> 16 : word & 0xffffu));
    }
    /// One coordinate decoded on its own (the tails).
    __device__ static __half coordinate(const Tables& s, const std::uint32_t* words, int record, int i) {
        if (i < 3 * kTriplets) return component(s.points[field_at(words, record + B * (i / 3), B)], i % 3);
        return s.levels[field_at(words, record + B * kTriplets + kLeftoverBits * (i - 3 * kTriplets), kLeftoverBits)];
    }
    template <int Triplets, int Tail>
    __device__ static void slots(const Tables& s, const std::uint32_t* words, int record, int first_triplet,
                                 int first_tail, __half (&v)[3 * Triplets + Tail]) {
        std::uint32_t codes[Triplets];
        fields_at<Triplets, B>(words, record + B * first_triplet, codes);
#pragma unroll
        for (int m = 0; m < Triplets; ++m) {
            const uint2 p = s.points[codes[m]];
            v[3 * m] = component(p, 0);
            v[3 * m + 1] = component(p, 1);
            v[3 * m + 2] = component(p, 2);
        }
#pragma unroll
        for (int r = 0; r < Tail; ++r) v[3 * Triplets + r] = coordinate(s, words, record, first_tail + r);
    }

    __device__ static void key_fragments(const Tables& s, const std::uint32_t* words, int record, int t,
                                         std::uint32_t (&b)[D / 16][2]) {
        __half v[kKeySlots];
        slots<kKeyTriplets, kKeyTail>(s, words, record, kKeyTriplets * t, 12 * kKeyTriplets + kKeyTail * t, v);
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
            b[j][0] = pack_halves(v[4 * j], v[4 * j + 1]);
            b[j][1] = pack_halves(v[4 * j + 2], v[4 * j + 3]);
        }
    }
    __device__ static void value_halves(const Tables& s, const std::uint32_t* words, int record, int g,
                                        __half (&v)[D / 8]) {
        slots<kValueTriplets, kValueTail>(s, words, record, kValueTriplets * g, 24 * kValueTriplets + kValueTail * g, v);
    }
};

/// Calls f.template operator()<Fragments>() with the fragment type of `c`; false when the GPU kernels
/// have none (dims other than 64, 128, 256; TurboQuant bits other than 2, 3, 4).
template <class F>
bool with_fragments(const CodecView& c, F&& f) {
    bool found = false;
    const auto one = [&]<class Fragments>() {
        if (!found && Fragments::matches(c)) {
            found = true;
            f.template operator()<Fragments>();
        }
    };
    const auto dims = [&]<int D>() {
        one.template operator()<TurboQuantFragments<D, 2>>();
        one.template operator()<TurboQuantFragments<D, 3>>();
        one.template operator()<TurboQuantFragments<D, 4>>();
        one.template operator()<OctopusFragments<D, 6>>();
        one.template operator()<OctopusFragments<D, 7>>();
        one.template operator()<OctopusFragments<D, 8>>();
        one.template operator()<OctopusFragments<D, 9>>();
        one.template operator()<OctopusFragments<D, 10>>();
        one.template operator()<OctopusFragments<D, 11>>();
        one.template operator()<OctopusFragments<D, 12>>();
    };
    dims.template operator()<64>();
    dims.template operator()<128>();
    dims.template operator()<256>();
    return found;
}

// ---- Shared-memory staging of record tiles: cp.async, per warp, several stages deep. ----

/// Tokens per tile: two 8-key score tiles, one 16-key k-block of P·V.
inline constexpr int kTileTokens = 16;

/// Bytes of one staged tile of records: 16 records (a multiple of 16 bytes) and a 16-byte tail that
/// the word-window reads of the last record may touch.
__host__ __device__ inline int tile_bytes(int record_bytes) { return kTileTokens * record_bytes + 16; }

__device__ inline void copy_async_16(void* shared, const void* global) {
    const auto address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(address), "l"(global));
}
__device__ inline void commit_async() { asm volatile("cp.async.commit_group;\n" ::); }
template <int Pending>
__device__ inline void wait_async() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}

/// A warp copies the 16 records starting at `source` (16-byte aligned) into `target`.
__device__ inline void stage_tile(std::uint8_t* target, const std::uint8_t* source, int record_bytes, int lane) {
    const int bytes = kTileTokens * record_bytes;
    for (int offset = lane * 16; offset < bytes; offset += 32 * 16) copy_async_16(target + offset, source + offset);
}

/// Runs compute(i, stage) over a warp's `tiles` tiles while the next Stages − 1 tiles load.
template <int Stages, class Issue, class Compute>
__device__ inline void warp_pipeline(int tiles, Issue&& issue, Compute&& compute) {
#pragma unroll
    for (int s = 0; s < Stages - 1; ++s) {
        if (s < tiles) issue(s, s);
        commit_async();
    }
    for (int i = 0; i < tiles; ++i) {
        if (i + Stages - 1 < tiles) issue(i + Stages - 1, (i + Stages - 1) % Stages);
        commit_async();
        wait_async<Stages - 1>();
        __syncwarp();
        compute(i, i % Stages);
        __syncwarp();
    }
}

/// Rotated, normalized queries of one block, fp32 in shared memory: rows [0, rows) from
/// q + first_row·D, the rest zero; scale[row] = |q_row| · extra. One warp per row.
template <int D, int Warps>
__device__ inline void prepare_queries(float (*rotated)[D], float* scale, const float* q, int rows, const float* signs,
                                       float extra) {
    constexpr int E = D / 32;
    const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
    for (int row = warp; row < 16; row += Warps) {
        float v[E];
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < E; ++j) {
            v[j] = row < rows ? q[row * D + lane * E + j] : 0.0f;
            sum += v[j] * v[j];
        }
#pragma unroll
        for (int m = 16; m >= 1; m /= 2) sum += __shfl_xor_sync(kFullMask, sum, m);
        const float norm = sqrtf(sum), inverse = norm > 0.0f ? 1.0f / norm : 0.0f;
        warp_rotate(v, signs);
#pragma unroll
        for (int j = 0; j < E; ++j) rotated[row][lane * E + j] = v[j] * inverse;
        if (lane == 0) scale[row] = norm * extra;
    }
}

/// A operands of S = Q·Kᵀ for lane (g, t): rows g and g + 8 of the rotated queries at the lane's key slots.
template <class Fragments, int D>
__device__ inline void query_fragments(const float (*rotated)[D], int g, int t, std::uint32_t (&a)[D / 16][4]) {
#pragma unroll
    for (int j = 0; j < D / 16; ++j) {
        const int c0 = Fragments::key_coordinate(t, 4 * j), c1 = Fragments::key_coordinate(t, 4 * j + 1);
        const int c2 = Fragments::key_coordinate(t, 4 * j + 2), c3 = Fragments::key_coordinate(t, 4 * j + 3);
        a[j][0] = pack_halves(__float2half_rn(rotated[g][c0]), __float2half_rn(rotated[g][c1]));
        a[j][1] = pack_halves(__float2half_rn(rotated[g + 8][c0]), __float2half_rn(rotated[g + 8][c1]));
        a[j][2] = pack_halves(__float2half_rn(rotated[g][c2]), __float2half_rn(rotated[g][c3]));
        a[j][3] = pack_halves(__float2half_rn(rotated[g + 8][c2]), __float2half_rn(rotated[g + 8][c3]));
    }
}

}  // namespace octopus::cuda::detail
