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

#include <cuda_runtime.h>

#include <atomic>
#include <bit>
#include <cstdint>
#include <iterator>

#include "octopus/contract.hpp"
#include "octopus/cuda/device_codec.cuh"
#include "octopus/cuda/mma.cuh"
#include "octopus/cuda/octopus_fragments.cuh"
#include "octopus/cuda/staging.cuh"
#include "octopus/cuda/turboquant_fragments.cuh"

namespace octopus::cuda::detail {

/// Calls f.template operator()<Fragments>() with the fragment type of `c` (its tables within Budget
/// bytes); false when the GPU kernels have none (dims other than kGpuHeadDims; TurboQuant bits other
/// than 2, 3, 4; OCTOPUS below 2 bits).
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
    octopus::for_each_gpu_head_dim(dims);
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

}  // namespace octopus::cuda::detail
