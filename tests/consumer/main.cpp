// Built against an installed octopus: encodes one key, scores a query, and checks the result.
#include <octopus/octopus.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
    const octopus::Codec codec = octopus::make_codec("turboquant", {128, 4, 42});
    std::vector<float> key(128, 0.0f), query(128, 0.0f);
    for (int i = 0; i < 128; ++i) {
        key[i] = std::sin(0.1f * i);
        query[i] = std::cos(0.07f * i);
    }
    const auto packed = codec.encode(std::span<const float>(key));
    const auto scores = codec.dot(query, packed);
    float exact = 0.0f;
    for (int i = 0; i < 128; ++i) exact += key[i] * query[i];
    std::printf("exact %.4f  from codes %.4f\n", exact, scores[0]);
    return std::fabs(scores[0] - exact) < 0.5f ? 0 : 1;
}
