#include <octopus/codecs/octopus.hpp>
#include <octopus/synthetic.hpp>
#include <octopus/triplet_codebook.hpp>

#include <gtest/gtest.h>

#include "support.hpp"

#include <cmath>
#include <vector>

namespace {

using octopus_test::simpson;

/// Triplets with the exact distribution of a rotated unit key's triplets at head dim d: all ⌊d/3⌋
/// triplets of uniform unit vectors in R^d.
std::vector<float> sample_triplets(std::size_t d, std::size_t vectors, std::uint64_t seed) {
    const auto x = octopus::uniform_unit_vectors(vectors, d, seed);
    std::vector<float> t;
    for (std::size_t v = 0; v < vectors; ++v)
        for (std::size_t i = 0; i + 3 <= d; i += 3) t.insert(t.end(), x.begin() + v * d + i, x.begin() + v * d + i + 3);
    return t;
}

TEST(TripletCodebook, UsesEveryCodeOfEveryBitWidth) {
    for (unsigned bits : {3u, 6u, 7u, 9u, 12u}) {
        EXPECT_EQ(octopus::paper_triplet_codebook(128, bits).codes(), std::size_t{1} << bits) << bits;
    }
}

TEST(TripletCodebook, PaperRingsAreLloydMaxOfTheNorm) {
    const auto book = octopus::paper_triplet_codebook(128, 9);
    const auto density = octopus::triplet_norm_density(128);
    for (std::size_t k = 0; k < book.rings(); ++k) {
        const double a = k == 0 ? 0.0 : book.ring_thresholds[k - 1];
        const double b = k + 1 == book.rings() ? 1.0 : book.ring_thresholds[k];
        EXPECT_NEAR(book.radius[k],
                    simpson([&](double r) { return r * density.pdf(r); }, a, b) / simpson(density.pdf, a, b), 1e-8);
        if (k + 1 < book.rings()) {
            EXPECT_NEAR(book.ring_thresholds[k], 0.5 * (book.radius[k] + book.radius[k + 1]), 1e-12);
        }
    }
    // One product grid shared by every ring, decoded at unit points.
    for (const auto& g : book.grids) EXPECT_EQ(g, book.grids[0]);
}

// The designed error against sampled triplets run through the codec's own float encoder.
TEST(TripletCodebook, DesignErrorMatchesSampledTriplets) {
    for (std::size_t d : {64u, 128u})
        for (unsigned bits : {6u, 9u}) {
            const auto triplets = sample_triplets(d, 4000, 5 + bits);
            const octopus::detail::TripletTables tables(octopus::paper_triplet_codebook(d, bits));
            double error = 0.0;
            const std::size_t n = triplets.size() / 3;
            for (std::size_t i = 0; i < n; ++i) {
                const auto& p = tables.points[tables.encode(&triplets[3 * i])];
                for (int k = 0; k < 3; ++k) error += (triplets[3 * i + k] - p[k]) * (triplets[3 * i + k] - p[k]);
            }
            EXPECT_NEAR(error / n, tables.mse, 0.02 * tables.mse) << "d " << d << " bits " << bits;
        }
}

// The batched (AVX2 where built with it) encoder against the scalar specification, on sampled
// triplets and on the seams: zeros, axes, the equator, signed zeros.
TEST(TripletCodebook, BatchedEncoderMatchesTheScalarOne) {
    for (unsigned bits : {3u, 7u, 12u}) {
        const octopus::detail::TripletTables tables(octopus::paper_triplet_codebook(128, bits));
        auto triplets = sample_triplets(128, 200, 3);
        const float seams[][3] = {{0, 0, 0}, {0, 0, 0.2f}, {0, 0, -0.2f}, {0.1f, 0, 0}, {-0.1f, 0, 0}, {0, -0.3f, 0},
                                  {0.1f, -0.1f, 0}, {-0.0f, 0.0f, -0.1f}, {0.05f, 0.05f, -0.05f}, {-1e-30f, 1e-30f, 0}};
        for (const auto& t : seams) triplets.insert(triplets.end(), t, t + 3);
        const std::size_t n = triplets.size() / 3;
        std::vector<std::uint32_t> batched(n);
        tables.encode_many(triplets.data(), n, batched.data());
        for (std::size_t i = 0; i < n; ++i) {
            ASSERT_EQ(batched[i], tables.encode(&triplets[3 * i])) << "triplet " << i;
            ASSERT_EQ(tables.encode_bucketed(&triplets[3 * i]), batched[i]) << "triplet " << i;
        }
    }
}

TEST(TripletCodebook, RefusesBitsOutOfRange) {
    for (unsigned bits : {0u, 2u, 13u}) {
        EXPECT_THROW(octopus::paper_triplet_codebook(128, bits), octopus::error);
    }
}

}  // namespace
