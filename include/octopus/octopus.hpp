// The one include for the CPU library: rotation, marginals, Lloyd–Max, octahedral map, direction
// grids and triplet codebooks, packing, every codec, make_codec to choose one by name, and the per-head
// preconditioning (fit, HeadCodec) that real keys need.
#pragma once

#include "octopus/codec.hpp"
#include "octopus/codecs/octopus.hpp"
#include "octopus/codecs/polarquant.hpp"
#include "octopus/codecs/qjl.hpp"
#include "octopus/codecs/turboquant.hpp"
#include "octopus/codecs/turboquant_prod.hpp"
#include "octopus/codecs/uniform.hpp"
#include "octopus/direction_grid.hpp"
#include "octopus/error.hpp"
#include "octopus/head_codec.hpp"
#include "octopus/lloyd_max.hpp"
#include "octopus/marginals.hpp"
#include "octopus/octahedral.hpp"
#include "octopus/packing.hpp"
#include "octopus/precondition.hpp"
#include "octopus/precondition_fit.hpp"
#include "octopus/registry.hpp"
#include "octopus/rotation.hpp"
#include "octopus/triplet_codebook.hpp"
#include "octopus/synthetic.hpp"
