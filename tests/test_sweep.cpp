// The sweep's pieces: .npy reading with its errors, heads from dumps, and the attention metrics.
#include <gtest/gtest.h>

#include <cstdio>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "npy.hpp"
#include "plot.hpp"
#include "sweep.hpp"

namespace {

namespace fs = std::filesystem;
using octopus::sweep::read_npy;
using octopus::sweep::write_npy;

struct TempDir {
    fs::path path = fs::temp_directory_path() / ("octopus_sweep_test_" + std::to_string(::getpid()));
    TempDir() { fs::create_directories(path); }
    ~TempDir() { fs::remove_all(path); }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_raw(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string npy_bytes(const std::string& header_dict, std::size_t data_bytes) {
    std::string header = header_dict;
    while ((10 + header.size() + 1) % 64) header += ' ';
    header += '\n';
    std::string out = std::string("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(header.size() & 0xff);
    out += static_cast<char>(header.size() >> 8);
    return out + header + std::string(data_bytes, '\0');
}

TEST(Npy, RoundTripsFloat32AndReadsFloat16) {
    TempDir dir;
    std::vector<float> data(2 * 3 * 5 * 64);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = 0.01f * float(i % 97) - 0.3f;
    write_npy(dir.file("a.npy"), {2, 3, 5, 64}, data);
    const auto back = read_npy(dir.file("a.npy"));
    EXPECT_EQ(back.shape, (std::vector<std::size_t>{2, 3, 5, 64}));
    EXPECT_EQ(back.data, data);
    // float16: 1.0 and −2.5 as IEEE half bits.
    std::string bytes = npy_bytes("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 0);
    bytes += std::string("\x00\x3c\x00\xc1", 4);
    write_raw(dir.file("h.npy"), bytes);
    const auto h = read_npy(dir.file("h.npy"));
    EXPECT_EQ(h.data, (std::vector<float>{1.0f, -2.5f}));
}

TEST(Npy, RefusesBadFilesWithMessagesThatSayWhy) {
    TempDir dir;
    const auto expect_error = [&](const std::string& name, const std::string& bytes, const std::string& words) {
        write_raw(dir.file(name), bytes);
        try {
            read_npy(dir.file(name));
            ADD_FAILURE() << name << ": no error";
        } catch (const octopus::error& e) {
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
    };
    expect_error("magic.npy", "not numpy at all", "bad magic");
    expect_error("f8.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", 32), "dtype");
    expect_error("big.npy", npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", 16), "dtype");
    expect_error("fortran.npy", npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16), "Fortran");
    expect_error("short.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 64), }", 100), "truncated");
    expect_error("header.npy", std::string("\x93NUMPY\x01\x00\xff\x00{'descr'", 17), "truncated");
    EXPECT_THROW(read_npy(dir.file("missing.npy")), octopus::error);
}

TEST(NpyDataset, SplitsHeadsAndHoldsOutTheLastTenPercentAsQueries) {
    TempDir dir;
    const std::size_t layers = 2, heads = 2, tokens = 50, d = 64;
    std::vector<float> keys(layers * heads * tokens * d);
    for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = float(i / d) + 0.001f * float(i % d);
    write_npy(dir.file("k.npy"), {layers, heads, tokens, d}, keys);
    const auto data = octopus::sweep::npy_dataset(dir.file("k.npy"), "", "", 100);
    ASSERT_EQ(data.heads.size(), 4u);
    EXPECT_EQ(data.dim, d);
    for (std::size_t h = 0; h < 4; ++h) {
        EXPECT_EQ(data.heads[h].keys.size(), 45 * d);
        EXPECT_EQ(data.heads[h].queries.size(), 5 * d);
        EXPECT_EQ(data.heads[h].values, data.heads[h].keys);  // no --values: values are the keys
        EXPECT_EQ(data.heads[h].keys[0], float(h * tokens));  // head h starts at token h·50
        EXPECT_EQ(data.heads[h].queries[0], float(h * tokens + 45));
    }
    // Queries of another head dim, or a dim the library does not support, are refused.
    write_npy(dir.file("q.npy"), {layers, heads, 4, 128}, std::vector<float>(layers * heads * 4 * 128, 0.1f));
    EXPECT_THROW(octopus::sweep::npy_dataset(dir.file("k.npy"), dir.file("q.npy"), "", 16), octopus::error);
    write_npy(dir.file("odd.npy"), {30, 100}, std::vector<float>(3000, 0.1f));
    EXPECT_THROW(octopus::sweep::npy_dataset(dir.file("odd.npy"), "", "", 16), octopus::error);
    write_npy(dir.file("rank3.npy"), {2, 30, 64}, std::vector<float>(2 * 30 * 64, 0.1f));
    EXPECT_THROW(octopus::sweep::npy_dataset(dir.file("rank3.npy"), "", "", 16), octopus::error);
}

TEST(NpyDataset, GroupsQueryHeadsByKvHeadAndPlacesCausalQueriesAtTheKeysLastPositions) {
    TempDir dir;
    const std::size_t layers = 2, kv_heads = 2, group = 3, tokens = 40, query_tokens = 8, d = 64;
    std::vector<float> keys(layers * kv_heads * tokens * d), queries(layers * kv_heads * group * query_tokens * d);
    for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = float(i / d);
    for (std::size_t i = 0; i < queries.size(); ++i) queries[i] = float(i / d);  // row r of the file holds r
    write_npy(dir.file("k.npy"), {layers, kv_heads, tokens, d}, keys);
    write_npy(dir.file("q.npy"), {layers, kv_heads * group, query_tokens, d}, queries);
    const auto data = octopus::sweep::npy_dataset(dir.file("k.npy"), dir.file("q.npy"), "", {2, true, {1}});
    ASSERT_EQ(data.heads.size(), kv_heads);  // layer 1 only
    EXPECT_EQ(data.layers, layers);
    for (std::size_t h = 0; h < kv_heads; ++h) {
        const auto& head = data.heads[h];
        EXPECT_EQ(head.layer, 1u);
        EXPECT_EQ(head.kv_head, h);
        ASSERT_EQ(head.queries.size(), group * 2 * d);  // two evenly spaced rows of each of the group's heads
        ASSERT_EQ(head.fit_queries.size(), group * 6 * d);
        for (std::size_t g = 0; g < group; ++g) {
            const float first_row = float(((1 * kv_heads + h) * group + g) * query_tokens);  // query head h·G + g
            EXPECT_EQ(head.queries[(2 * g) * d], first_row);
            EXPECT_EQ(head.queries[(2 * g + 1) * d], first_row + 4);
            EXPECT_EQ(head.positions[2 * g], tokens - query_tokens);
            EXPECT_EQ(head.positions[2 * g + 1], tokens - query_tokens + 4);
        }
        EXPECT_EQ(head.fit_positions.size(), group * 6);
    }
    // Query heads that are not a multiple of the KV heads, causal queries longer than the keys, causal
    // without queries and a layer outside the dump are refused, saying why.
    write_npy(dir.file("q5.npy"), {layers, 5, query_tokens, d}, std::vector<float>(layers * 5 * query_tokens * d, 0.1f));
    const auto expect_error = [&](const std::string& q, const octopus::sweep::DumpOptions& options, const std::string& words) {
        try {
            octopus::sweep::npy_dataset(dir.file("k.npy"), q, "", options);
            ADD_FAILURE() << "no error for " << words;
        } catch (const octopus::error& e) {
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
    };
    expect_error(dir.file("q5.npy"), {2, false, {}}, "not a multiple");
    write_npy(dir.file("qlong.npy"), {layers, kv_heads, tokens + 1, d}, std::vector<float>(layers * kv_heads * (tokens + 1) * d, 0.1f));
    expect_error(dir.file("qlong.npy"), {2, true, {}}, "only 40 keys");
    expect_error("", {2, true, {}}, "needs the model's queries");
    expect_error(dir.file("q.npy"), {2, true, {7}}, "layer 7");
}

TEST(SweepMetrics, CausalQueriesSeeOnlyTheKeysBeforeThem) {
    // One query at position 0 sees key 0 alone: its attention is exact whatever the codec.
    octopus::sweep::Dataset data{"causal", 64, {}, 1};
    octopus::sweep::Head head;
    head.keys = octopus::uniform_unit_vectors(50, 64, 1);
    for (float& x : head.keys) x *= 8.0f;
    head.values = head.keys;
    head.queries = octopus::uniform_unit_vectors(1, 64, 2);
    for (float& x : head.queries) x *= 8.0f;
    head.positions = {0};
    data.heads.push_back(head);
    const auto codec = octopus::make_codec("turboquant", {64, 1, 1});
    EXPECT_NEAR(octopus::sweep::measure(codec, 1, data).attn_kl, 0.0, 1e-12);
    data.heads[0].positions = {49};
    EXPECT_GT(octopus::sweep::measure(codec, 1, data).attn_kl, 1e-3);
}

TEST(SweepMetrics, PerLayerRowsAndPreconditioningOfOffsetKeys) {
    // Two layers of heads whose keys carry a common offset ten times their spread: centring cuts the
    // attention error, every head's fit says what it chose, and per-layer rows follow the overall one.
    octopus::sweep::Dataset data{"offset", 64, {}, 2};
    for (std::size_t layer = 0; layer < 2; ++layer) {
        octopus::sweep::Head head;
        head.layer = layer;
        head.keys = octopus::uniform_unit_vectors(300, 64, 10 + layer);
        const auto offset = octopus::uniform_unit_vectors(1, 64, 20 + layer);
        for (std::size_t i = 0; i < head.keys.size(); ++i) head.keys[i] = 8.0f * head.keys[i] + 80.0f * offset[i % 64];
        head.values = octopus::uniform_unit_vectors(300, 64, 30 + layer);
        head.queries = octopus::uniform_unit_vectors(16, 64, 40 + layer);
        head.fit_queries = octopus::uniform_unit_vectors(64, 64, 50 + layer);
        data.heads.push_back(head);
    }
    const auto codec = octopus::make_codec("turboquant", {64, 3, 1});
    const auto none = octopus::sweep::measure_rows(codec, 3, data, {octopus::Preconditioning::none, 128}, true);
    const auto center = octopus::sweep::measure_rows(codec, 3, data, {octopus::Preconditioning::center, 128}, true);
    const auto automatic = octopus::sweep::measure_rows(codec, 3, data, {octopus::Preconditioning::automatic, 128}, true);
    ASSERT_EQ(none.size(), 3u);
    EXPECT_EQ(none[0].layer, -1);
    EXPECT_EQ(none[1].layer, 0);
    EXPECT_EQ(none[2].layer, 1);
    EXPECT_NEAR(none[0].attn_kl, (none[1].attn_kl + none[2].attn_kl) / 2, 1e-12);
    EXPECT_EQ(none[0].bits_per_coord, codec.bits_per_coordinate());
    EXPECT_LT(center[0].attn_kl, none[0].attn_kl / 4);
    EXPECT_EQ(center[0].precondition, "center");
    EXPECT_EQ(center[0].chose_center, 1.0);
    // μ, s and μ_v in fp32 over 300 tokens of keys and values: 3·32 / (2·300) bits per coordinate more.
    EXPECT_NEAR(center[0].bits_per_coord - codec.bits_per_coordinate(), 3.0 * 32 / 600, 1e-12);
    EXPECT_EQ(automatic[0].chose_none, 0.0);
    EXPECT_LT(automatic[0].attn_kl, none[0].attn_kl / 4);
}

TEST(SweepMetrics, TopKRecallAndSoftmax) {
    const std::vector<double> a = {5, 4, 3, 2, 1}, b = {1, 4, 3, 2, 5};
    EXPECT_DOUBLE_EQ(octopus::sweep::detail::top_k_recall(a, a, 2), 1.0);
    EXPECT_DOUBLE_EQ(octopus::sweep::detail::top_k_recall(a, b, 2), 0.5);  // {0,1} vs {4,1}
    const auto p = octopus::sweep::detail::softmax({0.0, std::log(3.0)});
    EXPECT_NEAR(p[0], 0.25, 1e-15);
    EXPECT_NEAR(p[1], 0.75, 1e-15);
}

TEST(SweepMetrics, ANearLosslessCodecScoresNearPerfectly) {
    const auto data = octopus::sweep::synthetic_dataset("outliers", 64, 400, 8, 1);
    const auto fine = octopus::sweep::measure(octopus::make_codec("uniform", {64, 8, 1}), 8, data);
    EXPECT_LT(fine.mse, 1e-4);
    EXPECT_LT(fine.attn_kl, 1e-4);
    EXPECT_GT(fine.top8_recall, 0.95);
    EXPECT_LT(fine.out_rel_err, 0.02);
    const auto coarse = octopus::sweep::measure(octopus::make_codec("turboquant", {64, 1, 1}), 1, data);
    EXPECT_GT(coarse.attn_kl, 10 * fine.attn_kl);
    EXPECT_LT(coarse.top8_recall, fine.top8_recall);
}

TEST(SweepPlot, WritesAnSvgWithBothPanelsAndTheFloor) {
    TempDir dir;
    octopus::sweep::Row a{"octopus", "uniform", 128, 2, 2.25, 0.11, 0.3, 0.0, 0.05, 0.9, 0.9, 0.2};
    octopus::sweep::Row b = a;
    b.bits = 3, b.bits_per_coord = 3.25, b.mse = 0.03, b.attn_kl = 0.02;
    octopus::sweep::write_plot(dir.file("p.svg"), {a, b});
    std::ifstream in(dir.file("p.svg"));
    const std::string svg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(svg.rfind("<svg", 0), 0u);
    EXPECT_NE(svg.find("attention KL"), std::string::npos);
    EXPECT_NE(svg.find("floor 4^-b"), std::string::npos);
    EXPECT_NE(svg.find("octopus d=128"), std::string::npos);
    EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
