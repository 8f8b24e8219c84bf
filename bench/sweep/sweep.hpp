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

/// One attention head: keys and values (tokens × dim) and the queries that attend to them.
struct Head {
    std::vector<float> keys, values, queries;
};

/// What a sweep runs on: heads of one head dim.
struct Dataset {
    std::string name;
    std::size_t dim = 0;
    std::vector<Head> heads;
};

/// One line of the sweep; every figure is averaged over the dataset's heads.
///   mse           mean over keys of |k − k̂|² / |k|² (the per-vector MSE of unit keys)
///   ip_rel_err    RMS(q·k̂ − q·k) / RMS(q·k) over all query–key pairs, q·k̂ scored from the codes
///   ip_bias       mean(q·k̂ − q·k) / RMS(q·k)
///   attn_kl       mean over queries of KL(softmax(qKᵀ/√d) ‖ softmax(qK̂ᵀ/√d))
///   top8_recall   share of the 8 highest-weight keys that stay among the 8 highest (top32 alike)
///   out_rel_err   |ô − o| / |o| over queries (RMS), o = softmax · V, ô with K and V both compressed
struct Row {
    std::string codec, data;
    std::size_t dim = 0;
    double bits = 0.0, bits_per_coord = 0.0;
    double mse = 0.0, ip_rel_err = 0.0, ip_bias = 0.0, attn_kl = 0.0, top8_recall = 0.0, top32_recall = 0.0,
           out_rel_err = 0.0;
};

inline const char* kCsvHeader =
    "codec,dim,bits,bits_per_coord,mse,ip_rel_err,ip_bias,attn_kl,top8_recall,top32_recall,out_rel_err,data";

/// Synthetic heads: `kind` is uniform (the sphere), outliers (4 channels 50× the rest) or lowrank
/// (rank 8 plus 10% noise). Keys, values and queries are independent draws of the same generator,
/// scaled to norm √d (unit-variance coordinates, as after a layer norm), so attention logits q·k/√d
/// have the spread real heads show rather than the near-zero one of unit vectors.
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
    Dataset data{kind, dim, {}};
    data.heads.push_back(Head{generate(tokens, 0), generate(tokens, 1), generate(queries, 2)});
    return data;
}

/// Heads from KV dumps: `keys` of shape [tokens, d] or [layers, heads, tokens, d], each head evaluated
/// on its own. `queries` (same layout, may be empty) attend to all keys of their head; without it the
/// last 10% of each head's tokens serve as queries against the first 90%. `values` (same shape as
/// keys, may be empty) default to the keys themselves. At most `max_queries` queries per head are
/// used, evenly spaced.
inline Dataset npy_dataset(const std::string& keys_path, const std::string& queries_path,
                           const std::string& values_path, std::size_t max_queries) {
    const NpyArray keys = read_npy(keys_path);
    const auto heads_and_tokens = [](const NpyArray& a, const std::string& path) {
        octopus::detail::require(a.shape.size() == 2 || a.shape.size() == 4,
                        path + ": expected shape [tokens, d] or [layers, heads, tokens, d], got rank " +
                            std::to_string(a.shape.size()));
        const std::size_t heads = a.shape.size() == 4 ? a.shape[0] * a.shape[1] : 1;
        return std::pair{heads, a.shape[a.shape.size() - 2]};
    };
    const auto [heads, tokens] = heads_and_tokens(keys, keys_path);
    const std::size_t dim = keys.shape.back();
    check_dim(dim);
    NpyArray queries, values;
    std::size_t query_tokens = 0;
    if (!queries_path.empty()) {
        queries = read_npy(queries_path);
        const auto [query_heads, q_tokens] = heads_and_tokens(queries, queries_path);
        octopus::detail::require(queries.shape.back() == dim, queries_path + ": head dim " + std::to_string(queries.shape.back()) +
                                                         " does not match the keys' " + std::to_string(dim));
        octopus::detail::require(query_heads == heads, queries_path + ": " + std::to_string(query_heads) +
                                                  " heads do not match the keys' " + std::to_string(heads));
        query_tokens = q_tokens;
    }
    if (!values_path.empty()) {
        values = read_npy(values_path);
        octopus::detail::require(values.shape == keys.shape, values_path + ": shape does not match the keys'");
    }
    octopus::detail::require(queries_path.empty() ? tokens >= 20 : tokens >= 1,
                    keys_path + ": " + std::to_string(tokens) + " tokens per head are too few to split into keys and queries");
    Dataset data{keys_path, dim, {}};
    for (std::size_t h = 0; h < heads; ++h) {
        const float* k = keys.data.data() + h * tokens * dim;
        const float* v = values.data.empty() ? k : values.data.data() + h * tokens * dim;
        const std::size_t key_count = queries_path.empty() ? tokens - tokens / 10 : tokens;
        Head head;
        head.keys.assign(k, k + key_count * dim);
        head.values.assign(v, v + key_count * dim);
        const float* q = queries_path.empty() ? k + key_count * dim : queries.data.data() + h * query_tokens * dim;
        const std::size_t available = queries_path.empty() ? tokens - key_count : query_tokens;
        const std::size_t take = std::min(available, max_queries);
        for (std::size_t i = 0; i < take; ++i) {
            const std::size_t t = i * available / take;
            head.queries.insert(head.queries.end(), q + t * dim, q + (t + 1) * dim);
        }
        data.heads.push_back(std::move(head));
    }
    return data;
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

/// Measures `codec` on every head of `data`.
inline Row measure(const Codec& codec, double bits, const Dataset& data) {
    const std::size_t d = data.dim;
    Row row{codec.name(), data.name, d, bits, codec.bits_per_coordinate()};
    const double inverse_sqrt_d = 1.0 / std::sqrt(static_cast<double>(d));
    for (const Head& head : data.heads) {
        const std::size_t n = head.keys.size() / d, n_queries = head.queries.size() / d;
        const auto packed_keys = codec.encode(std::span<const float>(head.keys));
        const auto decoded_keys = codec.decode(packed_keys);
        const auto decoded_values = codec.decode(codec.encode(std::span<const float>(head.values)));
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
        double ip_error = 0.0, ip_sum = 0.0, ip_signal = 0.0, kl = 0.0, top8 = 0.0, top32 = 0.0, out_error = 0.0,
               out_signal = 0.0;
        std::vector<float> scores(n);
        std::vector<double> exact(n), approximate(n);
        for (std::size_t q = 0; q < n_queries; ++q) {
            const std::span<const float> query(head.queries.data() + q * d, d);
            codec.dot(query, packed_keys, scores);
            for (std::size_t v = 0; v < n; ++v) {
                double s = 0.0;
                for (std::size_t j = 0; j < d; ++j) s += static_cast<double>(query[j]) * head.keys[v * d + j];
                const double e = scores[v] - s;
                ip_error += e * e;
                ip_sum += e;
                ip_signal += s * s;
                exact[v] = s * inverse_sqrt_d;
                approximate[v] = scores[v] * inverse_sqrt_d;
            }
            const auto p = detail::softmax(exact), p_hat = detail::softmax(approximate);
            for (std::size_t v = 0; v < n; ++v)
                if (p[v] > 0.0) kl += p[v] * (std::log(p[v]) - std::log(std::max(p_hat[v], 1e-300)));
            top8 += detail::top_k_recall(p, p_hat, 8);
            top32 += detail::top_k_recall(p, p_hat, 32);
            for (std::size_t j = 0; j < d; ++j) {
                double o = 0.0, o_hat = 0.0;
                for (std::size_t v = 0; v < n; ++v) {
                    o += p[v] * head.values[v * d + j];
                    o_hat += p_hat[v] * decoded_values[v * d + j];
                }
                out_error += (o_hat - o) * (o_hat - o);
                out_signal += o * o;
            }
        }
        const double pairs = static_cast<double>(n * n_queries);
        const double rms_signal = std::sqrt(ip_signal / pairs);
        row.mse += counted ? mse / counted : 0.0;
        row.ip_rel_err += std::sqrt(ip_error / ip_signal);
        row.ip_bias += ip_sum / pairs / rms_signal;
        row.attn_kl += kl / n_queries;
        row.top8_recall += top8 / n_queries;
        row.top32_recall += top32 / n_queries;
        row.out_rel_err += out_signal > 0.0 ? std::sqrt(out_error / out_signal) : 0.0;
    }
    const double heads = static_cast<double>(data.heads.size());
    for (double* x : {&row.mse, &row.ip_rel_err, &row.ip_bias, &row.attn_kl, &row.top8_recall, &row.top32_recall,
                      &row.out_rel_err})
        *x /= heads;
    return row;
}

}  // namespace octopus::sweep
