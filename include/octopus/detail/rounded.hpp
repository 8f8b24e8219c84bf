// A value the compiler must round on its own: a barrier against floating-point contraction.
//
// With FMA hardware and GCC's default -ffp-contract=fast (any non-ISO -std), `x*x + y*y` may become
// fma(x, x, y*y): one rounding fewer, so the bits of a result, and through a threshold compare a
// code, would depend on build flags. Encoders pass each product through rounded() so that every CPU
// build and the CUDA encoder (__fmul_rn, which nvcc never fuses) produce the same bytes.
#pragma once

namespace octopus::detail {

template <class T>
inline T rounded(T value) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    asm("" : "+x"(value));  // the value must exist in a register: the product is rounded
#elif defined(__GNUC__) && defined(__aarch64__)
    asm("" : "+w"(value));
#else
    volatile T kept = value;
    value = kept;
#endif
    return value;
}

}  // namespace octopus::detail
