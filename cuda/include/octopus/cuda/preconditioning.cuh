// Per-head preconditioning (octopus/precondition.hpp) on the device: the offsets and channel scales
// of every (sequence, KV head), applied where the CPU's HeadCodec applies them.
//
// Encode (encode_kv) codes (k − μ)/s and v − μ_v, the bytes HeadCodec::encode_keys / encode_values
// write. The fused kernels multiply each query by its KV head's s before rotating it (so q·k is
// scored as (q∘s)·((k − μ)/s)); scores add q·μ back, exactly what HeadCodec::dot returns, while
// attention leaves it out (softmax ignores a constant per query) and adds μ_v to each output row
// once (the weights of a row sum to one).
#pragma once

namespace octopus::cuda {

/// The preconditioners of a batch on the device: each pointer, when not null, is a
/// [batch][kv_heads][dim] fp32 array (HeadPreconditioner::key_offset, key_scale, value_offset per
/// sequence and KV head). Null pointers stand for the identity: no offset, scales of one.
struct Preconditioning {
    const float* key_offset = nullptr;    ///< μ: subtracted from keys at encode; q·μ added to fused scores
    const float* key_scale = nullptr;     ///< s: keys divided by it at encode; queries multiplied by it
    const float* value_offset = nullptr;  ///< μ_v: subtracted from values at encode; added to attention outputs
};

namespace detail {

/// The `dim` floats of (sequence, KV head) number `head` (= b·kv_heads + h) of a [batch][kv_heads][dim]
/// array, or null.
__host__ __device__ inline const float* head_row(const float* array, long long head, int dim) {
    return array != nullptr ? array + head * dim : nullptr;
}

}  // namespace detail
}  // namespace octopus::cuda
