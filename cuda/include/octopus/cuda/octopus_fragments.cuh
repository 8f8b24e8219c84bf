// OCTOPUS's codes straight into tensor-core operands (the fused kernels' contract is fragments.cuh's
// header comment).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "octopus/contract.hpp"
#include "octopus/cuda/bits.cuh"
#include "octopus/cuda/device_codec.cuh"
#include "octopus/cuda/mma.cuh"

namespace octopus::cuda::detail {

/// Whether OCTOPUS's decode table at B bits per triplet holds a folded codebook's octant points only,
/// the signs (a code's three low bits) applied in registers: where every code's point would fit fewer
/// than 8 copies in Budget. At B = 12 the 4096 signed points took 32 KB a copy, two copies, and
/// attention spent 41M of its 61M shared wavefronts on bank conflicts. The signs cost six instructions
/// a triplet (OCTOPUS 4-bit attention executes 1.66× OCTOPUS 3-bit's instructions); at B = 10, 8 copies
/// of every point leave at most two lanes of a half warp on one copy, a conflict taken to cost less
/// than those instructions (not measured: the benchmark has no 3.33-bit codec).
template <int B, int Budget>
inline constexpr bool kFoldedTable =
    octopus::is_folded(B) && table_copies(8 * ((1 << B) + (1 << octopus::leftover_bits(B))), 16, Budget) < 8;

/// Bits of a code's point index in the decode table: B, or B − 3 for a folded table.
template <int B, int Budget>
inline constexpr int kPointIndexBits = kFoldedTable<B, Budget> ? B - 3 : B;

/// OCTOPUS's table at B bits per triplet: the 2^kPointIndexBits points, then the leftover levels as
/// (level, 0 | 0, 0), as many copies as fit Budget.
template <int B, int Budget>
using OctopusPointTable =
    CopiedTable<uint2, (1 << kPointIndexBits<B, Budget>) + (1 << octopus::leftover_bits(B)),
                table_copies(8 * ((1 << kPointIndexBits<B, Budget>) + (1 << octopus::leftover_bits(B))), 16, Budget)>;

/// OCTOPUS at B bits per triplet: a lane's slots are whole triplets first (kKeyTriplets or
/// kValueTriplets of them, consecutive), then a short tail covering the last triplets and the d mod 3
/// leftovers, read coordinate by coordinate. Slot s of the triplet part is component s mod 3 of a
/// point, so which half of which point word it sits in is known at compile time and operands are
/// assembled with one byte permute per word. The tail slots differ from lane to lane; their bit
/// offsets, widths and components are worked out once per kernel (TailPlan), so decoding them in the
/// loop takes no branches: the leftover levels sit after the points in one table, kept in as many
/// copies as the budget allows (CopiedTable).
template <int D, int B, int Budget>
struct OctopusFragments : OneTable<OctopusFragments<D, B, Budget>, OctopusPointTable<B, Budget>> {
    static constexpr Scheme kScheme = Scheme::octopus;
    static constexpr int kTriplets = D / 3, kLeftoverBits = static_cast<int>(octopus::leftover_bits(B));
    static constexpr bool kFolded = kFoldedTable<B, Budget>;
    static constexpr int kIndexBits = kPointIndexBits<B, Budget>;
    static constexpr int kKeySlots = D / 4, kKeyTriplets = D / 12, kKeyTail = kKeySlots - 3 * kKeyTriplets;
    static constexpr int kValueSlots = D / 8, kValueTriplets = D / 24, kValueTail = kValueSlots - 3 * kValueTriplets;
    static constexpr int kMaxRecordBytes = static_cast<int>(octopus::triplet_code_bytes(D, B) + octopus::norm_bytes(false));
    /// Tokens always in order: with an order known only at run time the attention loop would rebuild
    /// more of its (unpinned) plans every tile, which costs more than the bank conflicts it saves.
    static constexpr bool kReorders = false;
    using PointTable = OctopusPointTable<B, Budget>;
    using Tables = typename OneTable<OctopusFragments, PointTable>::Tables;
    /// Where one lane's slots start in each of the `Records` records it reads of a tile (bit positions
    /// from the tile's first word, worked out once per kernel), and what each tail slot is. Pinned, like
    /// TurboQuant's: since the attention loop also walks pages, the compiler otherwise rebuilt the plan
    /// from the thread index on every tile (593 instructions a loop against 555 pinned, OCTOPUS 3-bit,
    /// d = 128; before pages, pinning it made the loop longer).
    template <int Tail, int Records>
    struct TailPlan {
        std::uint32_t copy;       // the lane's copy of the table
        int triplets[Records];    // the lane's first triplet in each record
        int offset[Tail];         // each tail slot, from the lane's first triplet (the same in every record)
        std::uint32_t mask[Tail];
        std::uint32_t entry[Tail];  // the table's first entry for this slot: 0, or 2^kIndexBits for leftovers
        std::uint32_t low[Tail];    // the lane's copy and the entry's word holding the slot's half: 0 (x, y), 4 (z)
        std::uint32_t shift[Tail];  // where that half sits in its word: 0 (x, z, a leftover level), 16 (y)
        // Folded codebooks only: the code's bits below its point index (3, 0 for a leftover), and the
        // bit of the slot's sign (its component; 31 for a leftover, which has none).
        std::uint32_t drop[kFolded ? Tail : 1];
        std::uint32_t sign[kFolded ? Tail : 1];
    };
    using KeyPlan = TailPlan<kKeyTail, 2>;    // keys g, g + 8
    using ValuePlan = TailPlan<kValueTail, 4>;  // tokens 2t, 2t + 1, 2t + 8, 2t + 9
    static bool matches(const CodecView& c) {
        return c.scheme == kScheme && c.code_bits == B && c.dim == D && c.leftover_bits == kLeftoverBits;
    }

    /// Entry i of the table: point i (of a folded codebook, code 8i's: the octant's point, no sign),
    /// then the leftover levels as (level, 0 | 0, 0).
    __device__ static uint2 table_entry(const CodecView& c, int i) {
        if (i < (1 << kIndexBits)) return c.points[kFolded ? i << 3 : i];
        return uint2{static_cast<std::uint32_t>(__half_as_ushort(c.scalar_levels[i - (1 << kIndexBits)])), 0u};
    }
    __device__ static int key_coordinate(int t, int slot) {
        return slot < 3 * kKeyTriplets ? 3 * kKeyTriplets * t + slot : 12 * kKeyTriplets + kKeyTail * t + slot - 3 * kKeyTriplets;
    }
    __device__ static int value_coordinate(int g, int slot) {
        return slot < 3 * kValueTriplets ? 3 * kValueTriplets * g + slot
                                         : 24 * kValueTriplets + kValueTail * g + slot - 3 * kValueTriplets;
    }

    /// The plan of a lane whose triplets start at triplet `first_triplet` and tail at coordinate
    /// `first_coordinate` of each record, records at bits `records`.
    template <int Tail, int Records>
    __device__ static TailPlan<Tail, Records> plan(int first_triplet, int first_coordinate, const int (&records)[Records],
                                                   int lane) {
        TailPlan<Tail, Records> p;
        p.copy = PointTable::lane_offset(lane);
#pragma unroll
        for (int r = 0; r < Tail; ++r) {
            const int i = first_coordinate + r;
            const bool leftover = i >= 3 * kTriplets;
            p.offset[r] = (leftover ? B * kTriplets + kLeftoverBits * (i - 3 * kTriplets) : B * (i / 3)) - B * first_triplet;
            p.mask[r] = leftover ? (1u << kLeftoverBits) - 1u : (1u << B) - 1u;
            p.entry[r] = leftover ? 1u << kIndexBits : 0u;
            const int component = leftover ? 0 : i % 3;  // x, y, z of a point; a leftover level is an x
            p.low[r] = p.copy | (component == 2 ? 4u : 0u);
            p.shift[r] = component == 1 ? 16u : 0u;
            if constexpr (kFolded) {
                p.drop[r] = leftover ? 0u : 3u;
                p.sign[r] = leftover ? 31u : static_cast<std::uint32_t>(component);
            }
        }
        p.copy = pinned(p.copy);
#pragma unroll
        for (int n = 0; n < Records; ++n) p.triplets[n] = pinned(records[n] + B * first_triplet);
#pragma unroll
        for (int r = 0; r < Tail; ++r) {
            p.offset[r] = pinned(p.offset[r]);
            p.mask[r] = pinned(p.mask[r]);
            p.entry[r] = pinned(p.entry[r]);
            p.low[r] = pinned(p.low[r]);
            p.shift[r] = pinned(p.shift[r]);
            if constexpr (kFolded) {
                p.drop[r] = pinned(p.drop[r]);
                p.sign[r] = pinned(p.sign[r]);
            }
        }
        return p;
    }
    /// Where in a record lane t's key triplets and lane g's value triplets start (bits).
    __host__ __device__ static constexpr int key_part_bit(int t) { return B * kKeyTriplets * t; }
    __host__ __device__ static constexpr int value_part_bit(int g) { return B * kValueTriplets * g; }
    /// (Tokens in order: kReorders.)
    __device__ static KeyPlan key_plan(int lane, int record_bits, TileOrder) {
        const int g = lane / 4, t = lane % 4;
        const int records[2] = {g * record_bits, (g + 8) * record_bits};
        return plan<kKeyTail, 2>(kKeyTriplets * t, 12 * kKeyTriplets + kKeyTail * t, records, lane);
    }
    __device__ static ValuePlan value_plan(int lane, int record_bits, TileOrder) {
        const int g = lane / 4, t = lane % 4;
        const int records[4] = {2 * t * record_bits, (2 * t + 1) * record_bits, (2 * t + 8) * record_bits, (2 * t + 9) * record_bits};
        return plan<kValueTail, 4>(kValueTriplets * g, 24 * kValueTriplets + kValueTail * g, records, lane);
    }

    /// Whether slot s (of a run with `Triplets` triplets first) sits in the high half of its word.
    template <int Triplets>
    __device__ static constexpr bool high_half(int s) { return s < 3 * Triplets && s % 3 == 1; }

    /// The words holding slots [0, 3·Triplets + Used) of one record whose lane part starts at bit
    /// `first`: Triplets triplets from the lane's triplet Skip, then the first Used (0 or Tail) tail
    /// slots; slot s in half high_half(s) of w[s].
    template <int Triplets, int Skip, int Used, int Tail, int Records>
    __device__ static void slot_words(const Tables& s, const std::uint32_t* words, int first,
                                      const TailPlan<Tail, Records>& tail, std::uint32_t (&w)[3 * Triplets + Used]) {
        if constexpr (kFolded) {
            // Each code's octant point, its signs (code bits 0, 1, 2 for x, y, z) flipped into the
            // halves' sign bits: x at bit 15 and y at bit 31 of the first word, z at bit 15 of the second.
            std::uint32_t window[(Triplets * B + 31) / 32];
            window_at(words, first + B * Skip, window);
            constexpr std::uint32_t kIndexMask = ((1u << kIndexBits) - 1u) << PointTable::kShift;
#pragma unroll
            for (int m = 0; m < Triplets; ++m) {
                const std::uint32_t offset = (field_moved<B, PointTable::kShift - 3>(window, m * B) & kIndexMask) | tail.copy;
                const std::uint32_t signs = field_moved<B, 15>(window, m * B);  // x's at bit 15, y's 16, z's 17
                const uint2 p = s.table.at(offset);
                w[3 * m] = w[3 * m + 1] = p.x ^ (signs & 0x8000u) ^ ((signs << 15) & 0x80000000u);
                w[3 * m + 2] = p.y ^ ((signs >> 2) & 0x8000u);
            }
        } else {
            std::uint32_t codes[Triplets];
            offsets_at<Triplets, B, PointTable::kShift>(words, first + B * Skip, tail.copy, codes);
#pragma unroll
            for (int m = 0; m < Triplets; ++m) {
                const uint2 p = s.table.at(codes[m]);
                w[3 * m] = w[3 * m + 1] = p.x;
                w[3 * m + 2] = p.y;
            }
        }
#pragma unroll
        for (int r = 0; r < Used; ++r) {
            const std::uint32_t code = field_at(words, first + tail.offset[r], 32) & tail.mask[r];
            // One word of the entry, not both: a tail slot takes one half.
            if constexpr (kFolded) {
                const std::uint32_t half =
                    s.table.word_at((((code >> tail.drop[r]) | tail.entry[r]) << PointTable::kShift) | tail.low[r]) >> tail.shift[r];
                w[3 * Triplets + r] = half ^ (((code >> tail.sign[r]) & 1u) << 15);
            } else {
                w[3 * Triplets + r] = s.table.word_at(((tail.entry[r] | code) << PointTable::kShift) | tail.low[r]) >> tail.shift[r];
            }
        }
    }

    /// Lane t's share of key g + 8k as Sᵀ = K·Qᵀ A-operand halves: b[j][0] holds k = 2t, 2t+1 of
    /// k-block j, b[j][1] k = 2t+8, 2t+9 (HeadColumns::tile_scores pairs two keys).
    __device__ static void key_fragments(const Tables& s, const std::uint32_t* words, const KeyPlan& plan, int k,
                                         std::uint32_t (&b)[D / 16][2]) {
        std::uint32_t w[kKeySlots];
        slot_words<kKeyTriplets, 0, kKeyTail>(s, words, plan.triplets[k], plan, w);
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

    /// Value slots are decoded in two chunks split at a triplet boundary, [0, kValueSplit) and
    /// [kValueSplit, kValueSlots) (the tail in the second), each going to the tensor cores before the
    /// next is decoded: fewer registers for values.
    static constexpr int kValueSplit = 3 * ((kValueTriplets + 1) / 2);
    /// Lane (g, t)'s Vᵀ A-operand registers at value slots [First, First + Count) (one of the two
    /// chunks): b[c][0] pairs tokens 2t, 2t+1 at slot First + c, b[c][1] tokens 2t+8, 2t+9.
    template <int First, int Count>
    __device__ static void value_fragments(const Tables& s, const std::uint32_t* words, const ValuePlan& plan,
                                           std::uint32_t (&b)[Count][2]) {
        static_assert(First % 3 == 0 && (First + Count == kValueSlots || (First == 0 && Count == kValueSplit)),
                      "value chunks are [0, kValueSplit) and [kValueSplit, kValueSlots)");
        constexpr bool kLast = First + Count == kValueSlots;
        constexpr int kT = kLast ? kValueTriplets - First / 3 : Count / 3, kUsed = kLast ? kValueTail : 0;
#pragma unroll
        for (int k = 0; k < 2; ++k) {
            std::uint32_t first[Count], second[Count];
            slot_words<kT, First / 3, kUsed>(s, words, plan.triplets[2 * k], plan, first);
            slot_words<kT, First / 3, kUsed>(s, words, plan.triplets[2 * k + 1], plan, second);
#pragma unroll
            for (int c = 0; c < Count; ++c)
                b[c][k] = join_halves(first[c], high_half<kT>(c), second[c], high_half<kT>(c), false);
        }
    }
};

}  // namespace octopus::cuda::detail
