// The interface every codec shares: spec, batched encode / decode / dot with one set of error rules,
// and `Codec`, a type-erased value that holds any of them.
//
// A concrete codec (TurboQuant, Octopus, ...) supplies only per-vector kernels; the batched calls,
// the argument checks and the element-type conversions live here once, in CodecInterface. Code that
// knows its codec at compile time calls the concrete type; code that picks a codec by name (the
// sweep, an engine's config) holds a Codec. Both expose the same member functions.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "octopus/codec_spec.hpp"
#include "octopus/contract.hpp"
#include "octopus/error.hpp"

namespace octopus {

namespace detail {

/// Throws naming the first non-finite element of row-major rows of `dim`. For float the scan is
/// an exponent-bits test that compilers vectorize; the message is built only on failure.
template <class T>
void check_finite(std::span<const T> values, std::size_t dim) {
    bool bad = false;
    if constexpr (std::is_same_v<T, float>) {
        // The largest exponent field seen: all ones only for Inf and NaN (a max reduction vectorizes).
        std::uint32_t exponent = 0;
        for (float x : values) {
            std::uint32_t bits;
            std::memcpy(&bits, &x, 4);
            exponent = std::max(exponent, bits & 0x7f800000u);
        }
        bad = exponent == 0x7f800000u;
    } else {
        for (T x : values) bad |= !std::isfinite(static_cast<float>(x));
    }
    if (!bad) return;
    for (std::size_t i = 0; i < values.size(); ++i)
        if (!std::isfinite(static_cast<float>(values[i])))
            throw error("encode: key " + std::to_string(i / dim) + " has a non-finite value at coordinate " +
                        std::to_string(i % dim));
}

template <class T>
inline constexpr bool is_key_element = std::is_same_v<T, float> || std::is_same_v<T, half> || std::is_same_v<T, bfloat16>;

}  // namespace detail

/// Largest prepared query a codec may ask for (QJL's sketch of 4·d rows is the largest).
inline constexpr std::size_t kMaxPreparedQuery = 5 * kMaxDim;

/// Batched encode / decode / dot over per-vector kernels that `Derived` supplies:
///   dim(), bytes_per_vector(),
///   encode_vector(const float* x, uint8_t* out)        x finite, of length dim()
///   decode_vector(const uint8_t* in, float* out)        in already validated
///   prepare_query(const float* q, float* prepared)      once per dot call (rotate, sketch, ...)
///   score_vector(const float* prepared, const uint8_t* in) -> float
///   vector_is_valid(const uint8_t* in) -> bool          detects damaged bytes
/// Every call checks its arguments completely before it writes anything.
template <class Derived>
class CodecInterface {
public:
    /// Bits of storage per coordinate, every stored norm and padding bit included.
    double bits_per_coordinate() const {
        return 8.0 * static_cast<double>(self().bytes_per_vector()) / static_cast<double>(self().dim());
    }

    /// Number of whole vectors in a packed buffer; throws if its size is not a multiple.
    std::size_t vectors_in(std::span<const std::uint8_t> packed) const {
        const std::size_t bytes = self().bytes_per_vector();
        detail::require(packed.size() % bytes == 0, "packed buffer of " + std::to_string(packed.size()) +
                                                        " bytes is not a whole number of " + std::to_string(bytes) +
                                                        "-byte vectors");
        return packed.size() / bytes;
    }

    /// Encodes the row-major n×dim block `keys` (n = keys.size() / dim; n = 1 for an online append)
    /// into `packed`, which must hold exactly n·bytes_per_vector() bytes. Throws octopus::error for a
    /// size mismatch or a NaN/Inf anywhere in keys, before writing a byte.
    template <class T>
    void encode(std::span<const T> keys, std::span<std::uint8_t> packed) const {
        static_assert(detail::is_key_element<T>, "keys must be float, octopus::half or octopus::bfloat16");
        const std::size_t d = self().dim(), bytes = self().bytes_per_vector();
        detail::require(keys.size() % d == 0, "encode: " + std::to_string(keys.size()) +
                                                  " key elements are not a whole number of rows of dim " +
                                                  std::to_string(d));
        const std::size_t n = keys.size() / d;
        // Sizes are compared by division, so no product of a caller's sizes can wrap.
        detail::require(packed.size() % bytes == 0 && packed.size() / bytes == n,
                        "encode: packed buffer has " + std::to_string(packed.size()) + " bytes, " + std::to_string(n) +
                            " vectors need " + std::to_string(n) + " x " + std::to_string(bytes));
        detail::check_finite(keys, d);
        if constexpr (std::is_same_v<T, float>) {
            for (std::size_t v = 0; v < n; ++v) self().encode_vector(keys.data() + v * d, packed.data() + v * bytes);
        } else {
            std::array<float, kMaxDim> row;
            for (std::size_t v = 0; v < n; ++v) {
                const T* in = keys.data() + v * d;
                for (std::size_t j = 0; j < d; ++j) row[j] = static_cast<float>(in[j]);
                self().encode_vector(row.data(), packed.data() + v * bytes);
            }
        }
    }

    /// Allocating convenience form of encode.
    template <class T>
    std::vector<std::uint8_t> encode(std::span<const T> keys) const {
        std::vector<std::uint8_t> packed(keys.size() / self().dim() * self().bytes_per_vector());
        encode(keys, std::span<std::uint8_t>(packed));
        return packed;
    }
    std::vector<std::uint8_t> encode(const std::vector<float>& keys) const { return encode(std::span<const float>(keys)); }

    /// Decodes packed vectors into the row-major n×dim `keys`. Throws octopus::error for a size
    /// mismatch or damaged bytes (a non-finite or negative norm, nonzero padding), before writing.
    void decode(std::span<const std::uint8_t> packed, std::span<float> keys) const {
        const std::size_t n = vectors_in(packed);
        detail::require(keys.size() % self().dim() == 0 && keys.size() / self().dim() == n,
                        "decode: output has " + std::to_string(keys.size()) + " floats, " + std::to_string(n) +
                            " vectors need " + std::to_string(n) + " x " + std::to_string(self().dim()));
        check_records(packed, "decode");
        for (std::size_t v = 0; v < n; ++v)
            self().decode_vector(packed.data() + v * self().bytes_per_vector(), keys.data() + v * self().dim());
    }

    std::vector<float> decode(std::span<const std::uint8_t> packed) const {
        std::vector<float> keys(vectors_in(packed) * self().dim());
        decode(packed, std::span<float>(keys));
        return keys;
    }

    /// scores[i] = query · (decoded key i), computed from the codes without decoding: the query is
    /// prepared once (rotated into the domain where the codebooks live, or sketched) and met there.
    void dot(std::span<const float> query, std::span<const std::uint8_t> packed, std::span<float> scores) const {
        const std::size_t d = self().dim();
        detail::require(query.size() == d, "dot: query has " + std::to_string(query.size()) +
                                               " floats, the codec's dim is " + std::to_string(d));
        for (std::size_t j = 0; j < d; ++j)
            if (!std::isfinite(query[j])) throw error("dot: query has a non-finite value at coordinate " + std::to_string(j));
        const std::size_t n = vectors_in(packed);
        detail::require(scores.size() == n, "dot: scores has " + std::to_string(scores.size()) + " floats, " +
                                                std::to_string(n) + " vectors need as many");
        check_records(packed, "dot");
        std::array<float, kMaxPreparedQuery> prepared;
        self().prepare_query(query.data(), prepared.data());
        const std::size_t bytes = self().bytes_per_vector();
        for (std::size_t v = 0; v < n; ++v) scores[v] = self().score_vector(prepared.data(), packed.data() + v * bytes);
    }

    std::vector<float> dot(std::span<const float> query, std::span<const std::uint8_t> packed) const {
        std::vector<float> scores(vectors_in(packed));
        dot(query, packed, std::span<float>(scores));
        return scores;
    }

private:
    const Derived& self() const { return static_cast<const Derived&>(*this); }

    /// Throws naming the first damaged record; the sizes are checked before (they cost nothing).
    void check_records(std::span<const std::uint8_t> packed, const char* call) const {
        const std::size_t bytes = self().bytes_per_vector(), n = packed.size() / bytes;
        for (std::size_t v = 0; v < n; ++v)
            if (!self().vector_is_valid(packed.data() + v * bytes))
                throw error(std::string(call) + ": packed vector " + std::to_string(v) +
                            " is damaged (non-finite or negative norm, or nonzero padding bits)");
    }
};

namespace detail {

/// Whether codec type C decodes a record into its rotated domain (decode_rotated: what fused
/// attention reads) and so holds a rotation to undo once per output.
template <class C>
concept RotatedDecoder = requires(const C& c, const std::uint8_t* in, float* out) {
    { c.decode_rotated(in, out) } -> std::same_as<float>;
    c.rotation().apply_inverse(out);
};

/// The virtual face of a codec inside Codec: one call per batch, so dispatch costs nothing per key
/// (the rotated-decode calls, per record, serve fused attention through a Codec; attention.hpp).
struct CodecModel {
    virtual ~CodecModel() = default;
    virtual const char* name() const = 0;
    virtual std::size_t dim() const = 0;
    virtual std::size_t bytes_per_vector() const = 0;
    virtual double bits_per_coordinate() const = 0;
    virtual void encode(std::span<const float>, std::span<std::uint8_t>) const = 0;
    virtual void encode(std::span<const half>, std::span<std::uint8_t>) const = 0;
    virtual void encode(std::span<const bfloat16>, std::span<std::uint8_t>) const = 0;
    virtual void decode(std::span<const std::uint8_t>, std::span<float>) const = 0;
    virtual void dot(std::span<const float>, std::span<const std::uint8_t>, std::span<float>) const = 0;
    virtual bool decodes_rotated() const = 0;
    virtual bool vector_is_valid(const std::uint8_t*) const = 0;
    virtual float decode_rotated(const std::uint8_t*, float*) const = 0;  // only where decodes_rotated()
    virtual void prepare_query(const float*, float*) const = 0;
    virtual void inverse_rotate(float*) const = 0;                        // only where decodes_rotated()
};

template <class C>
struct CodecModelOf final : CodecModel {
    C codec;
    explicit CodecModelOf(C c) : codec(std::move(c)) {}
    const char* name() const override { return C::name(); }
    std::size_t dim() const override { return codec.dim(); }
    std::size_t bytes_per_vector() const override { return codec.bytes_per_vector(); }
    double bits_per_coordinate() const override { return codec.bits_per_coordinate(); }
    void encode(std::span<const float> k, std::span<std::uint8_t> p) const override { codec.encode(k, p); }
    void encode(std::span<const half> k, std::span<std::uint8_t> p) const override { codec.encode(k, p); }
    void encode(std::span<const bfloat16> k, std::span<std::uint8_t> p) const override { codec.encode(k, p); }
    void decode(std::span<const std::uint8_t> p, std::span<float> k) const override { codec.decode(p, k); }
    void dot(std::span<const float> q, std::span<const std::uint8_t> p, std::span<float> s) const override {
        codec.dot(q, p, s);
    }
    bool decodes_rotated() const override { return RotatedDecoder<C>; }
    bool vector_is_valid(const std::uint8_t* in) const override { return codec.vector_is_valid(in); }
    float decode_rotated(const std::uint8_t* in, float* out) const override {
        if constexpr (RotatedDecoder<C>) return codec.decode_rotated(in, out);
        else return 0.0f;
    }
    void prepare_query(const float* q, float* prepared) const override { codec.prepare_query(q, prepared); }
    void inverse_rotate(float* x) const override {
        if constexpr (RotatedDecoder<C>) codec.rotation().apply_inverse(x);
    }
};

}  // namespace detail

/// Any codec, chosen at run time (see make_codec). Copies share one immutable codec, so a Codec is
/// cheap to pass around and safe to use from many threads at once.
class Codec {
public:
    template <class C, class = std::enable_if_t<!std::is_same_v<std::decay_t<C>, Codec>>>
    Codec(C codec) : model_(std::make_shared<const detail::CodecModelOf<C>>(std::move(codec))) {}

    const char* name() const { return model_->name(); }
    std::size_t dim() const { return model_->dim(); }
    std::size_t bytes_per_vector() const { return model_->bytes_per_vector(); }
    double bits_per_coordinate() const { return model_->bits_per_coordinate(); }

    template <class T>
    void encode(std::span<const T> keys, std::span<std::uint8_t> packed) const { model_->encode(keys, packed); }
    template <class T>
    std::vector<std::uint8_t> encode(std::span<const T> keys) const {
        std::vector<std::uint8_t> packed(keys.size() / dim() * bytes_per_vector());
        model_->encode(keys, std::span<std::uint8_t>(packed));
        return packed;
    }
    void decode(std::span<const std::uint8_t> packed, std::span<float> keys) const { model_->decode(packed, keys); }
    std::vector<float> decode(std::span<const std::uint8_t> packed) const {
        std::vector<float> keys(packed.size() / bytes_per_vector() * dim());
        model_->decode(packed, std::span<float>(keys));
        return keys;
    }
    void dot(std::span<const float> query, std::span<const std::uint8_t> packed, std::span<float> scores) const {
        model_->dot(query, packed, scores);
    }
    std::vector<float> dot(std::span<const float> query, std::span<const std::uint8_t> packed) const {
        std::vector<float> scores(packed.size() / bytes_per_vector());
        model_->dot(query, packed, std::span<float>(scores));
        return scores;
    }

    /// Whether this codec decodes records into its rotated domain, so that decode_attention takes it
    /// (TurboQuant, OCTOPUS and its paper variant).
    bool decodes_rotated() const { return model_->decodes_rotated(); }

    /// Per-record kernels behind decode_attention on a Codec (one virtual call each): a record's
    /// validity, its unit vector in the rotated domain (returns the norm; only where decodes_rotated()),
    /// a query prepared for the codes, and the inverse rotation of an output. No checks.
    bool vector_is_valid(const std::uint8_t* in) const { return model_->vector_is_valid(in); }
    float decode_rotated(const std::uint8_t* in, float* out) const { return model_->decode_rotated(in, out); }
    void prepare_query(const float* q, float* prepared) const { model_->prepare_query(q, prepared); }
    void inverse_rotate(float* x) const { model_->inverse_rotate(x); }

private:
    std::shared_ptr<const detail::CodecModel> model_;
};

}  // namespace octopus
