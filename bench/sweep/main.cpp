// octopus-sweep: bits against distortion and attention fidelity for every codec, side by side on the
// same data — synthetic heads or the user's own KV dumps.
//
//   octopus-sweep --codecs turboquant,octopus-paper,octopus --bits 1,2,3,4 --dims 64,128,256 --vectors 20000 --seed 1
//   octopus-sweep --input keys.npy [--queries q.npy] [--values v.npy] --csv out.csv --plot out.svg
//   octopus-sweep --input keys.npy --queries q.npy --values v.npy --causal --precondition none,auto --per-layer
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "plot.hpp"
#include "sweep.hpp"

namespace {

constexpr const char* kUsage =
    "usage: octopus-sweep [--codecs LIST] [--bits LIST] [--dims LIST] [--vectors N] [--seed S]\n"
    "                     [--data uniform|outliers|lowrank] [--input KEYS.npy [--queries Q.npy] [--values V.npy]]\n"
    "                     [--causal] [--layers LIST] [--per-layer] [--precondition LIST] [--fit-tokens N]\n"
    "                     [--num-queries N] [--norm fp32|fp16] [--csv FILE] [--plot FILE.svg]\n"
    "  --codecs      comma list (default turboquant,octopus-paper,octopus); known: %s\n"
    "  --bits        comma list of bits per coordinate (default 1,2,3,4); octopus also takes thirds (2.33)\n"
    "  --dims        comma list of head dims for synthetic data (default 64,128,256)\n"
    "  --vectors     synthetic keys (and values) per head (default 20000)\n"
    "  --seed        seed of the data and of every codec's rotation (default 1)\n"
    "  --data        synthetic generator (default uniform)\n"
    "  --input       KV dump instead of synthetic data: float32/float16 .npy, [tokens, d] or\n"
    "                [layers, heads, tokens, d], evaluated per head and averaged\n"
    "  --queries     queries .npy of the same layout, [tokens_q, d] or [layers, q_heads, tokens_q, d]; q_heads\n"
    "                may be a multiple G of the keys' heads (grouped-query attention: query head i reads\n"
    "                KV head i / G); default: the last 10%% of each head's tokens\n"
    "  --values      values .npy of the keys' shape; default: the keys themselves\n"
    "  --causal      the queries are the keys' last tokens_q positions: each sees the keys up to its own\n"
    "                position (needs --queries)\n"
    "  --layers      comma list of indices into the dump's layer axis to evaluate (default: all)\n"
    "  --per-layer   also print and write one row per layer\n"
    "  --precondition comma list of none, center, scale, auto (default none): per-head offsets and channel\n"
    "                scales fitted on the first --fit-tokens keys and values of each head and on the\n"
    "                queries the evaluation does not use; a row per mode\n"
    "  --fit-tokens  tokens each head's preconditioner is fitted on (default 512)\n"
    "  --num-queries queries per query head used for the inner-product and attention metrics, evenly\n"
    "                spaced (default 16)\n"
    "  --norm        how codecs store norms, radii (default fp32)\n"
    "  --csv         also write the rows to FILE as CSV\n"
    "  --plot        also draw MSE and attention KL against bits per coordinate as an SVG\n";

std::string known_codecs() {
    std::string known;
    for (const auto& n : octopus::codec_names()) known += (known.empty() ? "" : ", ") + n;
    return known;
}

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "octopus-sweep: %s\n", message.c_str());
    std::fprintf(stderr, kUsage, known_codecs().c_str());
    std::exit(2);
}

/// Largest synthetic head and query count: 2^24 keys of d = 1024 with their values are 128 GiB.
constexpr std::size_t kMaxVectors = std::size_t{1} << 24, kMaxQueries = 4096;

struct Options {
    std::vector<std::string> codecs = {"turboquant", "octopus-paper", "octopus"};
    std::vector<double> bits = {1, 2, 3, 4};
    std::vector<std::size_t> dims = {64, 128, 256};
    bool dims_given = false;
    std::size_t vectors = 20000, num_queries = 16, fit_tokens = 512;
    bool causal = false, per_layer = false;
    std::vector<std::size_t> layers;
    std::vector<octopus::Preconditioning> precondition = {octopus::Preconditioning::none};
    std::uint64_t seed = 1;
    std::string data = "uniform", input, queries, values, csv, plot;
    octopus::NormFormat norm = octopus::NormFormat::fp32;
};

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
    if (text.empty() || text[0] == '-' || !(stream >> value) || !stream.eof())
        usage_error("bad value '" + text + "' for " + flag);
    return value;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            std::printf(kUsage, known_codecs().c_str());
            std::exit(0);
        }
        if (flag == "--causal" || flag == "--per-layer") {  // switches take no value
            (flag == "--causal" ? o.causal : o.per_layer) = true;
            continue;
        }
        if (i + 1 >= argc) usage_error("missing value for " + flag);
        const std::string value = argv[++i];
        if (flag == "--codecs") o.codecs = split(value);
        else if (flag == "--bits") {
            o.bits.clear();
            for (const auto& b : split(value)) o.bits.push_back(parse_number<double>(b, flag));
        } else if (flag == "--dims") {
            o.dims.clear();
            o.dims_given = true;
            for (const auto& d : split(value)) o.dims.push_back(parse_number<std::size_t>(d, flag));
        } else if (flag == "--vectors") o.vectors = parse_number<std::size_t>(value, flag);
        else if (flag == "--num-queries") o.num_queries = parse_number<std::size_t>(value, flag);
        else if (flag == "--fit-tokens") o.fit_tokens = parse_number<std::size_t>(value, flag);
        else if (flag == "--layers") {
            o.layers.clear();
            for (const auto& l : split(value)) o.layers.push_back(parse_number<std::size_t>(l, flag));
            if (o.layers.empty()) usage_error("empty list for --layers");
        } else if (flag == "--precondition") {
            o.precondition.clear();
            for (const auto& mode : split(value)) {
                try {
                    o.precondition.push_back(octopus::parse_preconditioning(mode));
                } catch (const octopus::error& e) {
                    usage_error(e.what());
                }
            }
            if (o.precondition.empty()) usage_error("empty list for --precondition");
        }
        else if (flag == "--seed") o.seed = parse_number<std::uint64_t>(value, flag);
        else if (flag == "--data") o.data = value;
        else if (flag == "--input") o.input = value;
        else if (flag == "--queries") o.queries = value;
        else if (flag == "--values") o.values = value;
        else if (flag == "--csv") o.csv = value;
        else if (flag == "--plot") o.plot = value;
        else if (flag == "--norm") {
            if (value == "fp32") o.norm = octopus::NormFormat::fp32;
            else if (value == "fp16") o.norm = octopus::NormFormat::fp16;
            else usage_error("--norm takes fp32 or fp16, not '" + value + "'");
        } else usage_error("unknown flag " + flag);
    }
    if (o.codecs.empty() || o.bits.empty() || o.dims.empty()) usage_error("empty list");
    if (o.vectors < 40 || o.vectors > kMaxVectors || o.num_queries == 0 || o.num_queries > kMaxQueries)
        usage_error("--vectors must be in [40, " + std::to_string(kMaxVectors) + "] and --num-queries in [1, " +
                    std::to_string(kMaxQueries) + "]");
    for (const auto& name : o.codecs) {
        bool known = false;
        for (const auto& n : octopus::codec_names()) known = known || n == name;
        if (!known) usage_error("unknown codec '" + name + "'");
    }
    for (std::size_t d : o.dims)
        if (!octopus::is_supported_dim(d)) usage_error("unsupported head dim " + std::to_string(d));
    if (o.data != "uniform" && o.data != "outliers" && o.data != "lowrank")
        usage_error("--data takes uniform, outliers or lowrank, not '" + o.data + "'");
    if (o.input.empty() && (!o.queries.empty() || !o.values.empty() || o.causal || !o.layers.empty()))
        usage_error("--queries, --values, --causal and --layers need --input");
    if (o.causal && o.queries.empty()) usage_error("--causal needs --queries (the model's own queries)");
    if (o.fit_tokens == 0) usage_error("--fit-tokens must be positive");
    return o;
}

/// A progress bar on stderr, drawn only when stderr is a terminal and the sweep has run a while.
class Progress {
public:
    explicit Progress(std::size_t total) : total_(total), terminal_(isatty(STDERR_FILENO) != 0) {}
    void step() {
        ++done_;
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        if (!terminal_ || elapsed < 2.0) return;
        const std::size_t width = 30, filled = width * done_ / total_;
        std::fprintf(stderr, "\r[%s%s] %zu/%zu rows, %.0f s", std::string(filled, '#').c_str(),
                     std::string(width - filled, '.').c_str(), done_, total_, elapsed);
        if (done_ == total_) std::fprintf(stderr, "\n");
        drawn_ = true;
    }
    ~Progress() {
        if (drawn_ && done_ != total_) std::fprintf(stderr, "\n");
    }

private:
    std::size_t total_, done_ = 0;
    bool terminal_, drawn_ = false;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    std::vector<octopus::sweep::Dataset> datasets;
    try {
        if (!options.input.empty()) {
            datasets.push_back(octopus::sweep::npy_dataset(options.input, options.queries, options.values,
                                                           {options.num_queries, options.causal, options.layers}));
            if (options.dims_given && (options.dims.size() != 1 || options.dims[0] != datasets[0].dim))
                throw octopus::error(options.input + ": head dim " + std::to_string(datasets[0].dim) +
                                     " does not match --dims");
        } else {
            for (std::size_t d : options.dims)
                datasets.push_back(octopus::sweep::synthetic_dataset(options.data, d, options.vectors, options.num_queries,
                                                                     options.seed));
        }
    } catch (const octopus::error& e) {
        std::fprintf(stderr, "octopus-sweep: %s\n", e.what());
        return 2;
    }
    std::vector<octopus::sweep::Row> rows;
    std::printf("%-15s %5s %5s %-6s %5s %8s %9s %9s %9s %9s %6s %6s %9s\n", "codec", "dim", "bits", "precnd", "layer",
                "bits/crd", "mse", "ip_rel_err", "ip_bias", "attn_kl", "top8", "top32", "out_err");
    Progress progress(datasets.size() * options.codecs.size() * options.bits.size() * options.precondition.size());
    for (const auto& data : datasets)
        for (const auto& name : options.codecs)
            for (double bits : options.bits)
                for (octopus::Preconditioning mode : options.precondition) {
                    try {
                        const auto codec = octopus::make_codec(name, {data.dim, bits, options.seed, options.norm});
                        for (const auto& r : octopus::sweep::measure_rows(codec, bits, data, {mode, options.fit_tokens},
                                                                          options.per_layer)) {
                            std::printf("%-15s %5zu %5.2f %-6s %5s %8.4f %9.6f %9.6f %9.5f %9.6f %6.3f %6.3f %9.6f\n",
                                        r.codec.c_str(), r.dim, r.bits, r.precondition.c_str(),
                                        r.layer < 0 ? "all" : std::to_string(r.layer).c_str(), r.bits_per_coord, r.mse,
                                        r.ip_rel_err, r.ip_bias, r.attn_kl, r.top8_recall, r.top32_recall, r.out_rel_err);
                            rows.push_back(r);
                        }
                        std::fflush(stdout);
                    } catch (const octopus::error& e) {
                        std::fprintf(stderr, "%soctopus-sweep: skipping %s at d=%zu, bits=%g: %s\n",
                                     isatty(STDERR_FILENO) ? "\r" : "", name.c_str(), data.dim, bits, e.what());
                    }
                    progress.step();
                }
    try {
        if (!options.csv.empty()) {
            std::ofstream csv(options.csv);
            if (!csv) throw octopus::error(options.csv + ": cannot write");
            csv << octopus::sweep::kCsvHeader << '\n';
            csv.precision(8);
            for (const auto& r : rows)
                csv << r.codec << ',' << r.dim << ',' << r.bits << ',' << r.bits_per_coord << ',' << r.mse << ','
                    << r.ip_rel_err << ',' << r.ip_bias << ',' << r.attn_kl << ',' << r.top8_recall << ','
                    << r.top32_recall << ',' << r.out_rel_err << ',' << r.data << ',' << r.precondition << ','
                    << (r.layer < 0 ? std::string("all") : std::to_string(r.layer)) << ',' << r.chose_none << ','
                    << r.chose_center << ',' << r.chose_scale << '\n';
        }
        if (!options.plot.empty()) {
            std::vector<octopus::sweep::Row> overall;  // the plot shows the averages over all heads
            for (const auto& r : rows)
                if (r.layer < 0) overall.push_back(r);
            octopus::sweep::write_plot(options.plot, overall);
        }
    } catch (const octopus::error& e) {
        std::fprintf(stderr, "octopus-sweep: %s\n", e.what());
        return 1;
    }
    return 0;
}
