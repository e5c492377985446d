// The small network the model-file and checkpoint seeds are made with (fuzz/make_seeds.cpp), and that the
// checkpoint target loads checkpoints into.
#pragma once

#include "cff/network.h"

namespace cff_fuzz {

inline cff::NetworkConfig tiny_network() {
  cff::NetworkConfig c;
  c.channels = 1;
  c.height = 8;
  c.width = 8;
  c.num_classes = 3;
  c.widths = {4, 8};
  c.blocks_per_stage = 1;
  c.groups = 2;
  return c;
}

}  // namespace cff_fuzz
