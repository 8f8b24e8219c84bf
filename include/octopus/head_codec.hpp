// HeadCodec: what one KV head of one layer stores its cache with — a key codec, a value codec and the
// head's preconditioner — with encode, decode, scores and decode attention in the model's own domain.
//
// Keys are stored as codes of (k − μ)/s and values as codes of v − μ_v (precondition.hpp). decode_keys
// and decode_values give back s∘k̂' + μ and v̂' + μ_v; dot gives q·k̂ exactly (it adds q·μ to the scores
// of the transformed query q∘s); attend leaves q·μ out, since softmax ignores a constant per query, and
// adds μ_v to the output once, since a query's weights sum to one.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "octopus/attention.hpp"
#include "octopus/codec.hpp"
#include "octopus/precondition.hpp"

namespace octopus {

class HeadCodec {
public:
    /// Throws octopus::error if the codecs' dims differ from each other or from the preconditioner's,
    /// or if the preconditioner fails HeadPreconditioner::check.
    HeadCodec(Codec key_codec, Codec value_codec, HeadPreconditioner preconditioner)
        : keys_(std::move(key_codec)), values_(std::move(value_codec)), preconditioner_(std::move(preconditioner)) {
        preconditioner_.check();
        detail::require(keys_.dim() == values_.dim() && keys_.dim() == preconditioner_.dim(),
                        "HeadCodec: key codec dim " + std::to_string(keys_.dim()) + ", value codec dim " +
                            std::to_string(values_.dim()) + " and preconditioner dim " +
                            std::to_string(preconditioner_.dim()) + " must agree");
    }
    /// Both codecs with the identity preconditioner.
    HeadCodec(Codec key_codec, Codec value_codec)
        : HeadCodec(key_codec, std::move(value_codec), HeadPreconditioner::identity(key_codec.dim())) {}

    std::size_t dim() const { return keys_.dim(); }
    const Codec& key_codec() const { return keys_; }
    const Codec& value_codec() const { return values_; }
    const HeadPreconditioner& preconditioner() const { return preconditioner_; }

    /// Encodes the row-major n×dim `keys` (float, half or bfloat16) as codes of (k − μ)/s into `packed`
    /// (exactly n·key_codec().bytes_per_vector() bytes). Throws octopus::error for a size mismatch or a
    /// NaN/Inf anywhere, before writing a byte. One token (n = 1) allocates nothing; larger batches
    /// allocate one n×dim scratch per call.
    template <class T>
    void encode_keys(std::span<const T> keys, std::span<std::uint8_t> packed) const {
        encode(keys_, keys, packed, "encode_keys", [this](const float* x, float* out) { preconditioner_.transform_key(x, out); });
    }
    /// Encodes values as codes of v − μ_v; otherwise as encode_keys.
    template <class T>
    void encode_values(std::span<const T> values, std::span<std::uint8_t> packed) const {
        encode(values_, values, packed, "encode_values",
               [this](const float* x, float* out) { preconditioner_.transform_value(x, out); });
    }

    /// Decodes keys into the row-major n×dim `keys`, restored to the model's domain (s∘k̂' + μ). Throws
    /// as Codec::decode does.
    void decode_keys(std::span<const std::uint8_t> packed, std::span<float> keys) const {
        keys_.decode(packed, keys);
        const std::size_t d = dim();
        for (std::size_t i = 0; i + d <= keys.size(); i += d) preconditioner_.restore_key(keys.data() + i, keys.data() + i);
    }
    /// Decodes values, restored (v̂' + μ_v).
    void decode_values(std::span<const std::uint8_t> packed, std::span<float> values) const {
        values_.decode(packed, values);
        const std::size_t d = dim();
        for (std::size_t i = 0; i + d <= values.size(); i += d)
            preconditioner_.restore_value(values.data() + i, values.data() + i);
    }

    /// scores[i] = q · k̂_i, exactly the dot of the query with the restored decoded key: computed from the
    /// codes with the transformed query q∘s, plus q·μ. Throws as Codec::dot does.
    void dot(std::span<const float> query, std::span<const std::uint8_t> packed_keys, std::span<float> scores) const {
        check_query(query, "dot");
        std::array<float, kMaxDim> transformed;
        preconditioner_.transform_query(query.data(), transformed.data());
        keys_.dot(std::span<const float>(transformed.data(), dim()), packed_keys, scores);
        const float offset = preconditioner_.query_offset(query.data());
        for (float& s : scores) s += offset;
    }

    /// Decode attention of G queries (the row-major G×dim `queries`, e.g. the query heads of one GQA
    /// group) over n packed keys and values: out[g] = Σ_t softmax_t(scale · q_g·k̂_t) v̂_t, G×dim floats;
    /// zero rows when n = 0. Scores come from the codes (dot, without q·μ, which softmax ignores); each
    /// value is decoded once for all G queries and μ_v added to each output once. Codecs that decode
    /// into their rotated domain (TurboQuant, OCTOPUS) with G ≤ kMaxQueryGroup run the fused
    /// decode_attention of attention.hpp, which allocates nothing beyond the G transformed queries; the
    /// others a reference path that allocates n·(dim + 1) floats of scratch per call. Throws octopus::error for mismatched sizes,
    /// damaged bytes, NaN/Inf queries or a non-finite scale, before writing.
    void attend(std::span<const float> queries, std::span<const std::uint8_t> packed_keys,
                std::span<const std::uint8_t> packed_values, float scale, std::span<float> out) const {
        const std::size_t d = dim();
        detail::require(queries.size() % d == 0 && !queries.empty(),
                        "attend: " + std::to_string(queries.size()) + " query floats are not a positive whole number of rows of dim " +
                            std::to_string(d));
        detail::require(out.size() == queries.size(), "attend: output has " + std::to_string(out.size()) + " floats, " +
                                                          std::to_string(queries.size() / d) + " queries need " +
                                                          std::to_string(queries.size()));
        detail::require(std::isfinite(scale), "attend: scale is not finite");
        const std::size_t n = packed_keys.size() / keys_.bytes_per_vector();
        detail::require(packed_keys.size() % keys_.bytes_per_vector() == 0 &&
                            packed_values.size() == n * values_.bytes_per_vector(),
                        "attend: " + std::to_string(packed_keys.size()) + " key bytes and " +
                            std::to_string(packed_values.size()) + " value bytes are not the same whole number of " +
                            std::to_string(keys_.bytes_per_vector()) + "- and " +
                            std::to_string(values_.bytes_per_vector()) + "-byte records");
        const std::size_t rows = queries.size() / d;
        std::vector<float> transformed(queries.size());
        for (std::size_t g = 0; g < rows; ++g) {
            check_query(queries.subspan(g * d, d), "attend");
            preconditioner_.transform_query(queries.data() + g * d, transformed.data() + g * d);
        }
        if (keys_.decodes_rotated() && values_.decodes_rotated() && rows <= kMaxQueryGroup) {
            // The fused path (attention.hpp): it checks the records and writes `out` only on success.
            decode_attention(keys_, values_, std::span<const float>(transformed), packed_keys, packed_values, scale, out);
            if (n > 0)
                for (std::size_t g = 0; g < rows; ++g)
                    for (std::size_t c = 0; c < d; ++c) out[g * d + c] += preconditioner_.value_offset[c];
            return;
        }
        std::vector<float> values(n * d), scores(n);
        values_.decode(packed_values, values);  // validates every value record before anything is written
        if (n > 0) keys_.dot(std::span<const float>(transformed.data(), d), packed_keys, scores);  // validates the keys
        for (std::size_t g = 0; g < rows; ++g) {
            float* o = out.data() + g * d;
            std::fill(o, o + d, 0.0f);
            if (n == 0) continue;
            if (g > 0) keys_.dot(std::span<const float>(transformed.data() + g * d, d), packed_keys, scores);
            const float top = *std::max_element(scores.begin(), scores.end());
            double total = 0.0;
            std::array<double, kMaxDim> sum{};
            for (std::size_t t = 0; t < n; ++t) {
                const double weight = std::exp(static_cast<double>(scale) * (static_cast<double>(scores[t]) - top));
                total += weight;
                for (std::size_t c = 0; c < d; ++c) sum[c] += weight * values[t * d + c];
            }
            for (std::size_t c = 0; c < d; ++c) o[c] = static_cast<float>(sum[c] / total) + preconditioner_.value_offset[c];
        }
    }

private:
    template <class T, class Transform>
    void encode(const Codec& codec, std::span<const T> x, std::span<std::uint8_t> packed, const char* call,
                Transform transform) const {
        static_assert(detail::is_key_element<T>, "keys and values must be float, octopus::half or octopus::bfloat16");
        const std::size_t d = dim();
        detail::require(x.size() % d == 0, std::string(call) + ": " + std::to_string(x.size()) +
                                               " elements are not a whole number of rows of dim " + std::to_string(d));
        const std::size_t n = x.size() / d;
        detail::require(packed.size() == n * codec.bytes_per_vector(),
                        std::string(call) + ": packed buffer has " + std::to_string(packed.size()) + " bytes, " +
                            std::to_string(n) + " vectors need " + std::to_string(n * codec.bytes_per_vector()));
        detail::check_finite(x, d);
        const auto transform_rows = [&](float* rows) {
            std::array<float, kMaxDim> row;
            for (std::size_t v = 0; v < n; ++v) {
                for (std::size_t c = 0; c < d; ++c) row[c] = static_cast<float>(x[v * d + c]);
                transform(row.data(), rows + v * d);
            }
        };
        // The codec checks the transformed rows (finite, norms that fit) before it writes a byte.
        if (n == 1) {
            std::array<float, kMaxDim> row;
            transform_rows(row.data());
            codec.encode(std::span<const float>(row.data(), d), packed);
            return;
        }
        std::vector<float> rows(n * d);
        transform_rows(rows.data());
        codec.encode(std::span<const float>(rows), packed);
    }

    void check_query(std::span<const float> query, const char* call) const {
        detail::require(query.size() == dim(), std::string(call) + ": query has " + std::to_string(query.size()) +
                                                   " floats, the head dim is " + std::to_string(dim()));
        for (std::size_t c = 0; c < dim(); ++c)
            if (!std::isfinite(query[c]))
                throw error(std::string(call) + ": query has a non-finite value at coordinate " + std::to_string(c));
    }

    Codec keys_, values_;
    HeadPreconditioner preconditioner_;
};

}  // namespace octopus
