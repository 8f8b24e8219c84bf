// The .npy reader of octopus-sweep on arbitrary bytes: a complete array or an octopus::error, never
// a crash, an overflow or an allocation the bytes cannot back.
#include <npy.hpp>

#include <cstdint>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::istringstream stream(std::string(reinterpret_cast<const char*>(data), size));
    try {
        const octopus::sweep::NpyArray array = octopus::sweep::read_npy(stream, "fuzz.npy");
        std::size_t count = 1;
        for (std::size_t s : array.shape) count *= s;
        if (count != array.data.size()) std::abort();
    } catch (const octopus::error&) {
    }
    return 0;
}
