// GPU benchmark: fused scores and fused decode attention over compressed caches against fp16
// baselines measured in the same run (cuBLAS for scores; PyTorch's SDPA for attention is timed by
// bench/sdpa_baseline.py in the same device call), and GPU encode of one new token for all heads.
// Attention runs over contiguous records (fp32 queries and outputs) and over the paged cache (pages of
// --page-tokens tokens in shuffled order, fp16 queries and outputs, as an engine holds them).
//
// Shapes of the issue: 32 query heads over 8 KV heads, d = 128, batch 1 and 16, contexts 4k to 128k.
// Inputs are rotated through enough copies to exceed the L2 cache, so times are device-memory times.
// Prints one CSV row per (codec, batch, context) and a line with the card's peak bandwidth.
#include <cublas_v2.h>
#include <cuda_fp16.h>

#include <octopus/cuda.cuh>
#include <octopus/octopus.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace oc = octopus::cuda;

#define CUBLAS_CHECK(call)                                                                      \
    do {                                                                                        \
        const cublasStatus_t status = (call);                                                   \
        if (status != CUBLAS_STATUS_SUCCESS) {                                                  \
            std::fprintf(stderr, "%s failed: %d\n", #call, static_cast<int>(status));           \
            std::exit(1);                                                                       \
        }                                                                                       \
    } while (0)

__global__ void fill_normal(__half* x, long long n, unsigned long long seed, float scale) {
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<long long>(gridDim.x) * blockDim.x) {
        unsigned long long z = (static_cast<unsigned long long>(i) + seed) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        const float u1 = (static_cast<float>(z & 0xffffff) + 0.5f) / 16777216.0f;
        const float u2 = static_cast<float>((z >> 24) & 0xffffff) / 16777216.0f;
        x[i] = __float2half(scale * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2));
    }
}

__global__ void half_to_float(const __half* x, float* y, long long n) {
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<long long>(gridDim.x) * blockDim.x)
        y[i] = __half2float(x[i]);
}

template <class T>
struct Device {
    T* data = nullptr;
    explicit Device(std::size_t n) { OCTOPUS_CUDA_CHECK(cudaMalloc(&data, std::max<std::size_t>(n, 1) * sizeof(T))); }
    ~Device() { cudaFree(data); }
    Device(const Device&) = delete;
};

/// Median over `samples` of the mean time of `inner` back-to-back launches, in microseconds;
/// launch(i) gets a running index to rotate inputs.
template <class F>
double median_us(F&& launch, int samples = 9, int inner = 10) {
    cudaEvent_t start, stop;
    OCTOPUS_CUDA_CHECK(cudaEventCreate(&start));
    OCTOPUS_CUDA_CHECK(cudaEventCreate(&stop));
    int index = 0;
    for (int i = 0; i < 3; ++i) launch(index++);
    std::vector<float> times;
    for (int s = 0; s < samples; ++s) {
        OCTOPUS_CUDA_CHECK(cudaEventRecord(start));
        for (int i = 0; i < inner; ++i) launch(index++);
        OCTOPUS_CUDA_CHECK(cudaEventRecord(stop));
        OCTOPUS_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0.0f;
        OCTOPUS_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        times.push_back(ms * 1000.0f / static_cast<float>(inner));
    }
    OCTOPUS_CUDA_CHECK(cudaEventDestroy(start));
    OCTOPUS_CUDA_CHECK(cudaEventDestroy(stop));
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

std::vector<int> parse_list(const char* text) {
    std::vector<int> out;
    std::string s(text);
    std::size_t at = 0;
    while (at < s.size()) {
        const std::size_t comma = s.find(',', at);
        out.push_back(std::stoi(s.substr(at, comma - at)));
        if (comma == std::string::npos) break;
        at = comma + 1;
    }
    return out;
}

struct CodecChoice {
    std::string name;
    bool turboquant;
    double bits;
    double value_bits = 0;  // 0: the keys' bits
};

std::unique_ptr<oc::DeviceCodec> device_codec(const CodecChoice& c, std::uint64_t seed, int& record_bytes, bool values = false) {
    const octopus::CodecSpec spec{128, values && c.value_bits > 0 ? c.value_bits : c.bits, seed, octopus::NormFormat::fp32};
    if (c.turboquant) {
        octopus::TurboQuant codec(spec);
        record_bytes = static_cast<int>(codec.bytes_per_vector());
        return std::make_unique<oc::DeviceCodec>(codec);
    }
    octopus::Octopus codec(spec);
    record_bytes = static_cast<int>(codec.bytes_per_vector());
    return std::make_unique<oc::DeviceCodec>(codec);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> contexts = {4096, 16384, 65536, 131072}, batches = {1, 16};
    std::string only;  // comma-separated codec names; empty: all
    int page_tokens = 16;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--contexts") contexts = parse_list(argv[i + 1]);
        else if (flag == "--batches") batches = parse_list(argv[i + 1]);
        else if (flag == "--codecs") only = std::string(",") + argv[i + 1] + ",";
        else if (flag == "--page-tokens") page_tokens = std::stoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: octopus-cuda-bench [--contexts 4096,...] [--batches 1,16] [--codecs octopus-3,...] "
                                 "[--page-tokens 16]\n");
            return 2;
        }
    }
    const int q_heads = 32, kv_heads = 8, d = 128, group = q_heads / kv_heads;
    const long long l2_rotation_bytes = 200LL << 20;  // > 4× the H100's 50 MB L2

    cudaDeviceProp prop{};
    OCTOPUS_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    int memory_khz = 0, bus_bits = 0;
    OCTOPUS_CUDA_CHECK(cudaDeviceGetAttribute(&memory_khz, cudaDevAttrMemoryClockRate, 0));
    OCTOPUS_CUDA_CHECK(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0));
    const double peak = 2.0 * memory_khz * 1e3 * bus_bits / 8.0;  // bytes/s, double data rate
    double copy_bandwidth = 0.0;
    {
        const std::size_t bytes = 2ull << 30;
        Device<char> a(bytes), b(bytes);
        OCTOPUS_CUDA_CHECK(cudaMemset(a.data, 1, bytes));
        const double us = median_us([&](int) { OCTOPUS_CUDA_CHECK(cudaMemcpyAsync(b.data, a.data, bytes, cudaMemcpyDeviceToDevice)); }, 5, 3);
        copy_bandwidth = 2.0 * bytes / (us * 1e-6);
    }
    std::printf("# device: %s, %d SMs, peak memory bandwidth %.0f GB/s (clock x bus), device-to-device copy %.0f GB/s "
                "(read + write)\n",
                prop.name, prop.multiProcessorCount, peak / 1e9, copy_bandwidth / 1e9);
    std::printf("kind,codec,bits_per_coord,batch,context,time_us,fp16_time_us,speedup,bytes_read,bandwidth_GBps,peak_share\n");

    const std::vector<CodecChoice> codecs = {{"turboquant-2", true, 2},   {"turboquant-3", true, 3},
                                             {"turboquant-4", true, 4},   {"octopus-2", false, 2},
                                             {"octopus-2.67", false, 8.0 / 3}, {"octopus-3", false, 3},
                                             {"octopus-4", false, 4}, {"turboquant-k4v2", true, 4, 2}};
    cublasHandle_t cublas;
    CUBLAS_CHECK(cublasCreate(&cublas));

    for (int batch : batches)
        for (int context : contexts) {
            const long long tokens = static_cast<long long>(batch) * kv_heads * context;
            // fp16 baseline: K [batch][kv][T][d], Q [batch][q][d], scores fp32 [batch][q][T].
            const long long fp16_bytes = tokens * d * 2;
            const int fp16_copies = static_cast<int>(std::max<long long>(1, l2_rotation_bytes / fp16_bytes + 1));
            std::vector<std::unique_ptr<Device<__half>>> keys16;
            for (int c = 0; c < fp16_copies; ++c) {
                keys16.push_back(std::make_unique<Device<__half>>(tokens * d));
                fill_normal<<<1024, 256>>>(keys16.back()->data, tokens * d, 1000 + c, 1.0f);
            }
            Device<__half> q16(static_cast<std::size_t>(batch) * q_heads * d);
            fill_normal<<<64, 256>>>(q16.data, static_cast<long long>(batch) * q_heads * d, 7, 1.0f);
            Device<float> q32(static_cast<std::size_t>(batch) * q_heads * d);
            half_to_float<<<64, 256>>>(q16.data, q32.data, static_cast<long long>(batch) * q_heads * d);
            Device<float> scores(static_cast<std::size_t>(batch) * q_heads * context);
            const float one = 1.0f, zero = 0.0f;
            const double fp16_scores_us = median_us([&](int i) {
                CUBLAS_CHECK(cublasGemmStridedBatchedEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, context, group, d, &one,
                                                        keys16[i % fp16_copies]->data, CUDA_R_16F, d,
                                                        static_cast<long long>(context) * d, q16.data, CUDA_R_16F, d,
                                                        static_cast<long long>(group) * d, &zero, scores.data,
                                                        CUDA_R_32F, context, static_cast<long long>(group) * context,
                                                        batch * kv_heads, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            });
            std::printf("scores,fp16-cublas,16,%d,%d,%.2f,%.2f,1.00,%lld,%.0f,%.3f\n", batch, context, fp16_scores_us,
                        fp16_scores_us, fp16_bytes, fp16_bytes / fp16_scores_us / 1e3, fp16_bytes / (fp16_scores_us * 1e-6) / peak);
            std::fflush(stdout);
            // The fp16 keys double as the values' source; one set of floats to encode from.
            const __half* source = keys16[0]->data;

            for (const CodecChoice& choice : codecs) {
                if (!only.empty() && only.find("," + choice.name + ",") == std::string::npos) continue;
                int kb = 0, vb = 0;
                const auto key_codec = device_codec(choice, 1, kb);
                const auto value_codec = device_codec(choice, 2, vb, true);
                const long long set_bytes = tokens * (kb + vb);
                const int copies = static_cast<int>(std::max<long long>(1, l2_rotation_bytes / set_bytes + 1));
                std::vector<std::unique_ptr<Device<std::uint8_t>>> key_caches, value_caches;
                for (int c = 0; c < copies; ++c) {
                    key_caches.push_back(std::make_unique<Device<std::uint8_t>>(tokens * kb));
                    value_caches.push_back(std::make_unique<Device<std::uint8_t>>(tokens * vb));
                    oc::encode(*key_codec, source, static_cast<int>(tokens), key_caches.back()->data);
                    oc::encode(*value_codec, keys16[(c + 1) % fp16_copies]->data, static_cast<int>(tokens), value_caches.back()->data);
                }
                std::vector<int> host_lengths(batch, context);
                Device<int> lengths(batch);
                OCTOPUS_CUDA_CHECK(cudaMemcpy(lengths.data, host_lengths.data(), batch * sizeof(int), cudaMemcpyHostToDevice));
                const oc::CacheShape shape{batch, q_heads, kv_heads, context, lengths.data, context};
                const double bits = 8.0 * kb / d, kv_bits = 4.0 * (kb + vb) / d;  // keys'; keys' and values' mean

                const double scores_us = median_us([&](int i) {
                    oc::scores(*key_codec, q32.data, key_caches[i % copies]->data, shape, scores.data);
                });
                const double key_bytes = static_cast<double>(tokens) * kb;
                std::printf("scores,%s,%.4f,%d,%d,%.2f,%.2f,%.2f,%.0f,%.0f,%.3f\n", choice.name.c_str(), bits, batch,
                            context, scores_us, fp16_scores_us, fp16_scores_us / scores_us, key_bytes,
                            key_bytes / scores_us / 1e3, key_bytes / (scores_us * 1e-6) / peak);

                oc::AttentionWorkspace workspace(batch, q_heads, kv_heads, d);
                Device<float> out(static_cast<std::size_t>(batch) * q_heads * d);
                const double attention_us = median_us([&](int i) {
                    oc::decode_attention(*key_codec, *value_codec, q32.data, key_caches[i % copies]->data,
                                         value_caches[i % copies]->data, shape, 0.08838834764f, out.data, workspace);
                });
                const double kv_bytes = static_cast<double>(tokens) * (kb + vb);
                std::printf("attention,%s,%.4f,%d,%d,%.2f,,,%.0f,%.0f,%.3f\n", choice.name.c_str(), kv_bits, batch, context,
                            attention_us, kv_bytes, kv_bytes / attention_us / 1e3, kv_bytes / (attention_us * 1e-6) / peak);

                // One new token for every head of every sequence: K and V appended at the end, one launch.
                if (context == contexts.front()) {
                    Device<int> positions(batch);
                    std::vector<int> last(batch, context - 1);
                    OCTOPUS_CUDA_CHECK(cudaMemcpy(positions.data, last.data(), batch * sizeof(int), cudaMemcpyHostToDevice));
                    const double encode_us = median_us([&](int i) {
                        oc::encode_kv(*key_codec, source + static_cast<long long>(i % 64) * kv_heads * batch * d,
                                      oc::CacheTarget{key_caches[0]->data, batch, kv_heads, context, positions.data},
                                      *value_codec, source + static_cast<long long>(i % 64 + 1) * kv_heads * batch * d,
                                      oc::CacheTarget{value_caches[0]->data, batch, kv_heads, context, positions.data});
                    });
                    std::printf("encode-token,%s,%.4f,%d,%d,%.2f,,,,,\n", choice.name.c_str(), bits, batch, context, encode_us);
                    // Bulk encode rate, for the record.
                    const double bulk_us = median_us([&](int) { oc::encode(*key_codec, source, static_cast<int>(tokens), key_caches[0]->data); }, 3, 1);
                    std::printf("encode-bulk,%s,%.4f,%d,%d,%.2f,,,,,  # %.1f M vectors/s\n", choice.name.c_str(), bits,
                                batch, context, bulk_us, tokens / bulk_us);
                }
                // The same tokens in a paged cache: every sequence's pages in shuffled order, fp16 in and out.
                {
                    const int per_sequence = (context + page_tokens - 1) / page_tokens, pages = batch * per_sequence;
                    std::vector<int> table(static_cast<std::size_t>(pages));
                    std::iota(table.begin(), table.end(), 0);
                    std::shuffle(table.begin(), table.end(), std::mt19937(5));
                    Device<int> block_table(table.size());
                    OCTOPUS_CUDA_CHECK(cudaMemcpy(block_table.data, table.data(), table.size() * sizeof(int), cudaMemcpyHostToDevice));
                    const long long key_pool_bytes = static_cast<long long>(pages) * kv_heads * oc::page_layout(*key_codec, page_tokens).head_page_bytes();
                    const long long value_pool_bytes = static_cast<long long>(pages) * kv_heads * oc::page_layout(*value_codec, page_tokens).head_page_bytes();
                    // The records go first: the paged sets take their place in memory.
                    key_caches.clear(), value_caches.clear();
                    std::vector<std::unique_ptr<Device<std::uint8_t>>> key_pools, value_pools;
                    for (int c = 0; c < copies; ++c) {
                        key_pools.push_back(std::make_unique<Device<std::uint8_t>>(key_pool_bytes));
                        value_pools.push_back(std::make_unique<Device<std::uint8_t>>(value_pool_bytes));
                        oc::encode(*key_codec, source, oc::PagedTarget{key_pools.back()->data, pages, page_tokens, kv_heads, block_table.data,
                                                                       per_sequence, batch, context, nullptr});
                        oc::encode(*value_codec, keys16[(c + 1) % fp16_copies]->data,
                                   oc::PagedTarget{value_pools.back()->data, pages, page_tokens, kv_heads, block_table.data,
                                                   per_sequence, batch, context, nullptr});
                    }
                    Device<__half> out16(static_cast<std::size_t>(batch) * q_heads * d);
                    const double paged_us = median_us([&](int i) {
                        const oc::PagedCache cache{key_pools[i % copies]->data, value_pools[i % copies]->data, pages, page_tokens, batch,
                                                   q_heads, kv_heads, block_table.data, per_sequence, lengths.data, context};
                        oc::decode_attention(*key_codec, *value_codec, q16.data, cache, 0.08838834764f, out16.data, workspace);
                    });
                    std::printf("attention-paged,%s,%.4f,%d,%d,%.2f,,,%.0f,%.0f,%.3f\n", choice.name.c_str(), kv_bits, batch, context,
                                paged_us, kv_bytes, kv_bytes / paged_us / 1e3, kv_bytes / (paged_us * 1e-6) / peak);
                    if (context == contexts.front()) {
                        // One decode step into the pages (one token per sequence), and a bulk prefill's rate.
                        Device<int> positions(batch);
                        std::vector<int> last(batch, context - 1);
                        OCTOPUS_CUDA_CHECK(cudaMemcpy(positions.data, last.data(), batch * sizeof(int), cudaMemcpyHostToDevice));
                        const double step_us = median_us([&](int i) {
                            oc::encode_kv(*key_codec, source + static_cast<long long>(i % 64) * kv_heads * batch * d,
                                          oc::PagedTarget{key_pools[0]->data, pages, page_tokens, kv_heads, block_table.data, per_sequence,
                                                          batch, 1, positions.data},
                                          *value_codec, source + static_cast<long long>(i % 64 + 1) * kv_heads * batch * d,
                                          oc::PagedTarget{value_pools[0]->data, pages, page_tokens, kv_heads, block_table.data, per_sequence,
                                                          batch, 1, positions.data});
                        });
                        std::printf("encode-token-paged,%s,%.4f,%d,%d,%.2f,,,,,\n", choice.name.c_str(), bits, batch, context, step_us);
                        const double bulk_us = median_us([&](int) {
                            oc::encode(*key_codec, source, oc::PagedTarget{key_pools[0]->data, pages, page_tokens, kv_heads, block_table.data,
                                                                           per_sequence, batch, context, nullptr});
                        }, 3, 1);
                        std::printf("encode-bulk-paged,%s,%.4f,%d,%d,%.2f,,,,,  # %.1f M vectors/s\n", choice.name.c_str(), bits,
                                    batch, context, bulk_us, tokens / bulk_us);
                    }
                    OCTOPUS_CUDA_CHECK(cudaDeviceSynchronize());
                    std::fflush(stdout);
                }
                OCTOPUS_CUDA_CHECK(cudaDeviceSynchronize());
                std::fflush(stdout);
            }
        }
    CUBLAS_CHECK(cublasDestroy(cublas));
    return 0;
}
