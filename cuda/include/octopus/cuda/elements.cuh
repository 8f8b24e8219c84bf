// The element types of queries and outputs (fp32, fp16, bf16), chosen at run time: the fused kernels
// touch queries once in a block's set-up and outputs once at its end, so one kernel serves every type
// with a uniform branch there, where a template would build every kernel three times.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <type_traits>

namespace octopus::cuda {

/// The element type of a query or output array.
enum class ElementType : int { f32 = 0, f16 = 1, bf16 = 2 };

/// ElementType of T (float, __half or __nv_bfloat16).
template <class T>
constexpr ElementType element_type() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>,
                  "queries and outputs are float, __half or __nv_bfloat16");
    if constexpr (std::is_same_v<T, float>) return ElementType::f32;
    else if constexpr (std::is_same_v<T, __half>) return ElementType::f16;
    else return ElementType::bf16;
}

namespace detail {

/// A read-only device array of one of the element types.
struct Elements {
    const void* data = nullptr;
    ElementType type = ElementType::f32;

    /// Element i as a float.
    __device__ float operator[](long long i) const {
        switch (type) {
        case ElementType::f16: return __half2float(static_cast<const __half*>(data)[i]);
        case ElementType::bf16: return __bfloat162float(static_cast<const __nv_bfloat16*>(data)[i]);
        default: return static_cast<const float*>(data)[i];
        }
    }
    /// The array from element `first` on.
    __host__ __device__ Elements from(long long first) const {
        const int size = type == ElementType::f32 ? 4 : 2;
        return {static_cast<const char*>(data) + first * size, type};
    }
};

/// A writable device array of one of the element types.
struct OutputElements {
    void* data = nullptr;
    ElementType type = ElementType::f32;

    /// Stores x, rounded to nearest, as element i.
    __device__ void store(long long i, float x) const {
        switch (type) {
        case ElementType::f16: static_cast<__half*>(data)[i] = __float2half_rn(x); break;
        case ElementType::bf16: static_cast<__nv_bfloat16*>(data)[i] = __float2bfloat16_rn(x); break;
        default: static_cast<float*>(data)[i] = x; break;
        }
    }
};

}  // namespace detail
}  // namespace octopus::cuda
