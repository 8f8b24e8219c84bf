// Register-level building blocks of the fused kernels: fp16 packing, the m16n8k16 tensor-core product,
// an 8×8 transpose in registers, pinning a value to a register, the order of a tile's tokens, and
// codebook tables copied across shared-memory banks.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "octopus/cuda/device_codec.cuh"

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
/// recompute it inside the tile loops (left alone, it rebuilds the lanes' bit positions from the
/// thread index and the kernel parameters on every tile).
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

/// The shared-memory side of a fragments type whose tables are one CopiedTable `Table`: `Tables`
/// holds it as `table`, and a block's threads fetch their share of it from the codec
/// (Derived::table_entry(c, i), entry i as the table stores it) and store it.
template <class Derived, class Table>
struct OneTable {
    struct Tables {
        Table table;
    };
    template <int Threads>
    using TableShare = typename Table::template Share<Threads>;
    template <int Threads>
    __device__ static TableShare<Threads> fetch(const CodecView& c, int thread) {
        return Table::template fetch<Threads>([&](int i) { return Derived::table_entry(c, i); }, thread);
    }
    template <int Threads>
    __device__ static void store(Tables& s, const TableShare<Threads>& share, int thread) {
        s.table.store(share, thread);
    }
};

}  // namespace octopus::cuda::detail
