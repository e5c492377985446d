// cff-train's engine: trains a CFF (or plain cross-entropy) classifier, checkpoints every epoch,
// evaluates, and exports a model file. The CLI in main.cpp only fills TrainOptions.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cff/loss.h"
#include "cff/network.h"
#include "cff/sampler_defaults.h"

namespace cff::train {

// cff-train's recipe (docs/recipe.md): the paper's loss plus CE on the noised images (gamma 1), with
// the force and noisy-CE terms on half of each batch, which halves their cost; the time saved buys
// more epochs within the same CPU budget.
inline CffLossOptions recipe_loss() {
  CffLossOptions loss = recipe_loss();
  loss.force_fraction = 0.5;
  return loss;
}

struct TrainOptions {
  std::string data = "fashion-mnist";  // dataset spec (see cff::data::load_dataset)
  std::string test_data;               // default: the test split of `data`
  std::string run_dir = "runs/latest"; // checkpoints, metrics.jsonl, sample grids
  std::string export_path;             // model file written at the end (default run_dir/model.cff)
  std::string objective = "cff";       // "cff" or "ce"
  NetworkConfig network;               // channels/height/width/num_classes are set from the data
  int64_t epochs = 16;                 // the recipe: about 1.5 h on 2 CPU cores for Fashion-MNIST
  int64_t batch = 128;
  double lr = 2e-3;
  double weight_decay = 5e-4;
  double warmup = 0.03;                // fraction of all steps with linear LR warm-up
  double ema = 0.999;                  // EMA decay of the weights (0 = off)
  CffLossOptions loss;
  std::string augment = "flip+crop";   // none | flip | crop | flip+crop
  uint64_t seed = 0;
  int threads = 0;
  std::string device = "auto";
  int64_t limit = 0;                   // use only the first N training images (0 = all)
  int64_t holdout = 2000;              // training images held out to calibrate the OOD threshold
  int64_t eval_every = 1;              // epochs between evaluations (0 = only at the end)
  int64_t eval_limit = 0;              // test images used per evaluation (0 = all)
  std::vector<std::string> ood_sets = {"uniform", "inverted", "vflip"};
  int64_t samples_every = 1;           // epochs between sample grids (0 = never)
  int64_t sample_steps = CentripetalDefaults::steps;
  bool resume = false;
  int64_t stop_after = 0;              // stop after this many epochs in total (0 = run all); --resume continues
  double progress_seconds = 15.0;      // seconds between progress lines
  std::string command_line;            // recorded in the model's provenance
};

// Trains as configured and returns the final metrics (also written to run_dir/metrics.jsonl).
// Throws std::runtime_error (or cff::data::DatasetError) with a one-line reason on bad input.
nlohmann::json train(const TrainOptions &options);

// The checksum-protected checkpoint file of a run directory.
std::string checkpoint_path(const std::string &run_dir);

}  // namespace cff::train
