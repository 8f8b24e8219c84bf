// OCTOPUS_HOST_DEVICE marks the functions the CPU and the CUDA kernels share (contract.hpp): plain
// inline C++ for a host compiler, __host__ __device__ under nvcc.
#pragma once

#if defined(__CUDACC__)
#define OCTOPUS_HOST_DEVICE __host__ __device__
#else
#define OCTOPUS_HOST_DEVICE
#endif
