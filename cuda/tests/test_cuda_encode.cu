// GPU encode against the CPU encoder, its specification: the same bytes for every codec, dim, norm
// format and input type; refusals that leave slots untouched; appends at each sequence's position;
// and the functions both sides share (contract.hpp) computing the same bits on both.
#include "support.cuh"

namespace {

TEST_F(Gpu, EncodeWritesTheCpuBytesForEveryCodecDimAndInputType) {
    std::vector<Config> configs = kAllCodecs;
    configs.push_back({true, 1});  // one threshold: the smallest search over a scalar codebook
    for (std::size_t d : {64, 128, 256})
        for (const Config& config : configs)
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

/// One thread per input: the shared functions of contract.hpp and detail/nearest_point.hpp as the encode
/// kernel calls them (the nearest-point rank against one fixed point, the bent coordinate of x).
__global__ void shared_arithmetic_kernel(const float* xyz, int n, const float* table, unsigned steps, float* norm,
                                         float* u, float* v, std::uint32_t* cell, float* rank, float* bent) {
    const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= n) return;
    const float x = xyz[3 * i], y = xyz[3 * i + 1], z = xyz[3 * i + 2];
    norm[i] = octopus::detail::triplet_norm(x, y, z);
    const octopus::SquarePoint<float> s = octopus::octahedral_encode(x, y, z);
    u[i] = s.u;
    v[i] = s.v;
    cell[i] = octopus::detail::padded_search(table, steps, s.u);
    rank[i] = octopus::detail::point_rank(x, y, z, 0.3125f, -0.171875f, 0.0977f, 0.1354f);
    bent[i] = octopus::detail::bent(x, 0.1414f);
}

std::vector<std::uint32_t> float_bits(const std::vector<float>& x) {
    std::vector<std::uint32_t> bits(x.size());
    std::memcpy(bits.data(), x.data(), 4 * x.size());
    return bits;
}

TEST_F(Gpu, SharedArithmeticGivesTheHostsBitsOnTheDevice) {
    // Triplets of every kind the encoders meet: Gaussian ones of many scales, signed zeros on each axis,
    // exact octant boundaries, subnormals and huge values.
    std::mt19937 rng(5);
    std::normal_distribution<float> gauss;
    std::vector<float> xyz;
    for (int i = 0; i < 20000; ++i) xyz.push_back(gauss(rng) * std::ldexp(1.0f, static_cast<int>(i % 40) - 20));
    for (float a : {0.0f, -0.0f, 1.0f, -1.0f, 1e-40f, -1e-40f, 3e38f})
        for (float b : {0.0f, -0.0f, 0.5f, -2.0f})
            for (float c : {0.0f, -0.0f, 0.25f, -1e-30f}) xyz.insert(xyz.end(), {a, b, c});
    const int n = static_cast<int>(xyz.size() / 3);
    std::vector<float> table;
    for (int k = 0; k < 63; ++k) table.push_back(k < 50 ? -1.0f + 2.0f * k / 49.0f : INFINITY);
    const unsigned steps = 6;
    std::vector<float> norm(n), u(n), v(n), rank(n), bent(n);
    std::vector<std::uint32_t> cell(n);
    for (int i = 0; i < n; ++i) {
        norm[i] = octopus::detail::triplet_norm(xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]);
        const auto s = octopus::octahedral_encode(xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]);
        u[i] = s.u;
        v[i] = s.v;
        cell[i] = octopus::detail::padded_search(table.data(), steps, s.u);
        rank[i] = octopus::detail::point_rank(xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2], 0.3125f, -0.171875f, 0.0977f, 0.1354f);
        bent[i] = octopus::detail::bent(xyz[3 * i], 0.1414f);
    }
    DeviceArray<float> d_xyz(xyz), d_table(table), d_norm(static_cast<std::size_t>(n)), d_u(static_cast<std::size_t>(n)),
        d_v(static_cast<std::size_t>(n)), d_rank(static_cast<std::size_t>(n)), d_bent(static_cast<std::size_t>(n));
    DeviceArray<std::uint32_t> d_cell(static_cast<std::size_t>(n));
    shared_arithmetic_kernel<<<(n + 127) / 128, 128>>>(d_xyz.data, n, d_table.data, steps, d_norm.data, d_u.data, d_v.data,
                                                        d_cell.data, d_rank.data, d_bent.data);
    OCTOPUS_CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_EQ(float_bits(d_norm.download()), float_bits(norm)) << "triplet_norm";
    EXPECT_EQ(float_bits(d_u.download()), float_bits(u)) << "octahedral_encode u";
    EXPECT_EQ(float_bits(d_v.download()), float_bits(v)) << "octahedral_encode v";
    EXPECT_EQ(d_cell.download(), cell) << "padded_search";
    EXPECT_EQ(float_bits(d_rank.download()), float_bits(rank)) << "point_rank";
    EXPECT_EQ(float_bits(d_bent.download()), float_bits(bent)) << "bent";
}

}  // namespace
