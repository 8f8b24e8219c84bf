// The one include for the CPU library: the CPU/GPU contract, rotation, marginals, Lloyd–Max,
// octahedral map, direction grids, triplet codebooks and their tables, packing, every codec, make_codec to
// choose one by name or by a line of text (codec_config.hpp), the per-head preconditioning (fit, HeadCodec)
// that real keys need, fused decode attention (attention.hpp), TurboQuant keys in the scan layout
// (scan_keys.hpp, scan_scores.hpp, scan_attention.hpp) and the paged cache's pages (pages.hpp).
#pragma once

#include "octopus/attention.hpp"
#include "octopus/codec.hpp"
#include "octopus/codec_config.hpp"
#include "octopus/codec_spec.hpp"
#include "octopus/codecs/octopus.hpp"
#include "octopus/codecs/polarquant.hpp"
#include "octopus/codecs/qjl.hpp"
#include "octopus/codecs/turboquant.hpp"
#include "octopus/codecs/turboquant_prod.hpp"
#include "octopus/codecs/uniform.hpp"
#include "octopus/contract.hpp"
#include "octopus/direction_grid.hpp"
#include "octopus/error.hpp"
#include "octopus/head_codec.hpp"
#include "octopus/lloyd_max.hpp"
#include "octopus/marginals.hpp"
#include "octopus/octahedral.hpp"
#include "octopus/octahedral_cells.hpp"
#include "octopus/packing.hpp"
#include "octopus/pages.hpp"
#include "octopus/precondition.hpp"
#include "octopus/precondition_fit.hpp"
#include "octopus/registry.hpp"
#include "octopus/rotated_codec.hpp"
#include "octopus/rotation.hpp"
#include "octopus/scan_attention.hpp"
#include "octopus/synthetic.hpp"
#include "octopus/triplet_codebook.hpp"
#include "octopus/triplet_tables.hpp"
