// Fused decode attention against a double-precision softmax over the CPU-decoded keys and values:
// every codec, grouped-query attention, long contexts, empty sequences, one split or many; the tile
// order the kernels choose (host code); the argument checks of every launcher; and preconditioned heads
// through the whole pipeline (encode, scores, attention) against the CPU's HeadCodec. The tests that
// call every launcher live here, beside the attention kernels, so that CI compiles each kernel family
// in as few translation units as it can.
#include "support.cuh"

namespace {

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

}  // namespace
