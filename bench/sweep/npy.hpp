// Reading NumPy .npy files of float32 or float16 (little-endian, C order), as KV dumps come.
#pragma once

#include <octopus/codec.hpp>
#include <octopus/error.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <istream>
#include <string>
#include <vector>

namespace octopus::sweep {

/// An array read from .npy, converted to float.
struct NpyArray {
    std::vector<std::size_t> shape;
    std::vector<float> data;
};

namespace detail {

/// The value of `key` in the header dict, e.g. "'descr': '<f4'" → "'<f4'" or "(2, 3)".
inline std::string header_field(const std::string& header, const std::string& key, const std::string& path) {
    const auto at = header.find("'" + key + "'");
    octopus::detail::require(at != std::string::npos, path + ": .npy header has no '" + key + "'");
    auto start = header.find(':', at);
    octopus::detail::require(start != std::string::npos, path + ": malformed .npy header");
    ++start;
    while (start < header.size() && header[start] == ' ') ++start;
    const char open = header[start];
    const char close = open == '(' ? ')' : open == '\'' ? '\'' : ',';
    const auto end = header.find(close, start + 1);
    octopus::detail::require(end != std::string::npos, path + ": malformed .npy header");
    return header.substr(start, end - start + (close == ',' ? 0 : 1));
}

}  // namespace detail

/// Reads a .npy array from `file` (a seekable stream; `path` is the file's name in messages). Throws
/// octopus::error naming the file for anything but a complete little-endian, C-order float32 or
/// float16 array of finite values: a bad magic or version, a damaged header, a shape whose size
/// overflows or exceeds what the stream holds (checked before anything is allocated), a truncated or
/// overlong payload.
inline NpyArray read_npy(std::istream& file, const std::string& path) {
    const std::streamoff start = file.tellg();
    file.seekg(0, std::ios::end);
    const std::streamoff end = file.tellg();
    file.seekg(start);
    octopus::detail::require(start >= 0 && end >= start && static_cast<bool>(file), path + ": cannot read (not a seekable file)");
    char magic[8] = {};
    file.read(magic, 8);
    octopus::detail::require(file.gcount() == 8 && std::memcmp(magic, "\x93NUMPY", 6) == 0,
                             path + ": not a .npy file (bad magic)");
    const int major = static_cast<unsigned char>(magic[6]);
    std::uint32_t header_length = 0;
    if (major == 1) {
        unsigned char length[2] = {};
        file.read(reinterpret_cast<char*>(length), 2);
        header_length = length[0] | (length[1] << 8);
    } else {
        octopus::detail::require(major == 2 || major == 3, path + ": unsupported .npy version " + std::to_string(major));
        unsigned char length[4] = {};
        file.read(reinterpret_cast<char*>(length), 4);
        header_length = length[0] | (length[1] << 8) | (length[2] << 16) | (std::uint32_t(length[3]) << 24);
    }
    octopus::detail::require(static_cast<bool>(file) && header_length < (1u << 20), path + ": truncated .npy header");
    std::string header(header_length, '\0');
    file.read(header.data(), header_length);
    octopus::detail::require(static_cast<std::uint32_t>(file.gcount()) == header_length, path + ": truncated .npy header");

    const std::string descr = detail::header_field(header, "descr", path);
    const bool is_f4 = descr == "'<f4'", is_f2 = descr == "'<f2'";
    octopus::detail::require(is_f4 || is_f2, path + ": dtype " + descr +
                                                 " is not supported; save keys as little-endian float32 or float16");
    octopus::detail::require(detail::header_field(header, "fortran_order", path).find("False") != std::string::npos,
                             path + ": Fortran-order arrays are not supported; save with C order");
    NpyArray array;
    const std::string shape = detail::header_field(header, "shape", path);
    const std::size_t element = is_f4 ? 4 : 2;
    const std::size_t remaining = static_cast<std::size_t>(end - file.tellg());
    // Every product is checked against what the stream holds, so no size below can overflow.
    const std::size_t most = remaining / element;
    std::size_t count = 1;
    bool empty = false;
    for (std::size_t i = 1; i < shape.size();) {
        while (i < shape.size() && (shape[i] == ' ' || shape[i] == ',')) ++i;
        if (i >= shape.size() || shape[i] == ')') break;
        std::size_t value = 0, digits = 0;
        while (i < shape.size() && shape[i] >= '0' && shape[i] <= '9') {
            const auto digit = static_cast<std::size_t>(shape[i++] - '0');
            octopus::detail::require(value <= (SIZE_MAX - digit) / 10, path + ": a dimension of shape " + shape + " overflows");
            value = value * 10 + digit;
            ++digits;
        }
        octopus::detail::require(digits > 0, path + ": malformed shape " + shape);
        array.shape.push_back(value);
        empty |= value == 0;
        octopus::detail::require(empty || count <= most / value, path + ": shape " + shape + " needs more than the file's " + std::to_string(remaining) +
                                                                     " bytes of data (truncated file or damaged header)");
        count = empty ? 0 : count * value;
    }
    octopus::detail::require(!array.shape.empty(), path + ": a scalar array holds no vectors");
    octopus::detail::require(count * element == remaining, path + ": the header promises " + std::to_string(count * element) +
                                                               " bytes of data, the file has " + std::to_string(remaining) +
                                                               " (trailing bytes)");
    std::vector<char> raw(count * element);
    file.read(raw.data(), static_cast<std::streamsize>(raw.size()));
    octopus::detail::require(static_cast<std::size_t>(file.gcount()) == raw.size(), path + ": reading its data failed");
    array.data.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
        if (is_f4) {
            std::memcpy(&array.data[i], raw.data() + 4 * i, 4);
        } else {
            std::uint16_t bits;
            std::memcpy(&bits, raw.data() + 2 * i, 2);
            array.data[i] = static_cast<float>(Eigen::numext::bit_cast<octopus::half>(bits));
        }
        octopus::detail::require(std::isfinite(array.data[i]), path + ": non-finite value at element " + std::to_string(i));
    }
    return array;
}

/// Reads the .npy file at `path` (read_npy above; also throws if it cannot be opened).
inline NpyArray read_npy(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    octopus::detail::require(static_cast<bool>(file), path + ": cannot open");
    return read_npy(file, path);
}

/// Writes a float32 .npy (for tests and for users saving synthetic data).
inline void write_npy(const std::string& path, const std::vector<std::size_t>& shape, const std::vector<float>& data) {
    std::string dims;
    for (std::size_t s : shape) dims += std::to_string(s) + ", ";
    if (shape.size() > 1) dims.resize(dims.size() - 2);
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::ofstream file(path, std::ios::binary);
    octopus::detail::require(static_cast<bool>(file), path + ": cannot write");
    file.write("\x93NUMPY\x01\x00", 8);
    const auto length = static_cast<std::uint16_t>(header.size());
    const char bytes[2] = {static_cast<char>(length & 0xff), static_cast<char>(length >> 8)};
    file.write(bytes, 2);
    file.write(header.data(), static_cast<std::streamsize>(header.size()));
    file.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * 4));
}

}  // namespace octopus::sweep
