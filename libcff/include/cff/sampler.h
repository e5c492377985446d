// Samplers that walk noise to data along the force field (docs/method.md "Sampling"), plus the two
// baselines of [JEM] and [COMs]/[WEAT] (Langevin/SGLD and gradient ascent) for comparison.
//
// Every sampler is deterministic given its seed: noise is drawn on the CPU from a generator seeded
// with `seed` and moved to the device, so the same seed gives the same frames on cpu and cuda
// (up to floating-point differences of the devices).
#pragma once

#include <cstdint>
#include <functional>

#include <torch/types.h>

#include "cff/energy.h"
#include "cff/sampler_defaults.h"
#include "cff/schedule.h"

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

// Called after each step with the step index (0-based) and the current estimate of x_0.
using StepCallback = std::function<void(int64_t step, const torch::Tensor &x0_estimate)>;

struct CentripetalOptions {
  int64_t steps = CentripetalDefaults::steps;  // S centripetal steps from t_start to 0
  double eta = CentripetalDefaults::eta;       // 0 = deterministic DDIM path, 1 = DDPM-like fresh noise each step
  double t_start = CentripetalDefaults::t_start;  // start time; noise is treated as x_{t_start} (default 1000: the T of cff-train's schedule)
  uint64_t seed = 0;
  torch::Tensor labels;       // [N] int64 requested classes; undefined = unconditional
  double guidance = 1.0;      // guidance scale w (see ForceOptions)
  LogitsFunction guide;       // optional decoupled guide classifier
  bool clip = true;           // clip x0 estimates to [-1, 1]
  // Step spacing: the k-th of S steps leaves time t_start * ((S - k) / S)^spacing_power, so 1 spaces
  // the steps evenly in t and 2 puts more of them near the data (small t), where detail forms.
  double spacing_power = CentripetalDefaults::spacing_power;
  // Langevin corrector steps after each centripetal step (predictor-corrector as in [ScoreSDE]; docs/method.md "Sampling"):
  // with the score -eps_hat / sqrt(1 - abar_t) and the step size set by the signal-to-noise ratio r
  // (corrector_snr), each is x <- x - 2 r^2 sqrt(1 - abar_t) eps_hat + 2 r sqrt(1 - abar_t) z.
  // Each costs one more forward and backward pass. 0 = the plain centripetal sampler.
  int64_t corrector_steps = CentripetalDefaults::corrector_steps;
  double corrector_snr = CentripetalDefaults::corrector_snr;
  StepCallback on_step;       // optional, e.g. to record a trajectory
};

// The centripetal options for `settings` (its centripetal fields) and a seed; labels, guide and on_step
// are the caller's.
CentripetalOptions centripetal_options(const SamplerSettings &settings, uint64_t seed);

// Generates N samples of shape [C, H, W] from x ~ N(m, I) (m: the schedule's centre). Returns x_0 in [-1, 1]
// (when clip).
torch::Tensor sample_centripetal(const LogitsFunction &f, const CosineSchedule &schedule, int64_t n,
                                 c10::IntArrayRef chw, const CentripetalOptions &options,
                                 const c10::Device &device = c10::Device(c10::kCPU));

// The start of sample_centripetal: N states x = m + z, z ~ N(0, I) from `seed`'s start-noise stream
// (seeds.h), so a sample drawn alone (n = 1, its own seed) starts where it would in a batch of one.
torch::Tensor centripetal_start(const CosineSchedule &schedule, int64_t n, c10::IntArrayRef chw, uint64_t seed,
                                const c10::Device &device = c10::Device(c10::kCPU));

// Runs centripetal steps from a given state: x_start [N, C, H, W] (image coordinates) sits at per-sample times
// t_start [N] (double). Each sample takes options.steps steps from its own t down to 0.
// options.t_start is ignored. Used by sample_centripetal and by denoising.
torch::Tensor run_centripetal(const LogitsFunction &f, const CosineSchedule &schedule, const torch::Tensor &x_start,
                              const torch::Tensor &t_start, const CentripetalOptions &options);

struct LangevinOptions {
  int64_t steps = 200;
  double step_size = 2.0;    // alpha in x <- x - (alpha/2) grad U + sigma z
  double noise = 0.01;       // sigma
  uint64_t seed = 0;
  torch::Tensor labels;      // undefined = U(x) = -LSE; else U(x, y) = -f_y
  bool clip = true;          // keep x in [-1, 1] after each step
  StepCallback on_step;
};

// SGLD as in [JEM] (docs/method.md "Sampling"): starts from uniform noise in [-1, 1].
torch::Tensor sample_langevin(const LogitsFunction &f, int64_t n, c10::IntArrayRef chw, const LangevinOptions &options,
                              const c10::Device &device = c10::Device(c10::kCPU));

struct AscentOptions {
  int64_t steps = 50;
  double step_size = 0.5;    // L2 length of each step in [-1, 1] image units
  uint64_t seed = 0;
  torch::Tensor labels;      // maximise log p(y|x) when given, else LSE(x)
  bool clip = true;
  StepCallback on_step;
};

// Normalised gradient ascent ([WEAT]: generation with robust classifiers; [COMs]; docs/method.md "Sampling"), from
// uniform noise. Deterministic given the seed, mode-seeking.
torch::Tensor sample_ascent(const LogitsFunction &f, int64_t n, c10::IntArrayRef chw, const AscentOptions &options,
                            const c10::Device &device = c10::Device(c10::kCPU));

// Standard normal noise drawn on the CPU from a generator seeded with `seed`, moved to `device`.
torch::Tensor seeded_normal(c10::IntArrayRef shape, uint64_t seed, const c10::Device &device);

}  // namespace cff
#pragma GCC visibility pop
