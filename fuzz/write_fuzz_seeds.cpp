// Writes the fuzz harnesses' seed corpora: for each configuration of fuzz_support.hpp, a few encoded
// keys (fuzz_codec_bytes; the TurboQuant ones also for fuzz_scan_keys), a cache file of them, contiguous and paged (fuzz_cache_file); small .npy
// arrays (fuzz_npy); configuration texts (fuzz_codec_config). Usage: write_fuzz_seeds <corpus dir>.
#include "fuzz_support.hpp"

#include <npy.hpp>
#include <octopus/cache_file.hpp>
#include <octopus/synthetic.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

void write(const std::filesystem::path& path, const std::string& bytes) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string as_text(const std::vector<std::uint8_t>& bytes) { return std::string(bytes.begin(), bytes.end()); }

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: write_fuzz_seeds <corpus dir>\n");
        return 2;
    }
    const std::filesystem::path root = argv[1];
    // fuzz_cache_file reads byte ≥ 128 as "paged" and byte % kConfigCount as the configuration.
    const std::size_t paged_pick = (128 + octopus_fuzz::kConfigCount - 1) / octopus_fuzz::kConfigCount * octopus_fuzz::kConfigCount;
    static_assert(octopus_fuzz::kConfigCount <= 64, "the paged picks must stay below 256");
    for (std::size_t i = 0; i < octopus_fuzz::kConfigCount; ++i) {
        const octopus::CodecConfig config = octopus::parse_codec_config(octopus_fuzz::kConfigs[i]);
        const octopus::Codec& codec = octopus_fuzz::codec(i);
        auto keys = octopus::uniform_unit_vectors(16, codec.dim(), 3 + i);
        for (std::size_t j = 0; j < codec.dim(); ++j) keys[j] *= 40.0f;  // one large norm
        const auto packed = codec.encode(std::span<const float>(keys));
        const std::string pick(1, static_cast<char>(i));
        write(root / "fuzz_codec_bytes" / ("seed_" + std::to_string(i)), pick + as_text(packed));
        if (config.name == "turboquant")  // fuzz_scan_keys reads the first four configurations, all TurboQuant
            write(root / "fuzz_scan_keys" / ("seed_" + std::to_string(i)), pick + as_text(packed));
        write(root / "fuzz_cache_file" / ("contiguous_" + std::to_string(i)),
              pick + as_text(octopus::save_cache(config.name, config.spec, packed)));
        write(root / "fuzz_cache_file" / ("paged_" + std::to_string(i)),
              std::string(1, static_cast<char>(paged_pick + i)) + as_text(octopus::save_cache(config.name, config.spec, packed, {16})));
        write(root / "fuzz_codec_config" / ("canonical_" + std::to_string(i)), octopus::format_codec_config(config));
        write(root / "fuzz_codec_config" / ("given_" + std::to_string(i)), octopus_fuzz::kConfigs[i]);
    }
    for (const char* text : {"octopus", "turboquant:bits=4", "none", "auto", "center", "scale", "octopus:bits=2.33,seed=18446744073709551615"})
        write(root / "fuzz_codec_config" / (std::string("text_") + std::to_string(std::hash<std::string>{}(text) % 100000)), text);
    const std::filesystem::path tmp = std::filesystem::temp_directory_path() / "octopus_seed.npy";
    const std::vector<std::vector<std::size_t>> shapes = {{4}, {2, 3}, {1, 2, 2, 2}, {0, 5}};
    for (std::size_t s = 0; s < shapes.size(); ++s) {
        std::size_t count = 1;
        for (std::size_t n : shapes[s]) count *= n;
        std::vector<float> data(count);
        for (std::size_t k = 0; k < count; ++k) data[k] = 0.25f * static_cast<float>(k) - 1.0f;
        octopus::sweep::write_npy(tmp.string(), shapes[s], data);
        std::ifstream in(tmp, std::ios::binary);
        write(root / "fuzz_npy" / ("f4_" + std::to_string(s)), std::string(std::istreambuf_iterator<char>(in), {}));
    }
    // A float16 array, as the KV dumps in ../shared/data come.
    std::string f2 = "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }";
    while ((10 + f2.size() + 1) % 64 != 0) f2 += ' ';
    f2 += '\n';
    write(root / "fuzz_npy" / "f2_0", std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(f2.size()) + '\0' + f2 +
                                          std::string("\x00\x3c\x00\xbc\x00\x40\x00\x00", 8));
    std::filesystem::remove(tmp);
    return 0;
}
