// The CUDA kernels against the CPU library, which is their specification: GPU codes are the CPU's
// bytes, fused scores match the CPU's dot, fused attention matches a double-precision reference on
// the CPU-decoded keys and values. Without a GPU every test skips, saying so.
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

TEST_F(Gpu, EncodeWritesTheCpuBytesForEveryCodecDimAndInputType) {
    for (std::size_t d : {64, 128, 256})
        for (const Config& config : kAllCodecs)
            for (NormFormat norm : {NormFormat::fp32, NormFormat::fp16}) {
                const Pair pair = make_pair(config.turboquant, d, config.bits, 42 + d, norm);
                const std::size_t n = 300;
                auto keys = test_keys(n, d, d + 7);
                if (norm == NormFormat::fp16)
                    for (float& x : keys) x = std::fmin(std::fmax(x, -1000.0f), 1000.0f);
                const auto expected = pair.cpu.encode(std::span<const float>(keys));
                DeviceArray<float> x(keys);
                DeviceArray<std::uint8_t> packed(expected.size());
                DeviceArray<unsigned> rejected(std::vector<unsigned>{0});
                oc::encode(*pair.gpu, x.data, static_cast<int>(n), packed.data, rejected.data);
                OCTOPUS_CUDA_CHECK(cudaDeviceSynchronize());
                EXPECT_EQ(rejected.download()[0], 0u) << pair.label;
                const auto got = packed.download();
                std::size_t differing = 0;
                for (std::size_t i = 0; i < got.size(); ++i) differing += got[i] != expected[i];
                EXPECT_EQ(differing, 0u) << pair.label << ": GPU bytes differ from the CPU's";

                // Half and bfloat16 inputs: the same bytes as the CPU encoder given the same elements.
                const auto check_16_bit = [&]<class Host, class Device>(const char* type) {
                    const std::vector<Host> host(keys.begin(), keys.end());
                    std::vector<Device> device(keys.size());
                    std::memcpy(device.data(), host.data(), host.size() * 2);
                    DeviceArray<Device> input(device);
                    oc::encode(*pair.gpu, input.data, static_cast<int>(n), packed.data);
                    EXPECT_EQ(packed.download(), pair.cpu.encode(std::span<const Host>(host))) << pair.label << " (" << type << " input)";
                };
                check_16_bit.template operator()<octopus::half, __half>("half");
                check_16_bit.template operator()<octopus::bfloat16, __nv_bfloat16>("bfloat16");
            }
}

TEST_F(Gpu, EncodeRefusesNonFiniteVectorsAndLeavesTheirSlots) {
    for (bool turboquant : {true, false}) {
        const Pair pair = make_pair(turboquant, 128, 3, 7, NormFormat::fp16);
        const std::size_t d = 128, n = 6, rb = pair.cpu.bytes_per_vector();
        auto keys = test_keys(n, d, 3);
        keys[3 * d + 10] = std::nanf("");
        keys[4 * d + 0] = INFINITY;
        for (std::size_t j = 0; j < d; ++j) keys[5 * d + j] = 1e5f;  // norm beyond fp16: refused, not clamped
        DeviceArray<float> x(keys);
        DeviceArray<std::uint8_t> packed(std::vector<std::uint8_t>(n * rb, 0xAB));
        DeviceArray<unsigned> rejected(std::vector<unsigned>{0});
        oc::encode(*pair.gpu, x.data, static_cast<int>(n), packed.data, rejected.data);
        OCTOPUS_CUDA_CHECK(cudaDeviceSynchronize());
        EXPECT_EQ(rejected.download()[0], 3u);
        const auto got = packed.download();
        const auto good = pair.cpu.encode(std::span<const float>(keys.data(), 3 * d));
        EXPECT_TRUE(std::equal(good.begin(), good.end(), got.begin())) << pair.label;
        for (std::size_t i = 3 * rb; i < n * rb; ++i) ASSERT_EQ(got[i], 0xAB) << pair.label << " byte " << i << " was written";
    }
}

TEST_F(Gpu, EncodeAppendsAtEachSequencesPosition) {
    const Pair pair = make_pair(false, 128, 3, 11);
    const int batch = 2, heads = 3, capacity = 32, d = 128;
    const std::size_t rb = pair.cpu.bytes_per_vector();
    const auto keys = test_keys(batch * heads, d, 5);
    DeviceArray<float> x(keys);
    DeviceArray<std::uint8_t> cache(std::vector<std::uint8_t>(batch * heads * capacity * rb, 0x5C));
    DeviceArray<int> positions(std::vector<int>{5, 17});
    oc::encode(*pair.gpu, x.data, oc::CacheTarget{cache.data, batch, heads, capacity, positions.data});
    const auto got = cache.download();
    const auto expected = pair.cpu.encode(std::span<const float>(keys));
    for (int b = 0; b < batch; ++b)
        for (int h = 0; h < heads; ++h)
            for (int t = 0; t < capacity; ++t) {
                const std::size_t at = ((b * heads + h) * capacity + t) * rb;
                for (std::size_t k = 0; k < rb; ++k) {
                    const std::uint8_t want = t == (b == 0 ? 5 : 17) ? expected[(b * heads + h) * rb + k] : 0x5C;
                    ASSERT_EQ(got[at + k], want) << "sequence " << b << " head " << h << " token " << t;
                }
            }
    // Positions outside [0, capacity) would land in another head's records: refused, nothing written.
    DeviceArray<int> bad_positions(std::vector<int>{-1, capacity});
    DeviceArray<unsigned> rejected(std::vector<unsigned>{0});
    oc::encode(*pair.gpu, x.data, oc::CacheTarget{cache.data, batch, heads, capacity, bad_positions.data}, rejected.data);
    EXPECT_EQ(rejected.download()[0], static_cast<unsigned>(batch * heads));
    EXPECT_EQ(cache.download(), got);
}

TEST_F(Gpu, EncodeKvWritesWhatTwoEncodesWrite) {
    // Keys and values with different codecs and norm formats, one launch: the CPU encoder's bytes for both.
    const Pair keys = make_pair(true, 128, 3, 12);
    const Pair values = make_pair(false, 128, 8.0 / 3, 13, NormFormat::fp16);
    const int batch = 2, heads = 3, capacity = 8, d = 128;
    const auto k = test_keys(batch * heads, d, 6), v = test_keys(batch * heads, d, 7);
    DeviceArray<float> dk(k), dv(v);
    DeviceArray<std::uint8_t> key_cache(std::vector<std::uint8_t>(batch * heads * capacity * keys.cpu.bytes_per_vector(), 0x5C));
    DeviceArray<std::uint8_t> value_cache(std::vector<std::uint8_t>(batch * heads * capacity * values.cpu.bytes_per_vector(), 0x5C));
    DeviceArray<int> positions(std::vector<int>{2, 7});
    DeviceArray<unsigned> rejected(std::vector<unsigned>{0});
    const oc::CacheTarget key_target{key_cache.data, batch, heads, capacity, positions.data};
    const oc::CacheTarget value_target{value_cache.data, batch, heads, capacity, positions.data};
    oc::encode_kv(*keys.gpu, dk.data, key_target, *values.gpu, dv.data, value_target, rejected.data);
    const auto got_keys = key_cache.download(), got_values = value_cache.download();
    const auto expected_keys = keys.cpu.encode(std::span<const float>(k));
    const auto expected_values = values.cpu.encode(std::span<const float>(v));
    for (const bool is_key : {true, false}) {
        const auto& got = is_key ? got_keys : got_values;
        const auto& expected = is_key ? expected_keys : expected_values;
        const std::size_t rb = (is_key ? keys : values).cpu.bytes_per_vector();
        for (int b = 0; b < batch; ++b)
            for (int h = 0; h < heads; ++h)
                for (int t = 0; t < capacity; ++t)
                    for (std::size_t i = 0; i < rb; ++i) {
                        const std::uint8_t want = t == (b == 0 ? 2 : 7) ? expected[(b * heads + h) * rb + i] : 0x5C;
                        ASSERT_EQ(got[((b * heads + h) * capacity + t) * rb + i], want)
                            << (is_key ? "keys" : "values") << ", sequence " << b << " head " << h << " token " << t;
                    }
    }
    EXPECT_EQ(rejected.download()[0], 0u);
    // Head dims must agree; nothing is launched when they do not.
    const Pair other_dim = make_pair(true, 64, 3, 1);
    EXPECT_THROW(oc::encode_kv(*keys.gpu, dk.data, key_target, *other_dim.gpu, dv.data, value_target), octopus::error);
    EXPECT_EQ(key_cache.download(), got_keys);
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

TEST_F(Gpu, FusedScoresMatchTheCpuDot) {
    for (std::size_t d : {64, 128, 256})
        for (const Config& config : kAllCodecs) {
            const Pair pair = make_pair(config.turboquant, d, config.bits, 3 + d, d == 128 ? NormFormat::fp16 : NormFormat::fp32);
            // Groups of every block width: 7 (8 columns, one unused), 4, and 20 (two blocks of 16 heads).
            const int batch = 2, kv_heads = 2, group = d == 64 ? 7 : d == 128 ? 4 : 20, q_heads = kv_heads * group, capacity = 224;
            const std::vector<int> lengths = {37, 211};
            const HostCache cache = host_cache(pair.cpu, batch, kv_heads, capacity, lengths, 9);
            const auto q = test_queries(batch, q_heads, d, 17);
            DeviceArray<std::uint8_t> device_cache(cache.bytes);
            DeviceArray<float> device_q(q);
            DeviceArray<int> device_lengths(lengths);
            const int max_length = 211;
            DeviceArray<float> out(std::vector<float>(static_cast<std::size_t>(batch) * q_heads * max_length, -7.0f));
            oc::scores(*pair.gpu, device_q.data, device_cache.data,
                       oc::CacheShape{batch, q_heads, kv_heads, capacity, device_lengths.data, max_length}, out.data);
            const auto got = out.download();
            double worst = 0.0, error2 = 0.0, norm2 = 0.0;
            for (int b = 0; b < batch; ++b)
                for (int i = 0; i < q_heads; ++i) {
                    const int h = i / group;
                    const std::span<const float> query(q.data() + (b * q_heads + i) * d, d);
                    const std::size_t rb = pair.cpu.bytes_per_vector();
                    const std::span<const std::uint8_t> packed(cache.bytes.data() + (b * kv_heads + h) * capacity * rb,
                                                               lengths[b] * rb);
                    const auto expected = pair.cpu.dot(query, packed);
                    double qn = 0.0;
                    for (float x : query) qn += double(x) * x;
                    for (int t = 0; t < max_length; ++t) {
                        const float g = got[(b * q_heads + i) * max_length + t];
                        if (t >= lengths[b]) {
                            ASSERT_EQ(g, -7.0f) << pair.label << ": a score past the length was written";
                            continue;
                        }
                        double kn = 0.0;
                        for (std::size_t j = 0; j < d; ++j)
                            kn += double(cache.decoded[b * kv_heads + h][t * d + j]) * cache.decoded[b * kv_heads + h][t * d + j];
                        const double e = std::fabs(double(g) - expected[t]);
                        worst = std::max(worst, e / std::max(1e-30, std::sqrt(qn * kn)));
                        error2 += e * e;
                        norm2 += double(expected[t]) * expected[t];
                    }
                }
            // fp16 operands: each term carries ~2^-12 relative rounding, so a score's error is a small
            // multiple of 2^-12 · |q|·|k|, and over all scores the error is ~1e-4 of their norm.
            EXPECT_LT(std::sqrt(error2 / norm2), 1e-3) << pair.label;
            EXPECT_LT(worst, 2e-3) << pair.label;
            RecordProperty(pair.label + " rel", std::to_string(std::sqrt(error2 / norm2)));
            std::printf("scores %-36s relative error %.2e, worst |Δ|/(|q||k|) %.2e\n", pair.label.c_str(),
                        std::sqrt(error2 / norm2), worst);
        }
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

TEST_F(Gpu, FusedAttentionMatchesADoubleReferenceOnDecodedKeysAndValues) {
    for (const Config& config : kAllCodecs) check_attention(config.turboquant, 128, config.bits, 2, 32, 8, {1000, 77}, 1008);
    for (std::size_t d : {64, 256}) {  // groups of 6 and 8: blocks of 8 heads
        const int q_heads = d == 64 ? 12 : 16;
        check_attention(true, d, 2, 2, q_heads, 2, {300, 5}, 304);  // 2 bits: the quad table
        check_attention(true, d, 3, 2, q_heads, 2, {300, 5}, 304);
        check_attention(false, d, 3, 2, q_heads, 2, {300, 5}, 304);
    }
    // 68-byte keys and values (4 bits, fp32 norms): TurboQuant takes a tile's tokens in swapped pairs.
    check_attention(true, 128, 4, 2, 32, 8, {1000, 77}, 1008, 128, NormFormat::fp32);
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

TEST_F(Gpu, PreconditionedEncodeScoresAndAttentionMatchTheCpuHeadCodec) {
    for (std::size_t d : {64, 128, 256})
        for (const Config& config : {Config{true, 3}, Config{false, 3}, Config{false, 8.0 / 3}}) {
            const Pair keys = make_pair(config.turboquant, d, config.bits, 31, NormFormat::fp32);
            const Pair values = make_pair(config.turboquant, d, config.bits, 32, NormFormat::fp16);
            const int batch = 3, kv_heads = 2, group = 4, q_heads = kv_heads * group, capacity = 64;
            const std::vector<int> lengths = {50, 17, 0};
            const int max_length = 50;
            const std::size_t kb = keys.cpu.bytes_per_vector(), vb = values.cpu.bytes_per_vector();
            // Keys far from centred (an offset 30× their spread in some channels), values offset too.
            std::vector<float> k(static_cast<std::size_t>(batch) * kv_heads * capacity * d), v(k.size());
            std::vector<float> key_offset(batch * kv_heads * d), key_scale(key_offset.size()), value_offset(key_offset.size());
            std::vector<octopus::HeadCodec> heads;
            for (int b = 0; b < batch; ++b)
                for (int h = 0; h < kv_heads; ++h) {
                    const int index = b * kv_heads + h;
                    const auto p = test_preconditioner(d, index);
                    std::copy(p.key_offset.begin(), p.key_offset.end(), key_offset.begin() + index * d);
                    std::copy(p.key_scale.begin(), p.key_scale.end(), key_scale.begin() + index * d);
                    std::copy(p.value_offset.begin(), p.value_offset.end(), value_offset.begin() + index * d);
                    heads.emplace_back(keys.cpu, values.cpu, p);
                    const auto x = test_keys(capacity, d, 50 + index, 3), y = test_keys(capacity, d, 80 + index, 3);
                    for (std::size_t i = 0; i < capacity * d; ++i) {
                        k[index * capacity * d + i] = x[i] + p.key_offset[i % d];
                        v[index * capacity * d + i] = y[i] + p.value_offset[i % d];
                    }
                }
            DeviceArray<float> d_key_offset(key_offset), d_key_scale(key_scale), d_value_offset(value_offset);
            const oc::Preconditioning pre{d_key_offset.data, d_key_scale.data, d_value_offset.data};
            // Encode token by token, as an engine appends: the CPU HeadCodec's bytes.
            DeviceArray<std::uint8_t> key_cache(batch * kv_heads * capacity * kb), value_cache(batch * kv_heads * capacity * vb);
            DeviceArray<unsigned> rejected(std::vector<unsigned>{0});
            for (int t = 0; t < capacity; ++t) {
                std::vector<float> new_k(batch * kv_heads * d), new_v(new_k.size());
                for (int index = 0; index < batch * kv_heads; ++index)
                    for (std::size_t c = 0; c < d; ++c) {
                        new_k[index * d + c] = k[(index * capacity + t) * d + c];
                        new_v[index * d + c] = v[(index * capacity + t) * d + c];
                    }
                DeviceArray<float> dk(new_k), dv(new_v);
                DeviceArray<int> positions(std::vector<int>(batch, t));
                oc::encode_kv(*keys.gpu, dk.data, oc::CacheTarget{key_cache.data, batch, kv_heads, capacity, positions.data},
                              *values.gpu, dv.data, oc::CacheTarget{value_cache.data, batch, kv_heads, capacity, positions.data},
                              rejected.data, nullptr, pre);
            }
            EXPECT_EQ(rejected.download()[0], 0u) << keys.label;
            const auto got_keys = key_cache.download(), got_values = value_cache.download();
            HostCache key_host, value_host;
            for (int index = 0; index < batch * kv_heads; ++index) {
                std::vector<std::uint8_t> expected_keys(capacity * kb), expected_values(capacity * vb);
                heads[index].encode_keys(std::span<const float>(k.data() + index * capacity * d, capacity * d),
                                         std::span<std::uint8_t>(expected_keys));
                heads[index].encode_values(std::span<const float>(v.data() + index * capacity * d, capacity * d),
                                           std::span<std::uint8_t>(expected_values));
                ASSERT_TRUE(std::equal(expected_keys.begin(), expected_keys.end(), got_keys.begin() + index * capacity * kb))
                    << keys.label << ": GPU key bytes differ from HeadCodec's, head " << index;
                ASSERT_TRUE(std::equal(expected_values.begin(), expected_values.end(), got_values.begin() + index * capacity * vb))
                    << keys.label << ": GPU value bytes differ from HeadCodec's, head " << index;
                std::vector<float> dk(capacity * d), dv(capacity * d);
                heads[index].decode_keys(expected_keys, dk);
                heads[index].decode_values(expected_values, dv);
                key_host.decoded.push_back(dk);
                value_host.decoded.push_back(dv);
            }
            // Scores: HeadCodec::dot, q·μ included.
            const auto q = test_queries(batch, q_heads, d, 33);
            DeviceArray<float> dq(q);
            DeviceArray<int> dl(lengths);
            const oc::CacheShape shape{batch, q_heads, kv_heads, capacity, dl.data, max_length};
            DeviceArray<float> scores(static_cast<std::size_t>(batch) * q_heads * max_length);
            oc::scores(*keys.gpu, dq.data, key_cache.data, shape, scores.data, nullptr, pre);
            const auto got_scores = scores.download();
            double error2 = 0.0, norm2 = 0.0;
            for (int b = 0; b < batch; ++b)
                for (int i = 0; i < q_heads; ++i) {
                    const int index = b * kv_heads + i / group;
                    const std::vector<float> expected = [&] {
                        std::vector<float> out(lengths[b]);
                        heads[index].dot(std::span<const float>(q.data() + (b * q_heads + i) * d, d),
                                         std::span<const std::uint8_t>(got_keys.data() + index * capacity * kb, lengths[b] * kb), out);
                        return out;
                    }();
                    for (int t = 0; t < lengths[b]; ++t) {
                        const double e = got_scores[(b * q_heads + i) * max_length + t] - expected[t];
                        error2 += e * e, norm2 += double(expected[t]) * expected[t];
                    }
                }
            EXPECT_LT(std::sqrt(error2 / norm2), 1e-3) << keys.label << " scores";
            // Attention: softmax over the restored keys, restored values (μ_v added); zeros for no context.
            const double scale = 1.0 / std::sqrt(static_cast<double>(d));
            auto small_q = q;
            for (float& x : small_q) x *= 0.05f;  // logits of a few units over keys of norm ~30√d
            dq.upload(small_q);
            const auto expected = reference_attention(small_q, key_host, value_host, batch, q_heads, kv_heads, d, lengths, scale);
            DeviceArray<float> out(std::vector<float>(small_q.size(), NAN));
            oc::AttentionWorkspace workspace(batch, q_heads, kv_heads, static_cast<int>(d));
            oc::decode_attention(*keys.gpu, *values.gpu, dq.data, key_cache.data, value_cache.data, shape,
                                 static_cast<float>(scale), out.data, workspace, nullptr, pre);
            const double worst = worst_row_error(out.download(), expected, d);
            EXPECT_LT(worst, 1e-3) << keys.label << " attention";
            std::printf("preconditioned %-30s scores relative error %.2e, attention worst row %.2e\n", keys.label.c_str(),
                        std::sqrt(error2 / norm2), worst);
        }
}

// Host code, run without a GPU too: the order of a tile's tokens the fused kernels choose.
TEST(TileOrder, SwapsPairsOnlyWhereThatSpreadsTheLanesReadsOverMoreBanks) {
    namespace d = oc::detail;
    constexpr d::TileOrder identity{false}, swapped{true};
    std::vector<int> tokens;
    for (int r = 0; r < 16; ++r) tokens.push_back(swapped(r));
    EXPECT_EQ(tokens, (std::vector<int>{0, 1, 3, 2, 4, 5, 7, 6, 8, 9, 11, 10, 12, 13, 15, 14}));
    for (int r = 0; r < 16; ++r) EXPECT_EQ(identity(r), r);

    int one_word[32], all_banks[32], two_per_bank[32];
    for (int lane = 0; lane < 32; ++lane) {
        one_word[lane] = 7;                                 // a broadcast
        all_banks[lane] = 64 + lane;                        // one word per bank
        two_per_bank[lane] = lane % 16 + 32 * (lane / 16);  // lanes l and l + 16: one bank, two words
    }
    EXPECT_EQ(d::wavefronts(one_word), 1);
    EXPECT_EQ(d::wavefronts(all_banks), 1);
    EXPECT_EQ(d::wavefronts(two_per_bank), 2);

    // 17-word records (4 bits at d = 128 with fp32 norms) read in fewer wavefronts swapped; 13-word ones
    // (3 bits) and 16.5-word ones (4 bits, fp16 norms) no fewer, so they keep the identity, as OCTOPUS
    // always does.
    using T4 = d::TurboQuantFragments<128, 4, d::kTableBudget>;
    using O12 = d::OctopusFragments<128, 12, d::kTableBudget>;
    using T3 = d::TurboQuantFragments<128, 3, d::kTableBudget>;
    EXPECT_EQ(d::choose_tile_order<T4>(68, 68), swapped);
    EXPECT_EQ(d::choose_tile_order<O12>(68, 68), identity);
    EXPECT_EQ(d::choose_tile_order<T4>(68, 0), identity);  // its keys alone (scores) are read as fast either way
    EXPECT_EQ(d::choose_tile_order<T4>(66, 66), identity);
    EXPECT_EQ(d::choose_tile_order<T3>(52, 52), identity);
}

TEST_F(Gpu, FusedAttentionHandlesLongContextsManyHeadsAndEmptySequences) {
    check_attention(false, 128, 3, 1, 32, 8, {20000}, 20000);  // split over many blocks
    check_attention(false, 128, 3, 1, 40, 2, {500}, 512);        // 20 heads per KV head: two 16-row chunks
    check_attention(true, 128, 4, 3, 4, 4, {1, 16, 17}, 32);     // plain multi-head, tiny lengths
    // A sequence of length 0 attends to nothing: zeros, not NaN.
    check_attention(false, 128, 3, 2, 4, 2, {0, 40}, 48);
}

// One split per (sequence, KV head), as when batch × KV heads fill the GPU (batch 16 and up on an H100): each
// block normalizes and rotates its own rows, with no partial results and no merge of splits.
TEST_F(Gpu, FusedAttentionInOneSplitPerSequence) {
    check_attention(true, 128, 3, 2, 32, 8, {1000, 77}, 1008, 1);
    check_attention(false, 128, 3, 1, 40, 2, {500}, 512, 1);  // two 16-row chunks
    check_attention(false, 64, 3, 2, 12, 2, {300, 5}, 304, 1);
    check_attention(true, 256, 3, 2, 16, 2, {300, 5}, 304, 1);
    check_attention(false, 128, 3, 2, 4, 2, {0, 40}, 48, 1);  // an empty sequence: zeros
}

TEST_F(Gpu, LengthsBeyondMaxLengthAreHeldToIt) {
    // Lengths live on the device, where nothing can throw; one past max_length must not send the
    // kernels past the cache or the output rows (compute-sanitizer checks the reads).
    const Pair pair = make_pair(false, 128, 3, 2);
    const int capacity = 48, max_length = 40, d = 128;
    const HostCache cache = host_cache(pair.cpu, 1, 1, capacity, {max_length}, 4);
    const auto q = test_queries(1, 2, d, 5);
    DeviceArray<std::uint8_t> dk(cache.bytes);
    DeviceArray<float> dq(q);
    DeviceArray<float> good(2 * max_length), clamped(2 * max_length);
    DeviceArray<int> exact(std::vector<int>{max_length}), too_long(std::vector<int>{1000});
    oc::scores(*pair.gpu, dq.data, dk.data, oc::CacheShape{1, 2, 1, capacity, exact.data, max_length}, good.data);
    oc::scores(*pair.gpu, dq.data, dk.data, oc::CacheShape{1, 2, 1, capacity, too_long.data, max_length}, clamped.data);
    EXPECT_EQ(good.download(), clamped.download());
    DeviceArray<float> out_good(2 * d), out_clamped(2 * d);
    oc::AttentionWorkspace workspace(1, 2, 1, d);
    oc::decode_attention(*pair.gpu, *pair.gpu, dq.data, dk.data, dk.data, oc::CacheShape{1, 2, 1, capacity, exact.data, max_length},
                         0.1f, out_good.data, workspace);
    oc::decode_attention(*pair.gpu, *pair.gpu, dq.data, dk.data, dk.data,
                         oc::CacheShape{1, 2, 1, capacity, too_long.data, max_length}, 0.1f, out_clamped.data, workspace);
    EXPECT_EQ(out_good.download(), out_clamped.download());
}

TEST_F(Gpu, BadArgumentsThrowBeforeLaunching) {
    const Pair pair = make_pair(false, 128, 3, 1);
    const Pair tq = make_pair(true, 128, 3, 1);
    DeviceArray<std::uint8_t> cache(64 * 52 + 16);
    DeviceArray<float> q(128 * 8), out(8 * 64);
    DeviceArray<int> lengths(std::vector<int>{10});
    const oc::CacheShape good{1, 4, 2, 32, lengths.data, 32};
    EXPECT_NO_THROW(oc::scores(*pair.gpu, q.data, cache.data, good, out.data));
    auto shape = good;
    shape.capacity = 30;
    EXPECT_THROW(oc::scores(*pair.gpu, q.data, cache.data, shape, out.data), octopus::error);
    shape = good;
    shape.q_heads = 3;
    EXPECT_THROW(oc::scores(*pair.gpu, q.data, cache.data, shape, out.data), octopus::error);
    shape = good;
    shape.max_length = 33;
    EXPECT_THROW(oc::scores(*pair.gpu, q.data, cache.data, shape, out.data), octopus::error);
    EXPECT_THROW(oc::scores(*pair.gpu, q.data, cache.data + 4, good, out.data), octopus::error);
    EXPECT_THROW(oc::scores(*pair.gpu, nullptr, cache.data, good, out.data), octopus::error);
    oc::AttentionWorkspace workspace(1, 4, 2, 128);
    EXPECT_THROW(oc::decode_attention(*pair.gpu, *tq.gpu, q.data, cache.data, cache.data, good, 0.1f, out.data, workspace),
                 octopus::error);
    EXPECT_THROW(oc::decode_attention(*pair.gpu, *pair.gpu, q.data, cache.data, cache.data, good, NAN, out.data, workspace),
                 octopus::error);
    oc::AttentionWorkspace other(1, 8, 2, 128);
    EXPECT_THROW(oc::decode_attention(*pair.gpu, *pair.gpu, q.data, cache.data, cache.data, good, 0.1f, out.data, other),
                 octopus::error);
    const Pair one_bit = make_pair(true, 128, 1, 1);
    EXPECT_THROW(oc::scores(*one_bit.gpu, q.data, cache.data, good, out.data), octopus::error);
    const Pair odd_dim = make_pair(false, 96, 3, 1);
    EXPECT_THROW(oc::encode(*odd_dim.gpu, q.data, 1, cache.data), octopus::error);
    OCTOPUS_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
