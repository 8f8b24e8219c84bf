// A CPU engine's decode loop over a compressed cache: per KV head, keys in the scan layout (ScanKeys,
// scored by table lookup) and values as TurboQuant records; prefill a prompt, then each step appends one
// token per KV head and attends with the query heads of its group. The scan's outputs are compared with
// the record path's (exact scores from the same codes) at every step.
#include <octopus/octopus.hpp>
#include <octopus/scan_attention.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

int main() {
    const std::size_t d = 128, kv_heads = 2, group = 4, prompt = 2048, steps = 8;
    const octopus::TurboQuant key_codec({d, 3, 1}), value_codec({d, 3, 2});
    const float scale = 1.0f / std::sqrt(float(d));

    std::vector<octopus::ScanKeys> keys;
    std::vector<std::vector<std::uint8_t>> key_records(kv_heads), values(kv_heads);
    for (std::size_t h = 0; h < kv_heads; ++h) {
        keys.emplace_back(key_codec);
        keys[h].reserve(prompt + steps);  // the decode steps below then allocate nothing for keys
        values[h].reserve((prompt + steps) * value_codec.bytes_per_vector());
    }
    const auto append = [&](std::size_t h, std::span<const float> k, std::span<const float> v) {
        const auto records = key_codec.encode(k);
        keys[h].append_records(records);
        key_records[h].insert(key_records[h].end(), records.begin(), records.end());
        const auto coded = value_codec.encode(v);
        values[h].insert(values[h].end(), coded.begin(), coded.end());
    };

    // Prefill: the prompt's keys and values of every KV head, in one batch each.
    for (std::size_t h = 0; h < kv_heads; ++h)
        append(h, octopus::uniform_unit_vectors(prompt, d, 10 + h), octopus::uniform_unit_vectors(prompt, d, 20 + h));

    std::vector<float> out(group * d), reference(group * d);
    for (std::size_t step = 0; step < steps; ++step) {
        double worst = 0.0, seconds = 0.0;
        for (std::size_t h = 0; h < kv_heads; ++h) {
            append(h, octopus::uniform_unit_vectors(1, d, 1000 + step * kv_heads + h), octopus::uniform_unit_vectors(1, d, 2000 + step));
            auto queries = octopus::uniform_unit_vectors(group, d, 3000 + step * kv_heads + h);
            for (float& x : queries) x *= 12.0f;  // a peaked softmax, as trained models give
            const auto start = std::chrono::steady_clock::now();
            octopus::decode_attention(keys[h], value_codec, queries, values[h], scale, out);
            seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            octopus::decode_attention(key_codec, value_codec, queries, key_records[h], values[h], scale, reference);
            for (std::size_t i = 0; i < out.size(); ++i) worst = std::max(worst, double(std::fabs(out[i] - reference[i])));
        }
        std::printf("step %zu: %zu tokens, %zu KV heads x %zu query heads, attention %.1f us, largest difference from exact scores %.1e\n",
                    step, keys[0].size(), kv_heads, group, seconds * 1e6, worst);
        if (worst > 1e-2) {
            std::fprintf(stderr, "the scan's attention left the exact path's by %.3g\n", worst);
            return 1;
        }
    }
    return 0;
}
