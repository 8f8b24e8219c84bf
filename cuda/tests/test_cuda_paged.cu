// The paged cache on the GPU (paged_cache.cuh): paged encode writes exactly the CPU's page bytes
// (pages.hpp) for every codec, head dim, page size and input type, through a prefill and a decode step
// that land in shuffled pages; it refuses positions and page ids outside the pool without writing; and
// decode attention over pages matches a double-precision reference on the CPU-decoded pages for random
// block tables, pages shared between sequences, empty and one-token sequences, lengths that are not a
// multiple of the page, GQA groups 1 to 8 and fp32, fp16 and bf16 queries and outputs.
#include "support.cuh"

#include <octopus/pages.hpp>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <numeric>

namespace {

/// A paged cache's bookkeeping on the host: a block table of shuffled page ids, sequence 1 sharing
/// sequence 0's first pages (a common prefix): `shared` of them, or as many as sequence 0 holds full
/// and sequence 1 needs.
struct Pages {
    int page_tokens = 16, kv_heads = 1, pages = 0, max_pages = 0;
    int shared = 0;                         // pages of sequence 0 that sequence 1 starts with
    std::vector<int> lengths, block_table;  // [batch][max_pages]
    int batch() const { return static_cast<int>(lengths.size()); }
    int page_of(int b, int token) const { return block_table[b * max_pages + token / page_tokens]; }
};

Pages make_pages(const std::vector<int>& lengths, int page_tokens, int kv_heads, int shared, std::uint64_t seed) {
    Pages p;
    p.page_tokens = page_tokens, p.kv_heads = kv_heads, p.lengths = lengths;
    if (lengths.size() >= 2)
        p.shared = std::min({shared, lengths[0] / page_tokens, (lengths[1] + page_tokens - 1) / page_tokens});
    for (int n : lengths) p.max_pages = std::max(p.max_pages, (n + page_tokens - 1) / page_tokens);
    p.max_pages = std::max(p.max_pages, 1) + 1;  // a spare column: rows longer than any sequence needs
    int needed = 0;
    for (int n : lengths) needed += (n + page_tokens - 1) / page_tokens;
    p.pages = needed + 3;  // pages no sequence uses
    std::vector<int> ids(p.pages);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937_64(seed));
    p.block_table.assign(static_cast<std::size_t>(p.batch()) * p.max_pages, p.pages - 1);
    int next = 0;
    for (int b = 0; b < p.batch(); ++b)
        for (int i = 0; i * page_tokens < lengths[b]; ++i)
            p.block_table[b * p.max_pages + i] = b == 1 && i < p.shared ? p.block_table[i] : ids[next++];
    return p;
}

/// The vectors of sequence b, KV head h: test keys, except that a sequence sharing sequence 0's pages
/// has sequence 0's vectors on the shared tokens.
std::vector<float> sequence_vectors(const Pages& p, int b, int h, std::size_t d, std::uint64_t seed) {
    auto x = test_keys(static_cast<std::size_t>(p.lengths[b]), d, seed + 100 * b + h, 5);
    if (b == 1 && p.shared > 0) {
        const auto first = test_keys(static_cast<std::size_t>(p.lengths[0]), d, seed + h, 5);
        const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(p.shared * p.page_tokens) * d, x.size());
        std::copy(first.begin(), first.begin() + static_cast<std::ptrdiff_t>(n), x.begin());
    }
    return x;
}

/// A pool filled by the CPU's encode_page (junk 0xEE in unused slots and pages), and the vectors its
/// pages decode to along each sequence's block table (the reference's K or V).
template <class C>
HostCache host_pool(const C& codec, const Pages& p, std::uint64_t seed) {
    const std::size_t d = codec.dim();
    const octopus::PageLayout layout = octopus::page_layout(codec, p.page_tokens);
    HostCache pool;
    pool.bytes.assign(static_cast<std::size_t>(p.pages * p.kv_heads * layout.head_page_bytes()), 0xEE);
    for (int b = 0; b < p.batch(); ++b)
        for (int h = 0; h < p.kv_heads; ++h) {
            const auto x = sequence_vectors(p, b, h, d, seed);
            std::vector<float> decoded(x.size());
            for (int t0 = 0; t0 < p.lengths[b]; t0 += p.page_tokens) {
                const int n = std::min(p.page_tokens, p.lengths[b] - t0);
                auto page = std::span<std::uint8_t>(pool.bytes).subspan(
                    static_cast<std::size_t>(layout.head_page_offset(p.page_of(b, t0), h, p.kv_heads)),
                    static_cast<std::size_t>(layout.head_page_bytes()));
                octopus::encode_page(codec, layout, std::span<const float>(x.data() + t0 * d, n * d), page, 0);
                octopus::decode_page(codec, layout, std::span<const std::uint8_t>(page), 0,
                                     std::span<float>(decoded.data() + t0 * d, n * d));
            }
            pool.decoded.push_back(decoded);
        }
    return pool;
}

template <class T>
T from_float(float x) {
    if constexpr (std::is_same_v<T, __half>) return __float2half_rn(x);
    else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16_rn(x);
    else return x;
}
template <class T>
float to_float(T x) {
    if constexpr (std::is_same_v<T, __half>) return __half2float(x);
    else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(x);
    else return x;
}
template <class T>
const char* type_name() {
    return std::is_same_v<T, __half> ? "fp16" : std::is_same_v<T, __nv_bfloat16> ? "bf16" : "fp32";
}

/// Values of type T (what the GPU reads) and the same values as floats (what the CPU encodes).
template <class T>
std::vector<T> as_type(const std::vector<float>& x) {
    std::vector<T> out(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = from_float<T>(x[i]);
    return out;
}
template <class T>
std::vector<float> rounded_to(const std::vector<float>& x) {
    std::vector<float> out(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = to_float(from_float<T>(x[i]));
    return out;
}

/// Prefills every sequence but its last token on the GPU (one call per sequence, its block table row),
/// then appends the last tokens of all sequences in one decode step; the pool must equal the CPU's.
template <class T>
void check_paged_encode(const Pair& pair, int page_tokens) {
    const std::size_t d = pair.cpu.dim();
    const int kv_heads = 2, shared = 1;
    const Pages p = make_pages({37, 2 * page_tokens + 5, page_tokens + 1}, page_tokens, kv_heads, shared, 9);
    const octopus::PageLayout layout = oc::page_layout(*pair.gpu, page_tokens);
    // The CPU pool from the same values rounded to T (the CPU encodes floats, the GPU T's).
    std::vector<std::vector<float>> x(p.batch() * kv_heads);
    for (int b = 0; b < p.batch(); ++b)
        for (int h = 0; h < kv_heads; ++h) x[b * kv_heads + h] = rounded_to<T>(sequence_vectors(p, b, h, d, 40));
    std::vector<std::uint8_t> expected(static_cast<std::size_t>(p.pages * kv_heads * layout.head_page_bytes()), 0xEE);
    for (int b = 0; b < p.batch(); ++b)
        for (int h = 0; h < kv_heads; ++h)
            for (int t = 0; t < p.lengths[b]; ++t) {
                auto page = std::span<std::uint8_t>(expected).subspan(
                    static_cast<std::size_t>(layout.head_page_offset(p.page_of(b, t), h, kv_heads)),
                    static_cast<std::size_t>(layout.head_page_bytes()));
                std::vector<std::uint8_t> record(pair.cpu.bytes_per_vector());
                pair.cpu.encode(std::span<const float>(x[b * kv_heads + h].data() + t * d, d), std::span<std::uint8_t>(record));
                octopus::store_records(layout, record, page, t % page_tokens);
            }

    DeviceArray<std::uint8_t> pool(std::vector<std::uint8_t>(expected.size(), 0xEE));
    DeviceArray<int> table(p.block_table);
    DeviceArray<unsigned> rejected(std::vector<unsigned>{0});
    for (int b = 0; b < p.batch(); ++b) {  // prefill: [1][tokens][kv_heads][d]
        const int n = p.lengths[b] - 1;
        std::vector<float> rows(static_cast<std::size_t>(n) * kv_heads * d);
        for (int t = 0; t < n; ++t)
            for (int h = 0; h < kv_heads; ++h)
                std::copy_n(x[b * kv_heads + h].begin() + t * d, d, rows.begin() + (t * kv_heads + h) * d);
        DeviceArray<T> dx(as_type<T>(rows));
        oc::encode(*pair.gpu, dx.data, oc::PagedTarget{pool.data, p.pages, page_tokens, kv_heads, table.data + b * p.max_pages,
                                                      p.max_pages, 1, n, nullptr},
                   rejected.data);
    }
    std::vector<float> step(static_cast<std::size_t>(p.batch()) * kv_heads * d);  // decode step: [batch][1][kv_heads][d]
    std::vector<int> positions(p.batch());
    for (int b = 0; b < p.batch(); ++b) {
        positions[b] = p.lengths[b] - 1;
        for (int h = 0; h < kv_heads; ++h)
            std::copy_n(x[b * kv_heads + h].begin() + positions[b] * d, d, step.begin() + (b * kv_heads + h) * d);
    }
    DeviceArray<T> dstep(as_type<T>(step));
    DeviceArray<int> dpositions(positions);
    oc::encode(*pair.gpu, dstep.data, oc::PagedTarget{pool.data, p.pages, page_tokens, kv_heads, table.data, p.max_pages,
                                                     p.batch(), 1, dpositions.data},
               rejected.data);
    EXPECT_EQ(rejected.download()[0], 0u) << pair.label;
    const auto got = pool.download();
    std::size_t first_difference = got.size();
    for (std::size_t i = 0; i < got.size() && first_difference == got.size(); ++i)
        if (got[i] != expected[i]) first_difference = i;
    EXPECT_EQ(first_difference, got.size()) << pair.label << " P=" << page_tokens << " " << type_name<T>()
                                            << ": GPU page bytes differ from the CPU's at byte " << first_difference;
}

TEST_F(Gpu, PagedEncodeWritesTheCpuPageBytes) {
    int checked = 0;
    for (std::size_t d : octopus::kGpuHeadDims)
        for (const Config& config : kAllCodecs)
            for (int page_tokens : octopus::kPageTokenChoices)
                for (NormFormat norm : {NormFormat::fp32, NormFormat::fp16}) {
                    const Pair pair = make_pair(config.turboquant, d, config.bits, 3, norm);
                    check_paged_encode<float>(pair, page_tokens);
                    if (d == 128 && norm == NormFormat::fp16) {
                        check_paged_encode<__half>(pair, page_tokens);
                        check_paged_encode<__nv_bfloat16>(pair, page_tokens);
                    }
                    ++checked;
                }
    std::printf("paged encode: %d codec x dim x page size x norm format combinations byte-identical to the CPU pages\n", checked);
}

TEST_F(Gpu, PagedEncodeRefusesSlotsOutsideThePool) {
    const Pair pair = make_pair(true, 128, 3, 3);
    const int page_tokens = 16, kv_heads = 2, pages = 4, max_pages = 2;
    const octopus::PageLayout layout = oc::page_layout(*pair.gpu, page_tokens);
    const std::vector<std::uint8_t> junk(static_cast<std::size_t>(pages * kv_heads * layout.head_page_bytes()), 0x5A);
    DeviceArray<std::uint8_t> pool(junk);
    DeviceArray<int> table(std::vector<int>{0, 7, 1, -1, 2, 3});  // sequence 0's page 1 and sequence 1's page 1 are outside
    DeviceArray<unsigned> rejected(std::vector<unsigned>{0});
    const auto x = test_keys(3 * kv_heads, 128, 4);
    DeviceArray<float> dx(x);
    // Positions: 16 (page id 7), 20 (page id −1), 32 (past the row of 2 pages).
    DeviceArray<int> positions(std::vector<int>{16, 20, 32});
    oc::encode(*pair.gpu, dx.data, oc::PagedTarget{pool.data, pages, page_tokens, kv_heads, table.data, max_pages, 3, 1, positions.data},
               rejected.data);
    DeviceArray<int> negative(std::vector<int>{-1});
    oc::encode(*pair.gpu, dx.data, oc::PagedTarget{pool.data, pages, page_tokens, kv_heads, table.data, max_pages, 1, 1, negative.data},
               rejected.data);
    EXPECT_EQ(rejected.download()[0], 3u * kv_heads + kv_heads);
    EXPECT_EQ(pool.download(), junk);
    // Shapes the host can check are refused before launching.
    const auto refuse = [&](oc::PagedTarget t) { EXPECT_THROW(oc::encode(*pair.gpu, dx.data, t), octopus::error); };
    refuse(oc::PagedTarget{nullptr, pages, page_tokens, kv_heads, table.data, max_pages, 1, 1, nullptr});
    refuse(oc::PagedTarget{pool.data, pages, page_tokens, kv_heads, nullptr, max_pages, 1, 1, nullptr});
    refuse(oc::PagedTarget{pool.data, pages, 24, kv_heads, table.data, max_pages, 1, 1, nullptr});
    refuse(oc::PagedTarget{pool.data, 0, page_tokens, kv_heads, table.data, max_pages, 1, 1, nullptr});
    refuse(oc::PagedTarget{pool.data, pages, page_tokens, kv_heads, table.data, max_pages, 1, 0, nullptr});
    refuse(oc::PagedTarget{pool.data + 4, pages, page_tokens, kv_heads, table.data, max_pages, 1, 1, nullptr});
    OCTOPUS_CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_EQ(pool.download(), junk);
}

/// Paged attention against the double reference on the CPU-decoded pages; returns the worst row error.
/// Keys at `bits` and values at `value_bits` (0: the keys' bits).
template <class T>
double check_paged_attention(bool turboquant, std::size_t d, double bits, int group, const std::vector<int>& lengths,
                             int page_tokens, int shared, int max_splits = 128, double value_bits = 0) {
    if (value_bits == 0) value_bits = bits;
    const int kv_heads = 2, q_heads = kv_heads * group;
    const Pair keys = make_pair(turboquant, d, bits, 5, NormFormat::fp32);
    const Pair values = make_pair(turboquant, d, value_bits, 6, NormFormat::fp16);
    const Pages p = make_pages(lengths, page_tokens, kv_heads, shared, 17);
    const auto pool = [&](double b, std::uint64_t codec_seed, NormFormat norm, std::uint64_t data_seed) {
        const CodecSpec spec{d, b, codec_seed, norm};  // the specs of make_pair above: the same tables
        return turboquant ? host_pool(octopus::TurboQuant(spec), p, data_seed) : host_pool(octopus::Octopus(spec), p, data_seed);
    };
    const HostCache key_pool = pool(bits, 5, NormFormat::fp32, 21), value_pool = pool(value_bits, 6, NormFormat::fp16, 22);
    auto q = test_queries(p.batch(), q_heads, d, 23);
    for (float& x : q) x *= 0.3f;
    q = rounded_to<T>(q);  // the reference meets the queries the kernel reads
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const auto expected = reference_attention(q, key_pool, value_pool, p.batch(), q_heads, kv_heads, d, lengths, scale);
    DeviceArray<std::uint8_t> dk(key_pool.bytes), dv(value_pool.bytes);
    DeviceArray<int> table(p.block_table), dl(lengths);
    DeviceArray<T> dq(as_type<T>(q));
    DeviceArray<T> out(as_type<T>(std::vector<float>(q.size(), NAN)));
    oc::AttentionWorkspace workspace(p.batch(), q_heads, kv_heads, static_cast<int>(d), max_splits);
    const int max_length = *std::max_element(lengths.begin(), lengths.end());
    const oc::PagedCache cache{dk.data, dv.data, p.pages, page_tokens, p.batch(), q_heads, kv_heads, table.data, p.max_pages,
                               dl.data, max_length};
    oc::decode_attention(*keys.gpu, *values.gpu, dq.data, cache, static_cast<float>(scale), out.data, workspace);
    const auto got_typed = out.download();
    std::vector<float> got(got_typed.size());
    for (std::size_t i = 0; i < got.size(); ++i) got[i] = to_float(got_typed[i]);
    return worst_row_error(got, expected, d);
}

/// The bar: 1e-3, plus the output type's own rounding (half an ulp relative: 2^-11 for fp16, 2^-8 for bf16).
template <class T>
double bar() {
    return 1e-3 + (std::is_same_v<T, __half> ? 0x1p-11 : std::is_same_v<T, __nv_bfloat16> ? 0x1p-8 : 0.0);
}

template <class T>
void attention_cases() {
    double worst = 0.0;
    int cases = 0;
    for (std::size_t d : octopus::kGpuHeadDims)
        for (const Config& config : {Config{true, 2}, Config{true, 3}, Config{true, 4}, Config{false, 2}, Config{false, 8.0 / 3},
                                     Config{false, 3}, Config{false, 4}})
            for (int page_tokens : octopus::kPageTokenChoices) {
                const int group = 1 + cases % 8;  // every group size 1 to 8 across the cases
                const std::vector<int> lengths = {3 * page_tokens + 7, 2 * page_tokens + 5, 0, 1, page_tokens, 700 + 13 * (cases % 5)};
                const double error = check_paged_attention<T>(config.turboquant, d, config.bits, group, lengths, page_tokens, 2);
                EXPECT_LT(error, bar<T>()) << (config.turboquant ? "turboquant" : "octopus") << " d=" << d << " b=" << config.bits
                                          << " P=" << page_tokens << " G=" << group << " " << type_name<T>();
                worst = std::max(worst, error);
                ++cases;
            }
    std::printf("paged attention, %s queries and outputs: %d cases, worst row relative error %.2e (bar %.2e)\n", type_name<T>(),
                cases, worst, bar<T>());
}

TEST_F(Gpu, PagedAttentionMatchesADoubleReferenceInFp16) { attention_cases<__half>(); }
TEST_F(Gpu, PagedAttentionMatchesADoubleReferenceInBf16) { attention_cases<__nv_bfloat16>(); }
TEST_F(Gpu, PagedAttentionMatchesADoubleReferenceInFp32) { attention_cases<float>(); }

TEST_F(Gpu, PagedAttentionOverLongSharedContextsAndOneSplit) {
    for (int group : {1, 4, 8}) {
        const double long_error = check_paged_attention<__half>(true, 128, 3, group, {20000, 9000, 1}, 16, 300);
        const double one_split = check_paged_attention<__half>(false, 128, 3, group, {2000, 333}, 64, 10, 1);
        EXPECT_LT(long_error, bar<__half>()) << "G=" << group;
        EXPECT_LT(one_split, bar<__half>()) << "G=" << group;
        std::printf("paged attention G=%d: 20k tokens sharing 300 pages %.2e; one split %.2e\n", group, long_error, one_split);
    }
}

TEST_F(Gpu, PagedAttentionWithKeysAndValuesOfDifferentWidths) {
    double worst = 0.0;
    for (std::size_t d : octopus::kGpuHeadDims)
        for (int key_bits = 2; key_bits <= 4; ++key_bits)
            for (int value_bits = 2; value_bits <= 4; ++value_bits) {
                if (key_bits == value_bits) continue;
                const int group = 1 + (key_bits * 3 + value_bits) % 8;
                const double error = check_paged_attention<__half>(true, d, key_bits, group, {3 * 16 + 7, 40, 0, 1, 900}, 16, 2,
                                                                   128, value_bits);
                EXPECT_LT(error, bar<__half>()) << "d=" << d << " keys " << key_bits << " bits, values " << value_bits;
                worst = std::max(worst, error);
            }
    std::printf("paged attention, TurboQuant keys and values of different widths (18 cases): worst row relative error %.2e\n",
                worst);
}

TEST_F(Gpu, PreconditionedPagesMatchTheCpuHeadCodec) {
    for (const Config& config : {Config{true, 3}, Config{false, 3}}) {
        const std::size_t d = 128;
        const Pair keys = make_pair(config.turboquant, d, config.bits, 31, NormFormat::fp32);
        const Pair values = make_pair(config.turboquant, d, config.bits, 32, NormFormat::fp16);
        const int kv_heads = 2, group = 4, q_heads = kv_heads * group, page_tokens = 16;
        const Pages p = make_pages({50, 17}, page_tokens, kv_heads, 0, 3);
        const octopus::PageLayout kl = oc::page_layout(*keys.gpu, page_tokens), vl = oc::page_layout(*values.gpu, page_tokens);
        // Per (sequence, KV head) preconditioners, and keys and values far from centred.
        std::vector<float> key_offset(p.batch() * kv_heads * d), key_scale(key_offset.size()), value_offset(key_offset.size());
        std::vector<octopus::HeadCodec> heads;
        std::vector<std::vector<float>> k(p.batch() * kv_heads), v(k.size());
        for (int index = 0; index < p.batch() * kv_heads; ++index) {
            const auto pre = test_preconditioner(d, index);
            std::copy(pre.key_offset.begin(), pre.key_offset.end(), key_offset.begin() + index * d);
            std::copy(pre.key_scale.begin(), pre.key_scale.end(), key_scale.begin() + index * d);
            std::copy(pre.value_offset.begin(), pre.value_offset.end(), value_offset.begin() + index * d);
            heads.emplace_back(keys.cpu, values.cpu, pre);
            const int n = p.lengths[index / kv_heads];
            k[index] = test_keys(n, d, 50 + index, 3), v[index] = test_keys(n, d, 80 + index, 3);
            for (std::size_t i = 0; i < k[index].size(); ++i) k[index][i] += pre.key_offset[i % d], v[index][i] += pre.value_offset[i % d];
        }
        DeviceArray<float> d_key_offset(key_offset), d_key_scale(key_scale), d_value_offset(value_offset);
        const oc::Preconditioning pre{d_key_offset.data, d_key_scale.data, d_value_offset.data};
        DeviceArray<std::uint8_t> key_pool(std::vector<std::uint8_t>(p.pages * kv_heads * kl.head_page_bytes(), 0xEE));
        DeviceArray<std::uint8_t> value_pool(std::vector<std::uint8_t>(p.pages * kv_heads * vl.head_page_bytes(), 0xEE));
        DeviceArray<int> table(p.block_table);
        DeviceArray<unsigned> rejected(std::vector<unsigned>{0});
        // Token by token, as decode steps append (a sequence past its length appends nothing: position −1).
        for (int t = 0; t < 50; ++t) {
            std::vector<float> new_k(p.batch() * kv_heads * d, 0.0f), new_v(new_k.size(), 0.0f);
            std::vector<int> positions(p.batch());
            for (int b = 0; b < p.batch(); ++b) {
                positions[b] = t < p.lengths[b] ? t : -1;
                for (int h = 0; h < kv_heads && t < p.lengths[b]; ++h)
                    for (std::size_t c = 0; c < d; ++c) {
                        new_k[(b * kv_heads + h) * d + c] = k[b * kv_heads + h][t * d + c];
                        new_v[(b * kv_heads + h) * d + c] = v[b * kv_heads + h][t * d + c];
                    }
            }
            DeviceArray<float> dk(new_k), dv(new_v);
            DeviceArray<int> dpositions(positions);
            oc::encode_kv(*keys.gpu, dk.data, oc::PagedTarget{key_pool.data, p.pages, page_tokens, kv_heads, table.data, p.max_pages,
                                                             p.batch(), 1, dpositions.data},
                          *values.gpu, dv.data, oc::PagedTarget{value_pool.data, p.pages, page_tokens, kv_heads, table.data,
                                                               p.max_pages, p.batch(), 1, dpositions.data},
                          rejected.data, nullptr, pre);
        }
        EXPECT_EQ(rejected.download()[0], static_cast<unsigned>(2 * kv_heads * (50 - 17))) << "the refused past-the-end appends";
        const auto got_keys = key_pool.download(), got_values = value_pool.download();
        HostCache key_host, value_host;
        for (int index = 0; index < p.batch() * kv_heads; ++index) {
            const int b = index / kv_heads, h = index % kv_heads, n = p.lengths[b];
            std::vector<std::uint8_t> expected_keys(n * keys.cpu.bytes_per_vector()), expected_values(n * values.cpu.bytes_per_vector());
            heads[index].encode_keys(std::span<const float>(k[index]), std::span<std::uint8_t>(expected_keys));
            heads[index].encode_values(std::span<const float>(v[index]), std::span<std::uint8_t>(expected_values));
            std::vector<std::uint8_t> got_k(expected_keys.size()), got_v(expected_values.size());
            for (int t0 = 0; t0 < n; t0 += page_tokens) {
                const int count = std::min(page_tokens, n - t0);
                const auto page_of = [&](const std::vector<std::uint8_t>& pool, const octopus::PageLayout& l) {
                    return std::span<const std::uint8_t>(pool).subspan(static_cast<std::size_t>(l.head_page_offset(p.page_of(b, t0), h, kv_heads)),
                                                                       static_cast<std::size_t>(l.head_page_bytes()));
                };
                octopus::load_records(kl, page_of(got_keys, kl), 0,
                                      std::span<std::uint8_t>(got_k).subspan(t0 * keys.cpu.bytes_per_vector(), count * keys.cpu.bytes_per_vector()));
                octopus::load_records(vl, page_of(got_values, vl), 0,
                                      std::span<std::uint8_t>(got_v).subspan(t0 * values.cpu.bytes_per_vector(), count * values.cpu.bytes_per_vector()));
            }
            ASSERT_EQ(got_k, expected_keys) << keys.label << ": paged key bytes differ from HeadCodec's, head " << index;
            ASSERT_EQ(got_v, expected_values) << keys.label << ": paged value bytes differ from HeadCodec's, head " << index;
            std::vector<float> dk(n * d), dv(n * d);
            heads[index].decode_keys(expected_keys, dk);
            heads[index].decode_values(expected_values, dv);
            key_host.decoded.push_back(dk), value_host.decoded.push_back(dv);
        }
        auto q = test_queries(p.batch(), q_heads, d, 33);
        for (float& x : q) x *= 0.05f;
        q = rounded_to<__half>(q);
        const double scale = 1.0 / std::sqrt(static_cast<double>(d));
        const auto expected = reference_attention(q, key_host, value_host, p.batch(), q_heads, kv_heads, d, p.lengths, scale);
        DeviceArray<__half> dq(as_type<__half>(q)), out(q.size());
        DeviceArray<int> dl(p.lengths);
        oc::AttentionWorkspace workspace(p.batch(), q_heads, kv_heads, static_cast<int>(d));
        const oc::PagedCache cache{key_pool.data, value_pool.data, p.pages, page_tokens, p.batch(), q_heads, kv_heads, table.data,
                                   p.max_pages, dl.data, 50};
        oc::decode_attention(*keys.gpu, *values.gpu, dq.data, cache, static_cast<float>(scale), out.data, workspace, nullptr, pre);
        const auto got_half = out.download();
        std::vector<float> got(got_half.size());
        for (std::size_t i = 0; i < got.size(); ++i) got[i] = __half2float(got_half[i]);
        const double worst = worst_row_error(got, expected, d);
        EXPECT_LT(worst, bar<__half>()) << keys.label;
        std::printf("preconditioned pages %-30s bytes equal to HeadCodec's, attention worst row %.2e\n", keys.label.c_str(), worst);
    }
}

TEST_F(Gpu, PagedAttentionRefusesBadArgumentsBeforeLaunching) {
    const Pair keys = make_pair(true, 128, 3, 5), values = make_pair(true, 128, 3, 6);
    const Pair octopus_3 = make_pair(false, 128, 3, 5), octopus_2 = make_pair(false, 128, 2, 6), odd_dim = make_pair(true, 96, 3, 6);
    DeviceArray<std::uint8_t> pool(1 << 20);
    DeviceArray<int> table(std::vector<int>(8, 0)), lengths(std::vector<int>{5, 5});
    DeviceArray<__half> q(2 * 8 * 128), out(2 * 8 * 128);
    oc::AttentionWorkspace workspace(2, 8, 2, 128);
    const oc::PagedCache good{pool.data, pool.data, 4, 16, 2, 8, 2, table.data, 4, lengths.data, 64};
    oc::decode_attention(*keys.gpu, *values.gpu, q.data, good, 0.1f, out.data, workspace);
    OCTOPUS_CUDA_CHECK(cudaDeviceSynchronize());
    const auto refuse = [&](oc::PagedCache c) {
        EXPECT_THROW(oc::decode_attention(*keys.gpu, *values.gpu, q.data, c, 0.1f, out.data, workspace), octopus::error);
    };
    oc::PagedCache c = good;
    c.block_table = nullptr, refuse(c);
    c = good, c.lengths = nullptr, refuse(c);
    c = good, c.keys = pool.data + 8, refuse(c);
    c = good, c.page_tokens = 8, refuse(c);
    c = good, c.max_length = 65, refuse(c);      // past 4 pages of 16
    c = good, c.q_heads = 7, refuse(c);          // not a multiple of kv_heads
    c = good, c.pages = 0, refuse(c);
    c = good, c.batch = 3, refuse(c);            // the workspace holds 2
    c = good, c.kv_heads = c.q_heads = 1 << 22, refuse(c);  // a page of 2^22 heads x 16 slots x 52 bytes: over 2 GiB
    c = good, c.pages = 1 << 30, c.page_tokens = 64, refuse(c);  // 2^30 pages x 2 heads x 4 groups: tiles past 2^32
    EXPECT_THROW(oc::decode_attention(*octopus_3.gpu, *octopus_2.gpu, q.data, good, 0.1f, out.data, workspace), octopus::error);
    EXPECT_THROW(oc::decode_attention(*keys.gpu, *octopus_3.gpu, q.data, good, 0.1f, out.data, workspace), octopus::error);
    EXPECT_THROW(oc::decode_attention(*odd_dim.gpu, *odd_dim.gpu, q.data, good, 0.1f, out.data, workspace), octopus::error);
    EXPECT_THROW(oc::decode_attention(*keys.gpu, *values.gpu, q.data, good, NAN, out.data, workspace), octopus::error);
    EXPECT_THROW(oc::decode_attention(*keys.gpu, *values.gpu, static_cast<const __half*>(nullptr), good, 0.1f, out.data, workspace),
                 octopus::error);
}

}  // namespace
