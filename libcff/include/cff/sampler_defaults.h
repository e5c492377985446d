// Defaults of the centripetal sampler, shared by libcff's sampler (sampler.h), its engine (engine.h)
// and the tools, in a header without LibTorch so that the GStreamer elements can include it.
// The values are the measured choice of docs/recipe.md.
#pragma once

#include <cstdint>

namespace cff {

struct CentripetalDefaults {
  static constexpr int64_t steps = 50;
  static constexpr double eta = 1.0;
  static constexpr double t_start = 800.0;
  static constexpr double spacing_power = 1.0;
  static constexpr int64_t corrector_steps = 0;
  static constexpr double corrector_snr = 0.1;
};

}  // namespace cff
