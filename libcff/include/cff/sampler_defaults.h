// Defaults of the centripetal sampler, shared by libcff's sampler (sampler.h), its engine (engine.h)
// and the tools, in a header without LibTorch so that the GStreamer elements can include it.
// The values are the measured choice of docs/recipe.md.
#pragma once

#include <cstdint>

namespace cff {

struct CentripetalDefaults {
  // 10 centripetal steps from t = 800 with fresh noise (eta 1), evenly spaced, each but the last
  // followed by one Langevin corrector step at SNR 0.2: 19 model passes a sample. On the previous shipped
  // Fashion-MNIST model this lifted judge agreement from 85.8% (10 plain steps) and 78.8% (20 plain
  // steps) to 92.8%, FID from 11.2 to 7.8 (docs/recipe.md).
  static constexpr int64_t steps = 10;
  static constexpr double eta = 1.0;
  static constexpr double t_start = 800.0;
  static constexpr double spacing_power = 1.0;
  static constexpr int64_t corrector_steps = 1;
  static constexpr double corrector_snr = 0.2;
};

}  // namespace cff
