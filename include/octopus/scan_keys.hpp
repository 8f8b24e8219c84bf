// TurboQuant keys in blocks of 32 tokens, laid out for lookup-table scoring (scan_scores.hpp): the
// same bytes as the tokens' records, transposed so that one 32-byte load holds one code byte of 32
// tokens, the way faiss's fast-scan lays out 4-bit codes.
//
// Block layout (kScanBlock = 32 tokens, c = the codec's code bytes, m = its norm bytes):
//   byte r·32 + t          = code byte r of token t's record, r < c
//   bytes 32·c + t·m …     = token t's stored norm (fp32 or fp16, as in the record)
// so a block is exactly 32 records' bytes and a cache costs what its records cost. Tokens past size()
// in the last block are zero. Records keep their meaning: codes least significant bit first, so a
// code byte holds 8/b whole codes for b ∈ {1, 2, 4} and three bytes hold eight 3-bit codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "octopus/codecs/turboquant.hpp"
#include "octopus/error.hpp"

namespace octopus {

/// Tokens per block of ScanKeys.
inline constexpr std::size_t kScanBlock = 32;

/// A growing cache of TurboQuant keys in the scan layout above. Holds a copy of the codec.
class ScanKeys {
public:
    explicit ScanKeys(const TurboQuant& codec) : codec_(codec) {}

    const TurboQuant& codec() const { return codec_; }
    std::size_t dim() const { return codec_.dim(); }
    unsigned bits() const { return codec_.bits(); }
    /// Tokens held.
    std::size_t size() const { return size_; }
    /// Whole blocks held (the last may be partly filled).
    std::size_t blocks() const { return (size_ + kScanBlock - 1) / kScanBlock; }
    /// Bytes of one block: 32 records.
    std::size_t block_bytes() const { return kScanBlock * codec_.bytes_per_vector(); }
    /// The bytes of block `b`.
    const std::uint8_t* block(std::size_t b) const { return bytes_.data() + b * block_bytes(); }
    /// Every block's bytes, blocks() · block_bytes() of them.
    std::span<const std::uint8_t> bytes() const { return bytes_; }

    /// Reserves room for `tokens` tokens, so that appends up to there allocate nothing.
    void reserve(std::size_t tokens) { bytes_.reserve((tokens + kScanBlock - 1) / kScanBlock * block_bytes()); }

    /// Appends the records of the codec (a whole number of bytes_per_vector() records). Throws
    /// octopus::error, appending nothing, for a partial record or a damaged one (non-finite or
    /// negative norm).
    void append_records(std::span<const std::uint8_t> records) {
        const std::size_t record_bytes = codec_.bytes_per_vector(), code_bytes = codec_.code_bytes();
        detail::require(records.size() % record_bytes == 0, "ScanKeys::append_records: " + std::to_string(records.size()) +
                                                                 " bytes are not a whole number of " + std::to_string(record_bytes) +
                                                                 "-byte records");
        const std::size_t n = records.size() / record_bytes;
        for (std::size_t i = 0; i < n; ++i)
            detail::require(codec_.vector_is_valid(records.data() + i * record_bytes),
                            "ScanKeys::append_records: record " + std::to_string(i) + " is damaged (non-finite or negative norm)");
        bytes_.resize((size_ + n + kScanBlock - 1) / kScanBlock * block_bytes(), 0);
        const std::size_t norm = record_bytes - code_bytes;
        for (std::size_t i = 0; i < n; ++i, ++size_) {
            const std::uint8_t* record = records.data() + i * record_bytes;
            std::uint8_t* b = bytes_.data() + size_ / kScanBlock * block_bytes();
            const std::size_t t = size_ % kScanBlock;
            for (std::size_t r = 0; r < code_bytes; ++r) b[r * kScanBlock + t] = record[r];
            std::memcpy(b + kScanBlock * code_bytes + t * norm, record + code_bytes, norm);
        }
    }

    /// Encodes n = keys.size() / dim() keys (the codec's encode and its errors) and appends them.
    void append(std::span<const float> keys) { append_records(codec_.encode(keys)); }

    /// Writes token t's record (bytes_per_vector() bytes): the bytes append_records took.
    void record(std::size_t t, std::span<std::uint8_t> out) const {
        const std::size_t record_bytes = codec_.bytes_per_vector(), code_bytes = codec_.code_bytes();
        detail::require(t < size_, "ScanKeys::record: token " + std::to_string(t) + " of " + std::to_string(size_));
        detail::require(out.size() == record_bytes, "ScanKeys::record: output has " + std::to_string(out.size()) + " bytes, a record " +
                                                         std::to_string(record_bytes));
        const std::uint8_t* b = block(t / kScanBlock);
        const std::size_t s = t % kScanBlock, norm = record_bytes - code_bytes;
        for (std::size_t r = 0; r < code_bytes; ++r) out[r] = b[r * kScanBlock + s];
        std::memcpy(out.data() + code_bytes, b + kScanBlock * code_bytes + s * norm, norm);
    }

    /// Token t's stored norm.
    float norm(std::size_t t) const {
        const std::size_t code_bytes = codec_.code_bytes(), m = codec_.bytes_per_vector() - code_bytes;
        return detail::load_norm(block(t / kScanBlock) + kScanBlock * code_bytes + t % kScanBlock * m, codec_.norm_format());
    }

    /// Forgets every token (keeps the allocation).
    void clear() {
        bytes_.clear();
        size_ = 0;
    }

private:
    TurboQuant codec_;
    std::size_t size_ = 0;
    std::vector<std::uint8_t> bytes_;
};

}  // namespace octopus
