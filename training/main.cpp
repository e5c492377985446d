// cff-train: the command-line trainer. Parses options into TrainOptions and reports errors in one line.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "cff/model_file.h"
#include "cli.h"
#include "datasets.h"
#include "trainer.h"

namespace {

using cff::cli::Option;
using cff::cli::split;
using cff::cli::to_double;
using cff::cli::to_int;

int print_info(const std::string &path) {
  const auto meta = cff::read_model_metadata(path);
  std::printf("%s\n", meta.to_json().dump(2).c_str());
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  cff::train::TrainOptions o;
  bool help = false;
  std::string info;
  std::vector<Option> options = {
      {"data", "SPEC", "training data: fashion-mnist, or a folder of IDX files, CIFAR-10 batches or class sub-folders [fashion-mnist]",
       [&](auto v) { o.data = v; }},
      {"test-data", "SPEC", "test data (its test split) [the test split of --data]", [&](auto v) { o.test_data = v; }},
      {"out", "DIR", "run folder: checkpoint, metrics.jsonl, sample grids [runs/latest]", [&](auto v) { o.run_dir = v; }},
      {"export", "FILE", "model file written at the end [OUT/model.cff]", [&](auto v) { o.export_path = v; }},
      {"objective", "cff|ce", "CFF (CE + force matching) or the plain cross-entropy baseline [cff]", [&](auto v) { o.objective = v; }},
      {"widths", "LIST", "channels of each stage, comma-separated [32,64,128]",
       [&](auto v) {
         o.network.widths.clear();
         for (const auto &w : split(v)) o.network.widths.push_back(to_int("widths", w));
       }},
      {"blocks", "N", "residual blocks per stage [1]", [&](auto v) { o.network.blocks_per_stage = to_int("blocks", v); }},
      {"groups", "N", "GroupNorm groups [8]", [&](auto v) { o.network.groups = to_int("groups", v); }},
      {"activation", "NAME", "silu, gelu or softplus [silu]", [&](auto v) { o.network.activation = v; }},
      {"channels", "N", "image channels for image-folder data (1 or 3) [1]", [&](auto v) { o.network.channels = to_int("channels", v); }},
      {"size", "HxW", "image size for image-folder data [28x28]",
       [&](auto v) {
         const auto x = v.find('x');
         if (x == std::string::npos) throw std::runtime_error("--size: expected HxW, got '" + v + "'");
         o.network.height = to_int("size", v.substr(0, x));
         o.network.width = to_int("size", v.substr(x + 1));
       }},
      {"epochs", "N", "training epochs [16]", [&](auto v) { o.epochs = to_int("epochs", v); }},
      {"batch", "N", "batch size [128]", [&](auto v) { o.batch = to_int("batch", v); }},
      {"lr", "X", "AdamW peak learning rate (cosine decay after warm-up) [2e-3]", [&](auto v) { o.lr = to_double("lr", v); }},
      {"weight-decay", "X", "AdamW weight decay [5e-4]", [&](auto v) { o.weight_decay = to_double("weight-decay", v); }},
      {"warmup", "X", "fraction of all steps spent in linear LR warm-up [0.03]", [&](auto v) { o.warmup = to_double("warmup", v); }},
      {"ema", "X", "EMA decay of the weights, evaluated and exported (0 = off) [0.999]", [&](auto v) { o.ema = to_double("ema", v); }},
      {"beta", "X", "weight of the force-matching term [1]", [&](auto v) { o.loss.beta = to_double("beta", v); }},
      {"gamma", "X", "weight of CE on noised images x_t; 0 = the paper-literal recipe [1]", [&](auto v) { o.loss.gamma = to_double("gamma", v); }},
      {"p-uncond", "X", "probability of matching the unconditional force [0.2]", [&](auto v) { o.loss.p_uncond = to_double("p-uncond", v); }},
      {"force-fraction", "X", "share of each batch noised for the force and noisy-CE terms; 1 = every image, as in the paper [0.5: half their cost]", [&](auto v) { o.loss.force_fraction = to_double("force-fraction", v); }},
      {"augment", "MODE", "none, flip, crop or flip+crop (random 2-pixel shifts) [flip+crop]", [&](auto v) { o.augment = v; }},
      {"seed", "N", "random seed [0]", [&](auto v) { o.seed = static_cast<uint64_t>(to_int("seed", v)); }},
      {"threads", "N", "CPU threads (0 = all cores) [0]", [&](auto v) { o.threads = static_cast<int>(to_int("threads", v)); }},
      {"device", "DEV", "auto, cpu, cuda or cuda:N [auto]", [&](auto v) { o.device = v; }},
      {"limit", "N", "train on the first N images only (0 = all) [0]", [&](auto v) { o.limit = to_int("limit", v); }},
      {"holdout", "N", "training images held out to calibrate the OOD threshold [2000]", [&](auto v) { o.holdout = to_int("holdout", v); }},
      {"eval-every", "N", "evaluate every N epochs (0 = at the end only) [1]", [&](auto v) { o.eval_every = to_int("eval-every", v); }},
      {"eval-limit", "N", "test images per evaluation (0 = all) [0]", [&](auto v) { o.eval_limit = to_int("eval-limit", v); }},
      {"ood", "LIST", "OOD sets for the AUROC: uniform, gaussian, inverted, vflip or dataset folders [uniform,inverted,vflip]",
       [&](auto v) { o.ood_sets = split(v); }},
      {"samples-every", "N", "write a conditional sample grid every N epochs (0 = never) [1]", [&](auto v) { o.samples_every = to_int("samples-every", v); }},
      {"sample-steps", "N", "centripetal steps for the sample grid (the sampler's defaults otherwise) [10]", [&](auto v) { o.sample_steps = to_int("sample-steps", v); }},
      {"progress", "SECONDS", "seconds between progress lines [15]", [&](auto v) { o.progress_seconds = to_double("progress", v); }},
      {"resume", "", "continue the run in --out from its last checkpoint", [&](auto) { o.resume = true; }},
      {"stop-after", "N", "stop after N epochs in total without exporting (time-boxed sessions) [0 = never]",
       [&](auto v) { o.stop_after = to_int("stop-after", v); }},
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
    cff::train::train(o);
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "cff-train: error: %s\n", e.what());
    return 1;
  }
}
