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
