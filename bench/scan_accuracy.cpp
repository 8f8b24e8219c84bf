// Attention KL of lookup-table scoring (scan_scores.hpp) against exact scoring from the same codes, on
// a real KV dump (../shared/data/<model>/: keys [layers, kv_heads, tokens, d], queries [layers, q_heads,
// queries, d] at the keys' last positions, causal). For every layer, query head and query:
// KL(softmax(q·Kᵀ/√d) ‖ softmax(q·K̂ᵀ/√d)) with K̂'s scores from TurboQuant::dot (exact from the codes)
// and from scan_scores (8-bit tables), averaged; the scan path's cost is their ratio. With --auto,
// each head's keys and queries go through the preconditioner `auto` picks on the head's first 512
// keys (precondition_fit.hpp, without queries), as an engine's HeadCodec would apply it.
//
//   octopus-scan-accuracy DIR [--auto] [BITS ...]     (default bits: 2 3 4)
#include <octopus/octopus.hpp>
#include <octopus/precondition_fit.hpp>
#include <octopus/registry.hpp>
#include <octopus/scan_scores.hpp>

#include "sweep/npy.hpp"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {

/// KL(softmax(a) ‖ softmax(b)) of two score rows.
double kl(const std::vector<double>& a, const std::vector<double>& b) {
    double ma = -1e300, mb = -1e300, za = 0.0, zb = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) ma = std::max(ma, a[i]), mb = std::max(mb, b[i]);
    for (std::size_t i = 0; i < a.size(); ++i) za += std::exp(a[i] - ma), zb += std::exp(b[i] - mb);
    double sum = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double p = std::exp(a[i] - ma) / za;
        sum += p * ((a[i] - ma - std::log(za)) - (b[i] - mb - std::log(zb)));
    }
    return sum;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: octopus-scan-accuracy DIR [--auto] [BITS ...]\n");
        return 2;
    }
    const std::string dir = argv[1];
    std::vector<unsigned> bit_widths;
    bool automatic = false;
    for (int i = 2; i < argc; ++i) {
        if (std::string(argv[i]) == "--auto") automatic = true;
        else bit_widths.push_back(static_cast<unsigned>(std::stoi(argv[i])));
    }
    if (bit_widths.empty()) bit_widths = {2, 3, 4};
    try {
        const auto keys = octopus::sweep::read_npy(dir + "/keys.npy"), queries = octopus::sweep::read_npy(dir + "/queries.npy");
        const std::size_t layers = keys.shape[0], kv_heads = keys.shape[1], tokens = keys.shape[2], d = keys.shape[3];
        const std::size_t q_heads = queries.shape[1], n_queries = queries.shape[2], group = q_heads / kv_heads;
        std::printf("%s: %zu layers, %zu KV heads, %zu query heads, %zu tokens, %zu queries at the last positions, d = %zu, "
                    "preconditioning %s\n",
                    dir.c_str(), layers, kv_heads, q_heads, tokens, n_queries, d, automatic ? "auto" : "none");
        std::printf("bits | KL exact-from-codes | KL scan | scan / exact | worst |error| / (|q'||k'|) | mean step·√(lookups/12) / |q'|\n");
        for (unsigned b : bit_widths) {
            const octopus::TurboQuant codec(octopus::CodecSpec{d, double(b), 1});
            const octopus::Codec erased = octopus::make_codec("turboquant", octopus::CodecSpec{d, double(b), 1});
            double kl_exact = 0.0, kl_scan = 0.0, worst = 0.0, rms_bound = 0.0;
            std::size_t rows = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : kl_exact, kl_scan, rms_bound, rows) reduction(max : worst)
            for (std::size_t lh = 0; lh < layers * kv_heads; ++lh) {
                const std::size_t layer = lh / kv_heads, kv = lh % kv_heads;
                const float* k = keys.data.data() + lh * tokens * d;
                octopus::HeadPreconditioner preconditioner = octopus::HeadPreconditioner::identity(d);
                if (automatic)
                    preconditioner = octopus::fit_preconditioner(
                        octopus::Preconditioning::automatic,
                        octopus::PreconditionerFitData{d, std::span<const float>(k, std::min<std::size_t>(512, tokens) * d), {}, {}, {}, 0.0f, 0},
                        erased, erased);
                std::vector<float> transformed(tokens * d);
                for (std::size_t v = 0; v < tokens; ++v) preconditioner.transform_key(k + v * d, transformed.data() + v * d);
                const auto packed = codec.encode(std::span<const float>(transformed));
                octopus::ScanKeys scan(codec);
                scan.append_records(packed);
                std::vector<float> exact_codes(tokens), scanned(tokens);
                std::vector<double> key_norm(tokens, 0.0);
                for (std::size_t v = 0; v < tokens; ++v)
                    for (std::size_t j = 0; j < d; ++j) key_norm[v] += double(transformed[v * d + j]) * transformed[v * d + j];
                octopus::ScanQuery tables;
                for (std::size_t g = 0; g < group; ++g) {
                    const std::size_t qh = kv * group + g;
                    for (std::size_t i = 0; i < n_queries; ++i) {
                        const float* q_model = queries.data.data() + ((layer * q_heads + qh) * n_queries + i) * d;
                        std::array<float, octopus::kMaxDim> q_transformed;
                        preconditioner.transform_query(q_model, q_transformed.data());
                        const float* q = q_transformed.data();
                        const std::size_t visible = tokens - n_queries + i + 1;
                        codec.dot(std::span<const float>(q, d), std::span<const std::uint8_t>(packed.data(), visible * codec.bytes_per_vector()),
                                  std::span<float>(exact_codes.data(), visible));
                        tables.assign(codec, std::span<const float>(q, d));
                        octopus::scan_scores(tables, scan, scanned);
                        std::vector<double> s(visible), c(visible), t(visible);
                        double qn = 0.0;
                        for (std::size_t j = 0; j < d; ++j) qn += double(q[j]) * q[j];
                        const double inv = 1.0 / std::sqrt(double(d));
                        for (std::size_t v = 0; v < visible; ++v) {
                            double dot = 0.0;
                            const double kn = key_norm[v];
                            for (std::size_t j = 0; j < d; ++j) dot += double(q_model[j]) * k[v * d + j];
                            s[v] = dot * inv, c[v] = exact_codes[v] * inv, t[v] = scanned[v] * inv;
                            if (kn > 0.0 && qn > 0.0)
                                worst = std::max(worst, std::fabs(double(scanned[v]) - exact_codes[v]) / std::sqrt(qn * kn));
                        }
                        kl_exact += kl(s, c);
                        kl_scan += kl(s, t);
                        rms_bound += qn > 0.0 ? tables.step() * std::sqrt(tables.lookups() / 12.0) / std::sqrt(qn) : 0.0;
                        ++rows;
                    }
                }
            }
            std::printf("%u | %.6f | %.6f | %.4f | %.2e | %.2e\n", b, kl_exact / rows, kl_scan / rows, kl_scan / kl_exact, worst,
                        rms_bound / rows);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "octopus-scan-accuracy: %s\n", e.what());
        return 1;
    }
    return 0;
}
