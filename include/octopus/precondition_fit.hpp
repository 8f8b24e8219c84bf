// Fitting a head's preconditioner on the prompt: the mean key and value, the balancing scales, and
// `auto`, which keeps whichever option measures best on the prompt's own data.
//
// Why a choice per head: on keys with a large common offset (Qwen2's k bias) centring and scaling cut
// attention error several-fold, but on nearly centred keys (SmolLM2) they can hurt: the tokens attention
// leans on most (the attention sink, token 0) often have small keys and values, and centring turns them
// into large vectors whose coding error every query then reads. So `auto` measures what the next layer
// gets: it codes the prompt's keys and values with each option through the real codecs and keeps the
// pair whose attention output, for the prompt's own queries, is closest to the exact one — keys that the
// cache keeps exact (a window of recent tokens) left uncoded, as the cache will. Without values it
// compares the attention weights (KL), without queries the squared errors of keys and of values. `none`
// is always a candidate, so on the fit data auto is never worse than none.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "octopus/codec.hpp"
#include "octopus/head_codec.hpp"
#include "octopus/precondition.hpp"

namespace octopus {

/// Fewer prompt keys than this and every fit returns the identity: a mean or a scale estimated from
/// a handful of tokens is noise.
inline constexpr std::size_t kMinFitTokens = 32;
/// `auto` scores at most this many prompt queries (evenly spaced over the rows given) per candidate.
inline constexpr std::size_t kMaxCriterionQueries = 128;

/// What a fit reads for one KV head: the prompt's keys (positions 0..n−1), its values and, when the
/// caller has them, its queries (rows of any of the group's query heads).
struct PreconditionerFitData {
    std::size_t dim = 0;
    std::span<const float> keys;                   ///< n×dim, row-major; n ≥ 1
    std::span<const float> values;                 ///< n×dim, or empty (values then keep μ_v = 0)
    std::span<const float> queries;                ///< m×dim, or empty (then no `scale`; auto compares key errors)
    std::span<const std::size_t> query_positions;  ///< m positions (query i sees keys t ≤ position i), or empty: all keys
    float attention_scale = 0.0f;                  ///< the model's softmax scale; 0 means 1/√dim
    std::size_t window = 0;                        ///< the cache keeps keys t > position − window exact (auto codes the rest)
};

namespace detail {

inline void check_fit_data(const PreconditionerFitData& data) {
    const std::size_t d = data.dim;
    require(d >= 1 && d <= kMaxDim, "preconditioner fit: head dim " + std::to_string(d) + " is outside 1.." + std::to_string(kMaxDim));
    require(!data.keys.empty() && data.keys.size() % d == 0,
            "preconditioner fit: " + std::to_string(data.keys.size()) +
                " key floats are not a positive whole number of rows of dim " + std::to_string(d));
    const std::size_t n = data.keys.size() / d;
    require(data.values.empty() || data.values.size() == n * d,
            "preconditioner fit: values have " + std::to_string(data.values.size()) + " floats, " + std::to_string(n) +
                " keys need " + std::to_string(n * d) + " (or none)");
    require(data.queries.size() % d == 0, "preconditioner fit: " + std::to_string(data.queries.size()) +
                                              " query floats are not a whole number of rows of dim " + std::to_string(d));
    require(data.query_positions.empty() || data.query_positions.size() == data.queries.size() / d,
            "preconditioner fit: " + std::to_string(data.query_positions.size()) + " query positions for " +
                std::to_string(data.queries.size() / d) + " queries");
    require(data.attention_scale == 0.0f || (std::isfinite(data.attention_scale) && data.attention_scale > 0.0f),
            "preconditioner fit: attention scale must be finite and positive (or 0 for 1/sqrt(dim))");
    const auto check = [&](std::span<const float> x, const char* what) {
        for (std::size_t i = 0; i < x.size(); ++i)
            if (!std::isfinite(x[i]))
                throw error(std::string("preconditioner fit: ") + what + " row " + std::to_string(i / d) +
                            " has a non-finite value at coordinate " + std::to_string(i % d));
    };
    check(data.keys, "key");
    check(data.values, "value");
    check(data.queries, "query");
}

/// Per-channel mean of the row-major rows of `x` (dim d), accumulated in double.
inline std::vector<float> channel_mean(std::span<const float> x, std::size_t d) {
    const std::size_t n = x.size() / d;
    std::vector<double> sum(d, 0.0);
    for (std::size_t t = 0; t < n; ++t)
        for (std::size_t c = 0; c < d; ++c) sum[c] += x[t * d + c];
    std::vector<float> mean(d);
    for (std::size_t c = 0; c < d; ++c) mean[c] = static_cast<float>(sum[c] / static_cast<double>(n));
    return mean;
}

/// Per-channel mean of (x − offset)², in double.
inline std::vector<double> channel_energy(std::span<const float> x, std::size_t d, const std::vector<float>& offset) {
    const std::size_t n = x.size() / d;
    std::vector<double> sum(d, 0.0);
    for (std::size_t t = 0; t < n; ++t)
        for (std::size_t c = 0; c < d; ++c) {
            const double e = static_cast<double>(x[t * d + c]) - (offset.empty() ? 0.0 : offset[c]);
            sum[c] += e * e;
        }
    for (double& s : sum) s /= static_cast<double>(std::max<std::size_t>(n, 1));
    return sum;
}

/// s_c = (E (k_c − μ_c)² / E q_c²)^¼, so that after k ↦ (k − μ)/s, q ↦ q∘s both have energy
/// √(E (k−μ)² · E q²) in every channel; normalized to geometric mean 1 (the codecs store norms, so only
/// the ratios matter, and this keeps magnitudes where they were). A channel with no key or no query
/// energy is held by a floor of 1e-6 of the mean energy, so no scale is 0 or ∞; with no energy at all
/// the scales are 1.
inline std::vector<float> balancing_scales(const std::vector<double>& key_energy, const std::vector<double>& query_energy) {
    const std::size_t d = key_energy.size();
    double key_mean = 0.0, query_mean = 0.0;
    for (std::size_t c = 0; c < d; ++c) key_mean += key_energy[c] / d, query_mean += query_energy[c] / d;
    std::vector<float> scale(d, 1.0f);
    if (!(key_mean > 0.0) || !(query_mean > 0.0)) return scale;
    std::vector<double> log_scale(d);
    double log_mean = 0.0;
    for (std::size_t c = 0; c < d; ++c) {
        log_scale[c] = 0.25 * (std::log(key_energy[c] + 1e-6 * key_mean) - std::log(query_energy[c] + 1e-6 * query_mean));
        log_mean += log_scale[c] / d;
    }
    for (std::size_t c = 0; c < d; ++c) scale[c] = static_cast<float>(std::exp(log_scale[c] - log_mean));
    return scale;
}

/// a·b over d floats in eight interleaved float sums (which compilers turn into one vector register).
inline float dot8(const float* a, const float* b, std::size_t d) {
    float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t c = 0;
    for (; c + 8 <= d; c += 8)
        for (std::size_t k = 0; k < 8; ++k) partial[k] += a[c + k] * b[c + k];
    for (; c < d; ++c) partial[c % 8] += a[c] * b[c];
    return ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7]));
}

/// The m×n scores of the row-major m×d `queries` against the n×d `keys`, row-major.
inline std::vector<float> score_matrix(const std::vector<float>& queries, std::span<const float> keys, std::size_t d) {
    const std::size_t m = queries.size() / d, n = keys.size() / d;
    std::vector<float> scores(m * n);
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t t = 0; t < n; ++t) scores[i * n + t] = dot8(queries.data() + i * d, keys.data() + t * d, d);
    return scores;
}

inline double squared_error(std::span<const float> x, const std::vector<float>& y) {
    double sum = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) sum += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    return sum;
}

/// Softmax weights of the rows of m×n `scores` times `scale`, query i over keys t < visible[i]
/// (the rest 0).
inline std::vector<float> attention_weights(const std::vector<float>& scores, const std::vector<std::size_t>& visible, double scale) {
    const std::size_t m = visible.size(), n = m > 0 ? scores.size() / m : 0;
    std::vector<float> weights(m * n, 0.0f);
    std::vector<double> e(n);
    for (std::size_t i = 0; i < m; ++i) {
        double top = -std::numeric_limits<double>::infinity(), sum = 0.0;
        for (std::size_t t = 0; t < visible[i]; ++t) top = std::max(top, scale * scores[i * n + t]);
        for (std::size_t t = 0; t < visible[i]; ++t) sum += e[t] = std::exp(scale * scores[i * n + t] - top);
        for (std::size_t t = 0; t < visible[i]; ++t) weights[i * n + t] = static_cast<float>(e[t] / sum);
    }
    return weights;
}

/// The m×d attention outputs Σ_t w[i, t] v_t, where v_t is row t of `coded` for keys the cache codes
/// for query i (t < coded_below[i]) and of `exact` for the others. Accumulated in float, a vector of d
/// at a time (the differences auto compares are far above its rounding).
inline std::vector<float> attention_outputs(const std::vector<float>& weights, std::span<const float> exact,
                                            std::span<const float> coded, const std::vector<std::size_t>& coded_below, std::size_t d) {
    const std::size_t m = coded_below.size(), n = m > 0 ? weights.size() / m : 0;
    std::vector<float> out(m * d, 0.0f);
    for (std::size_t i = 0; i < m; ++i) {
        float* o = out.data() + i * d;
        for (std::size_t t = 0; t < n; ++t) {
            const float w = weights[i * n + t];
            if (w == 0.0f) continue;
            const float* v = (t < coded_below[i] ? coded : exact).data() + t * d;
            for (std::size_t c = 0; c < d; ++c) o[c] += w * v[c];
        }
    }
    return out;
}

/// Mean over queries of KL(p ‖ p̂) for m×n weight matrices (rows summing to one).
inline double mean_attention_kl(const std::vector<float>& p, const std::vector<float>& p_hat, std::size_t m) {
    double total = 0.0;
    for (std::size_t i = 0; i < p.size(); ++i)
        if (p[i] > 0.0f) total += p[i] * (std::log(static_cast<double>(p[i])) - std::log(std::max(static_cast<double>(p_hat[i]), 1e-300)));
    return m > 0 ? std::max(total, 0.0) / static_cast<double>(m) : 0.0;
}

}  // namespace detail

namespace detail {

/// The fixed options fitted on `data` (checked): the identity, center (μ, and μ_v when there are
/// values) and, when there are queries, scale (center and the balancing scales).
struct FitCandidates {
    HeadPreconditioner identity, center, scale;
    bool has_scale = false;
};

inline FitCandidates fit_candidates(const PreconditionerFitData& data) {
    const std::size_t d = data.dim;
    FitCandidates fits{HeadPreconditioner::identity(d), HeadPreconditioner::identity(d), {}, false};
    fits.center.keys = Preconditioning::center;
    fits.center.key_offset = channel_mean(data.keys, d);
    if (!data.values.empty()) {
        fits.center.center_values = true;
        fits.center.value_offset = channel_mean(data.values, d);
    }
    fits.scale = fits.center;
    if (!data.queries.empty()) {
        fits.has_scale = true;
        fits.scale.keys = Preconditioning::scale;
        fits.scale.key_scale = balancing_scales(channel_energy(data.keys, d, fits.center.key_offset),
                                                channel_energy(data.queries, d, {}));
    }
    return fits;
}

}  // namespace detail

/// The preconditioner of one head in `mode` (none, center or scale), fitted on `data`:
/// - none: the identity;
/// - center: μ = mean key, μ_v = mean value (0 without values);
/// - scale: center, and s = detail::balancing_scales of the centred keys against the queries, which it
///   needs (octopus::error without them).
/// With fewer than kMinFitTokens keys every mode returns the identity. `automatic` measures each option
/// through the codecs: it throws here; use the overload that takes them. Throws octopus::error for
/// inconsistent sizes or NaN/Inf in any input.
inline HeadPreconditioner fit_preconditioner(Preconditioning mode, const PreconditionerFitData& data) {
    detail::require(mode != Preconditioning::automatic,
                    "preconditioner fit: 'auto' measures each option through the codecs; pass the key and value codecs");
    detail::check_fit_data(data);
    const std::size_t n = data.keys.size() / data.dim;
    if (mode == Preconditioning::none || n < kMinFitTokens) return HeadPreconditioner::identity(data.dim);
    detail::require(mode != Preconditioning::scale || !data.queries.empty(),
                    "preconditioner fit: 'scale' balances keys against queries and needs the prompt's queries");
    detail::FitCandidates fits = detail::fit_candidates(data);
    return mode == Preconditioning::center ? fits.center : fits.scale;
}

/// fit_preconditioner for every mode. `automatic` fits each of none, center and (with queries) scale
/// for keys, and none or center for values, codes the prompt through `key_codec` / `value_codec` and
/// keeps the pair whose attention output for the prompt's queries is closest to the exact one (as the
/// header comment says; at most kMaxCriterionQueries queries, evenly spaced, are measured); ties go to
/// the simpler option. Deterministic for a given build. Throws as the other overload
/// does, and for codecs whose dim is not data.dim (automatic mode, the only one that uses them).
inline HeadPreconditioner fit_preconditioner(Preconditioning mode, const PreconditionerFitData& data, const Codec& key_codec,
                                             const Codec& value_codec) {
    if (mode != Preconditioning::automatic) return fit_preconditioner(mode, data);
    detail::check_fit_data(data);
    const std::size_t d = data.dim, n = data.keys.size() / d;
    if (n < kMinFitTokens) return HeadPreconditioner::identity(d);
    detail::require(key_codec.dim() == d && value_codec.dim() == d,
                    "preconditioner fit: codec dims " + std::to_string(key_codec.dim()) + " and " +
                        std::to_string(value_codec.dim()) + " do not match the head dim " + std::to_string(d));
    const detail::FitCandidates fits = detail::fit_candidates(data);
    std::vector<HeadPreconditioner> key_options = {fits.identity, fits.center};
    if (fits.has_scale) key_options.push_back(fits.scale);
    const std::vector<std::vector<float>> value_options =
        data.values.empty() ? std::vector<std::vector<float>>{fits.identity.value_offset}
                            : std::vector<std::vector<float>>{fits.identity.value_offset, fits.center.value_offset};

    // The prompt's keys and values as each option stores them (restored to the model's domain).
    std::vector<std::vector<float>> keys(key_options.size()), values(value_options.size());
    for (std::size_t k = 0; k < key_options.size(); ++k) {
        const HeadCodec head(key_codec, value_codec, key_options[k]);
        std::vector<std::uint8_t> packed(n * key_codec.bytes_per_vector());
        head.encode_keys(data.keys, std::span<std::uint8_t>(packed));
        keys[k].resize(n * d);
        head.decode_keys(packed, keys[k]);
    }
    if (!data.values.empty())
        for (std::size_t v = 0; v < value_options.size(); ++v) {
            HeadPreconditioner p = fits.identity;
            p.value_offset = value_options[v];
            const HeadCodec head(key_codec, value_codec, p);
            std::vector<std::uint8_t> packed(n * value_codec.bytes_per_vector());
            head.encode_values(data.values, std::span<std::uint8_t>(packed));
            values[v].resize(n * d);
            head.decode_values(packed, values[v]);
        }

    // error[k][v]: what each pair of options costs on the prompt (see the header comment).
    std::vector<std::vector<double>> error(key_options.size(), std::vector<double>(value_options.size(), 0.0));
    if (data.queries.empty()) {
        for (std::size_t k = 0; k < key_options.size(); ++k)
            for (std::size_t v = 0; v < value_options.size(); ++v)
                error[k][v] = detail::squared_error(data.keys, keys[k]) +
                              (data.values.empty() ? 0.0 : detail::squared_error(data.values, values[v]));
    } else {
        const std::size_t m = data.queries.size() / d, take = std::min(m, kMaxCriterionQueries);
        std::vector<float> queries(take * d);
        std::vector<std::size_t> visible(take), coded_below(take);
        for (std::size_t i = 0; i < take; ++i) {
            const std::size_t row = i * m / take;
            std::copy(data.queries.begin() + static_cast<std::ptrdiff_t>(row * d),
                      data.queries.begin() + static_cast<std::ptrdiff_t>((row + 1) * d), queries.begin() + static_cast<std::ptrdiff_t>(i * d));
            const std::size_t position = data.query_positions.empty() ? n - 1 : data.query_positions[row];
            visible[i] = std::min(n, position + 1);
            coded_below[i] = position + 1 > data.window ? std::min(n, position + 1 - data.window) : 0;
        }
        const double softmax_scale =
            data.attention_scale > 0.0f ? data.attention_scale : 1.0 / std::sqrt(static_cast<double>(d));
        const std::vector<float> exact_scores = detail::score_matrix(queries, data.keys, d);
        const std::vector<float> p = detail::attention_weights(exact_scores, visible, softmax_scale);
        const std::vector<float> exact_out =
            data.values.empty() ? std::vector<float>{} : detail::attention_outputs(p, data.values, data.values, coded_below, d);
        for (std::size_t k = 0; k < key_options.size(); ++k) {
            std::vector<float> scores = detail::score_matrix(queries, keys[k], d);
            for (std::size_t i = 0; i < take; ++i)  // keys the cache keeps exact score exactly
                for (std::size_t t = coded_below[i]; t < n; ++t) scores[i * n + t] = exact_scores[i * n + t];
            const std::vector<float> p_hat = detail::attention_weights(scores, visible, softmax_scale);
            for (std::size_t v = 0; v < value_options.size(); ++v) {
                if (data.values.empty()) {
                    error[k][v] = detail::mean_attention_kl(p, p_hat, take);
                    continue;
                }
                const std::vector<float> out = detail::attention_outputs(p_hat, data.values, values[v], coded_below, d);
                double sum = 0.0;
                for (std::size_t i = 0; i < out.size(); ++i) {
                    const double e = static_cast<double>(out[i]) - exact_out[i];
                    sum += e * e;
                }
                error[k][v] = sum / static_cast<double>(take);
            }
        }
    }
    // The least error; a later (less simple) option must be strictly better.
    std::size_t best_key = 0, best_value = 0;
    for (std::size_t k = 0; k < key_options.size(); ++k)
        for (std::size_t v = 0; v < value_options.size(); ++v)
            if (error[k][v] < error[best_key][best_value]) best_key = k, best_value = v;
    HeadPreconditioner chosen = key_options[best_key];
    chosen.value_offset = value_options[best_value];
    chosen.center_values = best_value == 1;
    return chosen;
}

}  // namespace octopus
