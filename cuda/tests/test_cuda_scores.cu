// Fused scores from codes against the CPU codec's dot.
#include "support.cuh"

namespace {

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

}  // namespace
