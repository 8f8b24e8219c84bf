// CPU throughput of every codec, the rotation, scoring from codes and decode attention, with the
// baselines that give them meaning measured in the same binary: memcpy for the rotation; for scoring
// and attention the fp16 cache a CPU engine runs (F16C conversion + FMA, fp16_baselines.hpp), one
// thread and all threads; Eigen fp32 and fp16 products as reference points (Eigen's half arithmetic
// is scalar emulation, a baseline no engine uses). Compare as ratios within one run (the machine is
// shared and noisy):
//   build/bench/octopus-bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <octopus/attention.hpp>
#include <octopus/scan_attention.hpp>
#include <octopus/octopus.hpp>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fp16_baselines.hpp"

namespace {

constexpr std::size_t kBatch = 1024;  // vectors per encode/decode iteration

void encode_benchmark(benchmark::State& state, const octopus::Codec& codec) {
    const std::size_t d = codec.dim();
    const auto keys = octopus::uniform_unit_vectors(kBatch, d, 1);
    std::vector<std::uint8_t> packed(kBatch * codec.bytes_per_vector());
    for (auto _ : state) {
        codec.encode(std::span<const float>(keys), packed);
        benchmark::DoNotOptimize(packed.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

void decode_benchmark(benchmark::State& state, const octopus::Codec& codec) {
    const std::size_t d = codec.dim();
    const auto packed = codec.encode(std::span<const float>(octopus::uniform_unit_vectors(kBatch, d, 1)));
    std::vector<float> out(kBatch * d);
    for (auto _ : state) {
        codec.decode(packed, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

void rotate_benchmark(benchmark::State& state) {
    const auto d = static_cast<std::size_t>(state.range(0));
    const octopus::Rotation rotation(d, 1);
    auto x = octopus::uniform_unit_vectors(1, d, 2);
    for (auto _ : state) {
        rotation.apply(x.data());
        benchmark::DoNotOptimize(x.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * d * sizeof(float)));
}

void memcpy_benchmark(benchmark::State& state) {
    const auto d = static_cast<std::size_t>(state.range(0));
    const auto x = octopus::uniform_unit_vectors(1, d, 2);
    std::vector<float> y(d);
    for (auto _ : state) {
        std::memcpy(y.data(), x.data(), d * sizeof(float));
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * d * sizeof(float)));
}

void score_benchmark(benchmark::State& state, const octopus::Codec& codec, std::size_t keys) {
    const std::size_t d = codec.dim();
    std::vector<std::uint8_t> packed(keys * codec.bytes_per_vector());
    for (std::size_t start = 0; start < keys; start += kBatch) {  // fill in batches: no 128k × d float buffer
        const std::size_t n = std::min(kBatch, keys - start);
        const auto batch = octopus::uniform_unit_vectors(n, d, start + 7);
        codec.encode(std::span<const float>(batch),
                     std::span<std::uint8_t>(packed.data() + start * codec.bytes_per_vector(), n * codec.bytes_per_vector()));
    }
    const auto query = octopus::uniform_unit_vectors(1, d, 3);
    std::vector<float> scores(keys);
    for (auto _ : state) {
        codec.dot(query, packed, scores);
        benchmark::DoNotOptimize(scores.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * keys));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * packed.size()));
}

/// Lookup-table scoring (scan_scores.hpp) of `keys` TurboQuant keys held in the scan layout; the
/// query's tables are built inside the timed loop, as an engine builds them once per query.
void scan_score_benchmark(benchmark::State& state, const octopus::TurboQuant& codec, std::size_t keys) {
    const std::size_t d = codec.dim();
    octopus::ScanKeys scan(codec);
    scan.reserve(keys);
    for (std::size_t start = 0; start < keys; start += kBatch)
        scan.append(octopus::uniform_unit_vectors(std::min(kBatch, keys - start), d, start + 7));
    const auto query = octopus::uniform_unit_vectors(1, d, 3);
    octopus::ScanQuery tables;
    std::vector<float> scores(keys);
    for (auto _ : state) {
        tables.assign(codec, query);
        octopus::scan_scores(tables, scan, scores);
        benchmark::DoNotOptimize(scores.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * keys));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * scan.bytes().size()));
}

template <class Scalar>
void eigen_score_benchmark(benchmark::State& state, std::size_t d, std::size_t keys) {
    using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
    Matrix k(static_cast<Eigen::Index>(keys), static_cast<Eigen::Index>(d));
    for (std::size_t start = 0; start < keys; start += kBatch) {
        const std::size_t n = std::min(kBatch, keys - start);
        const auto batch = octopus::uniform_unit_vectors(n, d, start + 7);
        for (std::size_t i = 0; i < n * d; ++i) k(static_cast<Eigen::Index>(start + i / d), static_cast<Eigen::Index>(i % d)) = Scalar(batch[i]);
    }
    const auto q = octopus::uniform_unit_vectors(1, d, 3);
    Vector query(static_cast<Eigen::Index>(d));
    for (std::size_t j = 0; j < d; ++j) query(static_cast<Eigen::Index>(j)) = Scalar(q[j]);
    Vector scores(static_cast<Eigen::Index>(keys));
    for (auto _ : state) {
        scores.noalias() = k * query;
        benchmark::DoNotOptimize(scores.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * keys));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * keys * d * sizeof(Scalar)));
}

/// n×d uniform unit rows as fp16 bits, filled in batches.
std::vector<std::uint16_t> fp16_rows(std::size_t n, std::size_t d, std::uint64_t seed) {
    std::vector<std::uint16_t> rows(n * d);
    for (std::size_t start = 0; start < n; start += kBatch) {
        const std::size_t count = std::min(kBatch, n - start);
        const auto batch = octopus::uniform_unit_vectors(count, d, seed + start);
        for (std::size_t i = 0; i < count * d; ++i) rows[start * d + i] = octopus::bench::to_half_bits(batch[i]);
    }
    return rows;
}

/// The F16C + FMA fp16 dot over `keys` keys: what an engine's fp16 cache costs to score.
void fp16_score_benchmark(benchmark::State& state, std::size_t d, std::size_t keys) {
    const auto k = fp16_rows(keys, d, 7);
    const auto query = octopus::uniform_unit_vectors(1, d, 3);
    std::vector<float> scores(keys);
    for (auto _ : state) {
        octopus::bench::fp16_scores(query.data(), k.data(), keys, d, scores.data());
        benchmark::DoNotOptimize(scores.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * keys));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * keys * d * 2));
}

/// Decode attention of G = 4 query heads over one KV head of `tokens` fp16 keys and values, on `threads`
/// threads: the attention baseline of a CPU engine.
void fp16_attention_benchmark(benchmark::State& state, std::size_t d, std::size_t tokens, int threads,
                              octopus::bench::Fp16Loop loop = octopus::bench::Fp16Loop::per_head) {
    constexpr std::size_t kHeads = 4;
    const auto k = fp16_rows(tokens, d, 11), v = fp16_rows(tokens, d, 12);
    auto q = octopus::uniform_unit_vectors(kHeads, d, 13);
    for (float& x : q) x *= 8.0f;  // logits of a few units
    octopus::bench::AttentionScratch scratch(kHeads, tokens, threads);
    std::vector<float> out(kHeads * d);
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    for (auto _ : state) {
        octopus::bench::fp16_attention(q.data(), kHeads, k.data(), v.data(), tokens, d, scale, threads, scratch, out.data(), loop);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * tokens));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * tokens * d * 4));
}

/// `tokens` uniform unit vectors encoded by `codec`, a batch at a time (seeds from `seed`).
template <class C>
std::vector<std::uint8_t> encoded_tokens(const C& codec, std::size_t tokens, std::uint64_t seed) {
    const std::size_t d = codec.dim(), bytes = codec.bytes_per_vector();
    std::vector<std::uint8_t> packed(tokens * bytes);
    for (std::size_t start = 0; start < tokens; start += kBatch) {
        const std::size_t n = std::min(kBatch, tokens - start);
        codec.encode(std::span<const float>(octopus::uniform_unit_vectors(n, d, start + seed)),
                     std::span<std::uint8_t>(packed.data() + start * bytes, n * bytes));
    }
    return packed;
}

/// Attention over codes through HeadCodec::attend (Codec, type-erased: the fused path of attention.hpp with one
/// virtual call per record, for the codecs that decode into their rotated domain), G = 4.
void codes_attention_benchmark(benchmark::State& state, const octopus::Codec& codec, std::size_t tokens) {
    constexpr std::size_t kHeads = 4;
    const std::size_t d = codec.dim(), bytes = codec.bytes_per_vector();
    const std::vector<std::uint8_t> keys = encoded_tokens(codec, tokens, 11), values = encoded_tokens(codec, tokens, 12);
    auto q = octopus::uniform_unit_vectors(kHeads, d, 13);
    for (float& x : q) x *= 8.0f;
    const octopus::HeadCodec head(codec, codec);
    std::vector<float> out(kHeads * d);
    for (auto _ : state) {
        head.attend(q, keys, values, 1.0f / std::sqrt(static_cast<float>(d)), out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * tokens));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * tokens * 2 * bytes));
}

/// Fused decode attention over codes (attention.hpp), G = 4, on `threads` threads: the codec a
/// compile-time engine holds, keys and values at the same rate.
template <class C>
void fused_attention_benchmark(benchmark::State& state, const C& codec, std::size_t tokens, int threads) {
    constexpr std::size_t kHeads = 4;
    const std::size_t d = codec.dim(), bytes = codec.bytes_per_vector();
    const std::vector<std::uint8_t> keys = encoded_tokens(codec, tokens, 11), values = encoded_tokens(codec, tokens, 12);
    auto q = octopus::uniform_unit_vectors(kHeads, d, 13);
    for (float& x : q) x *= 8.0f;
    std::vector<float> out(kHeads * d);
    for (auto _ : state) {
        octopus::decode_attention(codec, codec, q, keys, values, 1.0f / std::sqrt(static_cast<float>(d)), out, threads);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * tokens));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * tokens * 2 * bytes));
}

/// Fused decode attention with keys in the scan layout (scan_attention.hpp) and TurboQuant values at
/// the same rate, G = 4, on `threads` threads.
void scan_attention_benchmark(benchmark::State& state, const octopus::TurboQuant& codec, std::size_t tokens, int threads) {
    constexpr std::size_t kHeads = 4;
    const std::size_t d = codec.dim(), bytes = codec.bytes_per_vector();
    octopus::ScanKeys keys(codec);
    keys.append_records(encoded_tokens(codec, tokens, 11));
    const std::vector<std::uint8_t> values = encoded_tokens(codec, tokens, 12);
    auto q = octopus::uniform_unit_vectors(kHeads, d, 13);
    for (float& x : q) x *= 8.0f;
    std::vector<float> out(kHeads * d);
    for (auto _ : state) {
        octopus::decode_attention(keys, codec, q, values, 1.0f / std::sqrt(static_cast<float>(d)), out, threads);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * tokens));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * tokens * 2 * bytes));
}

void register_all() {
    const char* all[] = {"turboquant", "octopus", "octopus-paper", "polarquant", "turboquant-prod", "qjl", "uniform"};
    for (const char* name : all)
        for (std::size_t d : {64u, 128u, 256u})
            for (int b : {2, 3, 4}) {
                // Every codec at d = 128, b = 3; the two main codecs across d and b.
                const bool main_codec = std::string(name) == "turboquant" || std::string(name) == "octopus";
                if (!main_codec && (d != 128 || b != 3)) continue;
                const octopus::Codec codec = octopus::make_codec(name, {d, double(b), 1});
                const std::string suffix = std::string(name) + "/d" + std::to_string(d) + "/b" + std::to_string(b);
                benchmark::RegisterBenchmark(("encode/" + suffix).c_str(), encode_benchmark, codec);
                benchmark::RegisterBenchmark(("decode/" + suffix).c_str(), decode_benchmark, codec);
            }
    benchmark::RegisterBenchmark("rotate", rotate_benchmark)->Arg(64)->Arg(128)->Arg(256);
    benchmark::RegisterBenchmark("memcpy", memcpy_benchmark)->Arg(64)->Arg(128)->Arg(256);
    // Scoring one query: 131,072 fp16 keys fill a 32 MB last-level cache, 1,048,576 are eight times it.
    for (std::size_t keys : {4096u, 32768u, 131072u, 1048576u}) {
        const std::string n = "/keys" + std::to_string(keys);
        for (const char* name : {"turboquant", "octopus"})
            benchmark::RegisterBenchmark(("score/" + std::string(name) + "/d128/b3" + n).c_str(), score_benchmark,
                                         octopus::make_codec(name, {128, 3, 1}), keys);
        for (int b : {2, 3, 4})
            benchmark::RegisterBenchmark(("score/turboquant-scan/d128/b" + std::to_string(b) + n).c_str(), scan_score_benchmark,
                                         octopus::TurboQuant({128, double(b), 1}), keys);
        benchmark::RegisterBenchmark(("score/fp16-f16c/d128" + n).c_str(), fp16_score_benchmark, 128, keys);
        if (keys > 131072u) continue;  // the Eigen products are reference points, not worth a 256 MB run
        benchmark::RegisterBenchmark(("score/eigen-fp32/d128" + n).c_str(), eigen_score_benchmark<float>, 128, keys);
        benchmark::RegisterBenchmark(("score/eigen-fp16/d128" + n).c_str(), eigen_score_benchmark<Eigen::half>, 128, keys);
    }
    // Decode attention, G = 4 query heads over one KV head, d = 128: 4k tokens (2 MB of fp16 keys and
    // values, in cache) and 256k tokens (128 MB, four times a 32 MB last-level cache).
    const int all_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (std::size_t tokens : {4096u, 262144u}) {
        const std::string n = "/tokens" + std::to_string(tokens);
        // fp16-f16c: each head's dot and axpy per row, as llama.cpp's CPU attention; fp16-f16c-grouped: each
        // row converted once for the four heads and values added with the outputs in registers.
        for (auto [label, loop] : {std::pair{"fp16-f16c", octopus::bench::Fp16Loop::per_head},
                                   std::pair{"fp16-f16c-grouped", octopus::bench::Fp16Loop::grouped}}) {
            benchmark::RegisterBenchmark(("attention/" + std::string(label) + "/d128/G4/threads1" + n).c_str(), fp16_attention_benchmark,
                                         128, tokens, 1, loop)
                ->UseRealTime();
            if (all_threads > 1)
                benchmark::RegisterBenchmark(("attention/" + std::string(label) + "/d128/G4/threads" + std::to_string(all_threads) + n).c_str(),
                                             fp16_attention_benchmark, 128, tokens, all_threads, loop)
                    ->UseRealTime();
        }
        for (const char* name : {"turboquant", "octopus"})
            benchmark::RegisterBenchmark(("attention/" + std::string(name) + "-attend/d128/b3/G4/threads1" + n).c_str(),
                                         codes_attention_benchmark, octopus::make_codec(name, {128, 3, 1}), tokens)
                ->UseRealTime();
        for (int threads : {1, all_threads}) {
            if (threads == all_threads && all_threads == 1) continue;
            const std::string t = "/threads" + std::to_string(threads);
            for (int b : {2, 3, 4}) {
                const std::string rate = "/d128/b" + std::to_string(b) + "/G4" + t + n;
                benchmark::RegisterBenchmark(("attention/turboquant-fused" + rate).c_str(), fused_attention_benchmark<octopus::TurboQuant>,
                                             octopus::TurboQuant({128, double(b), 1}), tokens, threads)
                    ->UseRealTime();
                benchmark::RegisterBenchmark(("attention/octopus-fused" + rate).c_str(), fused_attention_benchmark<octopus::Octopus>,
                                             octopus::Octopus({128, double(b), 1}), tokens, threads)
                    ->UseRealTime();
                benchmark::RegisterBenchmark(("attention/turboquant-scan" + rate).c_str(), scan_attention_benchmark,
                                             octopus::TurboQuant({128, double(b), 1}), tokens, threads)
                    ->UseRealTime();
            }
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
