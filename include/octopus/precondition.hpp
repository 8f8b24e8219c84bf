// Per-head preconditioning of real keys and values: an offset per channel (the head's mean key), optional
// per-channel scales that balance key and query energy, and an offset for values.
//
// Every codec in the library is data-oblivious: it stores a key's norm and quantizes its direction, so
// its error grows with the key's whole norm. Real keys are not centred: models of the Qwen2 family (a
// bias on k) carry per-channel offsets many times the spread of the keys around them, and the error of
// that common offset then dominates every score. Subtracting it before encoding is exact for attention:
//   q·k = (q∘s)·((k − μ)/s) + q·μ,
// and q·μ is the same for every key of a query, which softmax ignores; dividing channels by s and
// multiplying the query by s leaves q·k unchanged and evens out channels whose keys are large where
// queries are small (or the reverse). Values centred by μ_v give the same output once μ_v is added back,
// because the attention weights of a query sum to one: Σ p_t v_t = Σ p_t (v_t − μ_v) + μ_v.
//
// The fit lives in precondition_fit.hpp; HeadCodec (head_codec.hpp) applies a HeadPreconditioner around
// a key and a value codec.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "octopus/error.hpp"

namespace octopus {

/// What a preconditioner does to keys: nothing, subtract the mean key (`center`), or subtract it and
/// divide channels by balancing scales (`scale`, i.e. centre and scale). `automatic` is a request to
/// the fit to pick, per head, whichever of the others measures best on the prompt; a fitted
/// HeadPreconditioner never holds it.
enum class Preconditioning { none, center, scale, automatic };

/// "none", "center", "scale" or "auto".
inline const char* to_string(Preconditioning mode) {
    switch (mode) {
    case Preconditioning::none: return "none";
    case Preconditioning::center: return "center";
    case Preconditioning::scale: return "scale";
    case Preconditioning::automatic: return "auto";
    }
    return "?";
}

/// The mode called `name` ("none", "center", "scale" or "auto"); throws octopus::error otherwise.
inline Preconditioning parse_preconditioning(std::string_view name) {
    for (Preconditioning mode :
         {Preconditioning::none, Preconditioning::center, Preconditioning::scale, Preconditioning::automatic})
        if (name == to_string(mode)) return mode;
    throw error("unknown preconditioning '" + std::string(name) + "'; known: none, center, scale, auto");
}

/// The preconditioner of one KV head of one layer: keys k ↦ (k − μ) / s before encoding, queries
/// q ↦ q ∘ s before scoring, values v ↦ v − μ_v before encoding and + μ_v after decoding. Stored in
/// fp32 beside the cache: 3·dim floats a head (stored_bits). The identity has μ = μ_v = 0, s = 1.
struct HeadPreconditioner {
    Preconditioning keys = Preconditioning::none;  ///< none, center or scale: what was fitted for keys
    bool center_values = false;                    ///< whether value_offset is the values' mean (else 0)
    std::vector<float> key_offset;                 ///< μ, dim floats
    std::vector<float> key_scale;                  ///< s, dim floats, all > 0
    std::vector<float> value_offset;               ///< μ_v, dim floats

    /// The identity for head dim `dim` (≥ 1).
    static HeadPreconditioner identity(std::size_t dim) {
        detail::require(dim >= 1, "preconditioner: head dim must be at least 1");
        HeadPreconditioner p;
        p.key_offset.assign(dim, 0.0f);
        p.key_scale.assign(dim, 1.0f);
        p.value_offset.assign(dim, 0.0f);
        return p;
    }

    std::size_t dim() const { return key_offset.size(); }

    /// Bits it stores: μ, s and μ_v in fp32. Amortized over `tokens` tokens of one head, this adds
    /// stored_bits() / (2 · tokens · dim) bits per coordinate of keys and values together.
    std::size_t stored_bits() const { return 3 * 32 * dim(); }

    /// Throws octopus::error unless the three vectors have one length ≥ 1, offsets are finite and
    /// scales finite and positive (what a fit produces; a hand-made one is checked before use).
    void check() const {
        const std::size_t d = dim();
        detail::require(d >= 1 && key_scale.size() == d && value_offset.size() == d,
                        "preconditioner: key_offset, key_scale and value_offset must have the head dim's length (" +
                            std::to_string(d) + ", " + std::to_string(key_scale.size()) + ", " +
                            std::to_string(value_offset.size()) + ")");
        detail::require(keys != Preconditioning::automatic, "preconditioner: 'auto' is a fit request, not a fitted mode");
        for (std::size_t c = 0; c < d; ++c)
            if (!(std::isfinite(key_offset[c]) && std::isfinite(value_offset[c]) && std::isfinite(key_scale[c]) && key_scale[c] > 0.0f))
                throw error("preconditioner: channel " + std::to_string(c) +
                            " has a non-finite offset or a scale that is not finite and positive");
    }

    /// out = (k − μ) / s for one key of dim() floats (out may be k).
    void transform_key(const float* k, float* out) const {
        for (std::size_t c = 0; c < dim(); ++c) out[c] = (k[c] - key_offset[c]) / key_scale[c];
    }
    /// out = s ∘ k + μ: a key decoded in the transformed domain, back in the model's (out may be k).
    void restore_key(const float* k, float* out) const {
        for (std::size_t c = 0; c < dim(); ++c) out[c] = k[c] * key_scale[c] + key_offset[c];
    }
    /// out = v − μ_v (out may be v).
    void transform_value(const float* v, float* out) const {
        for (std::size_t c = 0; c < dim(); ++c) out[c] = v[c] - value_offset[c];
    }
    /// out = v + μ_v (out may be v).
    void restore_value(const float* v, float* out) const {
        for (std::size_t c = 0; c < dim(); ++c) out[c] = v[c] + value_offset[c];
    }
    /// out = q ∘ s: the query that meets transformed keys (out may be q).
    void transform_query(const float* q, float* out) const {
        for (std::size_t c = 0; c < dim(); ++c) out[c] = q[c] * key_scale[c];
    }
    /// q·μ, the part of every score that transformed keys leave out (the same for all keys of a query).
    float query_offset(const float* q) const {
        double sum = 0.0;
        for (std::size_t c = 0; c < dim(); ++c) sum += static_cast<double>(q[c]) * key_offset[c];
        return static_cast<float>(sum);
    }
};

}  // namespace octopus
