// The optional CUDA side of octopus: GPU encode, fused scores and fused decode attention over the
// CPU codecs' packed formats. Needs nvcc; the CPU library never includes this.
#pragma once

#include "octopus/cuda/attention.cuh"
#include "octopus/cuda/device_codec.cuh"
#include "octopus/cuda/encode.cuh"
#include "octopus/cuda/paged_cache.cuh"
#include "octopus/cuda/preconditioning.cuh"
#include "octopus/cuda/scores.cuh"
