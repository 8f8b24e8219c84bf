// The README's example: compress keys one token at a time, then score a query straight from the codes.
#include <octopus/octopus.hpp>

#include <cstdio>
#include <vector>

int main() {
    // Head dim 128, 3 bits per coordinate, rotation seed 42. Build once, share read-only.
    const octopus::Codec codec = octopus::make_codec("octopus", {.dim = 128, .bits = 3, .seed = 42});

    // A KV cache of 1000 tokens for one head, appended one token at a time.
    const std::size_t tokens = 1000;
    const auto keys = octopus::outlier_channel_vectors(tokens, 128, /*seed=*/7);
    std::vector<std::uint8_t> cache(tokens * codec.bytes_per_vector());
    for (std::size_t t = 0; t < tokens; ++t)
        codec.encode(std::span<const float>(keys.data() + t * 128, 128),
                     std::span<std::uint8_t>(cache.data() + t * codec.bytes_per_vector(), codec.bytes_per_vector()));

    // Attention scores q·k for every cached token, without decoding a single key.
    const auto query = octopus::uniform_unit_vectors(1, 128, /*seed=*/3);
    std::vector<float> scores(tokens);
    codec.dot(query, cache, scores);

    double exact = 0.0;
    for (std::size_t j = 0; j < 128; ++j) exact += query[j] * keys[j];
    std::printf("%zu keys in %zu bytes (%.3f bits per coordinate); token 0: exact %.5f, from codes %.5f\n", tokens,
                cache.size(), codec.bits_per_coordinate(), exact, scores[0]);
}
