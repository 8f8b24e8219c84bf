// Reading the CPU's LSB-first bit stream (packing.hpp) from 32-bit words in shared memory.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace octopus::cuda::detail {

/// The `width`-bit field (1..32) at bit `position` of the stream whose words start at `words`.
__device__ inline std::uint32_t field_at(const std::uint32_t* words, int position, int width) {
    const std::uint32_t lo = words[position >> 5], hi = words[(position >> 5) + 1];
    const std::uint32_t value = __funnelshift_r(lo, hi, static_cast<unsigned>(position & 31));
    return width == 32 ? value : value & ((1u << width) - 1u);
}

/// Words bits [position, position + 32·Words) of the stream, word i holding bits from position + 32i:
/// loaded once and shifted into place, so that every field after it sits at a compile-time offset.
template <int Words>
__device__ inline void window_at(const std::uint32_t* words, int position, std::uint32_t (&window)[Words]) {
    const std::uint32_t* base = words + (position >> 5);
    const unsigned shift = static_cast<unsigned>(position & 31);
    std::uint32_t raw[Words + 1];
#pragma unroll
    for (int i = 0; i <= Words; ++i) raw[i] = base[i];
#pragma unroll
    for (int i = 0; i < Words; ++i) window[i] = __funnelshift_r(raw[i], raw[i + 1], shift);
}

/// The Width-bit field at bit `bit` of a window (a compile-time offset once the callers' loops unroll),
/// moved up to bit Shift: one shift, or one funnel shift where it straddles two words; the caller's
/// mask and or fold into one three-input logic op.
template <int Width, int Shift, int Words>
__device__ inline std::uint32_t field_moved(const std::uint32_t (&window)[Words], int bit) {
    const int word = bit / 32, offset = bit % 32;
    if (offset + Width > 32) return __funnelshift_r(window[word], window[word + 1], offset - Shift);  // offset > Shift here
    if (offset >= Shift) return window[word] >> (offset - Shift);
    return window[word] << (Shift - offset);
}

/// `Count` consecutive fields of `Width` bits starting at bit `position`, as byte offsets into a
/// CopiedTable (fragments.cuh): field m comes out as (field << Shift) | low, `low` having no bits where
/// the field lands. Two instructions per field (a shift and one three-input logic op): the entry size
/// and the lane's copy come free.
template <int Count, int Width, int Shift>
__device__ inline void offsets_at(const std::uint32_t* words, int position, std::uint32_t low, std::uint32_t (&out)[Count]) {
    static_assert(Shift <= 32 - Width && Width <= 20, "fields must keep their bits after the shift");
    std::uint32_t window[(Count * Width + 31) / 32];
    window_at(words, position, window);
    constexpr std::uint32_t mask = ((1u << Width) - 1u) << Shift;
#pragma unroll
    for (int m = 0; m < Count; ++m) out[m] = (field_moved<Width, Shift>(window, m * Width) & mask) | low;
}

/// Bits of word `word` of a stream whose `Width`-bit groups alternate even, odd, even, ... from bit 0:
/// ones on the even groups.
__host__ __device__ constexpr std::uint32_t even_groups(int word, int width) {
    std::uint32_t mask = 0;
    for (int j = 0; j < 32; ++j)
        if ((32 * word + j) / width % 2 == 0) mask |= 1u << j;
    return mask;
}
static_assert(even_groups(0, 2) == 0x33333333u && even_groups(0, 4) == 0x0f0f0f0fu, "groups of 2 and 4 bits");
static_assert(even_groups(0, 3) == 0xc71c71c7u && even_groups(1, 3) == 0x71c71c71u, "3-bit groups across words");

/// Field m of two streams of `Width`-bit fields side by side, a_m | b_m << Width, for m < Count, as
/// byte offsets ((a_m | b_m << Width) << Shift) | low into a table of pairs. Stream a starts at bit
/// `position_a`, b at `position_b` (≥ Width). Rather than extracting 2·Count fields, b is read Width
/// bits early (its field m then sits on a's field m + 1) and the two windows are merged word by word
/// into one stream of the even pairs and one of the odd pairs (one logic op each, the group masks
/// being constants): each pair is then one field of 2·Width bits, two instructions.
template <int Count, int Width, int Shift>
__device__ inline void pair_offsets_at(const std::uint32_t* words, int position_a, int position_b, std::uint32_t low,
                                       std::uint32_t (&out)[Count]) {
    static_assert(Shift <= 32 - 2 * Width && Width <= 10, "pairs must keep their bits after the shift");
    constexpr int kWords = ((Count + 1) * Width + 31) / 32;
    std::uint32_t a[kWords], b[kWords], even[kWords], odd[kWords];
    window_at(words, position_a, a);
    window_at(words, position_b - Width, b);  // the Width bits before b's first field land in group 0, never read
#pragma unroll
    for (int i = 0; i < kWords; ++i) {
        const std::uint32_t mask = even_groups(i, Width);
        even[i] = (a[i] & mask) | (b[i] & ~mask);  // pair m even: a_m on group m, b_m on group m + 1
        odd[i] = (a[i] & ~mask) | (b[i] & mask);   // pair m odd: the same on the other groups
    }
    constexpr std::uint32_t pair_mask = ((1u << (2 * Width)) - 1u) << Shift;
#pragma unroll
    for (int m = 0; m < Count; ++m)
        out[m] = ((m % 2 == 0 ? field_moved<2 * Width, Shift>(even, m * Width) : field_moved<2 * Width, Shift>(odd, m * Width)) &
                  pair_mask) |
                 low;
}

/// The norm stored at bit `position` of the stream (fp32 or fp16 bits).
__device__ inline float norm_at(const std::uint32_t* words, int position, bool fp16) {
    const std::uint32_t bits = field_at(words, position, 32);
    return fp16 ? __half2float(__ushort_as_half(static_cast<unsigned short>(bits & 0xffffu))) : __uint_as_float(bits);
}

}  // namespace octopus::cuda::detail
