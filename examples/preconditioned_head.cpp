// One KV head of a model whose keys carry a large common offset (as Qwen2's k bias makes them): fit the
// head's preconditioner on the prompt, store the cache with it, and attend from the codes.
#include <octopus/octopus.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
    const std::size_t d = 128, prompt = 512, tokens = 2048, group = 4;  // 4 query heads share the KV head
    const octopus::Codec codec = octopus::make_codec("octopus", {.dim = d, .bits = 3, .seed = 1});

    // Keys: unit-scale variation around an offset 20 times larger in a few channels; values and queries plain.
    auto keys = octopus::uniform_unit_vectors(tokens, d, 7);
    const auto values = octopus::uniform_unit_vectors(tokens, d, 8);
    const auto queries = octopus::uniform_unit_vectors(prompt * group, d, 9);
    for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = keys[i] * std::sqrt(float(d)) + (i % d % 32 == 5 ? 20.0f : 1.0f);

    // The prompt's queries: query head g at position t sees the keys up to t.
    std::vector<std::size_t> positions(prompt * group);
    for (std::size_t i = 0; i < positions.size(); ++i) positions[i] = i % prompt;
    const octopus::PreconditionerFitData fit{.dim = d,
                                             .keys = std::span<const float>(keys.data(), prompt * d),
                                             .values = std::span<const float>(values.data(), prompt * d),
                                             .queries = queries,
                                             .query_positions = positions};
    const octopus::HeadPreconditioner p = octopus::fit_preconditioner(octopus::Preconditioning::automatic, fit, codec, codec);
    const octopus::HeadCodec head(codec, codec, p);
    const octopus::HeadCodec plain(codec, codec);

    // Store the whole context both ways and compare the scores of one query against exact ones.
    for (const octopus::HeadCodec* h : {&plain, &head}) {
        std::vector<std::uint8_t> key_cache(tokens * codec.bytes_per_vector());
        h->encode_keys(std::span<const float>(keys), std::span<std::uint8_t>(key_cache));
        std::vector<float> scores(tokens);
        const std::span<const float> q(queries.data(), d);
        h->dot(q, key_cache, scores);
        double error = 0.0, signal = 0.0;
        for (std::size_t t = 0; t < tokens; ++t) {
            double exact = 0.0;
            for (std::size_t c = 0; c < d; ++c) exact += double(q[c]) * keys[t * d + c];
            error += (scores[t] - exact) * (scores[t] - exact), signal += exact * exact;
        }
        std::printf("%-14s keys: %-6s values centred: %-3s score error %.2e of their RMS (%.3f bits per coordinate + %zu bits per head)\n",
                    h == &head ? "preconditioned" : "plain", octopus::to_string(h->preconditioner().keys),
                    h->preconditioner().center_values ? "yes" : "no", std::sqrt(error / signal), codec.bits_per_coordinate(),
                    h == &head ? p.stored_bits() : std::size_t{0});
    }
}
