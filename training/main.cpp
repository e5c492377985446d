// cff-train: the command-line trainer. Parses options into TrainOptions and reports errors in one line.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <tuple>

#include "cff/model_file.h"
#include "cff/threads.h"
#include "support/cli.h"
#include "data/datasets.h"
#include "data/evaluation.h"
#include "training/trainer.h"

namespace {

using cff::cli::Option;
using cff::cli::split;
using cff::cli::to_double;
using cff::cli::to_int;

// A default as the help shows it: "[0.5]". The help prints TrainOptions' own defaults, so it cannot
// drift from what runs.
std::string shown(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "[%g]", v);
  return buf;
}

std::string shown(const std::string &v) { return "[" + v + "]"; }

std::string shown(const std::vector<std::string> &v) { return shown(cff::cli::join(v, ",")); }

std::string shown(const std::vector<int64_t> &v) {
  std::vector<std::string> items;
  for (auto item : v) items.push_back(std::to_string(item));
  return shown(items);
}

int print_info(const std::string &path) {
  // The whole file is loaded (weights, OOD tensors, checksum), so a file that cannot be used fails here.
  const auto meta = cff::load_model(path).metadata;
  std::printf("%s\n", meta.to_json().dump(2).c_str());
  const auto listed = meta.ood.listed();
  std::string scores;
  for (const auto &name : listed) {
    const auto t = meta.ood.threshold(name);
    scores += (scores.empty() ? "" : ", ") + name + (t ? " > " + std::to_string(*t) : " (no threshold)");
  }
  std::printf("OOD scores: %s; recommended: %s\n", scores.c_str(), meta.ood.recommended().c_str());
  if (meta.ood.fit_images() == 0) {
    std::printf("note: this file was written before the fitted OOD scores: it flags by the free energy only. "
                "cff-train --fit-ood %s --data DATA adds them\n", path.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  cff::keep_freed_memory();
  cff::train::TrainOptions o;
  const cff::train::TrainOptions d;  // the defaults, as the help prints them
  bool help = false;
  std::string info, fit_ood;
  std::vector<Option> options = {
      {"data", "SPEC", "training data: fashion-mnist, or a folder of IDX files, CIFAR-10 batches or class sub-folders " + shown(d.data),
       [&](auto v) { o.data = v; }},
      {"test-data", "SPEC", "test data (its test split) [the test split of --data]", [&](auto v) { o.test_data = v; }},
      {"out", "DIR", "run folder: checkpoint, metrics.jsonl, sample grids " + shown(d.run_dir), [&](auto v) { o.run_dir = v; }},
      {"export", "FILE", "model file written at the end [OUT/model.cff]", [&](auto v) { o.export_path = v; }},
      {"objective", "cff|ce", "CFF (CE + force matching) or the plain cross-entropy baseline " + shown(d.objective), [&](auto v) { o.objective = v; }},
      {"init", "MODEL", "start from MODEL's network and weights (fine-tuning); its input size and classes must be the data's "
                        "[none: a new network from --widths/--blocks/--groups/--activation]",
       [&](auto v) { o.init = v; }},
      {"widths", "LIST|auto", "channels of each stage, comma-separated; auto: 32,64,128 and one more stage per doubling "
                              "of the image side above 32, until the last stage's maps are at most 8 pixels a side " +
                                  (d.network.widths.empty() ? shown(std::string("auto")) : shown(d.network.widths)),
       [&](auto v) {
         o.network.widths.clear();
         if (v == "auto") return;
         for (const auto &w : split(v)) o.network.widths.push_back(to_int("widths", w));
       }},
      {"blocks", "N", "residual blocks per stage " + shown(d.network.blocks_per_stage), [&](auto v) { o.network.blocks_per_stage = to_int("blocks", v); }},
      {"groups", "N", "GroupNorm groups " + shown(d.network.groups), [&](auto v) { o.network.groups = to_int("groups", v); }},
      {"activation", "NAME", "silu, gelu or softplus " + shown(d.network.activation), [&](auto v) { o.network.activation = v; }},
      {"channels", "N", "image channels for image-folder data (1 or 3) " + shown(d.network.channels), [&](auto v) { o.network.channels = to_int("channels", v); }},
      {"size", "WxH", "image size for image-folder data, width x height " + shown(std::to_string(d.network.width) + "x" + std::to_string(d.network.height)),
       [&](auto v) { std::tie(o.network.width, o.network.height) = cff::cli::to_size("size", v); }},
      {"epochs", "N", "training epochs; 0 = 16, or more to reach --min-steps " + shown(d.epochs),
       [&](auto v) { o.epochs = to_int("epochs", v, 0); }},
      {"min-steps", "N", "with --epochs 0: train at least N optimiser steps " + shown(d.min_steps),
       [&](auto v) { o.min_steps = to_int("min-steps", v, 1); }},
      {"batch", "N", "batch size " + shown(d.batch), [&](auto v) { o.batch = to_int("batch", v); }},
      {"lr", "X", "AdamW peak learning rate (cosine decay after warm-up) " + shown(d.lr), [&](auto v) { o.lr = to_double("lr", v); }},
      {"weight-decay", "X", "AdamW weight decay " + shown(d.weight_decay), [&](auto v) { o.weight_decay = to_double("weight-decay", v); }},
      {"warmup", "X", "fraction of all steps spent in linear LR warm-up " + shown(d.warmup), [&](auto v) { o.warmup = to_double("warmup", v); }},
      {"ema", "X", "EMA decay of the weights, evaluated and exported (0 = off) " + shown(d.ema), [&](auto v) { o.ema = to_double("ema", v); }},
      {"beta", "X", "weight of the force-matching term " + shown(d.loss.beta), [&](auto v) { o.loss.beta = to_double("beta", v); }},
      {"warmup-accuracy", "X", "CE first: the force and noisy-CE terms join once training accuracy has gone this share of the "
                               "way from chance to 1 (at the latest after a quarter of the steps; 0 = from the start) " +
                                   shown(d.warmup_accuracy),
       [&](auto v) { o.warmup_accuracy = to_double("warmup-accuracy", v); }},
      {"force-warmup", "X", "then they ramp up to full weight over this fraction of all steps " + shown(d.force_warmup),
       [&](auto v) { o.force_warmup = to_double("force-warmup", v); }},
      {"centre", "MODE", "centre of the noise process: data (the training images' mean per channel) or zero (the paper's); --init keeps the model's " + shown(d.centre),
       [&](auto v) { o.centre = v; }},
      {"gamma", "X", "weight of CE on noised images x_t; 0 = the paper-literal recipe " + shown(d.loss.gamma), [&](auto v) { o.loss.gamma = to_double("gamma", v); }},
      {"p-uncond", "X", "probability of matching the unconditional force " + shown(d.loss.p_uncond), [&](auto v) { o.loss.p_uncond = to_double("p-uncond", v); }},
      {"margin-weight", "X", "weight of the energy-margin term on shuffled-patch outliers (Liu et al. 2020), with the force terms (not with --objective ce); 0 = off " + shown(d.loss.margin_weight),
       [&](auto v) { o.loss.margin_weight = to_double("margin-weight", v); }},
      {"margin-in", "U", "energy margin the training images are pushed below " + shown(d.loss.margin_in), [&](auto v) { o.loss.margin_in = to_double("margin-in", v); }},
      {"margin-out", "U", "energy margin the shuffled-patch outliers are pushed above " + shown(d.loss.margin_out), [&](auto v) { o.loss.margin_out = to_double("margin-out", v); }},
      {"robust", "MODE", "robust training term added to the objective: none, pgd (CE on PGD images), trades (beta KL to "
                         "the adversarial prediction) or weat (trades weighted by the free energy) " + shown(d.robust.mode),
       [&](auto v) { o.robust.mode = v; }},
      {"robust-eps", "X", "L-inf radius of the training attack, [0, 1] pixel units " + shown(d.robust.eps),
       [&](auto v) { o.robust.eps = to_double("robust-eps", v); }},
      {"robust-steps", "N", "attack steps per training step " + shown(static_cast<double>(d.robust.steps)),
       [&](auto v) { o.robust.steps = to_int("robust-steps", v, 1); }},
      {"robust-step-size", "X", "attack step in pixel units; 0 = eps / 4 " + shown(d.robust.step_size),
       [&](auto v) { o.robust.step_size = to_double("robust-step-size", v); }},
      {"robust-beta", "X", "KL weight of trades and weat " + shown(d.robust.beta),
       [&](auto v) { o.robust.beta = to_double("robust-beta", v); }},
      {"force-fraction", "X", "share of each batch noised for the force and noisy-CE terms; 1 = every image, as in the paper " + shown(d.loss.force_fraction), [&](auto v) { o.loss.force_fraction = to_double("force-fraction", v); }},
      {"augment", "MODE", "none, flip, crop or flip+crop (random 2-pixel shifts, the border mirrored from the image; flips only where mirrored images keep their class) " + shown(d.augment), [&](auto v) { o.augment = v; }},
      {"seed", "N", "random seed " + shown(static_cast<double>(d.seed)), [&](auto v) { o.seed = static_cast<uint64_t>(to_int("seed", v)); }},
      {"threads", "N", "CPU threads (0 = all cores, shared among the ranks of a distributed run on this machine) " + shown(d.threads), [&](auto v) { o.threads = static_cast<int>(to_int("threads", v)); }},
      {"dist-timeout", "SECONDS", "distributed runs (torchrun): how long a rank waits for the others before it exits " +
                                      shown(d.dist_timeout),
       [&](auto v) { o.dist_timeout = to_double("dist-timeout", v); }},
      {"device", "DEV", "auto, cpu, cuda or cuda:N " + shown(d.device), [&](auto v) { o.device = v; }},
      {"limit", "N", "train on the first N images only (0 = all) " + shown(d.limit), [&](auto v) { o.limit = to_int("limit", v); }},
      {"holdout", "N|X", "training images held out to calibrate the OOD threshold: a count, or a fraction below 1 "
                         "(then 200..2000 images, at most a fifth of the set) " + shown(d.holdout),
       [&](auto v) { o.holdout = to_double("holdout", v); }},
      {"eval-every", "N", "evaluate every N epochs (0 = at the end only) " + shown(d.eval_every), [&](auto v) { o.eval_every = to_int("eval-every", v); }},
      {"eval-limit", "N", "test images per evaluation, a fixed random subset (0 = all) " + shown(d.eval_limit), [&](auto v) { o.eval_limit = to_int("eval-limit", v); }},
      {"select", "MODE", "weights exported: last (the last epoch's), pgd (the evaluated epoch with the highest PGD-10 "
                         "accuracy at --robust-eps on --select-images hold-out images) or auto (pgd with --robust) " + shown(d.select),
       [&](auto v) { o.select = v; }},
      {"select-images", "N", "hold-out images attacked to select by PGD " + shown(static_cast<double>(d.select_images)),
       [&](auto v) { o.select_images = to_int("select-images", v, 1); }},
      {"ood", "LIST", "OOD sets for the AUROC: built-ins (" + cff::cli::join(cff::data::builtin_ood_sets()) + ") or dataset folders " +
           shown(d.ood_sets),
       [&](auto v) { o.ood_sets = split(v); }},
      {"samples-every", "N", "write a conditional sample grid every N epochs (0 = never) " + shown(d.samples_every), [&](auto v) { o.samples_every = to_int("samples-every", v); }},
      {"sample-steps", "N", "centripetal steps for the sample grid (the sampler's defaults otherwise) " + shown(d.sample_steps), [&](auto v) { o.sample_steps = to_int("sample-steps", v); }},
      {"progress", "SECONDS", "seconds between progress lines " + shown(d.progress_seconds), [&](auto v) { o.progress_seconds = to_double("progress", v); }},
      {"resume", "", "continue the run in --out from its last checkpoint", [&](auto) { o.resume = true; }},
      {"stop-after", "N", "stop after N epochs in total without exporting (time-boxed sessions) [0 = never]",
       [&](auto v) { o.stop_after = to_int("stop-after", v); }},
      {"ood-fit-images", "N", "training images the feature-space OOD scores are fitted on " + shown(static_cast<double>(d.ood_fit_images)),
       [&](auto v) { o.ood_fit_images = to_int("ood-fit-images", v); }},
      {"fit-ood", "MODEL", "fit MODEL's OOD scores on --data (calibrated on the hold-out MODEL was trained with, unless "
                           "--holdout/--seed/--limit are given), choose the recommended one on --ood, write --export or MODEL, and exit", [&](auto v) { fit_ood = v; }},
      {"info", "MODEL", "print a model file's metadata and exit", [&](auto v) { info = v; }},
      {"help", "", "show this help", [&](auto) { help = true; }},
  };
  try {
    for (int i = 0; i < argc; ++i) o.command_line += (i ? " " : "") + std::string(argv[i]);
    const auto positional = cff::cli::parse(argc, argv, options, " (see --help)");
    if (!positional.empty()) throw std::runtime_error("unexpected argument '" + positional[0] + "' (see --help)");
    if (help) {
      std::printf("usage: cff-train [options]\n\nTrains a Central Force Field classifier (or the plain CE baseline), "
                  "checkpointing every epoch,\nand exports a cff model file with labels, a calibrated OOD threshold and provenance.\n\n");
      cff::cli::print_options(options);
      return 0;
    }
    if (!info.empty()) return print_info(info);
    if (!fit_ood.empty()) {
      cff::train::refit_ood(o, fit_ood);
      return 0;
    }
    cff::train::train(o);
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "cff-train: error: %s\n", e.what());
    return 1;
  }
}
