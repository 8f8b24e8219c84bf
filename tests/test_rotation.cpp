#include <octopus/rotation.hpp>
#include <octopus/synthetic.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace {

const std::size_t kDims[] = {64, 80, 96, 112, 128, 160, 192, 256};

TEST(SplitMix64, MatchesTheReferenceStream) {
    // First outputs of SplitMix64 from state 0, as published with the reference implementation.
    octopus::detail::SplitMix64 rng(0);
    EXPECT_EQ(rng.next(), 0xe220a8397b1dcdafULL);
    EXPECT_EQ(rng.next(), 0x6e789e6aa1b965f4ULL);
    EXPECT_EQ(rng.next(), 0x06c45d188009454fULL);
}

TEST(SmallHadamard, PaleyMatricesAreHadamard) {
    for (std::size_t order : {12u, 20u, 28u}) {
        const auto* h = octopus::detail::small_hadamard_for(order);
        ASSERT_NE(h, nullptr);
        ASSERT_EQ(h->order, order);
        for (std::size_t i = 0; i < order; ++i)
            for (std::size_t j = 0; j < order; ++j) {
                ASSERT_EQ(std::abs((*h)(i, j)), 1);
                int dot = 0;
                for (std::size_t k = 0; k < order; ++k) dot += (*h)(i, k) * (*h)(j, k);
                EXPECT_EQ(dot, i == j ? static_cast<int>(order) : 0) << "order " << order << " rows " << i << "," << j;
            }
    }
}

TEST(WalshHadamard, FastPathIsBitIdenticalToTheScalarSpecification) {
    if (!octopus::detail::kHasAvx2Hadamard) GTEST_SKIP() << "built without AVX2: only the scalar path exists";
    const auto x = octopus::uniform_unit_vectors(1, 1024, 6);
    for (std::size_t n = 4; n <= 1024; n *= 2) {
        std::vector<float> fast(x.begin(), x.begin() + n), scalar = fast;
        octopus::detail::walsh_hadamard(fast.data(), n);
        octopus::detail::walsh_hadamard_scalar(scalar.data(), n);
        EXPECT_EQ(std::memcmp(fast.data(), scalar.data(), n * sizeof(float)), 0) << "n = " << n;
    }
}

TEST(Rotation, IsOrthonormalAtEverySupportedDim) {
    for (std::size_t d : kDims) {
        const octopus::Rotation rotation(d, 1234);
        // Column j of R is R e_j; RᵀR = I means the columns are orthonormal.
        std::vector<float> columns(d * d, 0.0f);
        for (std::size_t j = 0; j < d; ++j) {
            columns[j * d + j] = 1.0f;
            octopus::rotate(rotation, std::span<float>(columns.data() + j * d, d));
        }
        double worst = 0.0;
        for (std::size_t a = 0; a < d; ++a)
            for (std::size_t b = a; b < d; ++b) {
                double dot = 0.0;
                for (std::size_t k = 0; k < d; ++k) dot += static_cast<double>(columns[a * d + k]) * columns[b * d + k];
                worst = std::max(worst, std::fabs(dot - (a == b ? 1.0 : 0.0)));
            }
        EXPECT_LT(worst, 1e-6) << "d = " << d;
    }
}

TEST(Rotation, InverseUndoesForward) {
    for (std::size_t d : kDims) {
        const octopus::Rotation rotation(d, 99);
        const auto x = octopus::uniform_unit_vectors(1, d, 5);
        auto y = x;
        octopus::rotate(rotation, y);
        double norm = 0.0;
        for (float v : y) norm += static_cast<double>(v) * v;
        EXPECT_NEAR(norm, 1.0, 1e-6);
        octopus::inverse_rotate(rotation, y);
        for (std::size_t i = 0; i < d; ++i) EXPECT_NEAR(y[i], x[i], 1e-6) << "d = " << d << " i = " << i;
    }
}

TEST(Rotation, IsDeterministicForASeedAndDiffersAcrossSeeds) {
    const auto x = octopus::uniform_unit_vectors(1, 128, 3);
    auto a = x, b = x, c = x;
    octopus::rotate(octopus::Rotation(128, 7), a);
    octopus::rotate(octopus::Rotation(128, 7), b);
    octopus::rotate(octopus::Rotation(128, 8), c);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
    EXPECT_NE(std::memcmp(a.data(), c.data(), a.size() * sizeof(float)), 0);
}

TEST(Rotation, SpreadsAOneHotVector) {
    // A one-hot key must not come out flat (all |y_i| equal), as it would after one round.
    const std::size_t d = 128;
    std::vector<float> e(d, 0.0f);
    e[17] = 1.0f;
    octopus::rotate(octopus::Rotation(d, 11), e);
    float smallest = 1.0f, largest = 0.0f;
    for (float v : e) {
        smallest = std::min(smallest, std::fabs(v));
        largest = std::max(largest, std::fabs(v));
    }
    EXPECT_GT(largest, 2.0f * smallest);
}

TEST(Rotation, RefusesUnsupportedDimsAndWrongSizes) {
    for (std::size_t d : {0u, 16u, 72u, 100u, 127u, 2048u}) {
        EXPECT_FALSE(octopus::is_supported_dim(d));
        EXPECT_THROW(octopus::Rotation(d, 1), octopus::error) << d;
    }
    try {
        octopus::Rotation(100, 1);
        FAIL() << "d = 100 was accepted";
    } catch (const octopus::error& e) {
        EXPECT_NE(std::string(e.what()).find("100"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("Hadamard"), std::string::npos);
    }
    const octopus::Rotation rotation(64, 1);
    std::vector<float> wrong(63, 1.0f);
    const auto before = wrong;
    EXPECT_THROW(octopus::rotate(rotation, wrong), octopus::error);
    EXPECT_THROW(octopus::inverse_rotate(rotation, wrong), octopus::error);
    EXPECT_EQ(wrong, before);
}

}  // namespace
