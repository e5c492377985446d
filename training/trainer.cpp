#include "training/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <type_traits>
#include <fstream>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "cff/attack.h"
#include "cff/device.h"
#include "cff/model_file.h"
#include "cff/ood.h"
#include "cff/schedule.h"
#include "data/datasets.h"
#include "data/evaluation.h"
#include "data/png_writer.h"
#include "support/cli.h"
#include "support/files.h"
#include "training/distributed.h"
#include "version.h"

namespace fs = std::filesystem;

namespace cff::train {
namespace {

using Clock = std::chrono::steady_clock;

constexpr cff::TensorFileKind kCheckpointFile{{'C', 'F', 'F', 'T', 'R', 'A', 'I', 'N'}, 1, "cff-train checkpoint"};

// The key of a parameter in an optimiser's state map (a string of its TensorImpl's address in LibTorch 1.13,
// the address itself in 2.x).
template <typename StateMap>
typename StateMap::key_type adam_state_key(const StateMap &, const torch::Tensor &parameter) {
  if constexpr (std::is_same_v<typename StateMap::key_type, std::string>) {
    return c10::guts::to_string(parameter.unsafeGetTensorImpl());
  } else {
    return static_cast<typename StateMap::key_type>(parameter.unsafeGetTensorImpl());
  }
}

// A generator per (seed, epoch, stream): resuming at an epoch boundary replays exactly the random
// draws of an uninterrupted run, so checkpoints need no generator state.
at::Generator epoch_generator(uint64_t seed, int64_t epoch, uint64_t stream) {
  return at::make_generator<at::CPUGeneratorImpl>(seed * 1000003ULL + static_cast<uint64_t>(epoch) * 7919ULL + stream);
}

}  // namespace

torch::Tensor augment_batch(const torch::Tensor &x, const std::string &mode, at::Generator &gen) {
  auto out = x;
  if (mode.find("flip") != std::string::npos) {
    auto flip = torch::rand({x.size(0)}, gen) < 0.5;
    out = torch::where(flip.view({-1, 1, 1, 1}), out.flip({3}), out);
  }
  if (mode.find("crop") != std::string::npos) {
    // Random translation by up to 2 pixels. The border is the image's own, mirrored: a fixed pad colour
    // (black, until 2026-12-07) puts strips of it on most training images of data whose background is not
    // that colour, and the force learns to draw them (docs/results/own-images-2026-12-07).
    const int64_t pad = 2;
    auto padded = torch::reflection_pad2d(out, {pad, pad, pad, pad});
    auto shifts = torch::randint(0, 2 * pad + 1, {x.size(0), 2}, gen, torch::kLong);
    auto acc = shifts.accessor<int64_t, 2>();
    std::vector<torch::Tensor> crops;
    for (int64_t i = 0; i < x.size(0); ++i) {
      crops.push_back(padded[i].slice(1, acc[i][0], acc[i][0] + x.size(2)).slice(2, acc[i][1], acc[i][1] + x.size(3)));
    }
    out = torch::stack(crops);
  }
  return out;
}

namespace {

// Tensors as one flat CPU float tensor (a copy), and back: copies flat's leading values into the tensors,
// in place, and returns how many it used. The collectives send one flat tensor.
torch::Tensor flatten_copy(const std::vector<torch::Tensor> &tensors) {
  std::vector<torch::Tensor> parts;
  for (const auto &t : tensors) parts.push_back(t.detach().flatten().to(torch::kCPU, torch::kFloat32));
  return torch::cat(parts);
}

int64_t unflatten_into(std::vector<torch::Tensor> &tensors, const torch::Tensor &flat) {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (auto &t : tensors) {
    t.copy_(flat.narrow(0, offset, t.numel()).view_as(t));
    offset += t.numel();
  }
  return offset;
}

torch::Tensor flat_parameters(ClassifierImpl &net) { return flatten_copy(net.parameters()); }

void set_flat_parameters(ClassifierImpl &net, const torch::Tensor &flat) {
  auto parameters = net.parameters();
  unflatten_into(parameters, flat);
}

void copy_parameters(Classifier &to, Classifier &from) {
  torch::NoGradGuard no_grad;
  auto dst = to->parameters();
  auto src = from->parameters();
  for (size_t i = 0; i < dst.size(); ++i) dst[i].copy_(src[i]);
}

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", static_cast<long>(s / 3600), static_cast<long>(s / 60 % 60),
                static_cast<long>(s % 60));
  return buf;
}

void append_line(const std::string &path, const nlohmann::json &j) { files::append_durably(path, j.dump() + "\n"); }

// Keeps the lines of a metrics file whose epoch is at most `epochs`; an unreadable line (the tail of a run
// killed while writing) goes too. The file is rewritten atomically, and only if a line goes.
void trim_metrics(const std::string &path, int64_t epochs) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  bool changed = false;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && j.is_object() && j.value("epoch", int64_t{0}) <= epochs) {
      kept += line + "\n";
    } else {
      changed = true;
    }
  }
  if (changed) files::write_atomically(path, kept);
}

// The metrics line of `epoch`, or null if the file has none.
// The metrics file's lines that parse as JSON objects, in order (a line cut by a kill is skipped).
std::vector<nlohmann::json> metrics_lines(const std::string &path) {
  std::ifstream in(path);
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && j.is_object()) lines.push_back(std::move(j));
  }
  return lines;
}

nlohmann::json metrics_line(const std::string &path, int64_t epoch) {
  nlohmann::json found;
  for (auto &j : metrics_lines(path)) {
    if (j.value("epoch", int64_t{-1}) == epoch) found = std::move(j);
  }
  return found;
}

bool select_by_pgd(const TrainOptions &opt) { return opt.select == "pgd" || (opt.select == "auto" && opt.robust.mode != "none"); }

std::string best_checkpoint_path(const std::string &run_dir) { return (fs::path(run_dir) / "best.pt").string(); }

// The evaluated epoch with the highest hold-out PGD accuracy in a metrics file (the earlier one on a tie), or 0.
std::pair<int64_t, double> best_pgd_epoch(const std::string &metrics_path) {
  std::pair<int64_t, double> best{0, -1.0};
  for (const auto &j : metrics_lines(metrics_path)) {
    if (!j.contains("holdout_pgd_accuracy")) continue;
    const double score = j["holdout_pgd_accuracy"].get<double>();
    if (score > best.second) best = {j.value("epoch", int64_t{0}), score};
  }
  return best;
}

struct State {
  Classifier net{nullptr}, ema{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
  int64_t epoch = 0;          // epochs completed
  int64_t noised_from = -1;   // the step at which the noised terms joined (-1: not yet)
  double running_accuracy = 0; // exponential average of the batches' training accuracy (decay 0.9; read bias-corrected)
};

// A step whose loss was finite can still leave NaN or Inf weights (an overflowing gradient): such weights
// never reach a checkpoint or an export, so the last good checkpoint stays the one a resume starts from.
void check_weights_finite(State &s, const std::string &when) {
  torch::NoGradGuard no_grad;
  for (auto *net : {&s.net, &s.ema}) {
    for (const auto &p : (*net)->named_parameters()) {
      if (!torch::isfinite(p.value()).all().item<bool>()) {
        throw std::runtime_error("training diverged: weight '" + p.key() + "' is not finite after " + when +
                                 " (try a lower --lr); the last checkpoint is kept");
      }
    }
  }
}

void save_checkpoint(const std::string &path, State &s, const nlohmann::json &options_json) {
  auto c = capture_checkpoint(s.net, s.ema, *s.optimizer);
  c.options = options_json;
  c.epoch = s.epoch;
  c.noised_from = s.noised_from;
  c.running_accuracy = s.running_accuracy;
  files::write_atomically(path, serialize_checkpoint(c));
}

// "key: X in the checkpoint, Y now" for each top-level option that differs, joined by "; ".
std::string option_differences(const nlohmann::json &checkpoint, const nlohmann::json &now) {
  std::string out;
  auto say = [&](const std::string &key) {
    const auto value = [&](const nlohmann::json &j) { return j.contains(key) ? j.at(key).dump() : std::string("unset"); };
    if (!out.empty()) out += "; ";
    out += key + ": " + value(checkpoint) + " in the checkpoint, " + value(now) + " now";
  };
  for (const auto &item : checkpoint.items()) {
    if (!now.contains(item.key()) || now.at(item.key()) != item.value()) say(item.key());
  }
  for (const auto &item : now.items()) {
    if (!checkpoint.contains(item.key())) say(item.key());
  }
  return out;
}

// A file's bytes, or a one-line error naming it with `missing` when it cannot be read.
std::string read_bytes(const std::string &path, const std::string &missing) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": " + missing);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// `bytes` are the checkpoint file `path`'s (read by rank 0 and sent to every rank in a distributed run).
void load_checkpoint(const std::string &bytes, const std::string &path, State &s, const nlohmann::json &options_json) {
  auto checkpoint = read_checkpoint(bytes, path);
  // The options that shape the result must match, or "resume" would silently train something else.
  auto a = checkpoint.options, b = options_json;
  // Checkpoints from before --force-fraction existed trained every image of the batch with the force.
  if (!a.contains("force_fraction")) a["force_fraction"] = 1.0;
  // Checkpoints from before the CE-first warm-up trained with the full force weight from the first step.
  if (!a.contains("force_warmup")) a["force_warmup"] = 0.0;
  if (!a.contains("warmup_accuracy")) a["warmup_accuracy"] = 0.0;
  if (!a.contains("min_steps")) a["min_steps"] = b["min_steps"];
  // Checkpoints from before the energy-margin term trained without it.
  if (!a.contains("margin_weight")) a["margin_weight"] = 0.0;
  if (!a.contains("margin_in")) a["margin_in"] = b["margin_in"];
  if (!a.contains("margin_out")) a["margin_out"] = b["margin_out"];
  // Checkpoints from before robust training trained without it.
  if (!a.contains("robust")) a["robust"] = "none";
  // Checkpoints from before --select exported the last epoch's weights.
  if (!a.contains("select")) a["select"] = "last";
  if (!a.contains("select_images")) a["select_images"] = b["select_images"];
  // Checkpoints from before --init started from a random network.
  if (!a.contains("init")) a["init"] = "";
  // Checkpoints from before the centred noise process trained around 0.
  if (!a.contains("centre")) a["centre"] = "zero";
  for (const char *key : {"robust_eps", "robust_steps", "robust_step_size", "robust_beta"}) {
    if (!a.contains(key)) a[key] = b[key];
  }
  // The OOD sets only choose what is evaluated and which score the export recommends.
  for (const char *volatile_key : {"epochs", "threads", "device", "progress_seconds", "resume", "stop_after", "command_line",
                                   "export_path", "eval_every", "samples_every", "ood_sets"}) {
    a.erase(volatile_key);
    b.erase(volatile_key);
  }
  if (a != b) {
    throw std::runtime_error(path + ": checkpoint was made with different options: " + option_differences(a, b) +
                             " (resume with the checkpoint's options, or start a new run)");
  }
  restore_checkpoint(checkpoint, s.net, s.ema, *s.optimizer, path);
  s.epoch = checkpoint.epoch;
  s.noised_from = checkpoint.noised_from;
  s.running_accuracy = checkpoint.running_accuracy;
}

nlohmann::json options_to_json(const TrainOptions &o) {
  return {{"data", o.data},           {"test_data", o.test_data},   {"objective", o.objective}, {"init", o.init},
          {"network", o.network.to_json()}, {"epochs", o.epochs}, {"batch", o.batch},
          {"lr", o.lr},               {"weight_decay", o.weight_decay}, {"warmup", o.warmup},
          {"ema", o.ema},             {"beta", o.loss.beta},        {"gamma", o.loss.gamma},
          {"p_uncond", o.loss.p_uncond}, {"force_fraction", o.loss.force_fraction}, {"centre", o.centre},
          {"margin_weight", o.loss.margin_weight}, {"margin_in", o.loss.margin_in}, {"margin_out", o.loss.margin_out}, {"force_warmup", o.force_warmup},
          {"warmup_accuracy", o.warmup_accuracy},
          {"robust", o.robust.mode}, {"robust_eps", o.robust.eps}, {"robust_steps", o.robust.steps},
          {"robust_step_size", o.robust.step_size}, {"robust_beta", o.robust.beta},
          {"select", select_by_pgd(o) ? "pgd" : "last"}, {"select_images", o.select_images},
          {"min_steps", o.min_steps}, {"augment", o.augment},   {"seed", o.seed},
          {"threads", o.threads},     {"device", o.device},         {"limit", o.limit},
          {"holdout", o.holdout},     {"eval_every", o.eval_every}, {"eval_limit", o.eval_limit},
          {"ood_sets", o.ood_sets},   {"samples_every", o.samples_every}, {"sample_steps", o.sample_steps},
          {"resume", o.resume}, {"stop_after", o.stop_after},       {"progress_seconds", o.progress_seconds}, {"command_line", o.command_line},
          {"export_path", o.export_path}};
}

}  // namespace

Plan plan_training(const TrainOptions &o, int64_t images) {
  Plan p;
  const int64_t fifth = images / 5;
  if (o.holdout >= 1) {
    p.holdout = std::min<int64_t>(static_cast<int64_t>(o.holdout), fifth);
    p.holdout_reason = p.holdout == static_cast<int64_t>(o.holdout) ? "as asked" : "as asked, capped at a fifth of the set";
  } else if (o.holdout > 0) {
    const auto share = static_cast<int64_t>(std::llround(o.holdout * static_cast<double>(images)));
    p.holdout = std::min(std::clamp<int64_t>(share, 200, 2000), fifth);
    char why[96];
    std::snprintf(why, sizeof(why), "%g of the set, kept within 200..2000 and at most a fifth", o.holdout);
    p.holdout_reason = why;
  } else {
    p.holdout_reason = "none asked: the exported model has no calibrated OOD threshold";
  }
  int64_t n_train = images - p.holdout;
  if (o.limit > 0) n_train = std::min(n_train, o.limit);
  p.steps_per_epoch = (std::max<int64_t>(n_train, 0) + o.batch - 1) / o.batch;
  if (o.epochs > 0) {
    p.epochs = o.epochs;
    p.epochs_reason = "as asked";
  } else {
    const int64_t base = 16;
    const int64_t needed = (o.min_steps + std::max<int64_t>(p.steps_per_epoch, 1) - 1) / std::max<int64_t>(p.steps_per_epoch, 1);
    p.epochs = std::max(base, needed);
    p.epochs_reason = p.epochs == base ? "the recipe's 16" : "16 would be only " + std::to_string(base * p.steps_per_epoch) +
                                                                " steps; at least " + std::to_string(o.min_steps) + " (--min-steps)";
  }
  return p;
}

double chance_accuracy(int64_t num_classes) { return 1.0 / static_cast<double>(std::max<int64_t>(num_classes, 1)); }

double noised_terms_accuracy(double warmup_accuracy, int64_t num_classes) {
  const double chance = chance_accuracy(num_classes);
  return chance + warmup_accuracy * (1.0 - chance);
}

bool near_chance(double accuracy, int64_t num_classes) {
  const double chance = chance_accuracy(num_classes);
  return accuracy < chance + std::max(0.05, 0.25 * chance);
}

namespace {

// The training set, shuffled with the seed, and its hold-out (the same split for a given --seed and
// --holdout, so --fit-ood calibrates on the images training held out). Sets opt.network's input size
// and class count from the data.
struct Split {
  cff::data::Dataset train_set;
  Plan plan;
  torch::Tensor calib_x, calib_y, train_x, train_y;
  // When the data has no test split and no --test-data is given: images kept out of training to test on.
  torch::Tensor test_x, test_y;
  bool widths_chosen = false;  // --widths auto: cff::default_widths chose them for the data's image size
};

Split split_training_data(TrainOptions &opt) {
  Split split;
  split.train_set = cff::data::load_dataset(opt.data, "train", opt.network.channels, opt.network.height, opt.network.width);
  const auto &train_set = split.train_set;
  opt.network.channels = train_set.images.size(1);
  opt.network.height = train_set.images.size(2);
  opt.network.width = train_set.images.size(3);
  opt.network.num_classes = static_cast<int64_t>(train_set.classes.size());
  split.widths_chosen = opt.network.widths.empty();
  if (split.widths_chosen) opt.network.widths = cff::default_widths(opt.network.height, opt.network.width);
  if (opt.network.num_classes < 2) {
    throw std::runtime_error(train_set.description + ": only one class ('" + train_set.classes.at(0) +
                             "'); a classifier needs at least two");
  }
  opt.network.validate();
  auto all_x = train_set.normalized();
  auto all_y = train_set.labels;
  {
    auto perm = torch::randperm(all_x.size(0), epoch_generator(opt.seed, -1, 0));
    all_x = all_x.index_select(0, perm);
    all_y = all_y.index_select(0, perm);
  }
  if (opt.test_data.empty() && !cff::data::has_test_split(opt.data)) {
    // No test split: a tenth of the shuffled set (at most 10,000 images) is kept out of training and tested
    // on, so the reported test accuracy is never accuracy on training images. Taken from the end, so the
    // hold-out at the front is where it would be.
    const int64_t n = all_x.size(0), test = std::min<int64_t>(std::max<int64_t>(n / 10, 1), 10000);
    split.test_x = all_x.slice(0, n - test);
    split.test_y = all_y.slice(0, n - test);
    all_x = all_x.slice(0, 0, n - test);
    all_y = all_y.slice(0, 0, n - test);
  }
  split.plan = plan_training(opt, all_x.size(0));
  const int64_t holdout = split.plan.holdout;
  split.calib_x = all_x.slice(0, 0, holdout);
  split.calib_y = all_y.slice(0, 0, holdout);
  split.train_x = all_x.slice(0, holdout);
  split.train_y = all_y.slice(0, holdout);
  if (opt.limit > 0 && opt.limit < split.train_x.size(0)) {
    split.train_x = split.train_x.slice(0, 0, opt.limit);
    split.train_y = split.train_y.slice(0, 0, opt.limit);
  }
  return split;
}

}  // namespace

Checkpoint capture_checkpoint(Classifier &net, Classifier &ema, torch::optim::AdamW &optimizer) {
  Checkpoint c;
  for (auto &item : cff::network_tensors(net)) c.model.push_back({item.first, item.second.detach().clone()});
  for (auto &item : cff::network_tensors(ema)) c.ema.push_back({item.first, item.second.detach().clone()});
  auto &state = optimizer.state();
  for (const auto &p : net->named_parameters()) {
    auto it = state.find(adam_state_key(state, p.value()));
    if (it == state.end()) continue;  // no step has touched it
    const auto &adam = static_cast<const torch::optim::AdamWParamState &>(*it->second);
    c.optimizer[p.key()] = {adam.step(), adam.exp_avg().clone(), adam.exp_avg_sq().clone()};
  }
  c.lr = static_cast<torch::optim::AdamWOptions &>(optimizer.param_groups().at(0).options()).lr();
  return c;
}

std::string serialize_checkpoint(const Checkpoint &c) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto &t : c.model) tensors.emplace_back("model/" + t.name, t.values);
  for (const auto &t : c.ema) tensors.emplace_back("ema/" + t.name, t.values);
  nlohmann::json steps = nlohmann::json::object();
  for (const auto &[name, adam] : c.optimizer) {
    steps[name] = adam.step;
    tensors.emplace_back("adam/exp_avg/" + name, adam.exp_avg);
    tensors.emplace_back("adam/exp_avg_sq/" + name, adam.exp_avg_sq);
  }
  const nlohmann::json j = {{"options", c.options},       {"epoch", c.epoch}, {"noised_from", c.noised_from},
                            {"running_accuracy", c.running_accuracy}, {"lr", c.lr}, {"adam_steps", steps}};
  return cff::pack_tensor_file(kCheckpointFile, j.dump(), cff::encode_tensors(tensors));
}

Checkpoint read_checkpoint(const std::string &bytes, const std::string &source) {
  if (bytes.rfind("PK\x03\x04", 0) == 0) {
    throw std::runtime_error(source + ": checkpoint is damaged (a LibTorch archive: an earlier cff-train's format, "
                             "which this one does not read; start a new run)");
  }
  const auto damaged = [&](const std::string &why) { return std::runtime_error(source + ": checkpoint is damaged (" + why + ")"); };
  Checkpoint c;
  try {
    const auto content = cff::unpack_tensor_file(kCheckpointFile, bytes, source);
    const auto j = nlohmann::json::parse(content.json);
    if (!j.is_object()) throw damaged("its state is not a JSON object");
    for (const char *key : {"options", "epoch", "noised_from", "running_accuracy", "lr", "adam_steps"}) {
      if (!j.contains(key)) throw damaged(std::string("'") + key + "' is missing");
    }
    c.options = j.at("options");
    if (!c.options.is_object()) throw damaged("its options are not an object");
    c.epoch = j.at("epoch").get<int64_t>();
    c.noised_from = j.at("noised_from").get<int64_t>();
    c.running_accuracy = j.at("running_accuracy").get<double>();
    c.lr = j.at("lr").get<double>();
    const auto &steps = j.at("adam_steps");
    if (!steps.is_object()) throw damaged("'adam_steps' is not an object");
    for (const auto &item : steps.items()) c.optimizer[item.key()].step = item.value().get<int64_t>();
    for (auto &entry : cff::decode_tensors(content.tensor_block, source)) {
      const auto take = [&](const std::string &prefix) {
        if (entry.name.rfind(prefix, 0) != 0) return false;
        entry.name.erase(0, prefix.size());
        return true;
      };
      const auto adam = [&](torch::Tensor AdamState::*field) {
        auto it = c.optimizer.find(entry.name);
        if (it == c.optimizer.end()) throw damaged("optimiser state '" + entry.name + "' has no step count");
        if ((it->second.*field).defined()) throw damaged("optimiser state '" + entry.name + "' appears twice");
        it->second.*field = entry.values;
      };
      if (take("model/")) {
        c.model.push_back(std::move(entry));
      } else if (take("ema/")) {
        c.ema.push_back(std::move(entry));
      } else if (take("adam/exp_avg/")) {
        adam(&AdamState::exp_avg);
      } else if (take("adam/exp_avg_sq/")) {
        adam(&AdamState::exp_avg_sq);
      } else {
        throw damaged("tensor '" + entry.name + "' is none of model/, ema/, adam/");
      }
    }
    for (const auto &[name, state] : c.optimizer) {
      if (!state.exp_avg.defined() || !state.exp_avg_sq.defined()) throw damaged("optimiser state '" + name + "' is incomplete");
      if (state.exp_avg.sizes() != state.exp_avg_sq.sizes()) throw damaged("optimiser state '" + name + "' has two shapes");
    }
  } catch (const cff::TensorFileError &e) {
    if (e.reason().rfind("checksum mismatch", 0) == 0) throw std::runtime_error(source + ": checkpoint is corrupt (checksum)");
    throw damaged(e.reason());
  } catch (const nlohmann::json::exception &e) {
    throw damaged(std::string("its state: ") + e.what());
  }
  return c;
}

namespace {

std::runtime_error checkpoint_misfit(const std::string &source, const std::string &why) {
  return std::runtime_error(source + ": checkpoint does not fit this run's network (" + why + ")");
}

// A checkpoint's network tensors into `network`, or an error saying the checkpoint does not fit.
void load_checkpoint_tensors(Classifier &network, const std::vector<cff::StoredTensor> &stored, const std::string &source) {
  try {
    cff::load_network_tensors(network, stored, source);
  } catch (const cff::TensorFileError &e) {
    throw checkpoint_misfit(source, e.reason());
  }
}

}  // namespace

void restore_checkpoint(const Checkpoint &c, Classifier &net, Classifier &ema, torch::optim::AdamW &optimizer,
                        const std::string &source) {
  const auto misfit = [&](const std::string &why) { return checkpoint_misfit(source, why); };
  load_checkpoint_tensors(net, c.model, source);
  load_checkpoint_tensors(ema, c.ema, source);
  std::map<std::string, torch::Tensor> parameters;
  for (const auto &p : net->named_parameters()) parameters[p.key()] = p.value();
  auto &state = optimizer.state();
  state.clear();
  for (const auto &[name, adam] : c.optimizer) {
    auto it = parameters.find(name);
    if (it == parameters.end()) throw misfit("optimiser state for '" + name + "', which the network does not have");
    if (adam.exp_avg.sizes() != it->second.sizes()) throw misfit("optimiser state '" + name + "' has another shape");
    auto restored = std::make_unique<torch::optim::AdamWParamState>();
    restored->step(adam.step);
    restored->exp_avg(adam.exp_avg.to(it->second.device()).clone());
    restored->exp_avg_sq(adam.exp_avg_sq.to(it->second.device()).clone());
    state[adam_state_key(state, it->second)] = std::move(restored);
  }
  for (auto &group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions &>(group.options()).lr(c.lr);
}

std::string checkpoint_path(const std::string &run_dir) { return (fs::path(run_dir) / "checkpoint.pt").string(); }

namespace {

void validate_options(const TrainOptions &opt) {
  if (opt.objective != "cff" && opt.objective != "ce") throw std::runtime_error("objective must be cff or ce, got '" + opt.objective + "'");
  if (opt.epochs < 0 || opt.batch < 1 || opt.min_steps < 1) {
    throw std::runtime_error("epochs must be >= 0 (0 = auto), batch and min-steps >= 1");
  }
  if (!(opt.holdout >= 0)) throw std::runtime_error("holdout must be >= 0");
  if (!(opt.force_warmup >= 0.0 && opt.force_warmup < 1.0)) {
    throw std::runtime_error("force-warmup must be in [0, 1), got " + std::to_string(opt.force_warmup));
  }
  if (!(opt.warmup_accuracy >= 0.0 && opt.warmup_accuracy < 1.0)) {
    throw std::runtime_error("warmup-accuracy must be in [0, 1), got " + std::to_string(opt.warmup_accuracy));
  }
  if (opt.objective == "ce" && opt.loss.margin_weight != 0.0) {
    throw std::runtime_error("margin-weight applies to the cff objective (with its force terms), not to --objective ce");
  }
  if (!(opt.loss.margin_weight >= 0.0)) throw std::runtime_error("margin-weight must be >= 0");
  try {
    opt.robust.validate();
  } catch (const std::invalid_argument &e) {
    throw std::runtime_error(e.what());
  }
  if (!(opt.loss.force_fraction > 0.0 && opt.loss.force_fraction <= 1.0)) {
    throw std::runtime_error("force-fraction must be in (0, 1], got " + std::to_string(opt.loss.force_fraction));
  }
  if (opt.centre != "data" && opt.centre != "zero") {
    throw std::runtime_error("centre must be data or zero, got '" + opt.centre + "'");
  }
  if (opt.augment != "none" && opt.augment != "flip" && opt.augment != "crop" && opt.augment != "flip+crop") {
    throw std::runtime_error("augment must be none, flip, crop or flip+crop, got '" + opt.augment + "'");
  }
  // Checked here, before any data is read, so a bad value costs nothing (a negative lr used to reach LibTorch).
  if (!(opt.lr > 0.0 && std::isfinite(opt.lr))) throw std::runtime_error("lr must be a positive number, got " + std::to_string(opt.lr));
  if (!(opt.weight_decay >= 0.0 && std::isfinite(opt.weight_decay))) {
    throw std::runtime_error("weight-decay must be >= 0, got " + std::to_string(opt.weight_decay));
  }
  if (!(opt.warmup >= 0.0 && opt.warmup < 1.0)) throw std::runtime_error("warmup must be in [0, 1), got " + std::to_string(opt.warmup));
  if (!(opt.ema >= 0.0 && opt.ema < 1.0)) throw std::runtime_error("ema must be in [0, 1), got " + std::to_string(opt.ema));
  // A model to start from that cannot be read is said before the data is loaded (the metadata's checks).
  if (!opt.init.empty()) (void)cff::read_model_metadata(opt.init);
  if (opt.select != "auto" && opt.select != "last" && opt.select != "pgd") {
    throw std::runtime_error("select must be auto, last or pgd, got '" + opt.select + "'");
  }
  if (select_by_pgd(opt) && opt.holdout <= 0) {
    throw std::runtime_error("select pgd attacks hold-out images: --holdout 0 leaves none");
  }
  // The export is written after training: a folder that is not there is said now, not hours later.
  if (!opt.export_path.empty()) {
    const auto folder = fs::path(opt.export_path).parent_path();
    // The run folder itself is made at the start, so an export into it is fine.
    if (!folder.empty() && !fs::is_directory(folder) &&
        fs::weakly_canonical(folder) != fs::weakly_canonical(fs::path(opt.run_dir))) {
      throw std::runtime_error("export " + opt.export_path + ": folder " + folder.string() + " does not exist");
    }
  }
}

// --init: the model training starts from. Its network replaces opt.network's architecture; its input, classes,
// normalisation and schedule must be those cff-train uses for this data, or fine-tuning would silently train
// on differently scaled images or against another noise schedule.
Model initial_model(TrainOptions &opt, const cff::data::Dataset &data) {
  auto model = cff::load_model(opt.init);
  if (!model.network) throw std::runtime_error("init " + opt.init + ": an imported TorchScript model cannot be trained");
  const auto &m = model.metadata;
  const auto shape = [](int64_t c, int64_t h, int64_t w, int64_t k) {
    return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w) + " images in " + std::to_string(k) + " classes";
  };
  const auto wanted = shape(opt.network.channels, opt.network.height, opt.network.width, opt.network.num_classes);
  const auto has = shape(m.network.channels, m.network.height, m.network.width, m.network.num_classes);
  if (wanted != has) {
    throw std::runtime_error("init " + opt.init + ": the model takes " + has + ", " + data.description + " has " + wanted);
  }
  for (size_t c = 0; c < m.normalization.mean.size(); ++c) {
    if (m.normalization.mean[c] != 0.5 || m.normalization.std.at(c) != 0.5) {
      throw std::runtime_error("init " + opt.init + ": the model normalises pixels with mean/std other than 0.5/0.5, "
                               "which cff-train uses");
    }
  }
  // The centre may differ (the model's is kept: start_run); the rest of the schedule is cff-train's.
  CosineSchedule uncentred = m.schedule;
  uncentred.set_centre({});
  if (uncentred.to_json() != CosineSchedule().to_json()) {
    throw std::runtime_error("init " + opt.init + ": the model's noise schedule " + m.schedule.to_json().dump() +
                             " is not cff-train's " + CosineSchedule().to_json().dump());
  }
  if (m.labels != data.classes) {
    std::printf("cff-train: warning: init %s names its classes %s, %s names them %s: the data's names are kept\n",
                opt.init.c_str(), cff::cli::join(m.labels, ",").c_str(), data.description.c_str(),
                cff::cli::join(data.classes, ",").c_str());
  }
  opt.network = m.network;
  return model;
}

// The noise process of a run: cff-train's schedule, centred as --centre asks (data: the mean per channel of the
// training images, [-1, 1] units), or with the centre of the --init model.
CosineSchedule training_schedule(const TrainOptions &opt, const torch::Tensor &train_x, const CosineSchedule *init) {
  CosineSchedule schedule;
  if (init != nullptr) {
    schedule.set_centre(init->centre());
  } else if (opt.centre == "data") {
    const auto mean = train_x.to(torch::kDouble).mean({0, 2, 3}).contiguous();
    schedule.set_centre(std::vector<double>(mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel()));
  }
  return schedule;
}

// Everything one run works with, set up once by start_run; the steps below read and update it.
struct Run {
  TrainOptions opt;
  std::shared_ptr<World> world;  // the processes of a distributed run (one, usually); rank 0 writes every file
  c10::Device device{c10::kCPU};
  std::string metrics_path, checkpoint;
  nlohmann::json options_json;
  Split data;
  torch::Tensor test_x, test_y;
  int64_t n_train = 0, steps_per_epoch = 0, total_steps = 0;
  State s;
  CosineSchedule schedule;
  LogitsFunction f, f_ema;
  // With select_by_pgd: the best evaluated epoch so far and its hold-out PGD accuracy (its weights in best.pt).
  std::pair<int64_t, double> best{0, -1.0};
  Clock::time_point start = Clock::now();
};

// Options, device, data (split, test subset) and the model state, fresh or resumed.
void start_run(Run &run, const TrainOptions &options) {
  run.opt = options;
  auto &opt = run.opt;
  validate_options(opt);
  run.world = World::from_environment(opt.dist_timeout);
  const auto &world = *run.world;
  if (opt.threads == 0 && world.local_size() > 1) {
    // The processes on this machine share its cores.
    opt.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / world.local_size());
  }
  cff::set_threads(opt.threads);
  run.device = cff::parse_device(opt.device);
  if (world.leader()) {
    fs::create_directories(opt.run_dir);
    for (const auto &path : files::remove_interrupted_writes(opt.run_dir)) {
      std::printf("cff-train: removed %s, left by an interrupted write\n", path.c_str());
    }
  }
  if (opt.export_path.empty()) opt.export_path = (fs::path(opt.run_dir) / "model.cff").string();
  run.metrics_path = (fs::path(opt.run_dir) / "metrics.jsonl").string();
  run.checkpoint = checkpoint_path(opt.run_dir);

  // Data: a held-out slice of the training set calibrates the OOD thresholds; the test split measures.
  run.data = split_training_data(opt);
  opt.epochs = run.data.plan.epochs;
  if (run.data.test_x.defined()) {
    run.test_x = run.data.test_x;
    run.test_y = run.data.test_y;
  } else {
    const auto test_set = cff::data::load_dataset(opt.test_data.empty() ? opt.data : opt.test_data, "test",
                                                  opt.network.channels, opt.network.height, opt.network.width);
    run.test_x = test_set.normalized();
    run.test_y = test_set.labels;
  }
  if (opt.eval_limit > 0 && opt.eval_limit < run.test_x.size(0)) {
    // A fixed random subset: test splits are often ordered by class, and their first N would be one class.
    auto pick = torch::randperm(run.test_x.size(0), epoch_generator(opt.seed, -2, 0)).slice(0, 0, opt.eval_limit);
    run.test_x = run.test_x.index_select(0, pick);
    run.test_y = run.test_y.index_select(0, pick);
  }
  run.n_train = run.data.train_x.size(0);
  if (run.n_train < 1) throw std::runtime_error(run.data.train_set.description + ": no training images left");
  run.steps_per_epoch = run.data.plan.steps_per_epoch;
  run.total_steps = run.steps_per_epoch * opt.epochs;

  torch::manual_seed(opt.seed);
  auto &s = run.s;
  std::optional<Model> init;
  if (!opt.init.empty()) init = initial_model(opt, run.data.train_set);
  run.schedule = training_schedule(opt, run.data.train_x, init ? &init->metadata.schedule : nullptr);
  s.net = Classifier(opt.network);
  // A resumed run takes its weights from the checkpoint; the model still gives the network's shape.
  if (init && !opt.resume) copy_parameters(s.net, init->network);
  s.ema = Classifier(opt.network);
  copy_parameters(s.ema, s.net);
  s.net->to(run.device);
  s.ema->to(run.device);
  freeze(*s.ema);
  s.optimizer = std::make_unique<torch::optim::AdamW>(
      s.net->parameters(), torch::optim::AdamWOptions(opt.lr).weight_decay(opt.weight_decay));
  run.options_json = options_to_json(opt);
  if (opt.resume) {
    // Rank 0 reads the checkpoint and sends it to the others (a resume may use another number of processes).
    const auto bytes =
        run.world->broadcast_bytes(world.leader() ? read_bytes(run.checkpoint, "no checkpoint to resume from") : "",
                                   "sending the checkpoint");
    load_checkpoint(bytes, run.checkpoint, s, run.options_json);
    if (world.leader()) {
      // Metrics are written before the checkpoint: epochs after the checkpoint's (a run killed between
      // the two) are trained again, so their lines go.
      trim_metrics(run.metrics_path, s.epoch);
      run.best = best_pgd_epoch(run.metrics_path);
      std::printf("resumed from %s after epoch %ld\n", run.checkpoint.c_str(), static_cast<long>(s.epoch));
    }
  } else {
    // Every rank starts from rank 0's weights.
    auto flat = flat_parameters(*s.net);
    run.world->broadcast(flat, "sending the initial weights");
    set_flat_parameters(*s.net, flat);
    copy_parameters(s.ema, s.net);
    if (world.leader()) {
      // A new run in an old folder: the old run's metrics and best epoch are not this one's.
      fs::remove(run.metrics_path);
      fs::remove(best_checkpoint_path(opt.run_dir));
    }
  }
  auto net = s.net;
  run.f = [net](const torch::Tensor &x) mutable { return net->forward(x); };
  auto ema_net = s.ema;
  run.f_ema = [ema_net](const torch::Tensor &x) mutable { return ema_net->forward(x); };
}

void print_plan(const Run &run) {
  const auto &opt = run.opt;
  const auto &plan = run.data.plan;
  std::printf("cff-train: %s, %ld training images (%ld held out for calibration), test %ld images\n",
              run.data.train_set.description.c_str(), static_cast<long>(run.n_train), static_cast<long>(plan.holdout),
              static_cast<long>(run.test_x.size(0)));
  if (run.data.test_x.defined()) {
    std::printf("cff-train: %s has no test split: %ld of its images are kept out of training as the test set "
                "(--test-data names another)\n",
                opt.data.c_str(), static_cast<long>(run.data.test_x.size(0)));
  }
  if (!opt.init.empty()) {
    std::printf("cff-train: starting from %s: its network, %s\n", opt.init.c_str(),
                opt.resume ? "the checkpoint's weights (resumed)" : "its weights");
  }
  if (select_by_pgd(opt)) {
    std::printf("cff-train: exports the evaluated epoch with the highest PGD-10 accuracy at L-inf eps %g on %ld "
                "hold-out images (--select %s)\n",
                opt.robust.eps, static_cast<long>(std::min<int64_t>(opt.select_images, run.data.calib_x.size(0))),
                opt.select.c_str());
  }
  if (opt.robust.mode != "none") {
    std::printf("cff-train: robust training %s: L-inf eps %g, %ld attack steps of %g, beta %g (each step costs about %ld "
                "more forward and backward passes)\n",
                opt.robust.mode.c_str(), opt.robust.eps, static_cast<long>(opt.robust.steps),
                opt.robust.step_size > 0 ? opt.robust.step_size : opt.robust.eps / 4, opt.robust.beta,
                static_cast<long>(opt.robust.steps + 1));
  }
  if (opt.objective == "cff") {
    std::string centre;
    for (double v : run.schedule.centre()) {
      char value[32];
      std::snprintf(value, sizeof value, "%s%.3f", centre.empty() ? "" : ",", v);
      centre += value;
    }
    std::printf("cff-train: noise added around %s (%s)\n", centre.empty() ? "0" : centre.c_str(),
                !opt.init.empty()        ? "the --init model's centre"
                : opt.centre == "data" ? "--centre data: the training images' mean per channel"
                                       : "--centre zero, as in the paper");
  }
  std::printf("cff-train: objective %s, network %s (%ld parameters), device %s\n", opt.objective.c_str(),
              opt.network.to_json().dump().c_str(), static_cast<long>(run.s.net->parameter_count()),
              cff::describe_device(run.device).c_str());
  const char *widths_reason = !opt.init.empty()           ? "the --init model's"
                              : run.data.widths_chosen ? "--widths auto, for this image size"
                                                       : "as asked";
  std::printf("cff-train: stage widths %s, %s\n", cff::describe_widths(opt.network).c_str(), widths_reason);
  std::printf("cff-train: %ld epochs of %ld steps = %ld steps (%s); hold-out %ld images (%s); augment %s",
              static_cast<long>(opt.epochs), static_cast<long>(run.steps_per_epoch), static_cast<long>(run.total_steps),
              plan.epochs_reason.c_str(), static_cast<long>(plan.holdout), plan.holdout_reason.c_str(), opt.augment.c_str());
  const long ramp = static_cast<long>(std::llround(opt.force_warmup * static_cast<double>(run.total_steps)));
  if (opt.objective == "cff" && opt.warmup_accuracy > 0) {
    std::printf("; CE first: force and noisy CE join at training accuracy %.3f (by step %ld at the latest), full weight "
                "%ld steps later",
                noised_terms_accuracy(opt.warmup_accuracy, opt.network.num_classes),
                static_cast<long>(run.total_steps / 4), ramp);
  } else if (opt.objective == "cff") {
    std::printf("; force and noisy CE from the first step, full weight after %ld steps", ramp);
  }
  std::printf("\n");
  if (opt.objective == "cff" && opt.samples_every > 0 && !cff::data::png_supported()) {
    std::printf("cff-train: no sample grids: this build has no libpng (install libpng-dev and rebuild)\n");
  }
  std::fflush(stdout);
}

// The noised terms' weight at a step: 0 until they join (CE first), then a linear ramp to 1 over
// force_warmup * total_steps.
double noised_weight(const Run &run, int64_t step) {
  const double ramp_steps = run.opt.force_warmup * static_cast<double>(run.total_steps);
  if (run.s.noised_from < 0 || step < run.s.noised_from) return 0.0;
  return ramp_steps > 0 ? std::min(1.0, (step - run.s.noised_from + 1) / ramp_steps) : 1.0;
}

// CE first: the noised terms join once the bias-corrected running accuracy reaches the join accuracy
// (or a quarter of the steps has passed).
void maybe_join_noised_terms(Run &run, int64_t global_step) {
  const auto &opt = run.opt;
  if (opt.objective != "cff" || run.s.noised_from >= 0) return;
  const double join_accuracy = noised_terms_accuracy(opt.warmup_accuracy, opt.network.num_classes);
  const double accuracy = run.s.running_accuracy / (1.0 - std::pow(0.9, static_cast<double>(global_step) + 1e-9));
  if (opt.warmup_accuracy > 0 && accuracy < join_accuracy && global_step < run.total_steps / 4) return;
  run.s.noised_from = global_step;
  if (!run.world->leader()) return;
  std::printf("cff-train: step %ld: training accuracy %.3f: the force and noisy-CE terms join, full weight at step %ld\n",
              static_cast<long>(global_step), global_step > 0 ? accuracy : 0.0,
              static_cast<long>(global_step + std::llround(opt.force_warmup * static_cast<double>(run.total_steps))));
  if (opt.warmup_accuracy > 0 && accuracy < join_accuracy) {
    std::printf("cff-train: warning: CE alone did not reach training accuracy %.3f in a quarter of the steps\n",
                join_accuracy);
  }
}

// Linear warm-up, then cosine decay to zero.
double learning_rate(const TrainOptions &opt, int64_t step, int64_t total_steps) {
  const int64_t warm = std::max<int64_t>(1, static_cast<int64_t>(opt.warmup * total_steps));
  return step < warm ? opt.lr * (step + 1) / warm
                     : opt.lr * 0.5 * (1 + std::cos(M_PI * (step - warm) / std::max<int64_t>(1, total_steps - warm)));
}

void update_ema(State &s, double ema, int64_t step) {
  if (ema <= 0) {
    copy_parameters(s.ema, s.net);
    return;
  }
  torch::NoGradGuard no_grad;
  const double decay = std::min(ema, (1.0 + step) / (10.0 + step));
  auto e = s.ema->parameters();
  auto p = s.net->parameters();
  for (size_t i = 0; i < e.size(); ++i) e[i].mul_(decay).add_(p[i], 1.0 - decay);
}

// Sums over an epoch's images of the loss terms, for the progress lines and the metrics.
struct EpochTotals {
  double total = 0, ce = 0, ce_noisy = 0, force = 0, margin = 0, robust = 0, correct = 0;
  int64_t seen = 0;
  double seconds = 0;
  double mean(double sum) const { return sum / static_cast<double>(seen); }
};

EpochTotals train_epoch(Run &run, int64_t epoch) {
  const auto &opt = run.opt;
  auto &world = *run.world;
  auto &s = run.s;
  s.net->train();
  auto shuffle_gen = epoch_generator(opt.seed, epoch, 1);
  auto augment_gen = epoch_generator(opt.seed, epoch, 2);
  auto loss_gen = epoch_generator(opt.seed, epoch, 3);
  auto order = torch::randperm(run.n_train, shuffle_gen);
  EpochTotals sum;
  const auto epoch_start = Clock::now();
  auto last_print = epoch_start;
  for (int64_t b = 0; b < run.steps_per_epoch; ++b) {
    const int64_t global_step = epoch * run.steps_per_epoch + b;
    const double lr = learning_rate(opt, global_step, run.total_steps);
    for (auto &group : s.optimizer->param_groups()) static_cast<torch::optim::AdamWOptions &>(group.options()).lr(lr);

    auto idx = order.slice(0, b * opt.batch, std::min((b + 1) * opt.batch, run.n_train));
    // Shuffle, augmentation and the loss's draws are the global batch's; a rank of a distributed run trains
    // its rows rank, rank + W, ... (every rank gets a share of the noised rows at the front).
    const int64_t global_n = idx.size(0);
    auto x = augment_batch(run.data.train_x.index_select(0, idx), opt.augment, augment_gen);
    auto y = run.data.train_y.index_select(0, idx);
    BatchShard shard;
    if (world.size() > 1) {
      shard.index = world.rank();
      shard.count = world.size();
      shard.global = global_n;
      shard.sum_across = [&world](const torch::Tensor &t) {
        auto total = t.detach().to(torch::kCPU, torch::kFloat32).contiguous().clone();
        world.sum(total, "summing WEAT's weights");
        return total.to(t.device());
      };
      x = x.slice(0, world.rank(), global_n, world.size());
      y = y.slice(0, world.rank(), global_n, world.size());
    }
    x = x.to(run.device);
    y = y.to(run.device);
    maybe_join_noised_terms(run, global_step);
    CffLossOptions loss = opt.loss;
    const double weight = noised_weight(run, global_step);
    loss.beta *= weight;
    loss.gamma *= weight;
    // This rank's shares of the batch's terms (the whole batch's with one process), then the sums over the
    // ranks: total, CE, noisy CE, force, margin, robust, correct, not-finite flag.
    std::vector<double> local(8, 0.0);
    s.optimizer->zero_grad();
    if (x.size(0) > 0) {
      // Before the noised terms join, the step is plain CE (the same loss, a third of the cost).
      auto terms = opt.objective == "cff" && weight > 0 ? cff_loss(run.f, x, y, run.schedule, loss, loss_gen, shard)
                                                        : cross_entropy_loss(run.f, x, y, shard);
      if (opt.robust.mode != "none") {
        const auto robust = robust_loss(run.f, x, y, opt.robust, loss_gen, shard);
        terms.total = terms.total + robust.total;
        local[5] = robust.total.item<double>();
      }
      local[0] = terms.total.item<double>();
      local[1] = terms.ce_clean.item<double>();
      local[2] = terms.ce_noisy.item<double>();
      local[3] = terms.force.item<double>();
      local[4] = terms.margin.item<double>();
      local[6] = terms.logits_clean.argmax(1).eq(y).sum().item<double>();
      local[7] = std::isfinite(local[0]) ? 0.0 : 1.0;
      if (local[7] == 0.0 || world.size() > 1) terms.total.backward();
    } else if (opt.robust.mode == "weat") {
      shard.sum_across(torch::zeros({1}));  // no rows here, but the ranks sum WEAT's weights together
    }
    std::vector<double> batch_sum = local;
    if (world.size() > 1) {
      // One flat all-reduce: the gradients (each rank's share of the batch's), the terms and the flag.
      std::vector<torch::Tensor> grads;
      for (auto &p : s.net->parameters()) {
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        grads.push_back(p.grad());
      }
      auto flat = torch::cat({flatten_copy(grads), torch::tensor(local, torch::kFloat64).to(torch::kFloat32)});
      world.sum(flat, "summing the gradients");
      const int64_t offset = unflatten_into(grads, flat);
      for (size_t i = 0; i < batch_sum.size(); ++i) batch_sum[i] = flat[offset + static_cast<int64_t>(i)].item<double>();
    }
    if (batch_sum[7] != 0.0 || !std::isfinite(batch_sum[0])) {
      throw std::runtime_error("training diverged: loss is not finite at epoch " + std::to_string(epoch + 1) +
                               ", step " + std::to_string(b + 1) + " (try a lower --lr)");
    }
    s.optimizer->step();
    update_ema(s, opt.ema, global_step);
    const int64_t n = global_n;
    sum.seen += n;
    sum.total += batch_sum[0] * n;
    sum.ce += batch_sum[1] * n;
    sum.ce_noisy += batch_sum[2] * n;
    sum.force += batch_sum[3] * n;
    sum.margin += batch_sum[4] * n;
    sum.robust += batch_sum[5] * n;
    const double batch_correct = batch_sum[6];
    sum.correct += batch_correct;
    s.running_accuracy = 0.9 * s.running_accuracy + 0.1 * batch_correct / static_cast<double>(n);
    const auto now = Clock::now();
    if (world.leader() &&
        (std::chrono::duration<double>(now - last_print).count() >= opt.progress_seconds || b + 1 == run.steps_per_epoch)) {
      last_print = now;
      const double elapsed = std::chrono::duration<double>(now - epoch_start).count();
      const double rate = sum.seen / std::max(1e-9, elapsed);
      const double remaining =
          (static_cast<double>(run.n_train - sum.seen) + static_cast<double>(run.n_train) * (opt.epochs - epoch - 1)) / rate;
      std::printf("epoch %ld/%ld [%6ld/%ld] %6.0f img/s  loss %.4f  ce %.4f  ce_t %.4f  force %.4f (weight %.2f)  acc %.3f  "
                  "lr %.2e  ETA %s\n",
                  static_cast<long>(epoch + 1), static_cast<long>(opt.epochs), static_cast<long>(sum.seen),
                  static_cast<long>(run.n_train), rate, sum.mean(sum.total), sum.mean(sum.ce), sum.mean(sum.ce_noisy),
                  sum.mean(sum.force), loss.beta, sum.mean(sum.correct), lr, format_duration(remaining).c_str());
      std::fflush(stdout);
    }
  }
  sum.seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
  return sum;
}

// PGD-10 (L-inf, robust.eps, CE, starting at the clean image) accuracy of the EMA weights on the first
// select_images hold-out images, in batches of 100: the robust checkpoint-selection score. Deterministic.
double holdout_pgd_accuracy(Run &run) {
  const auto &opt = run.opt;
  cff::AttackSpec spec;
  spec.kind = cff::AttackKind::pgd_linf;
  spec.eps = opt.robust.eps;
  spec.steps = 10;
  spec.seed = opt.seed;
  const int64_t n = std::min<int64_t>(opt.select_images, run.data.calib_x.size(0));
  int64_t fooled = 0;
  for (int64_t i = 0; i < n; i += 100) {
    const int64_t end = std::min(n, i + 100);
    auto x = run.data.calib_x.slice(0, i, end).to(run.device);
    auto y = run.data.calib_y.slice(0, i, end).to(run.device);
    fooled += cff::attack(run.f_ema, x, y, spec, opt.robust.scale).fooled.sum().item<int64_t>();
  }
  return n > 0 ? 1.0 - static_cast<double>(fooled) / static_cast<double>(n) : 0.0;
}

// The epoch's metrics line: training sums, the near-chance warning, and (when due) test accuracy, OOD
// AUROCs, the hold-out PGD accuracy and a sample grid.
nlohmann::json epoch_metrics(Run &run, const EpochTotals &sum) {
  const auto &opt = run.opt;
  auto &s = run.s;
  const int64_t steps = s.epoch * run.steps_per_epoch;
  nlohmann::json m = {{"epoch", s.epoch},
                      {"train_loss", sum.mean(sum.total)},
                      {"train_ce", sum.mean(sum.ce)},
                      {"train_ce_noisy", sum.mean(sum.ce_noisy)},
                      {"train_force", sum.mean(sum.force)},
                      {"train_margin", sum.mean(sum.margin)},
                      {"train_robust", sum.mean(sum.robust)},
                      {"train_accuracy", sum.mean(sum.correct)},
                      {"epoch_seconds", sum.seconds},
                      {"images_per_second", sum.seen / sum.seconds},
                      {"steps", steps},
                      {"force_weight", opt.objective == "cff" ? opt.loss.beta * noised_weight(run, steps - 1) : 0.0}};
  if (steps >= chance_check_steps && near_chance(sum.mean(sum.correct), opt.network.num_classes)) {
    char warning[512];
    std::snprintf(warning, sizeof(warning),
                  "training accuracy %.3f is near chance (%ld classes) after %ld steps: clean CE %.3f (ln K = %.3f), "
                  "force %.3f. Check the labels; compare with --objective ce; more steps (--min-steps) may help",
                  sum.mean(sum.correct), static_cast<long>(opt.network.num_classes), static_cast<long>(steps),
                  sum.mean(sum.ce), std::log(static_cast<double>(opt.network.num_classes)), sum.mean(sum.force));
    std::printf("cff-train: warning: %s\n", warning);
    m["warnings"] = nlohmann::json::array({warning});
  }
  const bool last = s.epoch == opt.epochs;
  if (last || (opt.eval_every > 0 && s.epoch % opt.eval_every == 0)) {
    s.ema->eval();
    auto test_logits = cff::data::batched_logits(run.f_ema, run.test_x, run.device);
    m["test_accuracy"] = cff::data::accuracy(test_logits, run.test_y);
    nlohmann::json ood = nlohmann::json::object();
    const auto in_logits = test_logits.slice(0, 0, std::min<int64_t>(2000, test_logits.size(0)));
    for (const auto &name : opt.ood_sets) {
      auto out_x = cff::data::make_ood_set(name, run.test_x, 2000, opt.seed + 17);
      auto out_logits = cff::data::batched_logits(run.f_ema, out_x, run.device);
      ood[cff::data::ood_set_label(name)] = cff::data::score_ood(in_logits, out_logits).to_json();
    }
    m["ood"] = ood;
    if (select_by_pgd(opt)) m["holdout_pgd_accuracy"] = holdout_pgd_accuracy(run);
  }
  if (opt.objective == "cff" && opt.samples_every > 0 && cff::data::png_supported() && (last || s.epoch % opt.samples_every == 0)) {
    const auto chw = run.data.train_x.sizes().slice(1);
    auto samples = cff::data::class_samples(run.f_ema, run.schedule, opt.network.num_classes, 10,
                                            std::vector<int64_t>(chw.begin(), chw.end()), opt.sample_steps, opt.seed,
                                            run.device);
    const auto grid_path = (fs::path(opt.run_dir) / ("samples_epoch" + std::to_string(s.epoch) + ".png")).string();
    cff::data::write_png(grid_path, cff::data::make_grid(samples, 10, 2));
    m["sample_grid"] = grid_path;
  }
  return m;
}

void print_epoch(const Run &run, const nlohmann::json &m, const EpochTotals &sum) {
  std::printf("epoch %ld/%ld done in %s: loss %.4f, train acc %.4f (chance %.3f)", static_cast<long>(run.s.epoch),
              static_cast<long>(run.opt.epochs), format_duration(sum.seconds).c_str(), sum.mean(sum.total),
              sum.mean(sum.correct), chance_accuracy(run.opt.network.num_classes));
  if (m.contains("test_accuracy")) std::printf(", test acc %.4f", m["test_accuracy"].get<double>());
  if (m.contains("holdout_pgd_accuracy")) std::printf(", hold-out PGD-10 acc %.4f", m["holdout_pgd_accuracy"].get<double>());
  if (m.contains("ood")) {
    for (const auto &item : m["ood"].items()) std::printf(", AUROC %s %.3f", item.key().c_str(), item.value()["energy_auroc"].get<double>());
  }
  std::printf("\n");
  std::fflush(stdout);
}

// --select pgd: the EMA weights of the best evaluated epoch replace the last ones, and the export carries that
// epoch's metrics line with "selected" saying why.
void select_best_epoch(Run &run, nlohmann::json &last_metrics) {
  const auto [epoch, score] = run.best;
  const double last_score = last_metrics.value("holdout_pgd_accuracy", -1.0);
  if (epoch == 0) {
    std::printf("cff-train: select pgd: no epoch was evaluated; exporting the last weights\n");
    return;
  }
  nlohmann::json selected = {{"by", "holdout_pgd_accuracy"}, {"epoch", epoch}, {"score", score},
                             {"last_epoch", run.s.epoch}, {"last_score", last_score}};
  if (epoch != run.s.epoch) {
    const auto path = best_checkpoint_path(run.opt.run_dir);
    auto best = read_checkpoint(read_bytes(path, "the best epoch's checkpoint is missing"), path);
    if (best.epoch != epoch) {
      throw std::runtime_error(path + ": holds epoch " + std::to_string(best.epoch) + ", metrics.jsonl says the best is " +
                               std::to_string(epoch));
    }
    load_checkpoint_tensors(run.s.ema, best.ema, path);
    last_metrics = metrics_line(run.metrics_path, epoch);
  }
  std::printf("cff-train: exporting epoch %ld's weights: hold-out PGD-10 accuracy %.4f (last epoch %ld: %.4f)\n",
              static_cast<long>(epoch), score, static_cast<long>(run.s.epoch), last_score);
  last_metrics["selected"] = selected;
}

// Exports the EMA weights with the fitted OOD scores (the energy alone if the fit fails) and provenance.
void export_model(Run &run, nlohmann::json &last_metrics) {
  const auto &opt = run.opt;
  cff::ModelMetadata meta;
  meta.network = opt.network;
  meta.labels = run.data.train_set.classes;
  meta.normalization.mean.assign(opt.network.channels, 0.5);
  meta.normalization.std.assign(opt.network.channels, 0.5);
  meta.schedule = run.schedule;
  cff::Model exported;
  exported.metadata = meta;
  exported.network = run.s.ema;
  exported.device = run.device;
  try {
    last_metrics["ood_selection"] = fit_ood_scores(exported, run.data.train_x, run.data.train_y, run.data.calib_x,
                                                   opt.ood_sets, opt.ood_fit_images, opt.seed);
    meta.ood = exported.metadata.ood;
  } catch (const std::exception &e) {
    // The trained weights are never lost to a failed fit: export with the energy alone, and say why.
    std::optional<double> threshold;
    if (run.data.plan.holdout > 0) {
      threshold = cff::calibrate_threshold(
          cff::to_vector(cff::free_energy(cff::data::batched_logits(run.f_ema, run.data.calib_x, run.device))), 0.95);
    }
    meta.ood = cff::OodDetector::energy_only(threshold);
    const std::string warning = std::string("fitting the OOD scores failed (") + e.what() +
                                "): the model flags by the free energy only; cff-train --fit-ood can refit it";
    std::printf("cff-train: warning: %s\n", warning.c_str());
    last_metrics["ood_selection"] = {{"failed", warning}};
  }
  const auto &train_set = run.data.train_set;
  meta.provenance = {{"tool", "cff-train"},
                     {"version", CFF_VERSION},
                     {"git_commit", CFF_GIT_COMMIT},
                     {"command_line", opt.command_line},
                     {"dataset", train_set.description},
                     {"dataset_checksum_crc32", train_set.checksum},
                     {"options", run.options_json},
                     {"train_seconds_this_run", std::chrono::duration<double>(Clock::now() - run.start).count()}};
  meta.metrics = last_metrics;
  cff::save_model(opt.export_path, run.s.ema, meta);
  const auto threshold = meta.ood.threshold(meta.ood.recommended());
  std::printf("exported %s (test accuracy %.4f, OOD score %s, threshold %s)\n", opt.export_path.c_str(),
              last_metrics.value("test_accuracy", 0.0), meta.ood.recommended().c_str(),
              threshold ? std::to_string(*threshold).c_str() : "none (no hold-out)");
}

// The other ranks wait for rank 0's export, so that all exit together (and a failed export fails them all).
void world_wait_for_export(Run &run) { run.world->barrier("waiting for rank 0's export"); }

// Every rank's weights must be rank 0's: a step that diverged between ranks would otherwise go unseen.
void check_ranks_agree(Run &run) {
  if (run.world->size() == 1) return;
  const auto mine = flat_parameters(*run.s.net);
  auto leaders = mine.clone();
  run.world->broadcast(leaders, "comparing the weights across ranks");
  const double difference = (mine - leaders).abs().max().item<double>();
  if (difference != 0.0) {
    throw std::runtime_error(run.world->describe() + ": weights differ from rank 0's after epoch " +
                             std::to_string(run.s.epoch) + " (largest difference " + std::to_string(difference) + ")");
  }
}

}  // namespace

nlohmann::json train(const TrainOptions &options) {
  Run run;
  start_run(run, options);
  const auto &world = *run.world;
  if (world.leader()) print_plan(run);
  if (world.size() > 1 && world.leader()) {
    std::printf("cff-train: distributed: %d ranks (%d on this machine, %d threads each), global batch %ld\n", world.size(),
                world.local_size(), run.opt.threads, static_cast<long>(run.opt.batch));
    std::fflush(stdout);
  }
  nlohmann::json last_metrics;
  for (int64_t epoch = run.s.epoch; epoch < run.opt.epochs; ++epoch) {
    const auto sum = train_epoch(run, epoch);
    run.s.epoch = epoch + 1;
    if (world.leader()) {
      // Rank 0 alone evaluates and writes; the others wait in check_ranks_agree.
      auto m = epoch_metrics(run, sum);
      // The metrics line first, then the checkpoint: a run killed between the two resumes from the previous
      // checkpoint, trains the epoch again and drops its line (trim_metrics), so no epoch is lost or doubled.
      append_line(run.metrics_path, m);
      check_weights_finite(run.s, "epoch " + std::to_string(run.s.epoch));
      if (m.contains("holdout_pgd_accuracy") && m["holdout_pgd_accuracy"].get<double>() > run.best.second) {
        // Before the checkpoint: a run killed in between trains this epoch again and writes the same file.
        save_checkpoint(best_checkpoint_path(run.opt.run_dir), run.s, run.options_json);
        run.best = {run.s.epoch, m["holdout_pgd_accuracy"].get<double>()};
      }
      save_checkpoint(run.checkpoint, run.s, run.options_json);
      print_epoch(run, m, sum);
      last_metrics = m;
    }
    check_ranks_agree(run);
    if (run.opt.stop_after > 0 && run.s.epoch >= run.opt.stop_after && run.s.epoch < run.opt.epochs) {
      if (world.leader()) std::printf("stopping after epoch %ld as asked; continue with --resume\n", static_cast<long>(run.s.epoch));
      last_metrics["stopped"] = true;
      return last_metrics;
    }
  }
  if (!world.leader()) {
    world_wait_for_export(run);
    return last_metrics;
  }
  if (last_metrics.is_null()) {
    // Resumed a finished run (killed after its last checkpoint, before or during the export): the export
    // carries the last epoch's metrics line, as the uninterrupted run's does.
    last_metrics = metrics_line(run.metrics_path, run.s.epoch);
    if (last_metrics.is_null()) {
      auto test_logits = cff::data::batched_logits(run.f_ema, run.test_x, run.device);
      last_metrics = {{"epoch", run.s.epoch}, {"test_accuracy", cff::data::accuracy(test_logits, run.test_y)}};
    }
  }
  if (select_by_pgd(run.opt)) select_best_epoch(run, last_metrics);
  export_model(run, last_metrics);
  world_wait_for_export(run);
  return last_metrics;
}

nlohmann::json fit_ood_scores(Model &model, const torch::Tensor &train_x, const torch::Tensor &train_y,
                              const torch::Tensor &calib_x, const std::vector<std::string> &ood_sets, int64_t fit_images,
                              uint64_t seed) {
  const int64_t n = std::min<int64_t>(std::max<int64_t>(fit_images, 2), train_x.size(0));
  const auto train_in = cff::data::batched_ood_inputs(model, train_x.slice(0, 0, n), 500, /*everything=*/true);
  const auto calib_in = calib_x.size(0) > 0 ? cff::data::batched_ood_inputs(model, calib_x, 500, true) : OodInputs{};
  const int64_t classes = model.num_classes();
  const auto labels = train_y.slice(0, 0, n);
  // A class with no image among the first n would leave its Gaussian undefined: fit on all then.
  const bool all_classes = torch::bincount(labels, {}, classes).min().item<int64_t>() > 0;
  auto &ood = model.metadata.ood;
  ood = all_classes ? OodDetector::fit(train_in, labels, classes, calib_in, {})
                    : OodDetector::fit(cff::data::batched_ood_inputs(model, train_x, 500, true), train_y, classes, calib_in, {});
  nlohmann::json table = nlohmann::json::object();
  const auto names = ood.available();
  std::string best = ood.has("mahalanobis-moments") ? "mahalanobis-moments" : "energy";
  if (calib_x.size(0) > 0 && !ood_sets.empty()) {
    std::map<std::string, std::vector<double>> in_scores;
    for (const auto &name : names) in_scores[name] = to_vector(ood.score(name, calib_in));
    std::map<std::string, double> worst;
    for (const auto &set : ood_sets) {
      const auto out_in = cff::data::batched_ood_inputs(model, cff::data::make_ood_set(set, calib_x, 2000, seed + 23));
      for (const auto &name : names) {
        const double a = auroc(in_scores[name], to_vector(ood.score(name, out_in)));
        table[name][cff::data::ood_set_label(set)] = a;
        worst[name] = worst.count(name) ? std::min(worst[name], a) : a;
      }
    }
    best = names.front();
    for (const auto &name : names) {
      if (worst[name] > worst[best]) best = name;
    }
    for (const auto &name : names) table[name]["worst"] = worst[name];
  }
  ood.set_recommended(best);
  table["recommended"] = best;
  return table;
}

void refit_ood(const TrainOptions &opt_in, const std::string &model_path) {
  TrainOptions opt = opt_in;
  cff::set_threads(opt.threads);
  const auto device = cff::parse_device(opt.device);
  auto model = cff::load_model(model_path, device);
  opt.network = model.metadata.network;
  // The hold-out must be the one training used, or the thresholds are calibrated on training images:
  // --seed, --holdout and --limit left at their defaults take the values the model was trained with.
  const TrainOptions defaults;
  const auto trained = model.metadata.provenance.value("options", nlohmann::json::object());
  if (opt.seed == defaults.seed && trained.contains("seed")) opt.seed = trained["seed"].get<uint64_t>();
  if (opt.holdout == defaults.holdout && trained.contains("holdout")) opt.holdout = trained["holdout"].get<double>();
  if (opt.limit == defaults.limit && trained.contains("limit")) opt.limit = trained["limit"].get<int64_t>();
  std::printf("cff-train: hold-out split of seed %llu, holdout %g, limit %lld (%s)\n",
              static_cast<unsigned long long>(opt.seed), opt.holdout, static_cast<long long>(opt.limit),
              trained.empty() ? "the model records no training options: as given" : "as the model was trained unless given");
  auto split = split_training_data(opt);
  if (split.train_set.classes != model.metadata.labels) {
    throw std::runtime_error(opt.data + ": its classes differ from the labels of " + model_path);
  }
  std::printf("cff-train: fitting the OOD scores of %s on %s (%ld training images, %ld held out)\n",
              model_path.c_str(), split.train_set.description.c_str(), static_cast<long>(split.train_x.size(0)),
              static_cast<long>(split.calib_x.size(0)));
  const auto selection = fit_ood_scores(model, split.train_x, split.train_y, split.calib_x, opt.ood_sets,
                                        opt.ood_fit_images, opt.seed);
  model.metadata.metrics["ood_selection"] = selection;
  model.metadata.provenance["ood_fit_command_line"] = opt.command_line;
  const std::string out = opt.export_path.empty() ? model_path : opt.export_path;
  cff::save_model(out, model.network, model.metadata);
  for (const auto &name : model.metadata.ood.available()) {
    const auto t = model.metadata.ood.threshold(name);
    std::printf("  %-20s threshold %s%s\n", name.c_str(), t ? std::to_string(*t).c_str() : "none",
                selection.contains(name) ? ("  worst AUROC " + std::to_string(selection[name].value("worst", 0.0))).c_str() : "");
  }
  std::printf("wrote %s (recommended OOD score %s)\n", out.c_str(), model.metadata.ood.recommended().c_str());
}

}  // namespace cff::train
