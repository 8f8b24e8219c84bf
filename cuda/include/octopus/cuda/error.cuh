// CUDA errors as octopus::error, naming the call that failed.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "octopus/error.hpp"

namespace octopus::cuda::detail {

inline void check(cudaError_t status, const char* call) {
    if (status != cudaSuccess)
        throw octopus::error(std::string("octopus::cuda: ") + call + " failed: " + cudaGetErrorName(status) + " (" +
                             cudaGetErrorString(status) + ")");
}

}  // namespace octopus::cuda::detail

/// Throws octopus::error with the failing call's text when a CUDA runtime call does not succeed.
#define OCTOPUS_CUDA_CHECK(call) ::octopus::cuda::detail::check((call), #call)
