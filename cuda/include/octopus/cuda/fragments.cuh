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

/// The word whose low half is half `a_high` of a and whose high half is half `b_high` of b (all
/// flags fold to constants once the callers' loops unroll: one byte permute, or none when both
/// halves already sit in place in one word).
__device__ inline std::uint32_t join_halves(std::uint32_t a, bool a_high, std::uint32_t b, bool b_high, bool same_word) {
    if (same_word && !a_high && b_high) return a;
    return __byte_perm(a, b, (b_high ? 0x7600u : 0x5400u) | (a_high ? 0x32u : 0x10u));
}

/// c += a·b on the tensor cores (m16n8k16, fp16 in, fp32 accumulators). Halves = 2: rows g and g + 8
/// (a = the four standard registers, c = c0..c3); Halves = 1: row g only (groups of ≤ 8 query heads),
/// a = {k-low, k-high} of row g, c = {c0, c1}, and the unused rows cost no registers.
template <int Halves>
__device__ inline void mma_16816(float (&c)[2 * Halves], const std::uint32_t (&a)[2 * Halves], std::uint32_t b0,
                                 std::uint32_t b1) {
    if constexpr (Halves == 2) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
            "{%0, %1, %2, %3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    } else {
        // Rows g + 8 are zero in, and their results are written to registers nobody reads (D and C are
        // separate operands), so nothing has to be re-zeroed between calls.
        float dead0, dead1;
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %5}, {%7, %8}, "
            "{%0, %1, %9, %9};\n"
            : "+f"(c[0]), "+f"(c[1]), "=f"(dead0), "=f"(dead1)
            : "r"(a[0]), "r"(0u), "r"(a[1]), "r"(b0), "r"(b1), "f"(0.0f));
    }
}

/// TurboQuant at b bits: lane t's key slots are coordinates t·D/4 + s, its value slots g·D/8 + c.
/// One table serves both: entry c of `pairs` holds the levels of two adjacent codes (c mod 2^b,
/// c / 2^b), hi halves then lo halves.
template <int D, int Bits>
struct TurboQuantFragments {
    static constexpr int kKeySlots = D / 4, kValueSlots = D / 8;
    struct Tables {
        std::uint32_t pairs[1 << (2 * Bits)];
    };
    static bool matches(const CodecView& c) { return c.scheme == Scheme::turboquant && c.bits == Bits && c.dim == D; }

    __device__ static void load(Tables& s, const CodecView& c, int thread, int threads) {
        for (int i = thread; i < (1 << (2 * Bits)); i += threads) s.pairs[i] = c.level_pairs[i];
    }
    __device__ static int key_coordinate(int t, int slot) { return t * kKeySlots + slot; }
    __device__ static int value_coordinate(int g, int slot) { return g * kValueSlots + slot; }
    struct KeyPlan {};  // every lane's slots are whole codes: no tails
    using ValuePlan = KeyPlan;
    __device__ static KeyPlan key_plan(int) { return {}; }
    __device__ static ValuePlan value_plan(int) { return {}; }

    /// B operands of S = Q·Kᵀ for the key whose record starts at bit `record`.
    __device__ static void key_fragments(const Tables& s, const std::uint32_t* words, int record, int t, const KeyPlan&,
                                         std::uint32_t (&b)[D / 16][2]) {
        std::uint32_t pairs[D / 8];
        fields_at<D / 8, 2 * Bits>(words, record + t * kKeySlots * Bits, pairs);
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
            b[j][0] = s.pairs[pairs[2 * j]];
            b[j][1] = s.pairs[pairs[2 * j + 1]];
        }
    }
    /// B operands of O = P·V for lane (g, t): b[c][0] pairs tokens 2t, 2t+1 at value slot c, b[c][1]
    /// tokens 2t+8, 2t+9. Tokens' records start `record_bits` apart.
    __device__ static void value_fragments(const Tables& s, const std::uint32_t* words, int record_bits, int g, int t,
                                           const ValuePlan&, std::uint32_t (&b)[D / 8][2]) {
#pragma unroll
        for (int k = 0; k < 2; ++k) {
            std::uint32_t first[D / 8], second[D / 8];
            const int token = 2 * t + 8 * k;
            fields_at<D / 8, Bits>(words, token * record_bits + g * kValueSlots * Bits, first);
            fields_at<D / 8, Bits>(words, (token + 1) * record_bits + g * kValueSlots * Bits, second);
#pragma unroll
            for (int c = 0; c < D / 8; ++c) b[c][k] = s.pairs[first[c] | (second[c] << Bits)];
        }
    }
};

/// OCTOPUS at B bits per triplet: a lane's slots are whole triplets first (kKeyTriplets or
/// kValueTriplets of them, consecutive), then a short tail covering the last triplets and the d mod 3
/// leftovers, read coordinate by coordinate. Slot s of the triplet part is component s mod 3 of a
/// point, so which half of which point word it sits in is known at compile time and operands are
/// assembled with one byte permute per word. The tail slots differ from lane to lane; their bit
/// offsets, widths and components are worked out once per kernel (TailPlan), so decoding them in the
/// loop takes no branches: the leftover levels sit after the points in one table.
template <int D, int B>
struct OctopusFragments {
    static constexpr int kTriplets = D / 3, kLeftoverBits = B / 3 > 1 ? B / 3 : 1;
    static constexpr int kKeySlots = D / 4, kKeyTriplets = D / 12, kKeyTail = kKeySlots - 3 * kKeyTriplets;
    static constexpr int kValueSlots = D / 8, kValueTriplets = D / 24, kValueTail = kValueSlots - 3 * kValueTriplets;
    struct Tables {
        uint2 points[(1 << B) + (1 << kLeftoverBits)];  // then the leftover levels as (level, 0 | 0, 0)
    };
    /// Where each tail slot of one lane comes from, relative to a record's first bit.
    template <int Tail>
    struct TailPlan {
        int offset[Tail];
        std::uint32_t mask[Tail];
        int entry[Tail];      // index of the table's first entry for this slot: 0, or 2^B for leftovers
        int component[Tail];  // 0, 1, 2: x, y, z of a point (a leftover level is component 0)
    };
    using KeyPlan = TailPlan<kKeyTail>;
    using ValuePlan = TailPlan<kValueTail>;
    static bool matches(const CodecView& c) {
        return c.scheme == Scheme::octopus && c.bits == B && c.dim == D && c.leftover_bits == kLeftoverBits;
    }

    __device__ static void load(Tables& s, const CodecView& c, int thread, int threads) {
        for (int i = thread; i < (1 << B); i += threads) s.points[i] = c.points[i];
        for (int i = thread; i < (1 << kLeftoverBits); i += threads)
            s.points[(1 << B) + i] = uint2{static_cast<std::uint32_t>(__half_as_ushort(c.scalar_levels[i])), 0u};
    }
    __device__ static int key_coordinate(int t, int slot) {
        return slot < 3 * kKeyTriplets ? 3 * kKeyTriplets * t + slot : 12 * kKeyTriplets + kKeyTail * t + slot - 3 * kKeyTriplets;
    }
    __device__ static int value_coordinate(int g, int slot) {
        return slot < 3 * kValueTriplets ? 3 * kValueTriplets * g + slot
                                         : 24 * kValueTriplets + kValueTail * g + slot - 3 * kValueTriplets;
    }

    template <int Tail>
    __device__ static TailPlan<Tail> plan(int first_coordinate) {
        TailPlan<Tail> p;
#pragma unroll
        for (int r = 0; r < Tail; ++r) {
            const int i = first_coordinate + r;
            const bool leftover = i >= 3 * kTriplets;
            p.offset[r] = leftover ? B * kTriplets + kLeftoverBits * (i - 3 * kTriplets) : B * (i / 3);
            p.mask[r] = leftover ? (1u << kLeftoverBits) - 1u : (1u << B) - 1u;
            p.entry[r] = leftover ? 1 << B : 0;
            p.component[r] = leftover ? 0 : i % 3;
        }
        return p;
    }
    __device__ static KeyPlan key_plan(int t) { return plan<kKeyTail>(12 * kKeyTriplets + kKeyTail * t); }
    __device__ static ValuePlan value_plan(int g) { return plan<kValueTail>(24 * kValueTriplets + kValueTail * g); }

    /// Whether slot s (of a run with `Triplets` triplets first) sits in the high half of its word.
    template <int Triplets>
    __device__ static constexpr bool high_half(int s) { return s < 3 * Triplets && s % 3 == 1; }

    /// The words holding slots [0, 3·Triplets + Tail) of one key: slot s in half high_half(s) of w[s].
    template <int Triplets, int Tail>
    __device__ static void slot_words(const Tables& s, const std::uint32_t* words, int record, int first_triplet,
                                      const TailPlan<Tail>& tail, std::uint32_t (&w)[3 * Triplets + Tail]) {
        std::uint32_t codes[Triplets];
        fields_at<Triplets, B>(words, record + B * first_triplet, codes);
#pragma unroll
        for (int m = 0; m < Triplets; ++m) {
            const uint2 p = s.points[codes[m]];
            w[3 * m] = w[3 * m + 1] = p.x;
            w[3 * m + 2] = p.y;
        }
#pragma unroll
        for (int r = 0; r < Tail; ++r) {
            const int position = record + tail.offset[r];
            const std::uint32_t low_word = words[position >> 5], high_word = words[(position >> 5) + 1];
            const std::uint32_t code = __funnelshift_r(low_word, high_word, static_cast<unsigned>(position & 31)) & tail.mask[r];
            const uint2 p = s.points[tail.entry[r] + code];
            const int k = tail.component[r];
            w[3 * Triplets + r] = k == 2 ? p.y : k == 1 ? p.x >> 16 : p.x;
        }
    }

    /// B operands of S = Q·Kᵀ for the key whose record starts at bit `record`.
    __device__ static void key_fragments(const Tables& s, const std::uint32_t* words, int record, int t,
                                         const KeyPlan& tail, std::uint32_t (&b)[D / 16][2]) {
        std::uint32_t w[kKeySlots];
        slot_words<kKeyTriplets, kKeyTail>(s, words, record, kKeyTriplets * t, tail, w);
#pragma unroll
        for (int j = 0; j < D / 16; ++j)
#pragma unroll
            for (int k = 0; k < 2; ++k) {
                constexpr int kT = kKeyTriplets;
                const int s0 = 4 * j + 2 * k, s1 = s0 + 1;
                const bool same = s0 < 3 * kT && s0 % 3 == 0;  // components x, y of one point
                b[j][k] = join_halves(w[s0], high_half<kT>(s0), w[s1], high_half<kT>(s1), same);
            }
    }

    /// B operands of O = P·V for lane (g, t): b[c][0] pairs tokens 2t, 2t+1 at value slot c, b[c][1]
    /// tokens 2t+8, 2t+9. Tokens' records start `record_bits` apart.
    __device__ static void value_fragments(const Tables& s, const std::uint32_t* words, int record_bits, int g, int t,
                                           const ValuePlan& tail, std::uint32_t (&b)[D / 8][2]) {
        constexpr int kT = kValueTriplets;
#pragma unroll
        for (int k = 0; k < 2; ++k) {
            std::uint32_t first[kValueSlots], second[kValueSlots];
            const int token = 2 * t + 8 * k;
            slot_words<kT, kValueTail>(s, words, token * record_bits, kT * g, tail, first);
            slot_words<kT, kValueTail>(s, words, (token + 1) * record_bits, kT * g, tail, second);
#pragma unroll
            for (int c = 0; c < kValueSlots; ++c)
                b[c][k] = join_halves(first[c], high_half<kT>(c), second[c], high_half<kT>(c), false);
        }
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

/// A operands of S = Q·Kᵀ for lane (g, t), the query split as q = hi + lo (each fp16). Halves = 2:
/// rows g and g + 8 are two heads, `hi` and `lo` their parts. Halves = 1 (≤ 8 heads): rows g + 8 carry
/// the lo part of head g's row, so one mma gives hi·k and lo·k side by side; `lo` is unused.
template <class Fragments, int D, int Halves>
__device__ inline void query_fragments(const float (*rotated)[D], int g, int t, std::uint32_t (&hi)[D / 16][4],
                                       std::uint32_t (&lo)[D / 16][4]) {
#pragma unroll
    for (int j = 0; j < D / 16; ++j)
#pragma unroll
        for (int k = 0; k < 2; ++k)
#pragma unroll
            for (int h = 0; h < Halves; ++h) {
                const int row = g + 8 * h;
                const float v0 = rotated[row][Fragments::key_coordinate(t, 4 * j + 2 * k)];
                const float v1 = rotated[row][Fragments::key_coordinate(t, 4 * j + 2 * k + 1)];
                const __half h0 = __float2half_rn(v0), h1 = __float2half_rn(v1);
                const std::uint32_t high = pack_halves(h0, h1);
                const std::uint32_t low = pack_halves(__float2half_rn(v0 - __half2float(h0)), __float2half_rn(v1 - __half2float(h1)));
                // Register order of the m16n8k16 A operand: (row g, k-low), (row g+8, k-low), (row g, k-high), (row g+8, k-high).
                if constexpr (Halves == 1) {
                    hi[j][2 * k] = high;
                    hi[j][2 * k + 1] = low;
                } else {
                    hi[j][2 * k + h] = high;
                    lo[j][2 * k + h] = low;
                }
            }
}

/// s += q·k with q = hi + lo and k fp16-exact: with Halves = 1 both parts ride in one mma (rows g and
/// g + 8), with Halves = 2 they take one mma each. The products go to independent accumulators, summed
/// at the end, so consecutive mma instructions do not wait on each other.
template <int D, int Halves>
__device__ inline void scores_from_fragments(float (&s)[2 * Halves], const std::uint32_t (&q_hi)[D / 16][4],
                                             const std::uint32_t (&q_lo)[D / 16][4], const std::uint32_t (&k)[D / 16][2]) {
    if constexpr (Halves == 1) {
        float part[2][4] = {};
#pragma unroll
        for (int j = 0; j < D / 16; ++j) mma_16816<2>(part[j % 2], q_hi[j], k[j][0], k[j][1]);
#pragma unroll
        for (int c = 0; c < 2; ++c) s[c] += (part[0][c] + part[0][2 + c]) + (part[1][c] + part[1][2 + c]);
    } else {
        float part[4][4] = {};
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
            mma_16816<2>(part[j % 2], q_hi[j], k[j][0], k[j][1]);
            mma_16816<2>(part[2 + j % 2], q_lo[j], k[j][0], k[j][1]);
        }
#pragma unroll
        for (int c = 0; c < 4; ++c) s[c] += (part[0][c] + part[1][c]) + (part[2][c] + part[3][c]);
    }
}

}  // namespace octopus::cuda::detail
