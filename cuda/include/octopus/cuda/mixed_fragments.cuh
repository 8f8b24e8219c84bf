// Keys and values of different TurboQuant bit widths in one attention kernel (say 4-bit keys and 2-bit
// values): the keys' fragments type decodes keys, the values' type decodes values, each from its own
// table copies, the two tables side by side in shared memory (the fused kernels' contract is
// fragments.cuh's header comment).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "octopus/contract.hpp"
#include "octopus/cuda/device_codec.cuh"
#include "octopus/cuda/turboquant_fragments.cuh"

namespace octopus::cuda::detail {

template <class Keys, class Values>
struct MixedFragments {
    static_assert(Keys::kScheme == Values::kScheme && Keys::kKeySlots == Values::kKeySlots, "one scheme, one head dim");
    static constexpr Scheme kScheme = Keys::kScheme;
    static constexpr int kKeySlots = Keys::kKeySlots, kValueSlots = Values::kValueSlots;
    static constexpr int kMaxRecordBytes = std::max(Keys::kMaxRecordBytes, Values::kMaxRecordBytes);
    static constexpr bool kReorders = Keys::kReorders && Values::kReorders;
    static constexpr int kValueSplit = Values::kValueSplit;
    using KeyPlan = typename Keys::KeyPlan;
    using ValuePlan = typename Values::ValuePlan;
    struct Tables {
        typename Keys::Tables keys;
        typename Values::Tables values;
    };
    template <int Threads>
    struct TableShare {
        typename Keys::template TableShare<Threads> keys;
        typename Values::template TableShare<Threads> values;
    };
    /// Both tables' shares: the keys' from the key codec, the values' from the value codec.
    template <int Threads>
    __device__ static TableShare<Threads> fetch(const CodecView& keys, const CodecView& values, int thread) {
        return {Keys::template fetch<Threads>(keys, thread), Values::template fetch<Threads>(values, thread)};
    }
    template <int Threads>
    __device__ static void store(Tables& s, const TableShare<Threads>& share, int thread) {
        Keys::store(s.keys, share.keys, thread);
        Values::store(s.values, share.values, thread);
    }

    __device__ static int key_coordinate(int t, int slot) { return Keys::key_coordinate(t, slot); }
    __device__ static int value_coordinate(int g, int slot) { return Values::value_coordinate(g, slot); }
    __host__ __device__ static constexpr int key_part_bit(int t) { return Keys::key_part_bit(t); }
    __host__ __device__ static constexpr int value_part_bit(int g) { return Values::value_part_bit(g); }
    __device__ static KeyPlan key_plan(int lane, int record_bits, TileOrder order) { return Keys::key_plan(lane, record_bits, order); }
    __device__ static ValuePlan value_plan(int lane, int record_bits, TileOrder order) {
        return Values::value_plan(lane, record_bits, order);
    }
    __device__ static void key_fragments(const Tables& s, const std::uint32_t* words, const KeyPlan& plan, int k,
                                         std::uint32_t (&b)[kKeySlots * 4 / 16][2]) {
        Keys::key_fragments(s.keys, words, plan, k, b);
    }
    template <int First, int Count>
    __device__ static void value_fragments(const Tables& s, const std::uint32_t* words, const ValuePlan& plan,
                                           std::uint32_t (&b)[Count][2]) {
        Values::template value_fragments<First, Count>(s.values, words, plan, b);
    }
};

/// Calls f.template operator()<Fragments>() with the mixed fragments type of TurboQuant keys at
/// `keys.code_bits` and values at `values.code_bits` (different widths, each table within Budget / 2
/// bytes: both keep a copy per lane); false when the GPU kernels have none.
template <int Budget, class F>
bool with_mixed_fragments(const CodecView& keys, const CodecView& values, F&& f) {
    bool found = false;
    if (keys.scheme != Scheme::turboquant || values.scheme != Scheme::turboquant || keys.dim != values.dim) return false;
    const auto one = [&]<int D, int KeyBits, int ValueBits>() {
        if constexpr (KeyBits != ValueBits) {
            if (!found && keys.dim == D && keys.code_bits == KeyBits && values.code_bits == ValueBits) {
                found = true;
                f.template operator()<MixedFragments<TurboQuantFragments<D, KeyBits, Budget / 2>, TurboQuantFragments<D, ValueBits, Budget / 2>>>();
            }
        }
    };
    const auto values_of = [&]<int D, int KeyBits>() {
        one.template operator()<D, KeyBits, 2>();
        one.template operator()<D, KeyBits, 3>();
        one.template operator()<D, KeyBits, 4>();
    };
    octopus::for_each_gpu_head_dim([&]<int D>() {
        values_of.template operator()<D, 2>();
        values_of.template operator()<D, 3>();
        values_of.template operator()<D, 4>();
    });
    return found;
}

}  // namespace octopus::cuda::detail
