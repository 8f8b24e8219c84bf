// The layout of a compressed KV cache as the fused kernels read it, and its checks.
#pragma once

#include <cstdint>
#include <string>

#include "octopus/cuda/device_codec.cuh"

namespace octopus::cuda {

/// Records of token t of KV head h of sequence b live at ((b·kv_heads + h)·capacity + t)·record_bytes
/// bytes from the cache pointer (what encode writes through CacheTarget{cache, batch, kv_heads,
/// capacity, positions}). Query head i reads KV head i / (q_heads / kv_heads) (grouped-query
/// attention; q_heads = kv_heads is plain multi-head attention).
struct CacheShape {
    int batch = 1;
    int q_heads = 1;
    int kv_heads = 1;
    int capacity = 0;              // tokens per (sequence, KV head): a multiple of 16
    const int* lengths = nullptr;  // device: tokens in use per sequence, each in [0, max_length] (see clamp_length)
    int max_length = 0;            // a bound the host knows on every length, ≤ capacity
};

namespace detail {

/// A sequence's length as the kernels read it. Lengths live on the device, where nothing can throw;
/// one outside [0, max_length] would send the kernels past the cache, so it is held to that range
/// (the host-side contract is that it never happens).
__device__ inline int clamp_length(int length, int max_length) { return min(max(length, 0), max_length); }

inline void check_cache(const DeviceCodec& codec, const std::uint8_t* cache, const CacheShape& s, const char* call) {
    using octopus::detail::require;
    const std::string where = std::string("octopus::cuda::") + call + ": ";
    require(cache != nullptr && s.lengths != nullptr, where + "null cache or lengths pointer");
    require(reinterpret_cast<std::uintptr_t>(cache) % 16 == 0, where + "the cache must be 16-byte aligned");
    require(s.batch >= 1 && s.kv_heads >= 1 && s.q_heads >= s.kv_heads && s.q_heads % s.kv_heads == 0,
            where + "q_heads (" + std::to_string(s.q_heads) + ") must be a positive multiple of kv_heads (" +
                std::to_string(s.kv_heads) + "), batch ≥ 1");
    require(s.capacity >= 16 && s.capacity % 16 == 0,
            where + "capacity " + std::to_string(s.capacity) + " is not a positive multiple of 16 tokens");
    require(s.max_length >= 0 && s.max_length <= s.capacity,
            where + "max_length " + std::to_string(s.max_length) + " is outside [0, capacity = " +
                std::to_string(s.capacity) + "]");
    require(static_cast<long long>(s.batch) * s.kv_heads * s.capacity * codec.record_bytes() < (1LL << 62),
            where + "cache too large");
}

}  // namespace detail
}  // namespace octopus::cuda
