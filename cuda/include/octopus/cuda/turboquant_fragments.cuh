// TurboQuant's codes straight into tensor-core operands (the fused kernels' contract is fragments.cuh's
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
/// Whether TurboQuant at `Bits` keeps the quad table (16 copies within Budget), and its table type.
template <int Bits, int Budget>
inline constexpr bool kTurboQuantQuads = 16 * (8 << (4 * Bits)) <= Budget;
template <int Bits, int Budget>
using TurboQuantTable =
    std::conditional_t<kTurboQuantQuads<Bits, Budget>, CopiedTable<uint2, 1 << (4 * Bits), 16>,
                       CopiedTable<std::uint32_t, 1 << (2 * Bits), table_copies(4 << (2 * Bits), 32, Budget)>>;

template <int D, int Bits, int Budget>
struct TurboQuantFragments : OneTable<TurboQuantFragments<D, Bits, Budget>, TurboQuantTable<Bits, Budget>> {
    static constexpr Scheme kScheme = Scheme::turboquant;
    static constexpr int kKeySlots = D / 4, kValueSlots = D / 8;
    static constexpr int kMaxRecordBytes = static_cast<int>(octopus::scalar_code_bytes(D, Bits) + octopus::norm_bytes(false));
    static constexpr bool kQuads = kTurboQuantQuads<Bits, Budget>;
    static constexpr bool kReorders = true;  // takes a tile's tokens in the order choose_tile_order gives
    using Table = TurboQuantTable<Bits, Budget>;
    using Tables = typename OneTable<TurboQuantFragments, Table>::Tables;
    static bool matches(const CodecView& c) { return c.scheme == kScheme && c.code_bits == Bits && c.dim == D; }

    /// Entry i of the table as the codec's level pairs make it (a quad from two pairs, or a pair).
    __device__ static auto table_entry(const CodecView& c, int i) {
        if constexpr (kQuads) {
            constexpr int m = (1 << Bits) - 1;
            const auto pair = [&](int lo, int hi) { return c.level_pairs[lo | hi << Bits]; };
            return uint2{pair(i & m, (i >> 2 * Bits) & m), pair((i >> Bits) & m, i >> 3 * Bits)};
        } else {
            return c.level_pairs[i];
        }
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
                const uint2 quad = s.table.at(entries[j]);
                b[j][0] = quad.x;
                b[j][1] = quad.y;
            } else {
                b[j][0] = s.table.at(entries[2 * j]);
                b[j][1] = s.table.at(entries[2 * j + 1]);
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
                    const uint2 quad = s.table.at(entries[e]);
                    b[2 * e][k] = quad.x;
                    b[2 * e + 1][k] = quad.y;
                } else {
                    b[e][k] = s.table.at(entries[e]);
                }
            }
        }
    }
};

}  // namespace octopus::cuda::detail
