// The seeded randomized Hadamard rotation that makes every key look like a uniform unit vector.
//
// R = H·D_3·H·D_2·H·D_1 (each D_i a diagonal of random signs, H the normalized Hadamard matrix of
// order d). One round already maps the uniform sphere to itself, but real keys are not uniform: a
// one-hot key comes out of one round as a flat ±1/√d vector, and out of two as binomial sums on a
// coarse lattice, which still cost TurboQuant 11–15% more error at b = 3 than uniform keys. After
// three rounds one-hot, all-ones and outlier-channel keys are within 7% of uniform ones
// (tests/test_turboquant.cpp). Three rounds cost 3·d·log2(d) additions. See detail/hadamard.hpp for
// how d = m·2^k that are not powers of two keep the transform exactly orthonormal.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "octopus/contract.hpp"
#include "octopus/detail/hadamard.hpp"
#include "octopus/detail/prng.hpp"
#include "octopus/error.hpp"

namespace octopus {

/// A seeded randomized Hadamard rotation of R^dim. A value: build once, share read-only.
class Rotation {
public:
    /// Throws octopus::error for an unsupported dim.
    Rotation(std::size_t dim, std::uint64_t seed) : dim_(dim), seed_(seed) {
        check_dim(dim);
        const auto [m, p] = detail::hadamard_factors(dim);  // rows, row length
        rows_ = m;
        row_length_ = p;
        small_ = detail::small_hadamard_for(m);
#if defined(__AVX2__)
        if (m == 1) {
            switch (p) {
                case 32: signed_round_ = &detail::signed_walsh_hadamard_avx2<32>; break;
                case 64: signed_round_ = &detail::signed_walsh_hadamard_avx2<64>; break;
                case 128: signed_round_ = &detail::signed_walsh_hadamard_avx2<128>; break;
                case 256: signed_round_ = &detail::signed_walsh_hadamard_avx2<256>; break;
                default: break;
            }
        }
#endif
        signs_.resize(kRotationRounds * dim);
        // H is applied unnormalized; the total scale d^(−rounds/2) rides on the first round's signs,
        // which both directions multiply by exactly once.
        const float scale = static_cast<float>(std::pow(static_cast<double>(dim), -0.5 * kRotationRounds));
        for (int round = 0; round < kRotationRounds; ++round) {
            detail::SplitMix64 rng(detail::derive_seed(seed, round));
            std::uint64_t bits = 0;
            for (std::size_t i = 0; i < dim; ++i) {
                if (i % 64 == 0) bits = rng.next();
                const float sign = ((bits >> (i % 64)) & 1u) ? -1.0f : 1.0f;
                signs_[round * dim + i] = round == 0 ? sign * scale : sign;
            }
        }
    }

    std::size_t dim() const { return dim_; }
    std::uint64_t seed() const { return seed_; }
    /// The signs of round r at [r·dim, (r+1)·dim), round 0 scaled by dim^(−3/2): R x is, round by
    /// round, x ← H (signs_r ⊙ x) with H the unnormalized Hadamard matrix (the CUDA headers upload these).
    const std::vector<float>& signs() const { return signs_; }

    /// x ← R x in place; x holds dim() floats. No checks: the hot path behind octopus::rotate.
    void apply(float* x) const {
#if defined(__AVX2__)
        // Powers of two up to 256: each round in registers (detail/walsh_hadamard_avx2.hpp).
        if (rows_ == 1 && signed_round_ != nullptr) {
            for (int round = 0; round < kRotationRounds; ++round) signed_round_(x, signs_.data() + round * dim_);
            return;
        }
#endif
        std::array<float, kMaxDim> scratch;
        for (int round = 0; round < kRotationRounds; ++round) {
            const float* s = signs_.data() + round * dim_;
            for (std::size_t i = 0; i < dim_; ++i) x[i] *= s[i];
            detail::kronecker_hadamard(x, rows_, row_length_, small_, false, scratch.data());
        }
    }

    /// x ← Rᵀ x = R⁻¹ x in place.
    void apply_inverse(float* x) const {
        std::array<float, kMaxDim> scratch;
        for (int round = kRotationRounds; round-- > 0;) {
            detail::kronecker_hadamard(x, rows_, row_length_, small_, true, scratch.data());
            const float* s = signs_.data() + round * dim_;
            for (std::size_t i = 0; i < dim_; ++i) x[i] *= s[i];
        }
    }

private:
    std::size_t dim_;
    std::uint64_t seed_;
    std::size_t rows_ = 1, row_length_ = 0;
    const detail::SmallHadamard* small_ = nullptr;
    std::vector<float> signs_;
    void (*signed_round_)(float*, const float*) = nullptr;  // the in-register AVX2 round, where one exists
};

namespace detail {
inline void check_span(const Rotation& rotation, std::size_t size, const char* what) {
    require(size == rotation.dim(), std::string(what) + ": vector has " + std::to_string(size) +
                                        " floats, the rotation's dim is " + std::to_string(rotation.dim()));
}
}  // namespace detail

/// x ← R x. Throws octopus::error if x.size() != rotation.dim().
inline void rotate(const Rotation& rotation, std::span<float> x) {
    detail::check_span(rotation, x.size(), "rotate");
    rotation.apply(x.data());
}

/// x ← R⁻¹ x, undoing rotate. Throws octopus::error if x.size() != rotation.dim().
inline void inverse_rotate(const Rotation& rotation, std::span<float> x) {
    detail::check_span(rotation, x.size(), "inverse_rotate");
    rotation.apply_inverse(x.data());
}

}  // namespace octopus
