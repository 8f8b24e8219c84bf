// octopus-sweep: bits against distortion for every codec, side by side on the same data.
//
//   octopus-sweep --codecs turboquant,octopus-paper,octopus --bits 1,2,3,4 --dims 64,128,256 --vectors 20000 --seed 1 [--csv FILE]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "sweep.hpp"

namespace {

constexpr const char* kUsage =
    "usage: octopus-sweep [--codecs LIST] [--bits LIST] [--dims LIST] [--vectors N] [--queries N]\n"
    "                     [--seed S] [--csv FILE]\n"
    "  --codecs  comma list of codecs (default turboquant,octopus-paper,octopus); known: %s\n"
    "  --bits    comma list of bits per coordinate (default 1,2,3,4); octopus also takes thirds (2.33)\n"
    "  --dims    comma list of head dims (default 64,128,256)\n"
    "  --vectors keys per dim, uniform on the unit sphere (default 20000)\n"
    "  --queries random unit queries scored against every key (default 16)\n"
    "  --seed    seed of the data and of every codec's rotation (default 1)\n"
    "  --csv     also write the rows to FILE as CSV\n";

struct Options {
    std::vector<std::string> codecs = {"turboquant", "octopus-paper", "octopus"};
    std::vector<double> bits = {1, 2, 3, 4};
    std::vector<std::size_t> dims = {64, 128, 256};
    std::size_t vectors = 20000;
    std::size_t queries = 16;
    std::uint64_t seed = 1;
    std::string csv;
};

[[noreturn]] void usage_error(const std::string& message) {
    std::string known;
    for (const auto& n : octopus::codec_names()) known += (known.empty() ? "" : ", ") + n;
    std::fprintf(stderr, "octopus-sweep: %s\n", message.c_str());
    std::fprintf(stderr, kUsage, known.c_str());
    std::exit(2);
}

std::vector<std::string> split(const std::string& list) {
    std::vector<std::string> items;
    std::stringstream stream(list);
    for (std::string item; std::getline(stream, item, ',');)
        if (!item.empty()) items.push_back(item);
    return items;
}

template <class T>
T parse_number(const std::string& text, const std::string& flag) {
    std::istringstream stream(text);
    T value{};
    if (!(stream >> value) || !stream.eof()) usage_error("bad value '" + text + "' for " + flag);
    return value;
}

Options parse(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            std::string known;
            for (const auto& n : octopus::codec_names()) known += (known.empty() ? "" : ", ") + n;
            std::printf(kUsage, known.c_str());
            std::exit(0);
        }
        if (i + 1 >= argc) usage_error("missing value for " + flag);
        const std::string value = argv[++i];
        if (flag == "--codecs") {
            options.codecs = split(value);
        } else if (flag == "--bits") {
            options.bits.clear();
            for (const auto& b : split(value)) options.bits.push_back(parse_number<double>(b, flag));
        } else if (flag == "--dims") {
            options.dims.clear();
            for (const auto& d : split(value)) options.dims.push_back(parse_number<std::size_t>(d, flag));
        } else if (flag == "--vectors") {
            options.vectors = parse_number<std::size_t>(value, flag);
        } else if (flag == "--queries") {
            options.queries = parse_number<std::size_t>(value, flag);
        } else if (flag == "--seed") {
            options.seed = parse_number<std::uint64_t>(value, flag);
        } else if (flag == "--csv") {
            options.csv = value;
        } else {
            usage_error("unknown flag " + flag);
        }
    }
    if (options.codecs.empty() || options.bits.empty() || options.dims.empty()) usage_error("empty list");
    if (options.vectors == 0 || options.queries == 0) usage_error("--vectors and --queries must be positive");
    for (const auto& name : options.codecs) {
        bool known = false;
        for (const auto& n : octopus::codec_names()) known = known || n == name;
        if (!known) usage_error("unknown codec '" + name + "'");
    }
    for (std::size_t d : options.dims)
        if (!octopus::is_supported_dim(d)) usage_error("unsupported head dim " + std::to_string(d));
    return options;
}

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    std::vector<octopus::sweep::Row> rows;
    std::printf("%-14s %5s %6s %14s %11s %11s\n", "codec", "dim", "bits", "bits_per_coord", "mse", "ip_rel_err");
    for (std::size_t d : options.dims) {
        const auto keys = octopus::uniform_unit_vectors(options.vectors, d, octopus::detail::derive_seed(options.seed, 2 * d));
        const auto queries =
            octopus::uniform_unit_vectors(options.queries, d, octopus::detail::derive_seed(options.seed, 2 * d + 1));
        for (const auto& name : options.codecs)
            for (double bits : options.bits) {
                try {
                    const auto codec = octopus::make_codec(name, {d, bits, options.seed});
                    const auto row = octopus::sweep::measure(codec, bits, keys, queries);
                    std::printf("%-14s %5zu %6.2f %14.4f %11.6f %11.6f\n", row.codec.c_str(), row.dim, row.bits,
                                row.bits_per_coord, row.mse, row.ip_rel_err);
                    std::fflush(stdout);
                    rows.push_back(row);
                } catch (const octopus::error& e) {
                    std::fprintf(stderr, "octopus-sweep: skipping %s at d=%zu, bits=%g: %s\n", name.c_str(), d, bits,
                                 e.what());
                }
            }
    }
    if (!options.csv.empty()) {
        std::ofstream csv(options.csv);
        if (!csv) {
            std::fprintf(stderr, "octopus-sweep: cannot write %s\n", options.csv.c_str());
            return 1;
        }
        csv << "codec,dim,bits,bits_per_coord,mse,ip_rel_err\n";
        csv.precision(8);
        for (const auto& r : rows)
            csv << r.codec << ',' << r.dim << ',' << r.bits << ',' << r.bits_per_coord << ',' << r.mse << ','
                << r.ip_rel_err << '\n';
    }
    return 0;
}
