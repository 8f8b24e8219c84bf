// The README's promise that a codec may be shared read-only across threads: many threads encode,
// decode and score through one codec at once and each gets the single-threaded bytes; codecs whose
// codebooks are built on first use are built from many threads at once. The sanitizer build runs
// this file under ThreadSanitizer as well (test_threads_tsan), which reports any data race.
#include <octopus/octopus.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 8;

struct Expected {
    std::vector<std::uint8_t> packed;
    std::vector<float> decoded, scores;
};

template <class C>
Expected single_threaded(const C& codec, const std::vector<float>& keys, const std::vector<float>& query) {
    Expected e;
    e.packed = codec.encode(std::span<const float>(keys));
    e.decoded = codec.decode(e.packed);
    e.scores = codec.dot(query, e.packed);
    return e;
}

/// kThreads threads run encode, decode and dot through `codec` three times each; returns how many
/// results differed from the single-threaded ones.
template <class C>
int shared_mismatches(const C& codec) {
    const auto keys = octopus::uniform_unit_vectors(64, codec.dim(), 5);
    const auto query = octopus::uniform_unit_vectors(1, codec.dim(), 6);
    const Expected expected = single_threaded(codec, keys, query);
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&] {
            for (int round = 0; round < 3; ++round) {
                const Expected got = single_threaded(codec, keys, query);
                mismatches += got.packed != expected.packed;
                mismatches += got.decoded != expected.decoded;
                mismatches += got.scores != expected.scores;
            }
        });
    for (auto& thread : threads) thread.join();
    return mismatches;
}

TEST(Threads, OneCodecSharedByManyThreadsGivesEachTheSingleThreadedBytes) {
    for (const char* text : {"turboquant:dim=128,bits=3", "octopus:dim=128,bits=2.67", "octopus-paper:dim=64,bits=2", "polarquant:dim=64,bits=3",
                             "turboquant-prod:dim=64,bits=2", "qjl:dim=64,bits=1", "uniform:dim=64,bits=4,norm=fp16"}) {
        const octopus::Codec codec = octopus::make_codec(octopus::parse_codec_config(text));
        EXPECT_EQ(shared_mismatches(codec), 0) << text;
    }
    // A concrete codec shared by reference, as an engine that knows its codec at compile time holds it.
    const octopus::Octopus octopus_codec(octopus::CodecSpec{96, 3, 1});
    EXPECT_EQ(shared_mismatches(octopus_codec), 0);
}

TEST(Threads, CodecsBuiltFromManyThreadsAtOnceAgree) {
    // Specs no other test in this binary builds, so the shared codebook tables are built here, under
    // the race (memo.hpp's lock is what makes that safe).
    for (const char* text : {"octopus:dim=160,bits=2.33", "turboquant:dim=160,bits=2", "polarquant:dim=160,bits=2"}) {
        const octopus::CodecConfig config = octopus::parse_codec_config(text);
        std::vector<std::vector<std::uint8_t>> packed(kThreads);
        std::vector<float> key(config.spec.dim, 0.0f);
        for (std::size_t j = 0; j < key.size(); ++j) key[j] = static_cast<float>(j % 5) - 2.0f;
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t)
            threads.emplace_back([&, t] { packed[t] = octopus::make_codec(config).encode(std::span<const float>(key)); });
        for (auto& thread : threads) thread.join();
        for (int t = 1; t < kThreads; ++t) EXPECT_EQ(packed[t], packed[0]) << text << " thread " << t;
    }
}

TEST(Threads, HeadCodecSharedByManyThreads) {
    const std::size_t d = 64, n = 256;
    const auto keys = octopus::outlier_channel_vectors(n, d, 3);
    octopus::PreconditionerFitData data;
    data.dim = d;
    data.keys = keys;
    const octopus::HeadPreconditioner pre = octopus::fit_preconditioner(octopus::Preconditioning::center, data);
    const octopus::Codec codec = octopus::make_codec("octopus", {d, 3, 2});
    const octopus::HeadCodec head(codec, codec, pre);
    const auto query = octopus::uniform_unit_vectors(1, d, 4);
    const auto encode = [&] {
        std::vector<std::uint8_t> packed(n * codec.bytes_per_vector());
        head.encode_keys(std::span<const float>(keys), std::span<std::uint8_t>(packed));
        std::vector<float> scores(n);
        head.dot(query, packed, scores);
        return std::pair{packed, scores};
    };
    const auto expected = encode();
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back([&] { mismatches += encode() != expected; });
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(mismatches, 0);
}

}  // namespace
