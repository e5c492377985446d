// cff-eval: evaluates a cff model file (classification, OOD detection, conditional generation, denoising)
// and writes a report folder: report.md, summary.json and PNG figures. The work is in evaluate.cpp,
// the rendering in report.cpp; this file parses options and turns failures into one-line messages:
// exit 1 for a bad input (model, dataset, video), exit 2 for bad options.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core/utils/logger.hpp>

#include "cff/device.h"
#include "support/cli.h"
#include "evaluate.h"
#include "data/evaluation.h"
#include "report.h"
#include "cff/attack.h"

namespace {

using cff::cli::Option;
using cff::cli::to_double;
using cff::cli::to_int;
using cff::cli::UsageError;

// A comma-separated list that must not be empty.
std::vector<std::string> split(const std::string &name, const std::string &v) {
  auto out = cff::cli::split(v);
  if (out.empty()) throw UsageError("--" + name + ": empty list");
  return out;
}

// A default as the help shows it: "1000", "0.2".
std::string shown(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

}  // namespace

int main(int argc, char **argv) {
  cff::keep_freed_memory();
  cff::eval::EvalOptions o;
  bool help = false;
  const std::vector<Option> options = {
      {"data", "SPEC", "dataset whose test split is evaluated: fashion-mnist, or a folder of IDX files, CIFAR-10 batches or class sub-folders [fashion-mnist]",
       [&](auto v) { o.data = v; }},
      {"limit", "N", "test images used (0 = all) [0]", [&](auto v) { o.limit = to_int("limit", v, 0); }},
      {"out", "DIR", "report folder, created: report.md, summary.json, PNGs [eval-report]", [&](auto v) { o.out_dir = v; }},
      {"ood", "LIST", "OOD sets, comma-separated: built-ins (" + cff::cli::join(cff::data::builtin_ood_sets()) +
                              "), dataset folders, video files [" + cff::cli::join(o.ood_sets, ",") + "]",
       [&](auto v) { o.ood_sets = split("ood", v); }},
      {"ood-limit", "N", "images per built-in or dataset OOD set (built-ins derive from the test images, so at most --limit) [2000]", [&](auto v) { o.ood_limit = to_int("ood-limit", v, 1); }},
      {"video-frames", "N", "frames sampled evenly from each video OOD set [500]", [&](auto v) { o.video_frames = to_int("video-frames", v, 1); }},
      {"fit", "N", "training images for the Mahalanobis class means and covariance [10000]", [&](auto v) { o.fit_images = to_int("fit", v, 2); }},
      {"ridge", "X", "Mahalanobis covariance ridge, as a multiple of the mean variance [1e-4]", [&](auto v) {
         o.ridge = to_double("ridge", v);
         if (o.ridge < 0) throw UsageError("--ridge: must not be negative");
       }},
      {"judge", "MODEL", "separately trained classifier (e.g. cff-train --objective ce) for label agreement and FID [none]",
       [&](auto v) { o.judge_path = v; }},
      {"steps", "LIST", "sampler step counts for generation, comma-separated [10,20,50]", [&](auto v) {
         o.steps.clear();
         for (const auto &s : split("steps", v)) o.steps.push_back(to_int("steps", s, 1));
       }},
      {"samplers", "LIST", "samplers compared at each step count: centripetal, langevin (SGLD as in JEM), ascent (gradient ascent) [centripetal]",
       [&](auto v) {
         o.samplers.clear();
         for (const auto &s : split("samplers", v)) {
           cff::SamplerKind kind;
           try {
             kind = cff::parse_sampler(s);
           } catch (const std::invalid_argument &e) {
             throw UsageError(std::string("--samplers: ") + e.what());
           }
           if (std::find(o.samplers.begin(), o.samplers.end(), kind) == o.samplers.end()) o.samplers.push_back(kind);
         }
       }},
      {"guidance", "W", "centripetal sampler: guidance scale w (1 = plain conditional force) [1]", [&](auto v) {
         o.centripetal.guidance = to_double("guidance", v);
         if (!(o.centripetal.guidance >= 0 && o.centripetal.guidance <= 100)) throw UsageError("--guidance: must be in 0..100");
       }},
      {"t-start", "T", "centripetal sampler: start time in (0, T of the model's schedule] [" + shown(o.centripetal.t_start) + "]", [&](auto v) {
         o.centripetal.t_start = to_double("t-start", v);
         if (!(o.centripetal.t_start > 0)) throw UsageError("--t-start: must be positive");
       }},
      {"eta", "X", "centripetal sampler: 0 = deterministic path, 1 = fresh noise each step [" + shown(o.centripetal.eta) + "]", [&](auto v) {
         o.centripetal.eta = to_double("eta", v);
         if (!(o.centripetal.eta >= 0 && o.centripetal.eta <= 1)) throw UsageError("--eta: must be in 0..1");
       }},
      {"spacing-power", "P", "centripetal sampler: step k of S leaves t = t-start * ((S - k) / S)^P; 1 = even, 2 = denser near the data [" +
           shown(o.centripetal.spacing_power) + "]",
       [&](auto v) {
         o.centripetal.spacing_power = to_double("spacing-power", v);
         if (!(o.centripetal.spacing_power >= 0.25 && o.centripetal.spacing_power <= 4)) throw UsageError("--spacing-power: must be in 0.25..4");
       }},
      {"corrector-steps", "N", "centripetal sampler: Langevin corrector steps after each step but the last (each one more pass) [" +
           shown(static_cast<double>(o.centripetal.corrector_steps)) + "]",
       [&](auto v) { o.centripetal.corrector_steps = to_int("corrector-steps", v, 0); }},
      {"corrector-snr", "R", "centripetal sampler: corrector signal-to-noise ratio, sets its step size [" + shown(o.centripetal.corrector_snr) + "]", [&](auto v) {
         o.centripetal.corrector_snr = to_double("corrector-snr", v);
         if (!(o.centripetal.corrector_snr > 0 && o.centripetal.corrector_snr <= 1)) throw UsageError("--corrector-snr: must be in (0, 1]");
       }},
      {"unconditional", "", "also generate without a label (centripetal, w = 0) at each step count: judge confidence, class coverage, FID",
       [&](auto) { o.unconditional = true; }},
      {"samples", "N", "samples generated per sampler and step count, split evenly over the classes (at least one each) [500]",
       [&](auto v) { o.samples = to_int("samples", v, 1); }},
      {"fid-images", "N", "test images whose judge features the samples are compared with [1000]",
       [&](auto v) { o.fid_images = to_int("fid-images", v, 2); }},
      {"grid-columns", "N", "samples per class shown in each sample grid [10]", [&](auto v) { o.grid_columns = to_int("grid-columns", v, 1); }},
      {"sigmas", "LIST", "denoising noise levels in 0-255 pixel units, comma-separated [15,25,50]", [&](auto v) {
         o.sigmas.clear();
         for (const auto &s : split("sigmas", v)) {
           o.sigmas.push_back(to_double("sigmas", s));
           if (o.sigmas.back() <= 0) throw UsageError("--sigmas: levels must be positive");
         }
       }},
      {"denoise-images", "N", "test images noised and denoised per level [200]", [&](auto v) { o.denoise_images = to_int("denoise-images", v, 1); }},
      {"denoise-video", "FILE", "natural video whose frames, at 160x120, are noised and denoised too (out of domain) [none]",
       [&](auto v) { o.denoise_video = v; }},
      {"denoise-video-frames", "N", "frames taken evenly from --denoise-video [8]",
       [&](auto v) { o.denoise_video_frames = to_int("denoise-video-frames", v, 1); }},
      {"denoise-steps", "N", "cff sampler steps from the noise level down (1 = one-shot estimate) [1]",
       [&](auto v) { o.denoise_steps = to_int("denoise-steps", v, 1); }},
      {"nlm-h", "X", "OpenCV non-local means strength: h = min(X * sigma, --nlm-h-max) [1.0]", [&](auto v) {
         o.nlm_h = to_double("nlm-h", v);
         if (o.nlm_h <= 0) throw UsageError("--nlm-h: must be positive");
       }},
      {"nlm-h-max", "H", "upper limit of the non-local means strength h (0-255 units) [35]", [&](auto v) {
         o.nlm_h_max = to_double("nlm-h-max", v);
         if (o.nlm_h_max <= 0) throw UsageError("--nlm-h-max: must be positive");
       }},
      {"strip", "N", "images shown in each denoising strip (clean | noisy | cff | NLM) [6]", [&](auto v) { o.strip_images = to_int("strip", v, 0); }},
      {"attack", "SPEC", "white-box attack for the robustness part, repeatable: fgsm, pgd-linf, pgd-l2, apgd-ce or apgd-t, "
                         "then :eps=X,steps=N,restarts=N,loss=ce|margin|dlr,target=none|random,energy=W,seed=N (eps in "
                         "[0, 1] pixel units; energy > 0: adaptive, also lowers the free energy) [none: no robustness part]",
       [&](auto v) {
         try {
           o.attacks.push_back(cff::AttackSpec::parse(v).to_string());
         } catch (const std::invalid_argument &e) {
           throw UsageError(std::string("--attack: ") + e.what());
         }
       }},
      {"attack-images", "N", "test images attacked (the first ones) [" + std::to_string(o.attack_images) + "]",
       [&](auto v) { o.attack_images = to_int("attack-images", v, 1); }},
      {"attack-transfer", "MODEL", "a second model (e.g. the CE baseline) attacked with the first L-inf attack; its "
                                   "adversarial images are tried on MODEL for the transfer check [none]",
       [&](auto v) { o.attack_transfer = v; }},
      {"skip", "LIST", "parts to leave out: classification, ood, generation, denoising, robustness [none]", [&](auto v) {
         o.skip = split("skip", v);
         for (const auto &part : o.skip) {
           bool known = false;
           for (const auto &name : cff::eval::part_names()) known = known || name == part;
           if (!known) throw UsageError("--skip: unknown part '" + part + "'");
         }
       }},
      {"batch", "N", "images per forward pass [250]", [&](auto v) { o.batch = to_int("batch", v, 1); }},
      {"threads", "N", "CPU threads for LibTorch (0 = all cores) [2]", [&](auto v) { o.threads = static_cast<int>(to_int("threads", v, 0)); }},
      {"device", "DEV", "auto, cpu, cuda or cuda:N [auto]", [&](auto v) { o.device = v; }},
      {"seed", "N", "seed of every random draw (OOD noise, samples, denoising noise) [0]",
       [&](auto v) { o.seed = static_cast<uint64_t>(to_int("seed", v, 0)); }},
      {"help", "", "show this help", [&](auto) { help = true; }},
  };
  try {
    for (int i = 0; i < argc; ++i) o.command_line += (i ? " " : "") + std::string(argv[i]);
    const auto positional = cff::cli::parse(argc, argv, options);
    if (help) {
      std::printf("usage: cff-eval [options] MODEL\n\n"
                  "Evaluates a cff model file and writes a report folder (report.md, summary.json, PNG figures):\n"
                  "classification (accuracy, per-class accuracy, confusion matrix, 15-bin ECE); OOD detection\n"
                  "(AUROC, AUPR, FPR at 95%% TPR for the energy, max-softmax and Mahalanobis scores; ROC curves and\n"
                  "energy histograms); conditional generation (sample grids, label agreement and FID with --judge);\n"
                  "denoising (PSNR and SSIM of cff and OpenCV non-local means); with --attack, robustness (accuracy under\n"
                  "each attack, per class and worst case, the energy shift, gradient-masking checks). Progress goes to\n"
                  "stderr, a summary to stdout.\n"
                  "Exit status: 0 done, 1 a model, dataset or video could not be used, 2 bad options.\n\n");
      cff::cli::print_options(options);
      return 0;
    }
    if (positional.size() != 1) {
      throw UsageError(positional.empty() ? "no model file given" : "one model file expected, got '" + positional[1] + "' too");
    }
    o.model_path = positional[0];
    try {
      cff::parse_device(o.device);
    } catch (const std::exception &e) {
      throw UsageError(std::string("--device: ") + e.what());
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "cff-eval: %s\nusage: cff-eval [options] MODEL (see --help)\n", e.what());
    return 2;
  }
  try {
    // OpenCV's own warnings (e.g. from a video backend refusing a file) would break the one-line errors.
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
    const auto summary = cff::eval::evaluate(o);
    cff::eval::write_report(o.out_dir, summary);
    std::fputs(cff::eval::render_console(summary, o.out_dir).c_str(), stdout);
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "cff-eval: %s\n", e.what());
    return 1;
  }
}
