// The facts the CPU codecs and the CUDA kernels must agree on, in one place both include: limits,
// rotation rounds, which head dims exist, the bit rules of each code, record sizes, the paged cache's
// page layout, and the small functions whose every rounding decides a code: the triplet norm and the
// norm's partial sums here, the octahedral fold (octahedral_encode, octahedral.hpp) and the padded search
// (detail/padded_search.hpp). The CPU's encoders and the GPU's encode kernel call these same
// functions, so the two cannot drift; the CUDA tests check that they still agree byte for byte.
//
// The functions marked OCTOPUS_HOST_DEVICE compile for the host and, under nvcc, for the device too;
// the checks that throw are host code.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <utility>

#include "octopus/detail/host_device.hpp"
#include "octopus/detail/padded_search.hpp"
#include "octopus/detail/rounded.hpp"
#include "octopus/error.hpp"
#include "octopus/octahedral.hpp"

namespace octopus {

// ---- Head dims and the rotation -------------------------------------------------------------------

/// Largest head dim the library accepts; fixed scratch buffers of this size live on the stack.
inline constexpr std::size_t kMaxDim = 1024;
/// Sign-and-Hadamard rounds of the rotation (rotation.hpp says why three).
inline constexpr int kRotationRounds = 3;
/// The head dims the CUDA kernels are built for (a warp holds d/32 coordinates per lane).
inline constexpr std::size_t kGpuHeadDims[] = {64, 128, 256};

namespace detail {
/// (m, p) with d = m·p, p a power of two ≥ 4 and m ∈ {1, 12, 20, 28}; {0, 0} when d has no such form.
struct HadamardFactors {
    std::size_t rows, row_length;
};
constexpr HadamardFactors hadamard_factors(std::size_t d) {
    for (std::size_t m : {std::size_t{1}, std::size_t{12}, std::size_t{20}, std::size_t{28}}) {
        if (d % m != 0) continue;
        const std::size_t p = d / m;
        if (p >= 4 && (p & (p - 1)) == 0) return {m, p};
    }
    return {0, 0};
}
}  // namespace detail

/// Whether the library supports head dim `dim`: 32 ≤ d ≤ 1024 and d = m·2^k with m ∈ {1, 12, 20, 28},
/// which covers 64, 80, 96, 112, 128, 160, 192 and 256.
constexpr bool is_supported_dim(std::size_t dim) {
    return dim >= 32 && dim <= kMaxDim && detail::hadamard_factors(dim).rows != 0;
}

/// Throws octopus::error unless `dim` is supported, saying why.
inline void check_dim(std::size_t dim) {
    detail::require(is_supported_dim(dim),
                    "head dim " + std::to_string(dim) +
                        " is not supported: octopus needs 32 <= d <= 1024 with d = m*2^k, m in {1, 12, 20, 28} "
                        "(so that an exact Hadamard matrix of order d exists), e.g. 64, 80, 96, 112, 128, 160, 192, 256");
}

/// Whether the CUDA kernels have a build for head dim `dim`.
constexpr bool is_gpu_head_dim(std::size_t dim) {
    for (std::size_t d : kGpuHeadDims)
        if (d == dim) return true;
    return false;
}

/// Calls f.template operator()<D>() for each D of kGpuHeadDims in order: how the CUDA launchers
/// instantiate their kernels, so adding a dim there is one edit here.
template <class F>
constexpr void for_each_gpu_head_dim(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (f.template operator()<static_cast<int>(kGpuHeadDims[I])>(), ...);
    }(std::make_index_sequence<std::size(kGpuHeadDims)>{});
}

/// "64, 128, 256": the GPU's head dims for messages.
inline std::string gpu_head_dims_text() {
    std::string text;
    for (std::size_t d : kGpuHeadDims) text += (text.empty() ? "" : ", ") + std::to_string(d);
    return text;
}

// ---- Bit rules -------------------------------------------------------------------------------------
// Two kinds of code: a scalar code of one rotated coordinate (TurboQuant, PolarQuant, QJL: b bits),
// and a triplet code of three coordinates (OCTOPUS: B = 3b bits, b in thirds). Names keep them apart:
// `bits` is b, bits per coordinate; `triplet_bits` is B.

/// Scalar-code codecs take b ∈ {1, …, kMaxScalarBits}.
inline constexpr unsigned kMaxScalarBits = 4;
/// OCTOPUS takes B ∈ [kMinTripletBits, kMaxTripletBits] bits per triplet (b = 1 to 4 in thirds).
inline constexpr unsigned kMinTripletBits = 3;
inline constexpr unsigned kMaxTripletBits = 12;
/// OCTOPUS codebooks of up to this many bits per triplet are 2^B free points; above it they are folded:
/// 2^(B−3) points of the positive octant, and a code's three low bits are the signs of x, y, z (set for
/// negative), so that a decoder reads at most 512 entries.
inline constexpr unsigned kMaxUnfoldedTripletBits = 9;
OCTOPUS_HOST_DEVICE constexpr bool is_folded(unsigned triplet_bits) { return triplet_bits > kMaxUnfoldedTripletBits; }

/// Bits of each of OCTOPUS's d mod 3 leftover coordinates, coded with the scalar codebook.
OCTOPUS_HOST_DEVICE constexpr unsigned leftover_bits(unsigned triplet_bits) {
    return triplet_bits / 3 > 1 ? triplet_bits / 3 : 1;
}

namespace detail {

/// Calls f.template operator()<B>() for B = bits, one of Lo..Hi (a run-time width to the kernel
/// compiled for it); does nothing for a width outside the range.
template <unsigned Lo, unsigned Hi, class F>
void with_bits(unsigned bits, F&& f) {
    [&]<unsigned... I>(std::integer_sequence<unsigned, I...>) {
        (void)((bits == Lo + I ? (f.template operator()<Lo + I>(), true) : false) || ...);
    }(std::make_integer_sequence<unsigned, Hi - Lo + 1>{});
}

/// A bit rate as a message shows it: "3", "2.67", "1e+300", "nan" (never 300 digits).
inline std::string bits_text(double bits) {
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", bits);
    return text;
}

/// b as a whole number in 1..max_bits, or an error naming the codec.
inline unsigned whole_bits(double bits, const char* codec, unsigned max_bits = kMaxScalarBits) {
    const bool whole = bits >= 1.0 && bits <= static_cast<double>(max_bits) && bits == std::floor(bits);
    if (!whole) {
        std::string allowed;
        for (unsigned b = 1; b <= max_bits; ++b) allowed += (b > 1 ? ", " : "") + std::to_string(b);
        throw error(std::string(codec) + ": bits " + bits_text(bits) + " is not one of " + allowed);
    }
    return static_cast<unsigned>(bits);
}

/// Bits per coordinate as a whole number of bits per triplet: b = B/3 exactly (to 0.02 bits per
/// triplet, so 2.33 and 2.67 name 7 and 8), B in [kMinTripletBits, kMaxTripletBits], or an error.
inline unsigned triplet_bits(double bits, const char* codec) {
    const double triple = 3.0 * bits;
    const double rounded_triple = std::round(triple);
    require(std::isfinite(bits) && std::fabs(triple - rounded_triple) < 0.02,
            std::string(codec) + ": bits " + bits_text(bits) +
                " is not a whole number of bits per triplet (use k/3, e.g. 2.33 or 2.67)");
    require(rounded_triple >= kMinTripletBits && rounded_triple <= kMaxTripletBits,
            std::string(codec) + ": bits " + bits_text(bits) + " (" +
                (std::fabs(rounded_triple) < 1e6 ? std::to_string(static_cast<long long>(rounded_triple)) : std::string("far too many")) +
                " bits per triplet) is outside 3..12 bits per triplet (b = 1 to 4 in thirds)");
    return static_cast<unsigned>(rounded_triple);
}

}  // namespace detail

// ---- Records ---------------------------------------------------------------------------------------
// A record (one coded vector) is its codes packed LSB-first and back to back, zero padding to a byte,
// then the norm: fp32 or fp16 (IEEE binary16, which refuses norms above kMaxHalfNorm, never clamps).

/// Largest norm an fp16 norm holds.
inline constexpr float kMaxHalfNorm = 65504.0f;

OCTOPUS_HOST_DEVICE constexpr std::size_t norm_bytes(bool fp16_norm) { return fp16_norm ? 2 : 4; }

/// Bytes of the codes (padding included) of a scalar-code record: d codes of b bits.
OCTOPUS_HOST_DEVICE constexpr std::size_t scalar_code_bytes(std::size_t dim, unsigned bits) { return (dim * bits + 7) / 8; }

/// Bits of the codes of an OCTOPUS record: ⌊d/3⌋ triplet codes of B bits, then d mod 3 leftovers.
OCTOPUS_HOST_DEVICE constexpr std::size_t triplet_code_bits(std::size_t dim, unsigned triplet_bits) {
    return dim / 3 * triplet_bits + dim % 3 * leftover_bits(triplet_bits);
}
OCTOPUS_HOST_DEVICE constexpr std::size_t triplet_code_bytes(std::size_t dim, unsigned triplet_bits) {
    return (triplet_code_bits(dim, triplet_bits) + 7) / 8;
}

/// Whether `norm` fits the norm format: fp16 holds finite norms up to kMaxHalfNorm.
OCTOPUS_HOST_DEVICE constexpr bool norm_fits(float norm, bool fp16_norm) { return !fp16_norm || norm <= kMaxHalfNorm; }

// ---- Pages -----------------------------------------------------------------------------------------
// The paged cache (pages.hpp on the CPU, paged_cache.cuh on the GPU) holds a layer's keys (or values)
// in a pool of pages of P tokens. Page p holds every KV head: head h's part, a "head page", starts at
// (p·kv_heads + h)·head_page_bytes. A head page is P / 16 groups of 16 token slots, each group the
// records of its slots split in two: first the 16 codes back to back, then the 16 norms. Slot s lies in
// group s / 16, which starts at (s / 16)·16·record_bytes; its codes are at (s mod 16)·code_bytes in
// the group, its norm at 16·code_bytes + (s mod 16)·norm_bytes. A group is what the GPU's attention
// reads as one tile: one 16-byte aligned run it copies whole, whatever P is (so a page of 64 tokens
// costs no more address arithmetic than one of 16). Norms apart from codes keep the codes of a tile
// back to back for the decode; both are exactly the record's bytes, so a record comes back byte for
// byte.

/// The page sizes the paged cache takes (tokens per page).
inline constexpr int kPageTokenChoices[] = {16, 32, 64};

/// Token slots of a group of a head page: the GPU's tile.
inline constexpr int kPageGroupTokens = 16;

/// Whether `tokens` is one of kPageTokenChoices.
OCTOPUS_HOST_DEVICE constexpr bool is_page_tokens(int tokens) { return tokens == 16 || tokens == 32 || tokens == 64; }

/// Where a head page keeps its slots' codes and norms, and how long it is.
struct PageLayout {
    int tokens = 16;      ///< P, one of kPageTokenChoices
    int code_bytes = 0;   ///< bytes of one record's codes (padding included)
    int norm_bytes = 4;   ///< 4 (fp32 norms) or 2 (fp16)

    /// Bytes of one group of 16 slots: their codes, then their norms (a multiple of 16).
    OCTOPUS_HOST_DEVICE constexpr long long group_bytes() const {
        return static_cast<long long>(kPageGroupTokens) * (code_bytes + norm_bytes);
    }
    /// Offset of slot s's codes in its head page.
    OCTOPUS_HOST_DEVICE constexpr long long code_offset(int slot) const {
        return slot / kPageGroupTokens * group_bytes() + static_cast<long long>(slot % kPageGroupTokens) * code_bytes;
    }
    /// Offset of slot s's norm in its head page.
    OCTOPUS_HOST_DEVICE constexpr long long norm_offset(int slot) const {
        return slot / kPageGroupTokens * group_bytes() + static_cast<long long>(kPageGroupTokens) * code_bytes +
               static_cast<long long>(slot % kPageGroupTokens) * norm_bytes;
    }
    /// Bytes of one head page (a multiple of 16: P is a multiple of 16).
    OCTOPUS_HOST_DEVICE constexpr long long head_page_bytes() const {
        return static_cast<long long>(tokens) * (code_bytes + norm_bytes);
    }
    /// Offset of head page (page, head) in a pool of pages of `kv_heads` heads.
    OCTOPUS_HOST_DEVICE constexpr long long head_page_offset(long long page, int head, int kv_heads) const {
        return (page * kv_heads + head) * head_page_bytes();
    }
};

// ---- The arithmetic that decides a code ------------------------------------------------------------

namespace detail {

/// a·b rounded on its own: never fused into a neighbouring add, whatever the build flags.
OCTOPUS_HOST_DEVICE inline float product(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return rounded(a * b);
#endif
}

/// |t| of a triplet as every encoder computes it: (x·x + y·y) + z·z, each product rounded on its own,
/// then a correctly rounded square root.
OCTOPUS_HOST_DEVICE inline float triplet_norm(float x, float y, float z) {
#if defined(__CUDA_ARCH__)
    return __fsqrt_rn(__fadd_rn(__fadd_rn(product(x, x), product(y, y)), product(z, z)));
#else
    return std::sqrt((product(x, x) + product(y, y)) + product(z, z));
#endif
}

/// Partial sums of x_i² in double, eight of them (partial k over i ≡ k mod 8, in order), combined in
/// this fixed tree: how every encoder computes a vector's norm, so all builds get the same bits. (The
/// GPU's encode, with partial k in lane k, forms the same sums by a butterfly over lanes 0–7: each
/// sum is one IEEE addition, whichever operand comes first; test_cuda_encode compares the norms' bits.)
OCTOPUS_HOST_DEVICE inline double combine_norm_partials(const double (&partial)[8]) {
    return ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7]));
}

}  // namespace detail

}  // namespace octopus
