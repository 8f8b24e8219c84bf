// Reading the CPU's LSB-first bit stream (packing.hpp) from 32-bit words in shared memory.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

namespace octopus::cuda::detail {

/// The `width`-bit field (1..32) at bit `position` of the stream whose words start at `words`.
__device__ inline std::uint32_t field_at(const std::uint32_t* words, int position, int width) {
    const std::uint32_t lo = words[position >> 5], hi = words[(position >> 5) + 1];
    const std::uint32_t value = __funnelshift_r(lo, hi, static_cast<unsigned>(position & 31));
    return width == 32 ? value : value & ((1u << width) - 1u);
}

/// `Count` consecutive fields of `Width` bits starting at bit `position`, as byte offsets into a
/// CopiedTable (fragments.cuh). The words are loaded once and shifted into place, after which every
/// field sits at a compile-time offset; field m comes out as (field << Shift) | low, low being one
/// word or one per field, with no bits where the field lands. That is two instructions per field (a
/// shift and one three-input logic op): the entry size, the lane's copy or a second code come free.
template <int Count, int Width, int Shift, class Low>
__device__ inline void offsets_at(const std::uint32_t* words, int position, const Low& low, std::uint32_t (&out)[Count]) {
    static_assert(Shift <= 32 - Width && Width <= 20, "fields must keep their bits after the shift");
    constexpr int kWords = (Count * Width + 31) / 32 + 1;
    const std::uint32_t* base = words + (position >> 5);
    const unsigned shift = static_cast<unsigned>(position & 31);
    std::uint32_t raw[kWords];
#pragma unroll
    for (int i = 0; i < kWords; ++i) raw[i] = base[i];
    std::uint32_t window[kWords];
#pragma unroll
    for (int i = 0; i + 1 < kWords; ++i) window[i] = __funnelshift_r(raw[i], raw[i + 1], shift);
    window[kWords - 1] = raw[kWords - 1] >> shift;
    constexpr std::uint32_t mask = ((1u << Width) - 1u) << Shift;
#pragma unroll
    for (int m = 0; m < Count; ++m) {
        const int word = m * Width / 32, offset = m * Width % 32;
        std::uint32_t value;
        if (offset + Width > 32) value = __funnelshift_r(window[word], window[word + 1], offset - Shift);  // offset > Shift here
        else if (offset >= Shift) value = window[word] >> (offset - Shift);
        else value = window[word] << (Shift - offset);
        if constexpr (std::is_array_v<Low>) out[m] = (value & mask) | low[m];
        else out[m] = (value & mask) | low;
    }
}

/// The stored norm of the record at byte `record_byte` of a word-aligned tile (fp32 or fp16 bits).
__device__ inline float norm_at(const std::uint32_t* words, int record_byte, int code_bytes, bool fp16) {
    const int position = (record_byte + code_bytes) * 8;
    if (fp16) return __half2float(__ushort_as_half(static_cast<unsigned short>(field_at(words, position, 16))));
    return __uint_as_float(field_at(words, position, 32));
}

}  // namespace octopus::cuda::detail
