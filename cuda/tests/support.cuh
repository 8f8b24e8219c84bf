// What the CUDA tests share: the Gpu fixture (skips without a device, saying why), device buffers,
// CPU codecs with their device copies, test keys and queries, caches in the kernels' layout filled by
// the CPU encoder, and the double-precision attention reference.
#pragma once

#include <gtest/gtest.h>

#include <octopus/cuda.cuh>
#include <octopus/octopus.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>
#include <algorithm>
#include <cstdio>

namespace {

using octopus::CodecSpec;
using octopus::NormFormat;
namespace oc = octopus::cuda;

std::string gpu_absence() {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) return std::string("cudaGetDeviceCount says ") + cudaGetErrorName(status);
    if (count == 0) return "cudaGetDeviceCount found no device";
    return "";
}

class Gpu : public ::testing::Test {
protected:
    void SetUp() override {
        static const std::string absent = gpu_absence();
        if (!absent.empty())
            GTEST_SKIP() << "no CUDA device (" << absent
                         << "): GPU tests run on a GPU machine; here the build only proves the kernels compile";
    }
};

/// A device buffer of n T's.
template <class T>
struct DeviceArray {
    T* data = nullptr;
    std::size_t size = 0;
    explicit DeviceArray(std::size_t n) : size(n) { OCTOPUS_CUDA_CHECK(cudaMalloc(&data, std::max<std::size_t>(n, 1) * sizeof(T))); }
    DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
    ~DeviceArray() { cudaFree(data); }
    DeviceArray(const DeviceArray&) = delete;
    void upload(const std::vector<T>& host) {
        OCTOPUS_CUDA_CHECK(cudaMemcpy(data, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    }
    std::vector<T> download() const {
        std::vector<T> host(size);
        OCTOPUS_CUDA_CHECK(cudaMemcpy(host.data(), data, size * sizeof(T), cudaMemcpyDeviceToHost));
        return host;
    }
};

/// A CPU codec and its device copy.
struct Pair {
    octopus::Codec cpu;
    std::unique_ptr<oc::DeviceCodec> gpu;
    std::string label;
};

Pair make_pair(bool turboquant, std::size_t d, double bits, std::uint64_t seed, NormFormat norm = NormFormat::fp32) {
    const CodecSpec spec{d, bits, seed, norm};
    const std::string label = std::string(turboquant ? "turboquant" : "octopus") + " d=" + std::to_string(d) +
                              " b=" + std::to_string(bits) + (norm == NormFormat::fp16 ? " fp16 norms" : "");
    if (turboquant) {
        octopus::TurboQuant codec(spec);
        return {octopus::Codec(codec), std::make_unique<oc::DeviceCodec>(codec), label};
    }
    octopus::Octopus codec(spec);
    return {octopus::Codec(codec), std::make_unique<oc::DeviceCodec>(codec), label};
}

struct Config {
    bool turboquant;
    double bits;
};
const std::vector<Config> kAllCodecs = {{true, 2}, {true, 3}, {true, 4}, {false, 2}, {false, 7.0 / 3}, {false, 8.0 / 3},
                                        {false, 3}, {false, 10.0 / 3}, {false, 11.0 / 3}, {false, 4}};

/// Keys as engines see them: Gaussian rows of varied scale, outlier channels, one-hot rows, a zero row,
/// tiny and large rows.
std::vector<float> test_keys(std::size_t n, std::size_t d, std::uint64_t seed, int decades = 7) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal;
    std::vector<float> x(n * d);
    for (std::size_t v = 0; v < n; ++v) {
        const float scale = std::pow(10.0f, static_cast<float>(static_cast<int>(v % decades) - decades / 2));
        for (std::size_t j = 0; j < d; ++j) x[v * d + j] = normal(rng) * scale * (j % 17 == 3 ? 20.0f : 1.0f);
    }
    if (n > 4) {
        for (std::size_t j = 0; j < d; ++j) x[0 * d + j] = 0.0f;
        for (std::size_t j = 0; j < d; ++j) x[1 * d + j] = j == 5 ? 1.0f : 0.0f;
        for (std::size_t j = 0; j < d; ++j) x[2 * d + j] = 1.0f;
    }
    return x;
}

/// A cache in the kernels' layout, filled by the CPU encoder, and the CPU-decoded vectors.
struct HostCache {
    std::vector<std::uint8_t> bytes;
    std::vector<std::vector<float>> decoded;  // per (b, kv head): length × d
};

HostCache host_cache(const octopus::Codec& codec, int batch, int kv_heads, int capacity, const std::vector<int>& lengths,
                     std::uint64_t seed) {
    const std::size_t d = codec.dim(), rb = codec.bytes_per_vector();
    HostCache cache;
    cache.bytes.assign(static_cast<std::size_t>(batch) * kv_heads * capacity * rb, 0xEE);  // junk past each length
    for (int b = 0; b < batch; ++b)
        for (int h = 0; h < kv_heads; ++h) {
            // Scales 0.01 to 100: norms any fp16 norm holds.
            const auto x = test_keys(static_cast<std::size_t>(lengths[b]), d, seed + 100 * b + h, 5);
            const auto packed = codec.encode(std::span<const float>(x));
            std::copy(packed.begin(), packed.end(), cache.bytes.begin() + static_cast<std::ptrdiff_t>((b * kv_heads + h) * capacity * rb));
            cache.decoded.push_back(codec.decode(packed));
        }
    return cache;
}

std::vector<float> test_queries(int batch, int q_heads, std::size_t d, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal;
    std::vector<float> q(static_cast<std::size_t>(batch) * q_heads * d);
    for (float& x : q) x = normal(rng) * 3.0f;
    return q;
}

/// softmax(scale·q·Kᵀ)·V in double over the CPU-decoded keys and values.
std::vector<double> reference_attention(const std::vector<float>& q, const HostCache& keys, const HostCache& values,
                                        int batch, int q_heads, int kv_heads, std::size_t d,
                                        const std::vector<int>& lengths, double scale) {
    std::vector<double> out(static_cast<std::size_t>(batch) * q_heads * d, 0.0);
    const int group = q_heads / kv_heads;
    for (int b = 0; b < batch; ++b)
        for (int i = 0; i < q_heads; ++i) {
            const auto& k = keys.decoded[b * kv_heads + i / group];
            const auto& v = values.decoded[b * kv_heads + i / group];
            std::vector<double> s(lengths[b]);
            double top = -INFINITY;
            for (int t = 0; t < lengths[b]; ++t) {
                double dot = 0.0;
                for (std::size_t j = 0; j < d; ++j) dot += double(q[(b * q_heads + i) * d + j]) * k[t * d + j];
                s[t] = dot * scale;
                top = std::max(top, s[t]);
            }
            double total = 0.0;
            for (int t = 0; t < lengths[b]; ++t) total += s[t] = std::exp(s[t] - top);
            for (int t = 0; t < lengths[b]; ++t)
                for (std::size_t j = 0; j < d; ++j) out[(b * q_heads + i) * d + j] += s[t] / total * v[t * d + j];
        }
    return out;
}

/// The largest relative error |got − expected| / |expected| over rows of d (absolute for a zero row);
/// NaN if any output is NaN, which fails every bound.
double worst_row_error(const std::vector<float>& got, const std::vector<double>& expected, std::size_t d) {
    double worst = 0.0;
    for (std::size_t row = 0; row * d < expected.size(); ++row) {
        double e2 = 0.0, n2 = 0.0;
        for (std::size_t j = 0; j < d; ++j) {
            if (std::isnan(got[row * d + j])) return NAN;
            const double e = got[row * d + j] - expected[row * d + j];
            e2 += e * e, n2 += expected[row * d + j] * expected[row * d + j];
        }
        worst = std::max(worst, n2 > 0 ? std::sqrt(e2 / n2) : std::sqrt(e2));
    }
    return worst;
}

void check_attention(bool turboquant, std::size_t d, double bits, int batch, int q_heads, int kv_heads,
                     const std::vector<int>& lengths, int capacity, int max_splits = 128,
                     NormFormat value_norms = NormFormat::fp16) {
    const Pair keys = make_pair(turboquant, d, bits, 5, NormFormat::fp32);
    const Pair values = make_pair(turboquant, d, bits, 6, value_norms);
    const HostCache key_cache = host_cache(keys.cpu, batch, kv_heads, capacity, lengths, 21);
    const HostCache value_cache = host_cache(values.cpu, batch, kv_heads, capacity, lengths, 22);
    auto q = test_queries(batch, q_heads, d, 23);
    for (float& x : q) x *= 0.3f;  // logits of a few units: a softmax neither flat nor one-hot
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const auto expected = reference_attention(q, key_cache, value_cache, batch, q_heads, kv_heads, d, lengths, scale);
    DeviceArray<std::uint8_t> dk(key_cache.bytes), dv(value_cache.bytes);
    DeviceArray<float> dq(q);
    DeviceArray<int> dl(lengths);
    DeviceArray<float> out(std::vector<float>(q.size(), NAN));
    oc::AttentionWorkspace workspace(batch, q_heads, kv_heads, static_cast<int>(d), max_splits);
    const int max_length = *std::max_element(lengths.begin(), lengths.end());
    for (int repeat = 0; repeat < 2; ++repeat) {  // the second call reuses the workspace's counters
        oc::decode_attention(*keys.gpu, *values.gpu, dq.data, dk.data, dv.data,
                             oc::CacheShape{batch, q_heads, kv_heads, capacity, dl.data, max_length},
                             static_cast<float>(scale), out.data, workspace);
        const double worst = worst_row_error(out.download(), expected, d);
        EXPECT_LT(worst, 1e-3) << keys.label << " G=" << q_heads / kv_heads << " lengths " << lengths[0]
                               << " splits <= " << max_splits;
        if (repeat == 0)
            std::printf("attention %-30s G=%-2d max length %-5d splits <= %-3d worst row relative error %.2e\n",
                        keys.label.c_str(), q_heads / kv_heads, max_length, max_splits, worst);
    }
}

/// A preconditioner with every part non-trivial, different per (sequence, KV head).
octopus::HeadPreconditioner test_preconditioner(std::size_t d, int index) {
    octopus::HeadPreconditioner p = octopus::HeadPreconditioner::identity(d);
    p.keys = octopus::Preconditioning::scale;
    p.center_values = true;
    for (std::size_t c = 0; c < d; ++c) {
        p.key_offset[c] = 30.0f * std::sin(0.37f * float(c) + float(index));
        p.key_scale[c] = 0.25f + 0.1f * float((c + index) % 23);
        p.value_offset[c] = 5.0f * std::cos(0.21f * float(c) - float(index));
    }
    return p;
}

}  // namespace
