// The measurements behind octopus-sweep: one row per codec × dim × bits, every codec on the same data.
#pragma once

#include <octopus/octopus.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <string>
#include <vector>

#include "npy.hpp"

namespace octopus::sweep {

/// One KV head: keys and values (tokens × dim; key t at position t), the queries that attend to them
/// (rows of every query head of its group) and the queries a preconditioner fit may read instead.
///   positions       each query's position: it sees keys t ≤ position (causal); empty: all keys
///   fit_queries     queries kept out of the evaluation, for the fit (same layout, fit_positions likewise)
struct Head {
    std::size_t layer = 0, kv_head = 0;
    std::vector<float> keys, values, queries, fit_queries;
    std::vector<std::size_t> positions, fit_positions;
};

/// What a sweep runs on: heads of one head dim, from `layers` layers.
struct Dataset {
    std::string name;
    std::size_t dim = 0;
    std::vector<Head> heads;
    std::size_t layers = 1;
};

/// One line of the sweep; every figure is averaged over the heads of the dataset (layer = −1) or of one
/// layer.
///   mse           mean over keys of |k − k̂|² / |k|² (the per-vector MSE of unit keys)
///   ip_rel_err    RMS(q·k̂ − q·k) / RMS(q·k) over all query–key pairs, q·k̂ scored from the codes
///   ip_bias       mean(q·k̂ − q·k) / RMS(q·k)
///   attn_kl       mean over queries of KL(softmax(qKᵀ/√d) ‖ softmax(qK̂ᵀ/√d))
///   top8_recall   share of the 8 highest-weight keys that stay among the 8 highest (top32 alike)
///   out_rel_err   |ô − o| / |o| over queries (RMS), o = softmax · V, ô with K and V both compressed
///   bits_per_coord  the codec's stored bits, plus the preconditioners' fp32 vectors amortized over each
///                 head's tokens (keys and values together)
///   chose_*       share of heads whose fitted preconditioner is none, center or scale
struct Row {
    std::string codec, data;
    std::size_t dim = 0;
    double bits = 0.0, bits_per_coord = 0.0;
    double mse = 0.0, ip_rel_err = 0.0, ip_bias = 0.0, attn_kl = 0.0, top8_recall = 0.0, top32_recall = 0.0,
           out_rel_err = 0.0;
    std::string precondition = "none";
    int layer = -1;
    double chose_none = 1.0, chose_center = 0.0, chose_scale = 0.0;

    /// The name of the row's line in a plot: the codec, and its preconditioning when there is one.
    std::string series() const { return precondition == "none" ? codec : codec + "+" + precondition; }
};

inline const char* kCsvHeader =
    "codec,dim,bits,bits_per_coord,mse,ip_rel_err,ip_bias,attn_kl,top8_recall,top32_recall,out_rel_err,data,"
    "precondition,layer,chose_none,chose_center,chose_scale";

/// Synthetic heads: `kind` is uniform (the sphere), outliers (4 channels 50× the rest) or lowrank
/// (rank 8 plus 10% noise). Keys, values and queries are independent draws of the same generator,
/// scaled to norm √d (unit-variance coordinates, as after a layer norm), so attention logits q·k/√d
/// have the spread real heads show rather than the near-zero one of unit vectors. As many queries
/// again are drawn for a preconditioner fit.
inline Dataset synthetic_dataset(const std::string& kind, std::size_t dim, std::size_t tokens, std::size_t queries,
                                 std::uint64_t seed) {
    // One subspace (lowrank) or one set of outlier channels for keys, values and queries alike.
    const auto generate = [&](std::size_t n, std::uint64_t stream) {
        const std::uint64_t s = octopus::detail::derive_seed(seed, 1000 * dim + stream);
        std::vector<float> x;
        if (kind == "uniform") x = uniform_unit_vectors(n, dim, s);
        else if (kind == "outliers") x = outlier_channel_vectors(n, dim, s, 4, 50.0);
        else if (kind == "lowrank") x = low_rank_vectors(n, dim, octopus::detail::derive_seed(seed, dim), 8, 0.1, stream);
        else throw error("unknown synthetic data '" + kind + "' (uniform, outliers, lowrank)");
        const auto scale = static_cast<float>(std::sqrt(static_cast<double>(dim)));
        for (float& v : x) v *= scale;
        return x;
    };
    Dataset data{kind, dim, {}, 1};
    Head head;
    head.keys = generate(tokens, 0);
    head.values = generate(tokens, 1);
    head.queries = generate(queries, 2);
    head.fit_queries = generate(queries, 3);
    data.heads.push_back(std::move(head));
    return data;
}

/// How npy_dataset reads a dump.
///   max_queries  queries used per query head, evenly spaced over its rows; the rest are kept for a fit
///   causal       the queries are the keys' own last positions: query row i of Tq has position
///                T − Tq + i and sees keys 0..that position
///   layers       indices into the dump's layer axis to keep (empty: all)
struct DumpOptions {
    std::size_t max_queries = 16;
    bool causal = false;
    std::vector<std::size_t> layers;
};

/// Heads from KV dumps: `keys` of shape [tokens, d] or [layers, kv_heads, tokens, d], each KV head
/// evaluated on its own. `queries` (may be empty) of shape [tokens_q, d] or [layers, q_heads, tokens_q, d]
/// with q_heads a multiple G of kv_heads (grouped-query attention: query head i reads KV head i / G);
/// without it the last 10% of each head's tokens serve as queries against the first 90%. `values` (same
/// shape as keys, may be empty) default to the keys themselves.
inline Dataset npy_dataset(const std::string& keys_path, const std::string& queries_path,
                           const std::string& values_path, const DumpOptions& options) {
    const NpyArray keys = read_npy(keys_path);
    const auto check_rank = [](const NpyArray& a, const std::string& path) {
        octopus::detail::require(a.shape.size() == 2 || a.shape.size() == 4,
                                 path + ": expected shape [tokens, d] or [layers, heads, tokens, d], got rank " +
                                     std::to_string(a.shape.size()));
    };
    check_rank(keys, keys_path);
    const bool layered = keys.shape.size() == 4;
    const std::size_t layers = layered ? keys.shape[0] : 1, kv_heads = layered ? keys.shape[1] : 1;
    const std::size_t tokens = keys.shape[keys.shape.size() - 2], dim = keys.shape.back();
    check_dim(dim);
    for (std::size_t l : options.layers)
        octopus::detail::require(l < layers, keys_path + ": layer " + std::to_string(l) + " is not in the dump's " +
                                                 std::to_string(layers) + " layers");
    NpyArray queries, values;
    std::size_t query_tokens = 0, group = 1;
    if (!queries_path.empty()) {
        queries = read_npy(queries_path);
        check_rank(queries, queries_path);
        octopus::detail::require(queries.shape.size() == keys.shape.size(),
                                 queries_path + ": rank " + std::to_string(queries.shape.size()) + " does not match the keys' " +
                                     std::to_string(keys.shape.size()));
        octopus::detail::require(queries.shape.back() == dim, queries_path + ": head dim " + std::to_string(queries.shape.back()) +
                                                                  " does not match the keys' " + std::to_string(dim));
        const std::size_t q_heads = layered ? queries.shape[1] : 1;
        octopus::detail::require(!layered || queries.shape[0] == layers,
                                 queries_path + ": " + std::to_string(queries.shape[0]) + " layers do not match the keys' " +
                                     std::to_string(layers));
        octopus::detail::require(q_heads % kv_heads == 0 && q_heads >= kv_heads,
                                 queries_path + ": " + std::to_string(q_heads) + " query heads are not a multiple of the keys' " +
                                     std::to_string(kv_heads) + " KV heads (grouped-query attention needs q_heads = G·kv_heads)");
        group = q_heads / kv_heads;
        query_tokens = queries.shape[queries.shape.size() - 2];
        octopus::detail::require(query_tokens >= 1, queries_path + ": no query tokens");
        octopus::detail::require(!options.causal || query_tokens <= tokens,
                                 queries_path + ": --causal places the " + std::to_string(query_tokens) +
                                     " queries at the keys' last positions, but there are only " + std::to_string(tokens) + " keys");
    } else {
        octopus::detail::require(!options.causal, "causal attention needs the model's queries (--queries)");
    }
    if (!values_path.empty()) {
        values = read_npy(values_path);
        octopus::detail::require(values.shape == keys.shape, values_path + ": shape does not match the keys'");
    }
    octopus::detail::require(queries_path.empty() ? tokens >= 20 : tokens >= 1,
                    keys_path + ": " + std::to_string(tokens) + " tokens per head are too few to split into keys and queries");
    Dataset data{keys_path, dim, {}, layers};
    const std::size_t take_per_head = std::max<std::size_t>(options.max_queries, 1);
    for (std::size_t layer = 0; layer < layers; ++layer) {
        if (!options.layers.empty() && std::find(options.layers.begin(), options.layers.end(), layer) == options.layers.end())
            continue;
        for (std::size_t h = 0; h < kv_heads; ++h) {
            const std::size_t index = layer * kv_heads + h;
            const float* k = keys.data.data() + index * tokens * dim;
            const float* v = values.data.empty() ? k : values.data.data() + index * tokens * dim;
            const std::size_t key_count = queries_path.empty() ? tokens - tokens / 10 : tokens;
            Head head;
            head.layer = layer;
            head.kv_head = h;
            head.keys.assign(k, k + key_count * dim);
            head.values.assign(v, v + key_count * dim);
            // Query heads h·G .. h·G + G − 1 (or the held-out tokens); each takes up to max_queries rows,
            // evenly spaced, and leaves the others to the fit.
            const std::size_t available = queries_path.empty() ? tokens - key_count : query_tokens;
            const std::size_t take = std::min(available, take_per_head);
            for (std::size_t g = 0; g < group; ++g) {
                const float* q = queries_path.empty() ? k + key_count * dim
                                                      : queries.data.data() + ((layer * kv_heads + h) * group + g) * query_tokens * dim;
                std::vector<bool> used(available, false);
                for (std::size_t i = 0; i < take; ++i) used[i * available / take] = true;
                for (std::size_t t = 0; t < available; ++t) {
                    auto& rows = used[t] ? head.queries : head.fit_queries;
                    rows.insert(rows.end(), q + t * dim, q + (t + 1) * dim);
                    if (options.causal) (used[t] ? head.positions : head.fit_positions).push_back(tokens - query_tokens + t);
                }
            }
            data.heads.push_back(std::move(head));
        }
    }
    octopus::detail::require(!data.heads.empty(), keys_path + ": no heads selected");
    return data;
}

/// npy_dataset with at most `max_queries` queries per query head and the other options' defaults.
inline Dataset npy_dataset(const std::string& keys_path, const std::string& queries_path, const std::string& values_path,
                           std::size_t max_queries) {
    return npy_dataset(keys_path, queries_path, values_path, DumpOptions{max_queries, false, {}});
}

namespace detail {

inline std::vector<double> softmax(const std::vector<double>& logits) {
    const double top = *std::max_element(logits.begin(), logits.end());
    std::vector<double> p(logits.size());
    double sum = 0.0;
    for (std::size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp(logits[i] - top);
    for (double& x : p) x /= sum;
    return p;
}

/// |top-k(a) ∩ top-k(b)| / k.
inline double top_k_recall(const std::vector<double>& a, const std::vector<double>& b, std::size_t k) {
    k = std::min(k, a.size());
    std::vector<std::size_t> ia(a.size()), ib(b.size());
    std::iota(ia.begin(), ia.end(), 0);
    std::iota(ib.begin(), ib.end(), 0);
    const auto by = [](const std::vector<double>& w) { return [&w](std::size_t x, std::size_t y) { return w[x] > w[y]; }; };
    std::partial_sort(ia.begin(), ia.begin() + k, ia.end(), by(a));
    std::partial_sort(ib.begin(), ib.begin() + k, ib.end(), by(b));
    std::sort(ia.begin(), ia.begin() + k);
    std::sort(ib.begin(), ib.begin() + k);
    std::vector<std::size_t> common;
    std::set_intersection(ia.begin(), ia.begin() + k, ib.begin(), ib.begin() + k, std::back_inserter(common));
    return static_cast<double>(common.size()) / static_cast<double>(k);
}

}  // namespace detail

/// How measure preconditions each head: `mode` fitted on the first `fit_tokens` keys and values of the
/// head and on its fit queries (those of them that see a fit key).
struct MeasureOptions {
    Preconditioning mode = Preconditioning::none;
    std::size_t fit_tokens = 512;
};

/// The metrics of one head (Row's, before averaging) and its fitted preconditioner.
struct HeadResult {
    double mse = 0.0, ip_rel_err = 0.0, ip_bias = 0.0, attn_kl = 0.0, top8 = 0.0, top32 = 0.0, out_rel_err = 0.0;
    double extra_bits = 0.0;
    Preconditioning chosen = Preconditioning::none;
};

/// Measures `codec` (keys and values alike) on one head, preconditioned as `options` says.
inline HeadResult measure_head(const Codec& codec, const Head& head, std::size_t d, const MeasureOptions& options) {
    const std::size_t n = head.keys.size() / d, n_queries = head.queries.size() / d;
    const std::size_t fit = std::min(n, options.fit_tokens);
    PreconditionerFitData fit_data{d, std::span<const float>(head.keys.data(), fit * d),
                                   std::span<const float>(head.values.data(), fit * d), head.fit_queries, head.fit_positions, 0.0f};
    const HeadPreconditioner preconditioner = fit_preconditioner(options.mode, fit_data, codec, codec);
    const HeadCodec coder(codec, codec, preconditioner);
    HeadResult result;
    result.chosen = preconditioner.keys;
    if (preconditioner.keys != Preconditioning::none || preconditioner.center_values)
        result.extra_bits = static_cast<double>(preconditioner.stored_bits()) / (2.0 * static_cast<double>(n * d));

    std::vector<std::uint8_t> packed_keys(n * codec.bytes_per_vector()), packed_values(n * codec.bytes_per_vector());
    coder.encode_keys(std::span<const float>(head.keys), std::span<std::uint8_t>(packed_keys));
    coder.encode_values(std::span<const float>(head.values), std::span<std::uint8_t>(packed_values));
    std::vector<float> decoded_keys(n * d), decoded_values(n * d);
    coder.decode_keys(packed_keys, decoded_keys);
    coder.decode_values(packed_values, decoded_values);
    const double inverse_sqrt_d = 1.0 / std::sqrt(static_cast<double>(d));
    double mse = 0.0;
    std::size_t counted = 0;
    for (std::size_t v = 0; v < n; ++v) {
        double error = 0.0, norm = 0.0;
        for (std::size_t j = 0; j < d; ++j) {
            const double k = head.keys[v * d + j], e = k - decoded_keys[v * d + j];
            error += e * e;
            norm += k * k;
        }
        if (norm > 0.0) mse += error / norm, ++counted;
    }
    double ip_error = 0.0, ip_sum = 0.0, ip_signal = 0.0, kl = 0.0, top8 = 0.0, top32 = 0.0, out_error = 0.0, out_signal = 0.0;
    std::size_t pairs = 0;
    std::vector<float> scores(n);
    std::vector<double> exact, approximate;
    for (std::size_t q = 0; q < n_queries; ++q) {
        const std::span<const float> query(head.queries.data() + q * d, d);
        const std::size_t visible = head.positions.empty() ? n : std::min(n, head.positions[q] + 1);
        coder.dot(query, std::span<const std::uint8_t>(packed_keys.data(), visible * codec.bytes_per_vector()),
                  std::span<float>(scores.data(), visible));
        exact.resize(visible), approximate.resize(visible);
        for (std::size_t v = 0; v < visible; ++v) {
            double s = 0.0;
            for (std::size_t j = 0; j < d; ++j) s += static_cast<double>(query[j]) * head.keys[v * d + j];
            const double e = scores[v] - s;
            ip_error += e * e;
            ip_sum += e;
            ip_signal += s * s;
            exact[v] = s * inverse_sqrt_d;
            approximate[v] = scores[v] * inverse_sqrt_d;
        }
        pairs += visible;
        const auto p = detail::softmax(exact), p_hat = detail::softmax(approximate);
        for (std::size_t v = 0; v < visible; ++v)
            if (p[v] > 0.0) kl += p[v] * (std::log(p[v]) - std::log(std::max(p_hat[v], 1e-300)));
        top8 += detail::top_k_recall(p, p_hat, 8);
        top32 += detail::top_k_recall(p, p_hat, 32);
        for (std::size_t j = 0; j < d; ++j) {
            double o = 0.0, o_hat = 0.0;
            for (std::size_t v = 0; v < visible; ++v) {
                o += p[v] * head.values[v * d + j];
                o_hat += p_hat[v] * decoded_values[v * d + j];
            }
            out_error += (o_hat - o) * (o_hat - o);
            out_signal += o * o;
        }
    }
    const double rms_signal = std::sqrt(ip_signal / static_cast<double>(pairs));
    result.mse = counted ? mse / counted : 0.0;
    result.ip_rel_err = std::sqrt(ip_error / ip_signal);
    result.ip_bias = ip_sum / static_cast<double>(pairs) / rms_signal;
    result.attn_kl = kl / n_queries;
    result.top8 = top8 / n_queries;
    result.top32 = top32 / n_queries;
    result.out_rel_err = out_signal > 0.0 ? std::sqrt(out_error / out_signal) : 0.0;
    return result;
}

/// Measures `codec` on every head of `data` (in parallel over heads where OpenMP is on: each head's
/// result lands in its own slot, so the averages are the same whatever the thread count). Returns the
/// average over all heads first and then, with `per_layer`, one row per layer in order.
inline std::vector<Row> measure_rows(const Codec& codec, double bits, const Dataset& data, const MeasureOptions& options,
                                     bool per_layer) {
    const std::size_t d = data.dim;
    std::vector<HeadResult> results(data.heads.size());
    std::string failure;
#pragma omp parallel for schedule(dynamic, 1)
    for (std::size_t h = 0; h < data.heads.size(); ++h) {
        try {
            results[h] = measure_head(codec, data.heads[h], d, options);
        } catch (const octopus::error& e) {
#pragma omp critical
            failure = e.what();
        }
    }
    if (!failure.empty()) throw error(failure);
    const auto average = [&](int layer) {
        Row row{codec.name(), data.name, d, bits, codec.bits_per_coordinate()};
        row.precondition = to_string(options.mode);
        row.layer = layer;
        row.chose_none = 0.0;
        double heads = 0.0, extra_bits = 0.0;
        for (std::size_t h = 0; h < data.heads.size(); ++h) {
            if (layer >= 0 && data.heads[h].layer != static_cast<std::size_t>(layer)) continue;
            const HeadResult& r = results[h];
            row.mse += r.mse, row.ip_rel_err += r.ip_rel_err, row.ip_bias += r.ip_bias, row.attn_kl += r.attn_kl;
            row.top8_recall += r.top8, row.top32_recall += r.top32, row.out_rel_err += r.out_rel_err;
            extra_bits += r.extra_bits;
            (r.chosen == Preconditioning::none ? row.chose_none : r.chosen == Preconditioning::center ? row.chose_center : row.chose_scale) += 1.0;
            heads += 1.0;
        }
        for (double* x : {&row.mse, &row.ip_rel_err, &row.ip_bias, &row.attn_kl, &row.top8_recall, &row.top32_recall,
                          &row.out_rel_err, &row.chose_none, &row.chose_center, &row.chose_scale, &extra_bits})
            *x /= heads;
        row.bits_per_coord += extra_bits;
        return row;
    };
    std::vector<Row> rows = {average(-1)};
    if (per_layer) {
        std::vector<std::size_t> layers;
        for (const Head& head : data.heads)
            if (std::find(layers.begin(), layers.end(), head.layer) == layers.end()) layers.push_back(head.layer);
        std::sort(layers.begin(), layers.end());
        for (std::size_t layer : layers) rows.push_back(average(static_cast<int>(layer)));
    }
    return rows;
}

/// The average over all heads of `data`, without preconditioning.
inline Row measure(const Codec& codec, double bits, const Dataset& data) {
    return measure_rows(codec, bits, data, MeasureOptions{}, false).front();
}

}  // namespace octopus::sweep
