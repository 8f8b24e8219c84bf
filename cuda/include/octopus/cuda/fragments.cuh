// Packed codes straight into tensor-core operands: what the fused kernels share.
//
// Scores and the attention's weighted sum are mma.sync m16n8k16 products (fp16 operands, fp32
// accumulators), taken transposed so that the tokens and coordinates fill the 16 rows and the query
// heads of a KV head (a GQA group: 4, 8 or 16) the 8 columns: Sᵀ = K·Qᵀ and Oᵀ = Vᵀ·Pᵀ. No row of an
// accumulator is padding, and a group of 4 costs one n-block of queries (their fp16 hi and lo parts).
// A dot product does not care in which order its terms are summed, so the kernels choose which
// coordinate each operand slot stands for: a lane's slots are whole triplets (OCTOPUS) or a contiguous
// run of coordinates (TurboQuant), so that each lane reads one run of bits per key and every code it
// extracts lands in its own registers. The query is permuted the same way once per block, and the
// output is un-permuted once when it is stored.
//
// m16n8k16 lane roles (g = lane / 4, t = lane % 4): A rows g and g+8, k pairs (2t, 2t+1) and (2t+8,
// 2t+9); B k pairs (2t, 2t+1) and (2t+8, 2t+9), column g; C rows g and g+8, columns (2t, 2t+1).
//   Sᵀ = K·Qᵀ over a 16-key tile: lane (g, t) decodes keys g and g+8 at its D/4 key slots: slot 4j +
//   {0, 1} is k = 2t + {0, 1} of k-block j, slot 4j + {2, 3} is k = 2t + 8 + {0, 1}.
//   Oᵀ = Vᵀ·Pᵀ: lane (g, t) decodes keys 2t, 2t+1, 2t+8, 2t+9 of a 16-key tile at its D/8 value
//   slots: slots 2m and 2m + 1 are rows g and g+8 of m-block m.
// "Key r" is the tile's token of row r in the order the launch chose (TileOrder), the same for both.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <bit>
#include <cstdint>
#include <iterator>
#include <type_traits>

#include "octopus/cuda/bits.cuh"
#include "octopus/cuda/device_codec.cuh"
#include "octopus/cuda/warp_rotation.cuh"

namespace octopus::cuda::detail {

/// lo and hi rounded to fp16 and packed in one word (one instruction).
__device__ inline std::uint32_t pack_as_halves(float lo, float hi) {
    const __half2 pair = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&pair);
}

/// The word whose low half is half `a_high` of a and whose high half is half `b_high` of b (all
/// flags fold to constants once the callers' loops unroll: one byte permute, or none when both
/// halves already sit in place in one word).
__device__ inline std::uint32_t join_halves(std::uint32_t a, bool a_high, std::uint32_t b, bool b_high, bool same_word) {
    if (same_word && !a_high && b_high) return a;
    return __byte_perm(a, b, (b_high ? 0x7600u : 0x5400u) | (a_high ? 0x32u : 0x10u));
}

/// c += a·b on the tensor cores (m16n8k16, fp16 in, fp32 accumulators).
__device__ inline void mma_16816(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// The transpose of an 8×8 matrix of fp16 pairs held one pair per lane (row g, columns 2t and 2t + 1):
/// lane (g, t) gets row g of the transpose, columns 2t and 2t + 1.
__device__ inline std::uint32_t transpose_8x8(std::uint32_t x) {
    std::uint32_t y;
    asm("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(y) : "r"(x));
    return y;
}

/// x, kept in a register from here on: the compiler no longer knows how it was computed, so it cannot
/// recompute it inside the tile loops. Left alone, it rebuilt the lanes' bit positions from the thread
/// index and the kernel parameters on every tile (about a sixth of a tile's instructions).
template <class T>
__device__ inline T pinned(T x) {
    static_assert(sizeof(T) == 4, "one 32-bit register");
    asm volatile("" : "+r"(x));
    return x;
}

/// Which token of a 16-token tile each row of the fused products stands for: keys g and g + 8 of
/// Sᵀ = K·Qᵀ and the same k indices of Oᵀ = Vᵀ·Pᵀ (Pᵀ is the weights of Sᵀ's rows transposed, so one
/// order serves both). Lanes read their records of a staged tile at positions a record apart; at some
/// record sizes (17 words: 68 bytes) pairs of those reads fall on one shared-memory bank, and taking
/// tokens 2 and 3 of every four the other way round spreads them (choose_tile_order). Row r + 8 stands
/// for token order(r) + 8 either way.
struct TileOrder {
    bool swap_pairs = false;
    __host__ __device__ int operator()(int row) const { return row ^ ((row >> 1) & static_cast<int>(swap_pairs)); }
    friend bool operator==(TileOrder a, TileOrder b) { return a.swap_pairs == b.swap_pairs; }
};

/// The most copies of a table of `bytes` bytes, ≤ `most` and a power of two, within `budget` bytes of
/// shared memory (the fused kernels give their tables kTableBudget, scores.cuh).
__host__ __device__ constexpr int table_copies(int bytes, int most, int budget) {
    int copies = most;
    while (copies > 1 && bytes * copies > budget) copies /= 2;
    return copies;
}

/// A codebook table kept `Copies` times in shared memory, interleaved (entry e of copy j is element
/// e·Copies + j), lane l reading copy l mod Copies. Decoding gathers entries at random, and lanes that
/// hit one bank at different addresses are served one after another; with a copy per lane (32 for
/// 4-byte entries; 16 for 8-byte ones, which a warp reads half a warp at a time) every lane has its
/// own banks and a gather takes one pass. Lookups take byte offsets, (entry << kShift) | lane_offset,
/// which offsets_at (bits.cuh) produces straight from the packed codes.
template <class Entry, int Entries, int Copies>
struct CopiedTable {
    static_assert((Copies & (Copies - 1)) == 0, "copies must be a power of two");
    static constexpr int kShift = std::bit_width(Copies * sizeof(Entry)) - 1;  // log2 of a row of copies
    static_assert(Copies * sizeof(Entry) <= 128, "a row of copies spans the 32 banks at most");
    Entry data[Entries * Copies];

    /// A thread's share of filling the table, `Threads` threads at once: entries thread, thread +
    /// Threads, ..., all read from global memory (fetch) before any is written to every copy (store),
    /// so that filling costs one round trip to memory, not one per Threads slots (6 of them for
    /// TurboQuant's 3-bit table in a 12-warp block, 22 for OCTOPUS's 9-bit one).
    template <int Threads>
    struct Share {
        Entry entry[(Entries + Threads - 1) / Threads];
    };
    /// Reads a thread's share; `entry(i)` gives entry i.
    template <int Threads, class Source>
    __device__ static Share<Threads> fetch(Source&& entry, int thread) {
        Share<Threads> share;
#pragma unroll
        for (int r = 0; r < static_cast<int>(std::size(share.entry)); ++r)
            if (thread + r * Threads < Entries) share.entry[r] = entry(thread + r * Threads);
        return share;
    }
    /// Writes a thread's share to every copy, from copy `thread` on, so that the lanes of a warp store
    /// to different banks.
    template <int Threads>
    __device__ void store(const Share<Threads>& share, int thread) {
#pragma unroll
        for (int r = 0; r < static_cast<int>(std::size(share.entry)); ++r)
            if (thread + r * Threads < Entries)
#pragma unroll
                for (int j = 0; j < Copies; ++j) data[(thread + r * Threads) * Copies + (j + thread) % Copies] = share.entry[r];
    }
    __device__ static std::uint32_t lane_offset(int lane) { return static_cast<std::uint32_t>((lane % Copies) * sizeof(Entry)); }
    __device__ Entry at(std::uint32_t offset) const {
        return *reinterpret_cast<const Entry*>(reinterpret_cast<const unsigned char*>(data) + offset);
    }
    /// The 32-bit word at byte `offset` (a multiple of 4) inside an entry.
    __device__ std::uint32_t word_at(std::uint32_t offset) const {
        return *reinterpret_cast<const std::uint32_t*>(reinterpret_cast<const unsigned char*>(data) + offset);
    }
};

/// TurboQuant at b bits: lane t's key slots are coordinates t·D/4 + s (at 2 bits in the order of
/// quad_offset), its value slots g·D/8 + c. One table serves keys and values, kept in a copy per lane
/// (CopiedTable), so that one gather yields a whole operand register, or at 2 bits two:
/// - pairs (3 and 4 bits): entry c holds the levels of two adjacent codes (c mod 2^b, c / 2^b);
/// - quads (2 bits, where 16 copies of the table fit the budget): entry i of four codes i0..i3 (i0 in
///   the low bits) holds the pairs (i0, i2) and (i1, i3). Four adjacent codes of a key are one entry
///   (the pair (i0, i2) is slots 4j, 4j + 1 of a k-block, so a key's slots run in the order 0, 2, 1,
///   3 within each four); two adjacent codes of two tokens, i0 i1 from one and i2 i3 from the other,
///   are one entry too, the value operands of both slots. Half the gathers and offsets of the pair
///   table, the same shared-memory wavefronts.
template <int D, int Bits, int Budget>
struct TurboQuantFragments {
    static constexpr Scheme kScheme = Scheme::turboquant;
    static constexpr int kKeySlots = D / 4, kValueSlots = D / 8;
    static constexpr int kMaxRecordBytes = D * Bits / 8 + 4;
    static constexpr bool kQuads = 16 * (8 << (4 * Bits)) <= Budget;
    static constexpr bool kReorders = true;  // takes a tile's tokens in the order choose_tile_order gives
    using Table = std::conditional_t<kQuads, CopiedTable<uint2, 1 << (4 * Bits), 16>,
                                     CopiedTable<std::uint32_t, 1 << (2 * Bits), table_copies(4 << (2 * Bits), 32, Budget)>>;
    struct Tables {
        Table levels;
    };
    static bool matches(const CodecView& c) { return c.scheme == kScheme && c.bits == Bits && c.dim == D; }

    /// A thread's share of the tables, read from the codec (fetch) and written to shared memory (store).
    template <int Threads>
    using TableShare = typename Table::template Share<Threads>;
    template <int Threads>
    __device__ static TableShare<Threads> fetch(const CodecView& c, int thread) {
        return Table::template fetch<Threads>(
            [&](int i) {
                if constexpr (kQuads) {
                    constexpr int m = (1 << Bits) - 1;
                    const auto pair = [&](int lo, int hi) { return c.level_pairs[lo | hi << Bits]; };
                    return uint2{pair(i & m, (i >> 2 * Bits) & m), pair((i >> Bits) & m, i >> 3 * Bits)};
                } else {
                    return c.level_pairs[i];
                }
            },
            thread);
    }
    template <int Threads>
    __device__ static void store(Tables& s, const TableShare<Threads>& share, int thread) {
        s.levels.store(share, thread);
    }
    /// Which of four adjacent codes key slot 4j + r stands for: r itself, or with quads 0, 2, 1, 3.
    __device__ static int quad_offset(int r) { return kQuads ? (r & 1) << 1 | r >> 1 : r; }
    __device__ static int key_coordinate(int t, int slot) { return t * kKeySlots + (slot & ~3) + quad_offset(slot & 3); }
    __device__ static int value_coordinate(int g, int slot) { return g * kValueSlots + slot; }
    /// Where lane (g, t)'s slots start in a tile whose records are `record_bits` apart, worked out
    /// once per kernel (pinned): every slot is a whole code, so a run of codes from one bit position
    /// per record, and the lane's copy of the table.
    struct KeyPlan {
        std::uint32_t copy;
        int first[2];  // keys g and g + 8
    };
    struct ValuePlan {
        std::uint32_t copy;
        int first[2][2];  // [k][n]: token 2t + 8k + n
    };
    /// Where in a record lane t's key slots and lane g's value slots start (bits).
    __host__ __device__ static constexpr int key_part_bit(int t) { return t * kKeySlots * Bits; }
    __host__ __device__ static constexpr int value_part_bit(int g) { return g * kValueSlots * Bits; }
    __device__ static KeyPlan key_plan(int lane, int record_bits, TileOrder order) {
        const int g = lane / 4, t = lane % 4;
        KeyPlan p{pinned(Table::lane_offset(lane)), {}};
#pragma unroll
        for (int k = 0; k < 2; ++k) p.first[k] = pinned(order(g + 8 * k) * record_bits + key_part_bit(t));
        return p;
    }
    __device__ static ValuePlan value_plan(int lane, int record_bits, TileOrder order) {
        const int g = lane / 4, t = lane % 4;
        ValuePlan p{pinned(Table::lane_offset(lane)), {}};
#pragma unroll
        for (int k = 0; k < 2; ++k)
#pragma unroll
            for (int n = 0; n < 2; ++n) p.first[k][n] = pinned(order(2 * t + 8 * k + n) * record_bits + value_part_bit(g));
        return p;
    }

    /// Lane t's share of key g + 8k as Sᵀ = K·Qᵀ A-operand halves: b[j][0] holds k = 2t, 2t+1 of
    /// k-block j, b[j][1] k = 2t+8, 2t+9 (HeadColumns::tile_scores pairs two keys).
    __device__ static void key_fragments(const Tables& s, const std::uint32_t* words, const KeyPlan& plan, int k,
                                         std::uint32_t (&b)[D / 16][2]) {
        constexpr int kGathers = kQuads ? D / 16 : D / 8;
        std::uint32_t entries[kGathers];
        offsets_at<kGathers, (kQuads ? 4 : 2) * Bits, Table::kShift>(words, plan.first[k], plan.copy, entries);
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
            if constexpr (kQuads) {
                const uint2 quad = s.levels.at(entries[j]);
                b[j][0] = quad.x;
                b[j][1] = quad.y;
            } else {
                b[j][0] = s.levels.at(entries[2 * j]);
                b[j][1] = s.levels.at(entries[2 * j + 1]);
            }
        }
    }
    /// Value slots are decoded in two chunks, [0, kValueSplit) and [kValueSplit, kValueSlots), each
    /// going to the tensor cores before the next is decoded: half the registers for values.
    static constexpr int kValueSplit = kValueSlots / 2;
    /// Lane (g, t)'s Vᵀ A-operand registers at value slots [First, First + Count): b[c][0] pairs tokens
    /// 2t, 2t+1 at slot First + c, b[c][1] tokens 2t+8, 2t+9 (slots 2m, 2m+1 are rows g, g+8 of m-block
    /// m).
    template <int First, int Count>
    __device__ static void value_fragments(const Tables& s, const std::uint32_t* words, const ValuePlan& plan,
                                           std::uint32_t (&b)[Count][2]) {
        static_assert(!kQuads || Count % 2 == 0, "quads cover two slots");
        constexpr int kGathers = kQuads ? Count / 2 : Count, kWidth = kQuads ? 2 * Bits : Bits;
#pragma unroll
        for (int k = 0; k < 2; ++k) {
            // Tokens 2t (+ 8k) and the next at one slot (with quads, two) make one entry: one gather each.
            std::uint32_t entries[kGathers];
            pair_offsets_at<kGathers, kWidth, Table::kShift>(words, plan.first[k][0] + First * Bits,
                                                             plan.first[k][1] + First * Bits, plan.copy, entries);
#pragma unroll
            for (int e = 0; e < kGathers; ++e) {
                if constexpr (kQuads) {
                    const uint2 quad = s.levels.at(entries[e]);
                    b[2 * e][k] = quad.x;
                    b[2 * e + 1][k] = quad.y;
                } else {
                    b[e][k] = s.levels.at(entries[e]);
                }
            }
        }
    }
};

/// OCTOPUS at B bits per triplet: a lane's slots are whole triplets first (kKeyTriplets or
/// kValueTriplets of them, consecutive), then a short tail covering the last triplets and the d mod 3
/// leftovers, read coordinate by coordinate. Slot s of the triplet part is component s mod 3 of a
/// point, so which half of which point word it sits in is known at compile time and operands are
/// assembled with one byte permute per word. The tail slots differ from lane to lane; their bit
/// offsets, widths and components are worked out once per kernel (TailPlan), so decoding them in the
/// loop takes no branches: the leftover levels sit after the points in one table, kept in as many
/// copies as the budget allows (CopiedTable).
template <int D, int B, int Budget>
struct OctopusFragments {
    static constexpr Scheme kScheme = Scheme::octopus;
    static constexpr int kTriplets = D / 3, kLeftoverBits = B / 3 > 1 ? B / 3 : 1;
    static constexpr int kKeySlots = D / 4, kKeyTriplets = D / 12, kKeyTail = kKeySlots - 3 * kKeyTriplets;
    static constexpr int kValueSlots = D / 8, kValueTriplets = D / 24, kValueTail = kValueSlots - 3 * kValueTriplets;
    static constexpr int kMaxRecordBytes = (kTriplets * B + (D - 3 * kTriplets) * kLeftoverBits + 7) / 8 + 4;
    /// Tokens always in order: with an order known only at run time the attention loop rebuilt more of
    /// its (unpinned) plans every tile (13 more instructions at B = 9), and 3-bit attention with pairs
    /// swapped ran 3-4% slower.
    static constexpr bool kReorders = false;
    static constexpr int kEntries = (1 << B) + (1 << kLeftoverBits);  // points, then the leftover levels as (level, 0 | 0, 0)
    using PointTable = CopiedTable<uint2, kEntries, table_copies(8 * kEntries, 16, Budget)>;
    struct Tables {
        PointTable points;
    };
    /// Where one lane's slots start in each of the `Records` records it reads of a tile (bit positions
    /// from the tile's first word, worked out once per kernel), and what each tail slot is. Not pinned
    /// (unlike TurboQuant's): with its tail the plan holds twice the registers, and pinned it cost the
    /// attention loop 57 more instructions a tile, not fewer (533 → 590 in the SASS at B = 9).
    template <int Tail, int Records>
    struct TailPlan {
        std::uint32_t copy;       // the lane's copy of the table
        int triplets[Records];    // the lane's first triplet in each record
        int offset[Tail];         // each tail slot, from the lane's first triplet (the same in every record)
        std::uint32_t mask[Tail];
        std::uint32_t entry[Tail];  // index of the table's first entry for this slot: 0, or 2^B for leftovers
        std::uint32_t low[Tail];    // the lane's copy and the entry's word holding the slot's half: 0 (x, y), 4 (z)
        std::uint32_t shift[Tail];  // where that half sits in its word: 0 (x, z, a leftover level), 16 (y)
    };
    using KeyPlan = TailPlan<kKeyTail, 2>;    // keys g, g + 8
    using ValuePlan = TailPlan<kValueTail, 4>;  // tokens 2t, 2t + 1, 2t + 8, 2t + 9
    static bool matches(const CodecView& c) {
        return c.scheme == kScheme && c.bits == B && c.dim == D && c.leftover_bits == kLeftoverBits;
    }

    /// A thread's share of the tables, read from the codec (fetch) and written to shared memory (store).
    template <int Threads>
    using TableShare = typename PointTable::template Share<Threads>;
    template <int Threads>
    __device__ static TableShare<Threads> fetch(const CodecView& c, int thread) {
        return PointTable::template fetch<Threads>(
            [&](int i) {
                return i < (1 << B) ? c.points[i]
                                    : uint2{static_cast<std::uint32_t>(__half_as_ushort(c.scalar_levels[i - (1 << B)])), 0u};
            },
            thread);
    }
    template <int Threads>
    __device__ static void store(Tables& s, const TableShare<Threads>& share, int thread) {
        s.points.store(share, thread);
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
            p.entry[r] = leftover ? 1u << B : 0u;
            const int component = leftover ? 0 : i % 3;  // x, y, z of a point; a leftover level is an x
            p.low[r] = p.copy | (component == 2 ? 4u : 0u);
            p.shift[r] = component == 1 ? 16u : 0u;
        }
#pragma unroll
        for (int n = 0; n < Records; ++n) p.triplets[n] = records[n] + B * first_triplet;
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
        std::uint32_t codes[Triplets];
        offsets_at<Triplets, B, PointTable::kShift>(words, first + B * Skip, tail.copy, codes);
#pragma unroll
        for (int m = 0; m < Triplets; ++m) {
            const uint2 p = s.points.at(codes[m]);
            w[3 * m] = w[3 * m + 1] = p.x;
            w[3 * m + 2] = p.y;
        }
#pragma unroll
        for (int r = 0; r < Used; ++r) {
            const std::uint32_t code = field_at(words, first + tail.offset[r], 32) & tail.mask[r];
            // One word of the entry, not both: a tail slot takes one half.
            w[3 * Triplets + r] = s.points.word_at(((tail.entry[r] | code) << PointTable::kShift) | tail.low[r]) >> tail.shift[r];
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

/// Calls f.template operator()<Fragments>() with the fragment type of `c` (its tables within Budget
/// bytes); false when the GPU kernels have none (dims other than 64, 128, 256; TurboQuant bits other
/// than 2, 3, 4).
template <int Budget, class F>
bool with_fragments(const CodecView& c, F&& f) {
    bool found = false;
    const auto one = [&]<class Fragments>() {
        if (!found && Fragments::matches(c)) {
            found = true;
            f.template operator()<Fragments>();
        }
    };
    const auto dims = [&]<int D>() {
        one.template operator()<TurboQuantFragments<D, 2, Budget>>();
        one.template operator()<TurboQuantFragments<D, 3, Budget>>();
        one.template operator()<TurboQuantFragments<D, 4, Budget>>();
        one.template operator()<OctopusFragments<D, 6, Budget>>();
        one.template operator()<OctopusFragments<D, 7, Budget>>();
        one.template operator()<OctopusFragments<D, 8, Budget>>();
        one.template operator()<OctopusFragments<D, 9, Budget>>();
        one.template operator()<OctopusFragments<D, 10, Budget>>();
        one.template operator()<OctopusFragments<D, 11, Budget>>();
        one.template operator()<OctopusFragments<D, 12, Budget>>();
    };
    dims.template operator()<64>();
    dims.template operator()<128>();
    dims.template operator()<256>();
    return found;
}

/// Shared-memory wavefronts of one warp-wide 32-bit load of these words (≥ 0): the most distinct words
/// any bank is asked for.
inline int wavefronts(const int (&words)[32]) {
    int count[32] = {}, seen[32][32], most = 1;
    for (int word : words) {
        const int bank = word % 32;
        bool known = false;
        for (int i = 0; i < count[bank]; ++i) known = known || seen[bank][i] == word;
        if (!known) {
            seen[bank][count[bank]++] = word;
            most = count[bank] > most ? count[bank] : most;
        }
    }
    return most;
}

/// The tile order for keys of `key_bytes`-byte records and values of `value_bytes` (0: keys alone):
/// tokens in order, or pairs swapped where the lanes' first reads of their records (the words every
/// later read of a window follows) take fewer wavefronts with them. Host code; the last choice is
/// kept, as working it out takes about a microsecond and the kernels run once per token.
template <class Fragments>
TileOrder choose_tile_order(int key_bytes, int value_bytes) {
    static std::atomic<std::uint64_t> last{0};  // 1 | swap << 1 | key_bytes << 2 | value_bytes << 32
    const std::uint64_t sizes = static_cast<std::uint64_t>(key_bytes) << 2 | static_cast<std::uint64_t>(value_bytes) << 32;
    const std::uint64_t kept = last.load(std::memory_order_relaxed);
    if ((kept & ~std::uint64_t{3}) == sizes && (kept & 1) != 0) return TileOrder{(kept & 2) != 0};
    const auto cost = [&](TileOrder order) {
        int total = 0, words[32];
        for (int k = 0; k < 2; ++k) {
            for (int lane = 0; lane < 32; ++lane)
                words[lane] = (order(lane / 4 + 8 * k) * key_bytes * 8 + Fragments::key_part_bit(lane % 4)) / 32;
            total += wavefronts(words);
        }
        for (int k = 0; k < 2 && value_bytes > 0; ++k)
            for (int n = 0; n < 2; ++n) {
                for (int lane = 0; lane < 32; ++lane)
                    words[lane] = (order(2 * (lane % 4) + 8 * k + n) * value_bytes * 8 + Fragments::value_part_bit(lane / 4)) / 32;
                total += wavefronts(words);
            }
        return total;
    };
    constexpr TileOrder identity{false}, swapped{true};
    const TileOrder order = Fragments::kReorders && cost(swapped) < cost(identity) ? swapped : identity;
    last.store(sizes | (order.swap_pairs ? 3u : 1u), std::memory_order_relaxed);
    return order;
}

// ---- Shared-memory staging of record tiles: cp.async, per warp, several stages deep. ----

/// Tokens per tile: two 8-key score tiles, one 16-key k-block of P·V.
inline constexpr int kTileTokens = 16;

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

/// One lane's share of copying a warp's tiles of 16 records into shared memory, in order: the lane
/// copies 16-byte pieces lane, lane + 32, ... of a tile, those inside it (records are at most
/// MaxRecordBytes long, so that is a few predicated copies with constant offsets). The warp's tiles
/// lie `step` bytes apart from `first_tile` (16-byte aligned); the stream keeps its place in a
/// register, one add a tile, where an index would cost a 64-bit multiply and its operands. The
/// lane's offset is pinned: left to itself, the compiler read the thread index again on every tile.
template <int MaxRecordBytes>
struct TileStream {
    static constexpr int kPieces = (kTileTokens * MaxRecordBytes + 511) / 512;
    const std::uint8_t* next;  // this lane's first piece of the next tile
    long long step;
    int lane_bytes;  // this lane's first piece in a tile
    int bytes;       // of a tile's records

    __device__ TileStream(const std::uint8_t* first_tile, long long step_bytes, int record_bytes, int lane)
        : next(first_tile + lane * 16), step(step_bytes), lane_bytes(pinned(lane * 16)), bytes(kTileTokens * record_bytes) {}
    /// Starts copying the next tile into `target`.
    __device__ void operator()(std::uint8_t* target) {
        std::uint8_t* to = target + lane_bytes;
#pragma unroll
        for (int p = 0; p < kPieces; ++p)
            if (lane_bytes + 512 * p < bytes) copy_async_16(to + 512 * p, next + 512 * p);
        next += step;
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
/// the padding all fall on one bank (16-way conflicts: 1.7 µs of a block's set-up).
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

/// Reads the warp's rows of the block's queries (rows [0, rows) from q; the rest are zero), each
/// multiplied by the KV head's channel scales `scale` and its part of q·μ taken with `key_offset`
/// (either may be null: Preconditioning).
template <int D, int Warps>
__device__ inline QueryShare<D, Warps> fetch_queries(const float* q, int rows, const float* scale, const float* key_offset) {
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
/// queries rotated: the same reads issued behind the copies took about 2 µs longer.
template <class Fragments, int D, int Heads, int Warps, class StartTiles>
__device__ inline void set_up_block(typename Fragments::Tables& tables, QueryRows<D>& rotated, float* scale, float* offset,
                                    const CodecView& c, const float* q, int rows, const float* channel_scale,
                                    const float* key_offset, float extra, StartTiles&& start_tiles,
                                    std::uint32_t (&q_operands)[HeadColumns<Heads>::kQueryBlocks][D / 16][2]) {
    const int thread = static_cast<int>(threadIdx.x), lane = thread % 32;
    const auto table_share = Fragments::template fetch<32 * Warps>(c, thread);
    const auto query_share = fetch_queries<D, Warps>(q, rows, channel_scale, key_offset);
    start_tiles();
    Fragments::store(tables, table_share, thread);
    prepare_queries<D, Warps>(rotated, scale, offset, query_share, rows, c.signs, extra);
    __syncthreads();
    HeadColumns<Heads>::template query_operands<Fragments, D>(rotated, lane / 4, lane % 4, q_operands);
}

}  // namespace octopus::cuda::detail
