// An engine's decode loop on the GPU over a paged, compressed KV cache: allocate one layer's page
// pools, prefill prompts of different lengths (two sequences share a system prompt's pages), then run
// decode steps — append one token per sequence, attend — the way a serving engine calls the library.
// No model here: the new keys, values and queries are random fp16, as a projection would make them.
//
// Build: part of the CUDA build (target octopus-cuda-paged-decode); run it on a GPU machine. Without a
// GPU it says so and exits 0.
#include <cuda_fp16.h>

#include <octopus/cuda.cuh>
#include <octopus/octopus.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace oc = octopus::cuda;

namespace {

/// The pages of a pool handed out and taken back by the engine (a free list; page ids are indices).
class PageAllocator {
public:
    explicit PageAllocator(int pages) {
        for (int p = pages - 1; p >= 0; --p) free_.push_back(p);
    }
    int take() {
        if (free_.empty()) throw octopus::error("the page pool is full");
        const int page = free_.back();
        free_.pop_back();
        return page;
    }

private:
    std::vector<int> free_;
};

std::vector<__half> random_halves(std::size_t n, std::mt19937_64& rng, float scale) {
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<__half> x(n);
    for (auto& v : x) v = __float2half(normal(rng));
    return x;
}

template <class T>
T* device_copy(const std::vector<T>& host) {
    T* p = nullptr;
    OCTOPUS_CUDA_CHECK(cudaMalloc(&p, std::max<std::size_t>(host.size(), 1) * sizeof(T)));
    OCTOPUS_CUDA_CHECK(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    return p;
}

}  // namespace

int main() {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("octopus-cuda-paged-decode: no CUDA device here; run it on a GPU machine\n");
        return 0;
    }
    // One layer of a model with 32 query heads over 8 KV heads of dim 128: 3-bit TurboQuant keys and
    // values (fp16 value norms), pages of 16 tokens.
    const int d = 128, q_heads = 32, kv_heads = 8, page_tokens = 16, steps = 64;
    const octopus::TurboQuant key_codec({d, 3.0, 1, octopus::NormFormat::fp32});
    const octopus::TurboQuant value_codec({d, 3.0, 2, octopus::NormFormat::fp16});
    const oc::DeviceCodec keys(key_codec), values(value_codec);
    const octopus::PageLayout key_layout = oc::page_layout(keys, page_tokens), value_layout = oc::page_layout(values, page_tokens);

    // Four sequences; 0 and 1 start with the same 512-token system prompt, held once.
    const std::vector<int> prompts = {512 + 300, 512 + 1000, 37, 3000};
    const int batch = static_cast<int>(prompts.size()), shared_pages = 512 / page_tokens;
    const int max_length = *std::max_element(prompts.begin(), prompts.end()) + steps;
    const int max_pages = (max_length + page_tokens - 1) / page_tokens, pages = batch * max_pages;
    std::uint8_t *key_pool = nullptr, *value_pool = nullptr;
    OCTOPUS_CUDA_CHECK(cudaMalloc(&key_pool, pages * kv_heads * key_layout.head_page_bytes()));
    OCTOPUS_CUDA_CHECK(cudaMalloc(&value_pool, pages * kv_heads * value_layout.head_page_bytes()));
    std::printf("page pools: %d pages of %d tokens x %d KV heads, %.1f MB of keys and %.1f MB of values (fp16: %.1f MB each)\n",
                pages, page_tokens, kv_heads, pages * kv_heads * key_layout.head_page_bytes() / 1e6,
                pages * kv_heads * value_layout.head_page_bytes() / 1e6, pages * kv_heads * page_tokens * d * 2 / 1e6);

    // Block tables: every sequence's pages for its whole run are taken up front here; an engine takes
    // them as sequences grow, and only the block table changes.
    PageAllocator allocator(pages);
    std::vector<int> block_table(static_cast<std::size_t>(batch) * max_pages, 0);
    for (int b = 0; b < batch; ++b)
        for (int i = 0; i < (prompts[b] + steps + page_tokens - 1) / page_tokens; ++i)
            block_table[b * max_pages + i] = b == 1 && i < shared_pages ? block_table[i] : allocator.take();
    int* table = device_copy(block_table);

    std::mt19937_64 rng(7);
    const auto system_k = random_halves(static_cast<std::size_t>(512) * kv_heads * d, rng, 1.0f);
    const auto system_v = random_halves(system_k.size(), rng, 1.0f);
    unsigned* rejected = device_copy(std::vector<unsigned>{0});

    // Prefill: one call per sequence, its prompt's keys and values [1][tokens][kv_heads][d]; sequence 1
    // skips the shared prompt (already in sequence 0's pages) and starts after it.
    for (int b = 0; b < batch; ++b) {
        const int first = b == 1 ? 512 : 0, tokens = prompts[b] - first;
        auto k = random_halves(static_cast<std::size_t>(tokens) * kv_heads * d, rng, 1.0f);
        auto v = random_halves(k.size(), rng, 1.0f);
        if (b == 0) {
            std::copy(system_k.begin(), system_k.end(), k.begin());
            std::copy(system_v.begin(), system_v.end(), v.begin());
        }
        __half* dk = device_copy(k);
        __half* dv = device_copy(v);
        int* position = device_copy(std::vector<int>{first});
        const oc::PagedTarget kt{key_pool, pages, page_tokens, kv_heads, table + b * max_pages, max_pages, 1, tokens, position};
        const oc::PagedTarget vt{value_pool, pages, page_tokens, kv_heads, table + b * max_pages, max_pages, 1, tokens, position};
        oc::encode_kv(keys, dk, kt, values, dv, vt, rejected);
        OCTOPUS_CUDA_CHECK(cudaFree(dk));
        OCTOPUS_CUDA_CHECK(cudaFree(dv));
        OCTOPUS_CUDA_CHECK(cudaFree(position));
    }

    // Decode steps: append one token per sequence at its length, then attend over lengths + 1.
    std::vector<int> lengths = prompts;
    int* d_lengths = device_copy(lengths);
    int* positions = device_copy(lengths);
    __half* new_k = nullptr;
    __half* new_v = nullptr;
    __half* q = nullptr;
    __half* out = nullptr;
    OCTOPUS_CUDA_CHECK(cudaMalloc(&new_k, batch * kv_heads * d * sizeof(__half)));
    OCTOPUS_CUDA_CHECK(cudaMalloc(&new_v, batch * kv_heads * d * sizeof(__half)));
    OCTOPUS_CUDA_CHECK(cudaMalloc(&q, batch * q_heads * d * sizeof(__half)));
    OCTOPUS_CUDA_CHECK(cudaMalloc(&out, batch * q_heads * d * sizeof(__half)));
    oc::AttentionWorkspace workspace(batch, q_heads, kv_heads, d);
    cudaStream_t stream;
    OCTOPUS_CUDA_CHECK(cudaStreamCreate(&stream));
    cudaEvent_t start, stop;
    OCTOPUS_CUDA_CHECK(cudaEventCreate(&start));
    OCTOPUS_CUDA_CHECK(cudaEventCreate(&stop));
    float total_ms = 0.0f;
    std::vector<__half> host_out(static_cast<std::size_t>(batch) * q_heads * d);
    for (int step = 0; step < steps; ++step) {
        const auto k = random_halves(static_cast<std::size_t>(batch) * kv_heads * d, rng, 1.0f);
        const auto v = random_halves(k.size(), rng, 1.0f);
        const auto query = random_halves(static_cast<std::size_t>(batch) * q_heads * d, rng, 0.3f);
        OCTOPUS_CUDA_CHECK(cudaMemcpyAsync(new_k, k.data(), k.size() * sizeof(__half), cudaMemcpyHostToDevice, stream));
        OCTOPUS_CUDA_CHECK(cudaMemcpyAsync(new_v, v.data(), v.size() * sizeof(__half), cudaMemcpyHostToDevice, stream));
        OCTOPUS_CUDA_CHECK(cudaMemcpyAsync(q, query.data(), query.size() * sizeof(__half), cudaMemcpyHostToDevice, stream));
        OCTOPUS_CUDA_CHECK(cudaMemcpyAsync(positions, lengths.data(), batch * sizeof(int), cudaMemcpyHostToDevice, stream));
        for (int& n : lengths) ++n;
        OCTOPUS_CUDA_CHECK(cudaMemcpyAsync(d_lengths, lengths.data(), batch * sizeof(int), cudaMemcpyHostToDevice, stream));
        const int longest = *std::max_element(lengths.begin(), lengths.end());
        OCTOPUS_CUDA_CHECK(cudaEventRecord(start, stream));
        const oc::PagedTarget kt{key_pool, pages, page_tokens, kv_heads, table, max_pages, batch, 1, positions};
        const oc::PagedTarget vt{value_pool, pages, page_tokens, kv_heads, table, max_pages, batch, 1, positions};
        oc::encode_kv(keys, new_k, kt, values, new_v, vt, rejected, stream);
        const oc::PagedCache cache{key_pool, value_pool, pages, page_tokens, batch, q_heads, kv_heads, table, max_pages, d_lengths, longest};
        oc::decode_attention(keys, values, q, cache, 1.0f / std::sqrt(static_cast<float>(d)), out, workspace, stream);
        OCTOPUS_CUDA_CHECK(cudaEventRecord(stop, stream));
        OCTOPUS_CUDA_CHECK(cudaMemcpyAsync(host_out.data(), out, host_out.size() * sizeof(__half), cudaMemcpyDeviceToHost, stream));
        OCTOPUS_CUDA_CHECK(cudaStreamSynchronize(stream));
        float ms = 0.0f;
        OCTOPUS_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        if (step > 0) total_ms += ms;  // the first step pays for choosing the launch
        for (const __half& x : host_out)
            if (!std::isfinite(__half2float(x))) throw octopus::error("a non-finite attention output");
    }
    unsigned refused = 0;
    OCTOPUS_CUDA_CHECK(cudaMemcpy(&refused, rejected, sizeof(unsigned), cudaMemcpyDeviceToHost));
    std::printf("%d decode steps over %d sequences (final lengths %d, %d, %d, %d): %.1f us per step (append + attention), "
                "%u vectors refused\n",
                steps, batch, lengths[0], lengths[1], lengths[2], lengths[3], 1000.0f * total_ms / (steps - 1), refused);
    for (void* p : {static_cast<void*>(key_pool), static_cast<void*>(value_pool), static_cast<void*>(table),
                    static_cast<void*>(rejected), static_cast<void*>(d_lengths), static_cast<void*>(positions),
                    static_cast<void*>(new_k), static_cast<void*>(new_v), static_cast<void*>(q), static_cast<void*>(out)})
        OCTOPUS_CUDA_CHECK(cudaFree(p));
    OCTOPUS_CUDA_CHECK(cudaStreamDestroy(stream));
    return refused == 0 ? 0 : 1;
}
