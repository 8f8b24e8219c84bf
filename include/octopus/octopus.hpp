// The one include for the CPU library: rotation, marginals, Lloyd–Max, packing, every codec, and
// make_codec to choose one by name.
#pragma once

#include "octopus/codec.hpp"
#include "octopus/codecs/turboquant.hpp"
#include "octopus/error.hpp"
#include "octopus/lloyd_max.hpp"
#include "octopus/marginals.hpp"
#include "octopus/packing.hpp"
#include "octopus/registry.hpp"
#include "octopus/rotation.hpp"
#include "octopus/synthetic.hpp"
