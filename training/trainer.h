// cff-train's engine: trains a CFF (or plain cross-entropy) classifier, checkpoints every epoch,
// evaluates, and exports a model file. The CLI in main.cpp only fills TrainOptions.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <map>

#include <torch/optim/adamw.h>
#include <torch/types.h>

#include "cff/model_file.h"
#include "cff/loss.h"
#include "cff/network.h"
#include "cff/sampler_defaults.h"
#include "cff/tensor_file.h"

namespace cff::train {

// cff-train's recipe (docs/recipe.md), the one definition of its loss defaults: the paper's loss plus
// CE on the noised images (gamma 1), with the force and noisy-CE terms on half of each batch, which
// halves their cost; the time saved buys more epochs within the same CPU budget. The force term weighs
// three times the paper's (beta 3): with the noise centred on the data (TrainOptions::centre) it is what
// makes samples of sparse data (strokes on a plain background) clean (docs/results/own-images-2026-12-07).
// `cff-train --help` prints these values, and TrainOptions starts from them.
inline CffLossOptions recipe_loss() {
  CffLossOptions loss;  // gamma 1, p_uncond 0.2: the library's defaults
  loss.beta = 3.0;
  loss.force_fraction = 0.5;
  return loss;
}

struct TrainOptions {
  std::string data = "fashion-mnist";  // dataset spec (see cff::data::load_dataset)
  std::string test_data;               // default: the test split of `data`
  std::string run_dir = "runs/latest"; // checkpoints, metrics.jsonl, sample grids
  std::string export_path;             // model file written at the end (default run_dir/model.cff)
  std::string objective = "cff";       // "cff" or "ce"
  // A model file to start from (fine-tuning, e.g. robust training of a trained model): its network replaces
  // the network options and its weights the random initialisation; its input size and classes must be the data's.
  std::string init;
  // channels/height/width/num_classes are set from the data; widths left empty (the default) are chosen for
  // the data's image size by cff::default_widths (network.h).
  NetworkConfig network = [] {
    NetworkConfig config;
    config.widths.clear();
    return config;
  }();
  // Training length: `epochs` when set, else 16 epochs or as many more as reach `min_steps` optimiser
  // steps (a 3,600-image set has 29 steps an epoch: 16 epochs would be 450 steps, too few to learn).
  int64_t epochs = 0;                  // 0 = auto (Fashion-MNIST: 16 epochs, about 1.5 h on 2 CPU cores)
  int64_t min_steps = 1500;
  int64_t batch = 128;
  double lr = 2e-3;
  double weight_decay = 5e-4;
  double warmup = 0.03;                // fraction of all steps with linear LR warm-up
  // CE first: the noised terms (force matching and noisy CE) join once the running training accuracy
  // has covered `warmup_accuracy` of the way from chance to 1 (at the latest after a quarter of the
  // steps), then ramp linearly to full weight over `force_warmup` of all steps. With the noised terms
  // on from the first step, a class-blind potential satisfies the force term on simple data (strokes
  // or shapes on a plain background) and CE stays at chance.
  double warmup_accuracy = 0.5;
  double force_warmup = 0.1;
  double ema = 0.999;                  // EMA decay of the weights (0 = off)
  CffLossOptions loss = recipe_loss();
  // The centre of the noise process (cff/schedule.h): "data" = the training images' mean per channel, so
  // noise is added around the data's brightness; "zero" = the paper's process around 0. With --init the
  // model's own centre is kept.
  std::string centre = "data";
  // Robust training (cff/loss.h robust_loss): a term on adversarial images added to the objective's loss,
  // from the first step. Off by default: each attack step costs about one more forward and backward pass.
  RobustLossOptions robust;
  // Random 2-pixel shifts only: a horizontal flip changes the class of digits, text and anything with
  // handedness, so it is asked for explicitly (the shipped Fashion-MNIST model uses flip+crop).
  std::string augment = "crop";        // none | flip | crop | flip+crop
  uint64_t seed = 0;
  int threads = 0;                     // 0 = the cores, divided among the processes of a distributed run on one machine
  // Distributed (data-parallel) runs: seconds any collective (and the rendezvous) may wait for the others.
  double dist_timeout = 1800;
  std::string device = "auto";
  int64_t limit = 0;                   // use only the first N training images (0 = all)
  // Training images held out to calibrate the OOD threshold: a fraction of the set (below 1), clamped
  // to 200..2000 images, or a count (1 and above); never more than a fifth of the set.
  double holdout = 0.1;
  int64_t eval_every = 1;              // epochs between evaluations (0 = only at the end)
  int64_t eval_limit = 0;              // test images used per evaluation, a fixed random subset (0 = all)
  // Which epoch's weights are exported: "last", "pgd" (the evaluated epoch of highest PGD-10 accuracy at
  // robust.eps on `select_images` hold-out images, the earlier on a tie: robust training overfits, Rice et al. 2020) or "auto"
  // (pgd with --robust, last without).
  std::string select = "auto";
  int64_t select_images = 500;
  // OOD sets for the AUROC at each evaluation and for choosing the model's recommended OOD score at export
  // (worst-case AUROC over them; the built-in ones are made from the held-out images). Their families are
  // then not held out: report a score on other families.
  std::vector<std::string> ood_sets = {"uniform", "inverted", "vflip", "constant", "low-contrast", "blur"};
  int64_t ood_fit_images = 10000;      // training images the feature-space OOD scores are fitted on
  int64_t samples_every = 1;           // epochs between sample grids (0 = never)
  int64_t sample_steps = CentripetalDefaults::steps;
  bool resume = false;
  int64_t stop_after = 0;              // stop after this many epochs in total (0 = run all); --resume continues
  double progress_seconds = 15.0;      // seconds between progress lines
  std::string command_line;            // recorded in the model's provenance
};

// What `train` chose from the options and the data, with the reason, for the progress output.
struct Plan {
  int64_t holdout = 0;
  int64_t epochs = 0;
  int64_t steps_per_epoch = 0;
  std::string epochs_reason;
  std::string holdout_reason;
};
Plan plan_training(const TrainOptions &options, int64_t images);

// One training batch [N, C, H, W] augmented as TrainOptions::augment says (none, flip, crop, flip+crop):
// random horizontal flips; random shifts of up to 2 pixels whose border is the image's own, mirrored.
torch::Tensor augment_batch(const torch::Tensor &x, const std::string &mode, at::Generator &gen);

// 1/K: the accuracy of guessing.
double chance_accuracy(int64_t num_classes);
// Training accuracy this close to chance (below 1/K + max(0.05, 0.25/K)) after `chance_check_steps` steps
// prints a warning and records it in the metrics.
constexpr int64_t chance_check_steps = 200;
// Training accuracy that opens the noised terms: chance + warmup_accuracy * (1 - chance).
double noised_terms_accuracy(double warmup_accuracy, int64_t num_classes);
bool near_chance(double accuracy, int64_t num_classes);

// Trains as configured and returns the final metrics (also written to run_dir/metrics.jsonl).
// Throws std::runtime_error (or cff::data::DatasetError) with a one-line reason on bad input.
nlohmann::json train(const TrainOptions &options);

// Fits the model's OOD scores (cff/ood.h) on up to `fit_images` of train_x/train_y, calibrates each on
// calib_x (keeps 95%), and recommends the score whose worst AUROC over `ood_sets` (built-ins made from
// calib_x, or folders) is highest; without calibration images or sets, mahalanobis-moments when fitted.
// Sets model.metadata.ood and returns the selection table: {score: {set: AUROC}, "recommended": name}.
nlohmann::json fit_ood_scores(Model &model, const torch::Tensor &train_x, const torch::Tensor &train_y,
                              const torch::Tensor &calib_x, const std::vector<std::string> &ood_sets, int64_t fit_images,
                              uint64_t seed);

// cff-train --fit-ood MODEL: refits MODEL's OOD scores on --data (the same hold-out split as training with
// the same --seed and --holdout) and writes the model to --export, or over MODEL (atomically).
void refit_ood(const TrainOptions &options, const std::string &model_path);

// AdamW's state of one parameter.
struct AdamState {
  int64_t step = 0;
  torch::Tensor exp_avg, exp_avg_sq;
};

// What a checkpoint holds, as --resume reads it: the network's and its EMA's tensors by name, AdamW's state
// by parameter name and its learning rate, the options the run was made with and where it stopped.
// The file is cff/tensor_file.h's container with the magic "CFFTRAIN": its JSON holds the options and
// counters, its tensor block "model/<name>", "ema/<name>", "adam/exp_avg/<name>" and "adam/exp_avg_sq/<name>".
struct Checkpoint {
  std::vector<cff::StoredTensor> model, ema;
  std::map<std::string, AdamState> optimizer;
  double lr = 0;
  nlohmann::json options;
  int64_t epoch = 0;
  int64_t noised_from = 0;
  double running_accuracy = 0;
};
// The weights of a network and its EMA copy and the state of the AdamW that trains the network (the options
// and counters are the caller's to set).
Checkpoint capture_checkpoint(Classifier &net, Classifier &ema, torch::optim::AdamW &optimizer);
// The bytes of a checkpoint file.
std::string serialize_checkpoint(const Checkpoint &checkpoint);
// Reads the bytes of a checkpoint file (`source` names it in messages): header, checksum, the JSON and every
// tensor entry. Throws std::runtime_error naming `source` on a damaged checkpoint and nothing else. (The
// fuzzer fuzz/fuzz_checkpoint calls it.)
Checkpoint read_checkpoint(const std::string &bytes, const std::string &source);
// Restores a checkpoint's model, EMA and optimiser state into a network, its EMA copy and the AdamW that
// trains the network; names and shapes must match exactly. Throws std::runtime_error naming `source`.
void restore_checkpoint(const Checkpoint &checkpoint, Classifier &net, Classifier &ema, torch::optim::AdamW &optimizer,
                        const std::string &source);

// The checksum-protected checkpoint file of a run directory.
std::string checkpoint_path(const std::string &run_dir);

}  // namespace cff::train
