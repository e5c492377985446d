// The sampler settings every caller passes through (the engine, cffgenerate, cff-eval), their names and
// their validation, and the defaults of the centripetal sampler, shared by libcff's sampler (sampler.h),
// its engine (engine.h) and the tools, in a header without LibTorch so that the GStreamer elements can
// include it. The default values are the measured choice of docs/recipe.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

struct CentripetalDefaults {
  // 10 centripetal steps from t = T = 1000 (pure noise) with fresh noise (eta 1), spaced with power 3 (the
  // steps leave t = 729, 512, 343, ..., 1, 0), each but the last followed by one Langevin corrector step at
  // SNR 0.2: 19 model passes a sample. Spacing power 3 instead of even steps lifted the shipped
  // Fashion-MNIST model from 96.4% judge agreement, FID 5.26, lowest class diversity 0.71 to 98.4%, 4.17,
  // 0.79 (1000 samples), and helped on every own-images set measured (docs/recipe.md "Spacing the steps
  // with the corrector on", 2026-12-07). On the previous shipped Fashion-MNIST model the corrector lifted
  // judge agreement from 85.8% (10 plain steps) and 78.8% (20 plain steps) to 92.8%, FID from 11.2 to 7.8;
  // with it, starting at T instead of t = 800 lifts the shipped model from 94.9% to 96.4%, FID 6.48 to 5.26,
  // lowest class diversity 0.68 to 0.71 (docs/recipe.md). cff-train's models all have T = 1000.
  static constexpr int64_t steps = 10;
  static constexpr double eta = 1.0;
  static constexpr double t_start = 1000.0;
  static constexpr double spacing_power = 3.0;
  static constexpr int64_t corrector_steps = 1;
  static constexpr double corrector_snr = 0.2;
};

// The samplers: the centripetal one (ours, sampler.h) and the cited baselines (SGLD as in [JEM],
// normalised gradient ascent), both from uniform noise.
enum class SamplerKind { centripetal, langevin, ascent };

// "centripetal", "langevin", "ascent", in enum order.
const std::vector<std::string> &sampler_names();
std::string sampler_name(SamplerKind kind);
// Throws std::invalid_argument naming the unknown name and the known ones.
SamplerKind parse_sampler(const std::string &name);

// What a caller chooses about one generation. The centripetal fields are ignored by the baselines;
// centripetal_options() (sampler.h) is the one mapping to libcff's sampler options.
struct SamplerSettings {
  SamplerKind sampler = SamplerKind::centripetal;
  int64_t steps = CentripetalDefaults::steps;            // sampler steps (>= 1; langevin/ascent accept 0)
  double eta = CentripetalDefaults::eta;                 // centripetal: 0 = deterministic path, 1 = fresh noise each step
  double t_start = CentripetalDefaults::t_start;         // centripetal: start time in (0, T]
  double guidance = 1.0;                                 // centripetal: guidance scale w (0 = unconditional force)
  double spacing_power = CentripetalDefaults::spacing_power;    // centripetal: step spacing (sampler.h)
  int64_t corrector_steps = CentripetalDefaults::corrector_steps;  // centripetal: Langevin corrector steps
  double corrector_snr = CentripetalDefaults::corrector_snr;    // centripetal: corrector SNR

  // Throws std::invalid_argument naming the first setting out of range; t_max is the schedule's T.
  void validate(double t_max) const;
};

}  // namespace cff
#pragma GCC visibility pop
