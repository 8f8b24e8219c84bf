// Exact bit packing: fields of any width from 1 to 32 bits, back to back, least significant bit
// first, no padding between fields. A vector of d codes of b bits takes ceil(d·b/8) bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "octopus/error.hpp"

namespace octopus {

/// Bytes that `count` fields of `width` bits occupy.
constexpr std::size_t packed_bytes(std::size_t count, unsigned width) { return (count * width + 7) / 8; }

/// Appends fields to a byte buffer. The caller sizes the buffer (packed_bytes); flush() writes
/// the bytes still held, the last one with zero padding bits.
class BitWriter {
public:
    explicit BitWriter(std::uint8_t* out) : out_(out) {}

    /// Appends the low `width` bits of `value` (width in 1..32; higher bits of value must be 0).
    /// Bytes go out four at a time, once 32 bits have filled: one predictable branch per put.
    void put(std::uint32_t value, unsigned width) {
        buffer_ |= static_cast<std::uint64_t>(value) << filled_;  // filled_ < 32, so this fits
        filled_ += width;
        if (filled_ >= 32) {
            for (int k = 0; k < 4; ++k) out_[k] = static_cast<std::uint8_t>(buffer_ >> (8 * k));
            out_ += 4;
            buffer_ >>= 32;
            filled_ -= 32;
        }
    }

    void flush() {
        for (; filled_ > 0; filled_ = filled_ > 8 ? filled_ - 8 : 0) {
            *out_++ = static_cast<std::uint8_t>(buffer_);
            buffer_ >>= 8;
        }
        buffer_ = 0;
    }

private:
    std::uint8_t* out_;
    std::uint64_t buffer_ = 0;
    unsigned filled_ = 0;
};

/// Reads back what BitWriter wrote, field by field.
class BitReader {
public:
    explicit BitReader(const std::uint8_t* in) : in_(in) {}

    std::uint32_t get(unsigned width) {
        while (filled_ < width) {
            buffer_ |= static_cast<std::uint64_t>(*in_++) << filled_;
            filled_ += 8;
        }
        const auto value = static_cast<std::uint32_t>(buffer_ & ((std::uint64_t{1} << width) - 1));
        buffer_ >>= width;
        filled_ -= width;
        return value;
    }

    /// The bits of the current byte not yet read (the padding after the last field).
    std::uint32_t remaining_bits() const { return static_cast<std::uint32_t>(buffer_); }

private:
    const std::uint8_t* in_;
    std::uint64_t buffer_ = 0;
    unsigned filled_ = 0;
};

/// The hot-path form of pack_codes: no checks, codes must fit. Eight codes of w ≤ 8 bits fill
/// exactly w bytes, so they are assembled in one 64-bit word and stored whole; wider codes and the
/// tail go through BitWriter. Same bytes as BitWriter throughout.
inline void pack_codes_unchecked(const std::uint32_t* codes, std::size_t count, unsigned width, std::uint8_t* out) {
    std::size_t i = 0;
    if (width <= 8) {
        for (; i + 8 <= count; i += 8) {
            std::uint64_t group = 0;
            for (unsigned k = 0; k < 8; ++k) group |= static_cast<std::uint64_t>(codes[i + k]) << (k * width);
            for (unsigned byte = 0; byte < width; ++byte) out[byte] = static_cast<std::uint8_t>(group >> (8 * byte));
            out += width;
        }
    }
    BitWriter writer(out);
    for (; i < count; ++i) writer.put(codes[i], width);
    writer.flush();
}

namespace detail {
/// Throws unless width is in 1..32 and `bytes` is exactly packed_bytes(count, width); `what` names the
/// call and its buffer ("pack_codes: output").
inline void check_packing(unsigned width, std::size_t count, std::size_t bytes, const std::string& what) {
    const std::string call = what.substr(0, what.find(':'));
    require(width >= 1 && width <= 32, call + ": width " + std::to_string(width) + " is outside 1..32");
    require(bytes == packed_bytes(count, width), what + " has " + std::to_string(bytes) + " bytes, " + std::to_string(count) +
                                                     " codes of " + std::to_string(width) + " bits need " +
                                                     std::to_string(packed_bytes(count, width)));
}
}  // namespace detail

/// Packs codes[i] (each < 2^width) into out, which must hold exactly packed_bytes(codes.size(), width).
/// Throws octopus::error for a width outside 1..32, a wrong buffer size, or a code that does not fit.
inline void pack_codes(std::span<const std::uint32_t> codes, unsigned width, std::span<std::uint8_t> out) {
    detail::check_packing(width, codes.size(), out.size(), "pack_codes: output");
    const std::uint64_t limit = std::uint64_t{1} << width;
    for (std::size_t i = 0; i < codes.size(); ++i)
        if (codes[i] >= limit)
            throw error("pack_codes: code " + std::to_string(codes[i]) + " at index " + std::to_string(i) +
                        " does not fit in " + std::to_string(width) + " bits");
    BitWriter writer(out.data());
    for (std::uint32_t code : codes) writer.put(code, width);
    writer.flush();
}

/// Unpacks codes.size() fields of `width` bits from in (exactly packed_bytes(codes.size(), width)).
inline void unpack_codes(std::span<const std::uint8_t> in, unsigned width, std::span<std::uint32_t> codes) {
    detail::check_packing(width, codes.size(), in.size(), "unpack_codes: input");
    BitReader reader(in.data());
    for (std::uint32_t& code : codes) code = reader.get(width);
}

}  // namespace octopus
