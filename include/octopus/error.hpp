// octopus::error — the one exception type the library throws for bad data from outside.
#pragma once

#include <stdexcept>
#include <string>

namespace octopus {

/// Thrown for every problem with data that comes from the caller: an unsupported head dim, a bit width
/// out of range, NaN or Inf in an input, a buffer of the wrong size, packed bytes that were damaged.
/// The message names the offending value and the limit it broke. Nothing has been written to any
/// output buffer when it is thrown.
class error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

namespace detail {

/// Throws octopus::error with `message` unless `condition` holds.
inline void require(bool condition, const std::string& message) {
    if (!condition) throw error(message);
}

}  // namespace detail
}  // namespace octopus
