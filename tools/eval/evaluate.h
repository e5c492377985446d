// cff-eval's engine: classification, OOD detection, conditional generation and denoising of one model
// file, measured on a dataset's test split. It writes the PNG figures into the output folder and returns
// every number as JSON; report.h turns that JSON into report.md and the console summary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cff/sampler_defaults.h"

namespace cff::eval {

struct EvalOptions {
  std::string model_path;
  std::string judge_path;                // separately trained classifier for generation metrics; empty = none
  std::string data = "fashion-mnist";    // dataset spec (cff::data::load_dataset); its test split is evaluated
  std::string out_dir = "eval-report";
  int64_t limit = 0;                     // test images (0 = all)
  int64_t fit_images = 10000;            // training images for the Mahalanobis fit
  double ridge = 1e-4;                   // Mahalanobis covariance ridge, relative to its mean variance
  std::vector<std::string> ood_sets = {"uniform", "gaussian", "inverted", "vflip"};
  int64_t ood_limit = 2000;              // images per OOD set
  int64_t video_frames = 500;            // frames sampled from a video OOD set
  std::vector<int64_t> steps = {10, 20, 50};
  // Samplers compared at each step count (same count = same number of force evaluations, so the
  // same time budget): centripetal (ours), langevin (SGLD as in JEM) and ascent (gradient ascent).
  std::vector<SamplerKind> samplers = {SamplerKind::centripetal};
  // The centripetal sampler's settings (eta, t_start, guidance, spacing, corrector); its steps field is
  // replaced by each of `steps`.
  SamplerSettings centripetal;
  bool unconditional = false;            // also unconditional centripetal samples (no label) at each step count
  int64_t samples = 500;                 // generated per step count, split evenly over the classes (500 keeps a default run to a few minutes)
  int64_t fid_images = 1000;             // test images that the generated features are compared with
  int64_t grid_columns = 10;             // samples per class shown in a grid
  std::vector<double> sigmas = {15, 25, 50};  // denoising noise levels, 0-255 pixel units
  int64_t denoise_images = 200;
  std::string denoise_video;             // natural video whose frames (160x120) are noised and denoised too; empty = none
  int64_t denoise_video_frames = 8;
  int64_t denoise_steps = 1;             // cff sampler steps from t* (1 = one-shot estimate)
  // OpenCV NLM filter strength: h = min(nlm_h * sigma, nlm_h_max). Measured on 200 Fashion-MNIST test
  // images, PSNR peaks at h = sigma for sigma 15 and 25 but at h = 0.7-0.8 sigma for sigma 50 (h = sigma
  // there loses 1.5 dB to over-smoothing), hence the cap.
  double nlm_h = 1.0;
  double nlm_h_max = 35.0;
  int64_t strip_images = 6;              // rows in each denoising strip PNG
  // White-box attacks (cff::AttackSpec texts) for the robustness part; empty = no robustness part.
  std::vector<std::string> attacks;
  int64_t attack_images = 500;           // test images attacked (the first ones)
  std::string attack_transfer;           // a second model file for the transfer check; empty = none
  std::vector<std::string> skip;         // parts left out: classification, ood, generation, denoising, robustness
  int threads = 2;
  std::string device = "auto";
  uint64_t seed = 0;
  int64_t batch = 250;                   // images per forward pass
  std::string command_line;
};

// The names of the report's parts, in order.
const std::vector<std::string> &part_names();

// Runs every part not skipped and writes the figures into options.out_dir (created). Progress lines go
// to stderr. Throws std::runtime_error (cff::ModelFileError, cff::data::DatasetError) whose message
// starts with the file or set it is about, e.g. "model.cff: checksum mismatch".
nlohmann::json evaluate(const EvalOptions &options);

}  // namespace cff::eval
