// A self-describing container for packed records (a KV cache, a page of one, or any run of codes), so
// that bytes written by one codec configuration are never read by another: a header that names the
// codec, its spec and the layout, a checksum of the header and one of the payload, then the records.
//
// Layout, little-endian, version 2:
//   magic "OCTKVC\r\n" (8 bytes: the CR LF catches text-mode transfers) | format version u32 |
//   codec name length u16 | codec name | codebook revision u32 (registry.hpp's codebook_revision) |
//   dim u32 | bits ×3 u32 (b = 2.67 is stored as 8) | seed u64 |
//   norm format u8 (0 fp32, 1 fp16) | layout u8 (0 contiguous, 1 paged) | tokens per page u32 (0 when
//   contiguous) | record bytes u32 | records u64 | XXH64 of the payload u64 | XXH64 of every header byte
//   before this field u64 | payload (records × record bytes).
// Version 1 is the same without the codebook revision, which is then 1: such files still load for every
// codec whose codebook has not changed since, and are refused for `octopus`, whose codes now mean other
// points. XXH64 comes from the xxHash library (Debian's libxxhash-dev), inlined.
//
// A reader states what it expects (codec name, spec, layout); load_cache refuses, with a message that
// names the field, a wrong magic, an unknown version, a damaged header, any field other than the
// reader's, a truncated payload or a payload whose checksum fails, and in every case leaves the
// caller's output as it was.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <iterator>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "octopus/codec.hpp"
#include "octopus/codec_spec.hpp"
#include "octopus/error.hpp"
#include "octopus/registry.hpp"

namespace octopus {

/// The format version this build writes; it reads this one and version 1.
inline constexpr std::uint32_t kCacheFormatVersion = 2;

/// How the records are laid out: one contiguous run, or pages of a fixed number of tokens. Either way
/// the payload is whole records in token order; a paged cache's head pages (codes, then norms:
/// PageLayout, pages.hpp) go to and from that form with load_records and store_records.
struct CacheLayout {
    std::uint32_t page_tokens = 0;  ///< 0: contiguous; else tokens per page (the record count is then a multiple)
};

namespace detail {

#if defined(FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
inline constexpr bool kVerifyChecksums = false;  // a fuzzer cannot forge XXH64: let it reach the fields behind
#else
inline constexpr bool kVerifyChecksums = true;
#endif

inline constexpr char kCacheMagic[8] = {'O', 'C', 'T', 'K', 'V', 'C', '\r', '\n'};
inline constexpr std::size_t kMaxCodecName = 64;

/// What a cache header says, decoded.
struct CacheHeader {
    std::string codec;
    std::uint32_t codebook_revision = 1;
    std::uint32_t dim = 0, bits_thirds = 0, page_tokens = 0, record_bytes = 0;
    std::uint64_t seed = 0, records = 0, payload_hash = 0;
    std::uint8_t norm = 0, layout = 0;
};

template <class T>
void put_le(std::vector<std::uint8_t>& out, T value) {
    for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(value) >> (8 * i)));
}

/// Reads little-endian fields from a byte range, refusing to run past its end.
struct HeaderReader {
    std::span<const std::uint8_t> bytes;
    std::size_t at = 0;
    template <class T>
    T get(const char* field) {
        require(at + sizeof(T) <= bytes.size(), std::string("load_cache: the header ends inside its ") + field + " field (truncated file)");
        std::uint64_t value = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) value |= static_cast<std::uint64_t>(bytes[at + i]) << (8 * i);
        at += sizeof(T);
        return static_cast<T>(value);
    }
};

inline std::uint32_t bits_thirds(double bits) { return static_cast<std::uint32_t>(std::llround(3.0 * bits)); }

inline std::string describe(std::string_view codec, std::uint32_t dim, std::uint32_t thirds, std::uint64_t seed, std::uint8_t norm,
                            std::uint32_t page_tokens) {
    const std::string bits = thirds % 3 == 0 ? std::to_string(thirds / 3) : std::to_string(thirds) + "/3";
    return std::string(codec) + " d=" + std::to_string(dim) + " b=" + bits + " seed=" + std::to_string(seed) +
           (norm == 0 ? " fp32 norms" : " fp16 norms") +
           (page_tokens == 0 ? ", contiguous" : ", pages of " + std::to_string(page_tokens) + " tokens");
}

/// The header bytes for these records, both checksums included.
inline std::vector<std::uint8_t> cache_header(std::string_view codec, const CodecSpec& spec, CacheLayout layout,
                                              std::uint32_t record_bytes, std::uint64_t records, std::uint64_t payload_hash) {
    std::vector<std::uint8_t> h(std::begin(kCacheMagic), std::end(kCacheMagic));
    put_le<std::uint32_t>(h, kCacheFormatVersion);
    put_le<std::uint16_t>(h, static_cast<std::uint16_t>(codec.size()));
    h.insert(h.end(), codec.begin(), codec.end());
    put_le<std::uint32_t>(h, codebook_revision(codec));
    put_le<std::uint32_t>(h, static_cast<std::uint32_t>(spec.dim));
    put_le<std::uint32_t>(h, bits_thirds(spec.bits));
    put_le<std::uint64_t>(h, spec.seed);
    put_le<std::uint8_t>(h, spec.norm == NormFormat::fp16 ? 1 : 0);
    put_le<std::uint8_t>(h, layout.page_tokens == 0 ? 0 : 1);
    put_le<std::uint32_t>(h, layout.page_tokens);
    put_le<std::uint32_t>(h, record_bytes);
    put_le<std::uint64_t>(h, records);
    put_le<std::uint64_t>(h, payload_hash);
    put_le<std::uint64_t>(h, XXH64(h.data(), h.size(), 0));
    return h;
}

/// The record size of codec `codec` built from `spec`; throws for an unknown codec or a spec it refuses.
inline std::uint32_t record_bytes_of(std::string_view codec, const CodecSpec& spec, const char* call) {
    require(codec.size() <= kMaxCodecName, std::string(call) + ": codec name longer than 64 bytes");
    return static_cast<std::uint32_t>(make_codec(codec, spec).bytes_per_vector());
}

/// Throws unless `records` fill whole pages of `layout`.
inline void check_pages(CacheLayout layout, std::uint64_t records, const char* call) {
    require(layout.page_tokens == 0 || records % layout.page_tokens == 0,
            std::string(call) + ": " + std::to_string(records) + " records are not whole pages of " +
                std::to_string(layout.page_tokens) + " tokens");
}

}  // namespace detail

/// The file for `records` (whole records of codec `codec` built from `spec`): header, then the records.
/// Throws octopus::error for an unknown codec, a spec it refuses, a payload that is not whole records,
/// or records that do not fill whole pages of `layout`.
inline std::vector<std::uint8_t> save_cache(std::string_view codec, const CodecSpec& spec, std::span<const std::uint8_t> records,
                                            CacheLayout layout = {}) {
    const std::uint32_t record_bytes = detail::record_bytes_of(codec, spec, "save_cache");
    detail::require(records.size() % record_bytes == 0, "save_cache: " + std::to_string(records.size()) +
                                                            " bytes are not whole records of " + std::to_string(record_bytes) + " bytes");
    const std::uint64_t count = records.size() / record_bytes;
    detail::check_pages(layout, count, "save_cache");
    std::vector<std::uint8_t> file =
        detail::cache_header(codec, spec, layout, record_bytes, count, XXH64(records.data(), records.size(), 0));
    file.insert(file.end(), records.begin(), records.end());
    return file;
}

/// Writes save_cache's bytes to `out`; throws octopus::error if the stream fails.
inline void save_cache(std::ostream& out, std::string_view codec, const CodecSpec& spec, std::span<const std::uint8_t> records,
                       CacheLayout layout = {}) {
    const std::vector<std::uint8_t> file = save_cache(codec, spec, records, layout);
    out.write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
    detail::require(static_cast<bool>(out), "save_cache: writing " + std::to_string(file.size()) + " bytes to the stream failed");
}

/// Reads a cache file that must have been written for exactly codec `codec`, `spec` and `layout`, and
/// sets `records` to its payload. Throws octopus::error, naming what differs, for a wrong magic, an
/// unknown version, a damaged header, another codec or codebook revision, dim, bits, seed, norm format or layout, a
/// truncated or overlong file, or a payload whose checksum fails; `records` is then unchanged.
inline void load_cache(std::span<const std::uint8_t> file, std::string_view codec, const CodecSpec& spec, std::vector<std::uint8_t>& records,
                       CacheLayout layout = {}) {
    using detail::require;
    require(file.size() >= sizeof(detail::kCacheMagic) &&
                std::memcmp(file.data(), detail::kCacheMagic, sizeof(detail::kCacheMagic)) == 0,
            "load_cache: not an octopus cache file (its first bytes are not the magic \"OCTKVC\\r\\n\")");
    detail::HeaderReader r{file, sizeof(detail::kCacheMagic)};
    const auto version = r.get<std::uint32_t>("version");
    require(version == 1 || version == kCacheFormatVersion, "load_cache: format version " + std::to_string(version) +
                                                                 " is unknown to this build, which reads versions 1 and " +
                                                                 std::to_string(kCacheFormatVersion));
    detail::CacheHeader h;
    const auto name_length = r.get<std::uint16_t>("codec name length");
    require(name_length <= detail::kMaxCodecName && r.at + name_length <= file.size(),
            "load_cache: the header's codec name length " + std::to_string(name_length) + " is damaged or the file truncated");
    h.codec.assign(reinterpret_cast<const char*>(file.data() + r.at), name_length);
    r.at += name_length;
    if (version >= 2) h.codebook_revision = r.get<std::uint32_t>("codebook revision");
    h.dim = r.get<std::uint32_t>("dim");
    h.bits_thirds = r.get<std::uint32_t>("bits");
    h.seed = r.get<std::uint64_t>("seed");
    h.norm = r.get<std::uint8_t>("norm format");
    h.layout = r.get<std::uint8_t>("layout");
    h.page_tokens = r.get<std::uint32_t>("page size");
    h.record_bytes = r.get<std::uint32_t>("record size");
    h.records = r.get<std::uint64_t>("record count");
    h.payload_hash = r.get<std::uint64_t>("payload checksum");
    const std::size_t hashed = r.at;
    const auto header_hash = r.get<std::uint64_t>("header checksum");
    require(!detail::kVerifyChecksums || XXH64(file.data(), hashed, 0) == header_hash, "load_cache: the header's checksum fails: the header is damaged");

    const std::uint8_t want_norm = spec.norm == NormFormat::fp16 ? 1 : 0;
    const std::string written = detail::describe(h.codec, h.dim, h.bits_thirds, h.seed, h.norm, h.page_tokens);
    const std::string expected =
        detail::describe(codec, static_cast<std::uint32_t>(spec.dim), detail::bits_thirds(spec.bits), spec.seed, want_norm, layout.page_tokens);
    const auto mismatch = [&](const char* field) {
        return std::string("load_cache: the cache's ") + field + " differs from the reader's: it was written as " + written +
               ", the reader expects " + expected;
    };
    require(h.codec == codec, mismatch("codec"));
    const std::uint32_t revision = codebook_revision(codec);
    require(h.codebook_revision == revision,
            "load_cache: the cache's codes were written with " + h.codec + "'s codebook revision " +
                std::to_string(h.codebook_revision) + " (format version " + std::to_string(version) + "); this build's " +
                h.codec + " has revision " + std::to_string(revision) + " and would decode them to other points: re-encode the keys");
    require(h.dim == spec.dim, mismatch("head dim"));
    require(h.bits_thirds == detail::bits_thirds(spec.bits), mismatch("bits"));
    require(h.seed == spec.seed, mismatch("rotation seed"));
    require(h.norm == want_norm, mismatch("norm format"));
    require(h.layout == (layout.page_tokens == 0 ? 0 : 1) && h.page_tokens == layout.page_tokens, mismatch("layout"));
    const std::uint32_t record_bytes = detail::record_bytes_of(codec, spec, "load_cache");
    detail::check_pages(layout, h.records, "load_cache");
    require(h.record_bytes == record_bytes, "load_cache: the header says " + std::to_string(h.record_bytes) +
                                                "-byte records, the codec writes " + std::to_string(record_bytes));
    const std::size_t payload = file.size() - r.at;
    require(h.records <= payload / record_bytes && h.records * record_bytes == payload,
            "load_cache: the payload has " + std::to_string(payload) + " bytes, " + std::to_string(h.records) + " records of " +
                std::to_string(record_bytes) + " need " + (h.records <= (~std::uint64_t{0}) / record_bytes
                                                               ? std::to_string(h.records * record_bytes)
                                                               : std::string("more than 2^64")) +
                " (truncated or overlong file)");
    require(!detail::kVerifyChecksums || XXH64(file.data() + r.at, payload, 0) == h.payload_hash, "load_cache: the payload's checksum fails: the records are damaged");
    records.assign(file.begin() + static_cast<std::ptrdiff_t>(r.at), file.end());
}

/// load_cache from a stream, read to its end.
inline void load_cache(std::istream& in, std::string_view codec, const CodecSpec& spec, std::vector<std::uint8_t>& records,
                       CacheLayout layout = {}) {
    const std::vector<std::uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    detail::require(!in.bad(), "load_cache: reading the stream failed");
    load_cache(std::span<const std::uint8_t>(file), codec, spec, records, layout);
}

}  // namespace octopus
