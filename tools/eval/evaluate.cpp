#include "evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <numeric>
#include <optional>
#include <map>
#include <set>

#include <opencv2/photo.hpp>
#include <torch/torch.h>

#include "cff/cff.h"
#include "data/datasets.h"
#include "data/evaluation.h"
#include "metrics.h"
#include "robustness.h"
#include "plot.h"
#include "data/png_writer.h"
#include "video.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace cff::eval {
namespace {

using Clock = std::chrono::steady_clock;

// The seed of a batch of the report's random draws: base + 7919 * stream + 1000003 * block + index, with a
// stream per purpose (for denoising, the noise level in hundredths), a block per step count and the
// batch's first image. Linear, so the seeds (and figures) of earlier reports stay what they were.
namespace seed_stream {
constexpr uint64_t conditional = 0, unconditional = 1;
}
uint64_t batch_seed(uint64_t base, uint64_t stream, int64_t block, int64_t index) {
  return base + 7919ULL * stream + 1000003ULL * static_cast<uint64_t>(block) + static_cast<uint64_t>(index);
}

// The centripetal sampler as the options ask for it (labels and guidance are set by the caller).
CentripetalOptions centripetal_options(const EvalOptions &o, int64_t steps, uint64_t seed) {
  SamplerSettings settings = o.centripetal;
  settings.steps = steps;
  return cff::centripetal_options(settings, seed);
}

std::string shape_text(int64_t c, int64_t h, int64_t w) {
  return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

std::string format(const char *pattern, double value) {
  char s[64];
  std::snprintf(s, sizeof(s), pattern, value);
  return s;
}

// A name usable in a file name: letters, digits, '-' and '_' only.
std::string file_stem(const std::string &name) {
  std::string stem = fs::path(name).filename().string();
  if (stem.empty()) stem = fs::path(name).parent_path().filename().string();
  const auto dot = stem.rfind('.');
  if (dot != std::string::npos && dot > 0) stem = stem.substr(0, dot);
  for (auto &ch : stem) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '_';
  }
  return stem.empty() ? "set" : stem;
}

class Progress {
 public:
  void operator()(const std::string &line) const {
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    std::fprintf(stderr, "cff-eval: [%6.1f s] %s\n", seconds, line.c_str());
    std::fflush(stderr);
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  Clock::time_point start_ = Clock::now();
};

// Logits and penultimate features of a set, in one pass when the model is native: its forward is
// head(features(x)), so the logits are the head's linear map of the features (half the work of two passes).
struct Outputs {
  torch::Tensor logits, features;  // features undefined for TorchScript models
};

Outputs batched_outputs(const Model &model, const torch::Tensor &x, const c10::Device &device, int64_t batch) {
  if (!model.network) return {cff::data::batched_logits(model.logits_function(), x, device, batch), {}};
  const auto parameters = model.network->named_parameters();
  const auto *weight = parameters.find("head.weight");
  const auto *bias = parameters.find("head.bias");
  if (!weight || !bias) throw std::logic_error("classifier without a head layer");
  torch::NoGradGuard no_grad;
  Classifier network = model.network;  // a handle to the same module, callable without const
  std::vector<torch::Tensor> logits, features;
  for (int64_t i = 0; i < x.size(0); i += batch) {
    const auto f = network->features(x.slice(0, i, std::min(i + batch, x.size(0))).to(device));
    logits.push_back(torch::linear(f, *weight, *bias).to(torch::kCPU));
    features.push_back(f.to(torch::kCPU));
  }
  return {torch::cat(logits), torch::cat(features)};
}

json score_metrics(const std::vector<double> &in, const std::vector<double> &out) {
  return {{"auroc", auroc(in, out)}, {"aupr", aupr(in, out)}, {"fpr95", fpr_at_tpr(in, out, 0.95)}};
}

// Per-class fraction of argmax(logits) == requested label; labels are class-major, per_class each.
json per_class_agreement(const torch::Tensor &predicted, const torch::Tensor &labels, int64_t num_classes) {
  json rows = json::array();
  for (int64_t k = 0; k < num_classes; ++k) {
    const auto mask = labels.eq(k);
    rows.push_back(predicted.masked_select(mask).eq(k).to(torch::kDouble).mean().item<double>());
  }
  return rows;
}

struct OodSet {
  std::string name;    // as given on the command line
  std::string kind;    // builtin, video or dataset
  torch::Tensor images;
};

struct Context {
  const EvalOptions &options;
  fs::path out;
  c10::Device device{c10::kCPU};
  Model model;
  LogitsFunction f;
  std::optional<Model> judge;
  torch::Tensor x_test, y_test;
  std::string data_description;
  Progress progress;
  json files = json::array();

  bool runs(const std::string &part) const {
    return std::find(options.skip.begin(), options.skip.end(), part) == options.skip.end();
  }
  std::vector<int64_t> chw() const { return {model.channels(), model.height(), model.width()}; }
  // Writes a figure and returns its name relative to the report folder.
  std::string save(const std::string &name, const cv::Mat &image) {
    plot::write_png((out / name).string(), image);
    files.push_back(name);
    return name;
  }
  std::string save(const std::string &name, const torch::Tensor &image) {
    cff::data::write_png((out / name).string(), image);
    files.push_back(name);
    return name;
  }
};

std::vector<OodSet> load_ood_sets(Context &c) {
  std::vector<OodSet> sets;
  for (const auto &name : c.options.ood_sets) {
    OodSet set{name, "builtin", {}};
    if (cff::data::is_builtin_ood_set(name)) {
      set.images = cff::data::make_ood_set(name, c.x_test, c.options.ood_limit, c.options.seed);
    } else if (looks_like_video(name)) {
      set.kind = "video";
      set.images = read_video_frames(name, c.options.video_frames, c.model.channels(), c.model.height(), c.model.width());
    } else {
      set.kind = "dataset";
      set.images = cff::data::make_ood_set(name, c.x_test, c.options.ood_limit, c.options.seed);
    }
    if (set.images.size(0) == 0) throw std::runtime_error(name + ": the OOD set is empty");
    c.progress("OOD set " + name + " (" + set.kind + "): " + std::to_string(set.images.size(0)) + " images");
    sets.push_back(std::move(set));
  }
  return sets;
}

json classification_part(Context &c, const torch::Tensor &logits) {
  const int64_t k = c.model.num_classes();
  const auto &labels = c.model.metadata.labels;
  const auto predicted = logits.argmax(1);
  const auto correct = predicted.eq(c.y_test);
  json per_class = json::array();
  for (int64_t i = 0; i < k; ++i) {
    const auto mask = c.y_test.eq(i);
    const int64_t n = mask.sum().item<int64_t>();
    per_class.push_back({{"label", labels[static_cast<size_t>(i)]},
                         {"images", n},
                         {"accuracy", n ? correct.masked_select(mask).to(torch::kDouble).mean().item<double>() : 0.0}});
  }
  const auto confusion = confusion_matrix(predicted, c.y_test, k);
  std::vector<std::vector<long>> counts(static_cast<size_t>(k));
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t q = 0; q < k; ++q) counts[static_cast<size_t>(r)].push_back(confusion[r][q].item<long>());
  }
  const auto calibration = expected_calibration_error(torch::softmax(logits.to(torch::kDouble), 1), c.y_test, 15);
  json bins = json::array();
  for (const auto &b : calibration.bins) {
    bins.push_back({{"count", b.count}, {"confidence", b.confidence}, {"accuracy", b.accuracy}});
  }
  const double acc = correct.to(torch::kDouble).mean().item<double>();
  const auto figure = c.save("confusion-matrix.png",
                             plot::matrix_chart("Confusion matrix, " + std::to_string(c.y_test.size(0)) +
                                                    " test images (accuracy " + format("%.2f", 100 * acc) + "%)",
                                                counts, labels, "true class", "predicted class"));
  return {{"images", c.y_test.size(0)},
          {"accuracy", acc},
          {"ece", calibration.ece},
          {"ece_bins", 15},
          {"calibration_bins", bins},
          {"per_class", per_class},
          {"confusion", counts},
          {"confusion_png", figure}};
}

// Every score of `detector` for one set of images: name -> values.
using Scores = std::map<std::string, std::vector<double>>;

Scores scores_of(const OodDetector &detector, const OodInputs &inputs) {
  Scores s;
  for (const auto &name : detector.available()) s[name] = to_vector(detector.score(name, inputs));
  return s;
}

double fraction_above(const std::vector<double> &scores, double threshold) {
  const auto n = std::count_if(scores.begin(), scores.end(), [&](double s) { return !(s <= threshold); });
  return static_cast<double>(n) / static_cast<double>(std::max<size_t>(1, scores.size()));
}

json ood_part(Context &c, const std::vector<OodSet> &sets) {
  const auto &o = c.options;
  // The model file's fitted scores; a file written before them gets its feature-space scores fitted here
  // on training images (no thresholds: those need the trainer's held-out images).
  OodDetector detector = c.model.metadata.ood;
  const bool fitted_here = detector.fit_images() == 0;
  const auto test_in = cff::data::batched_ood_inputs(c.model, c.x_test, o.batch, /*everything=*/true);
  if (fitted_here) {
    auto train = cff::data::load_dataset(o.data, "train", c.model.channels(), c.model.height(), c.model.width());
    const int64_t n = std::min(o.fit_images, train.size());
    c.progress("OOD scores: fitting on " + std::to_string(n) + " training images (the model file has energy only)");
    auto subset = train;  // normalise only the images used, not the whole training split
    subset.images = train.images.slice(0, 0, n);
    OodDetector::FitOptions fit;
    fit.ridge = o.ridge;
    fit.keep = c.model.metadata.ood.keep_rate();
    detector = OodDetector::fit(cff::data::batched_ood_inputs(c.model, subset.normalized(), o.batch, true),
                                train.labels.slice(0, 0, n), c.model.num_classes(), {}, fit);
    if (const auto energy = c.model.metadata.ood.threshold("energy")) detector.set_threshold("energy", *energy);
  }
  const std::string active = detector.has(detector.recommended()) ? detector.recommended() : "energy";
  const auto threshold = detector.threshold(active);
  json result = {{"in_distribution", {{"images", c.x_test.size(0)}, {"description", c.data_description}}},
                 {"scores", detector.available()},
                 {"threshold", threshold ? json(*threshold) : json(nullptr)},
                 {"threshold_score", active},
                 {"threshold_keep_rate", detector.keep_rate()},
                 {"fit", {{"images", detector.fit_images()}, {"ridge", fitted_here ? json(o.ridge) : json(nullptr)},
                          {"by", fitted_here ? "cff-eval" : "the model file"}}}};
  const auto in = scores_of(detector, test_in);
  if (threshold) result["in_distribution"]["flagged_at_threshold"] = fraction_above(in.at(active), *threshold);
  json flagged_in = json::object();
  for (const auto &name : detector.available()) {
    if (const auto t = detector.threshold(name)) flagged_in[name] = fraction_above(in.at(name), *t);
  }
  result["in_distribution"]["flagged_by_score"] = flagged_in;
  json rows = json::array();
  std::vector<plot::Series> roc;
  std::set<std::string> stems;
  for (size_t i = 0; i < sets.size(); ++i) {
    const auto &set = sets[i];
    c.progress("OOD " + set.name + ": scoring " + std::to_string(set.images.size(0)) + " images");
    const auto out = scores_of(detector, cff::data::batched_ood_inputs(c.model, set.images, o.batch, true));
    const std::string display = cff::data::ood_set_label(set.name);
    // Named as reported ("digits/test" -> "digits-test"), not after the split folder alone.
    std::string label = display;
    std::replace(label.begin(), label.end(), '/', '-');
    std::string stem = file_stem(label);
    if (!stems.insert(stem).second) stem += "-" + std::to_string(i);
    std::optional<plot::Marker> marker;
    const auto energy_threshold = detector.threshold("energy");
    if (energy_threshold) marker = plot::Marker{*energy_threshold, "threshold " + format("%.3g", *energy_threshold)};
    const auto histogram = c.save(
        "energy-" + stem + ".png",
        plot::histogram_chart("Energy U(x) = -LSE: " + display + " vs in-distribution", "U(x)",
                              {{"in-distribution test", in.at("energy"), plot::palette(0)}, {display, out.at("energy"), plot::palette(1)}},
                              50, marker));
    json row = {{"name", display},
                {"source", set.name},
                {"kind", set.kind},
                {"images", set.images.size(0)},
                {"mean_energy", std::accumulate(out.at("energy").begin(), out.at("energy").end(), 0.0) / out.at("energy").size()},
                {"histogram_png", histogram}};
    json flagged = json::object();
    for (const auto &name : ood_score_names()) {
      if (!detector.has(name)) {
        row[name] = nullptr;
        continue;
      }
      row[name] = score_metrics(in.at(name), out.at(name));
      if (const auto t = detector.threshold(name)) flagged[name] = fraction_above(out.at(name), *t);
    }
    row["flagged_by_score"] = flagged;
    if (threshold) row["flagged_at_threshold"] = fraction_above(out.at(active), *threshold);
    const auto curve = roc_curve(in.at("energy"), out.at("energy"));
    roc.push_back({display + " (AUROC " + format("%.3f", row["energy"]["auroc"].get<double>()) + ")",
                   curve.false_positive_rate, curve.true_positive_rate, plot::palette(i), 2});
    rows.push_back(row);
  }
  roc.push_back({"", {0, 1}, {0, 1}, cv::Scalar(170, 170, 170), 1});
  result["in_distribution"]["mean_energy"] =
      std::accumulate(in.at("energy").begin(), in.at("energy").end(), 0.0) / in.at("energy").size();
  result["sets"] = rows;
  if (!rows.empty()) {
    result["roc_png"] = c.save("roc-energy.png",
                               plot::line_chart({"ROC of the energy score (OOD = positive)", "false-positive rate (in-distribution flagged)",
                                                 "true-positive rate (OOD flagged)", 0, 1, 0, 1},
                                                roc, {640, 520}));
  }
  return result;
}

json generation_part(Context &c) {
  const auto &o = c.options;
  try {
    o.centripetal.validate(static_cast<double>(c.model.metadata.schedule.max_time()));
  } catch (const std::invalid_argument &e) {
    throw std::runtime_error(std::string("centripetal sampler settings: ") + e.what());
  }
  const int64_t k = c.model.num_classes();
  const int64_t per_class = std::max<int64_t>(1, o.samples / k), n = per_class * k;
  const auto labels = torch::arange(k, torch::kLong).repeat_interleave(per_class);
  const LangevinOptions langevin;
  const AscentOptions ascent;
  const json sampler_settings = {
      {"centripetal",
       {{"start", "Gaussian noise"},
        {"eta", o.centripetal.eta},
        {"t_start", o.centripetal.t_start},
        {"guidance", o.centripetal.guidance},
        {"spacing_power", o.centripetal.spacing_power},
        {"corrector_steps", o.centripetal.corrector_steps},
        {"corrector_snr", o.centripetal.corrector_snr}}},
      {"langevin", {{"start", "uniform noise"}, {"step_size", langevin.step_size}, {"noise", langevin.noise}}},
      {"ascent", {{"start", "uniform noise"}, {"step_size", ascent.step_size}}}};
  json samplers = json::object();
  for (const auto kind : o.samplers) samplers[sampler_name(kind)] = sampler_settings.at(sampler_name(kind));
  json result = {{"samples", n}, {"per_class", per_class}, {"samplers", samplers}};
  std::optional<GaussianStatistics> reference;
  if (c.judge) {
    result["judge"] = {{"path", o.judge_path}};
    c.progress("generation: judge on " + std::to_string(c.x_test.size(0)) + " test images");
    const auto judged = batched_outputs(*c.judge, c.x_test, c.device, o.batch);
    result["judge"]["test_accuracy"] = cff::data::accuracy(judged.logits, c.y_test);
    if (judged.features.defined()) {
      const int64_t m = std::min(o.fid_images, c.x_test.size(0));
      reference = gaussian_statistics(judged.features.slice(0, 0, m));
      result["fid_reference_images"] = m;
      result["judge"]["feature_dimension"] = reference->mean.size(0);
      if (c.x_test.size(0) >= 2 * m) {
        // Two disjoint test slices of the same size: the FID that sampling noise alone gives.
        result["fid_test_vs_test"] = frechet_distance(*reference, gaussian_statistics(judged.features.slice(0, m, 2 * m)));
      }
    } else {
      result["judge"]["fid_skipped"] = "the judge is a TorchScript import: no penultimate features";
    }
  } else {
    result["judge"] = nullptr;
  }
  // Diversity reference: mean pairwise distance of (up to 100) real test images of each class.
  constexpr int64_t kDiversityImages = 100;
  std::vector<double> real_spread(static_cast<size_t>(k), std::numeric_limits<double>::quiet_NaN());
  for (int64_t y = 0; y < k; ++y) {
    const auto index = c.y_test.eq(y).nonzero().flatten();
    real_spread[static_cast<size_t>(y)] =
        mean_pairwise_distance(c.x_test.index_select(0, index.slice(0, 0, std::min(index.size(0), kDiversityImages))));
  }
  result["diversity_reference"] = {{"images_per_class", kDiversityImages}, {"mean_pairwise_distance", real_spread}};
  // Sample spread over real spread, per class; the smallest is the figure to watch (a collapsed class).
  auto diversity = [&](const torch::Tensor &samples, json &run) {
    std::vector<double> ratios;
    double lowest = std::numeric_limits<double>::infinity(), sum = 0;
    for (int64_t y = 0; y < k; ++y) {
      const double ratio = mean_pairwise_distance(samples.slice(0, y * per_class, (y + 1) * per_class)) /
                           real_spread[static_cast<size_t>(y)];
      ratios.push_back(ratio);
      if (std::isfinite(ratio)) {
        lowest = std::min(lowest, ratio);
        sum += ratio;
      }
    }
    run["diversity_per_class"] = ratios;
    run["diversity_min"] = std::isfinite(lowest) ? json(lowest) : json(nullptr);
    run["diversity_mean"] = std::isfinite(lowest) ? json(sum / static_cast<double>(k)) : json(nullptr);
  };

  json runs = json::array();
  for (const auto kind : o.samplers) {
    const std::string sampler = sampler_name(kind);
    for (const int64_t steps : o.steps) {
      const auto start = Clock::now();
      std::vector<torch::Tensor> parts;
      for (int64_t i = 0; i < n; i += o.batch) {
        const int64_t end = std::min(n, i + o.batch);
        // The same seeds for every sampler: each starts from its own kind of noise, drawn alike.
        const uint64_t seed = batch_seed(o.seed, seed_stream::conditional, steps, i);
        const auto batch_labels = labels.slice(0, i, end).to(c.device);
        torch::Tensor batch;
        if (kind == SamplerKind::centripetal) {
          auto options = centripetal_options(o, steps, seed);
          options.labels = batch_labels;
          batch = sample_centripetal(c.f, c.model.metadata.schedule, end - i, c.chw(), options, c.device);
        } else if (kind == SamplerKind::langevin) {
          LangevinOptions options;
          options.steps = steps;
          options.seed = seed;
          options.labels = batch_labels;
          batch = sample_langevin(c.f, end - i, c.chw(), options, c.device);
        } else {
          AscentOptions options;
          options.steps = steps;
          options.seed = seed;
          options.labels = batch_labels;
          batch = sample_ascent(c.f, end - i, c.chw(), options, c.device);
        }
        parts.push_back(batch.to(torch::kCPU));
        c.progress("generation: " + sampler + ", " + std::to_string(steps) + " steps, " + std::to_string(end) + "/" +
                   std::to_string(n) + " samples");
      }
      const auto samples = torch::cat(parts);
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      const auto model_predicted = cff::data::batched_logits(c.f, samples, c.device, o.batch).argmax(1);
      json run = {{"sampler", sampler},
                  {"conditional", true},
                  {"steps", steps},
                  {"seconds", seconds},
                  {"model_agreement", model_predicted.eq(labels).to(torch::kDouble).mean().item<double>()},
                  {"judge_agreement", nullptr},
                  {"fid", nullptr}};
      if (c.judge) {
        const auto judged = batched_outputs(*c.judge, samples, c.device, o.batch);
        const auto judge_predicted = judged.logits.argmax(1);
        run["judge_agreement"] = judge_predicted.eq(labels).to(torch::kDouble).mean().item<double>();
        run["judge_agreement_per_class"] = per_class_agreement(judge_predicted, labels, k);
        if (reference) run["fid"] = frechet_distance(gaussian_statistics(judged.features), *reference);
      }
      diversity(samples, run);
      const int64_t columns = std::max<int64_t>(1, std::min(per_class, o.grid_columns));
      std::vector<int64_t> shown;
      for (int64_t y = 0; y < k; ++y) {
        for (int64_t j = 0; j < columns; ++j) shown.push_back(y * per_class + j);
      }
      // Centripetal grids keep their plain names (samples-50-steps.png); the baselines are prefixed.
      const std::string prefix = kind == SamplerKind::centripetal ? "samples-" : "samples-" + sampler + "-";
      run["grid_png"] = c.save(prefix + std::to_string(steps) + "-steps.png",
                               cff::data::make_grid(samples.index_select(0, torch::tensor(shown, torch::kLong)), columns, 2));
      runs.push_back(run);
    }
  }
  result["runs"] = runs;

  // Unconditional samples (no label, w = 0): does the judge recognise them, and do they cover the classes?
  if (o.unconditional) {
    json unconditional = json::array();
    const int64_t real_n = std::min(n, c.x_test.size(0));
    const double real_all = mean_pairwise_distance(c.x_test.slice(0, 0, std::min<int64_t>(real_n, 1000)));
    for (const int64_t steps : o.steps) {
      const auto start = Clock::now();
      std::vector<torch::Tensor> parts;
      for (int64_t i = 0; i < n; i += o.batch) {
        const int64_t end = std::min(n, i + o.batch);
        const auto options = centripetal_options(
            o, steps, batch_seed(o.seed, seed_stream::unconditional, steps, i));
        parts.push_back(sample_centripetal(c.f, c.model.metadata.schedule, end - i, c.chw(), options, c.device).to(torch::kCPU));
        c.progress("generation: unconditional, " + std::to_string(steps) + " steps, " + std::to_string(end) + "/" +
                   std::to_string(n) + " samples");
      }
      const auto samples = torch::cat(parts);
      json run = {{"sampler", "centripetal"},
                  {"conditional", false},
                  {"steps", steps},
                  {"seconds", std::chrono::duration<double>(Clock::now() - start).count()},
                  {"judge_confident", nullptr},
                  {"judge_classes", nullptr},
                  {"fid", nullptr},
                  {"diversity", mean_pairwise_distance(samples.slice(0, 0, std::min<int64_t>(n, 1000))) / real_all}};
      if (c.judge) {
        const auto judged = batched_outputs(*c.judge, samples, c.device, o.batch);
        const auto [confidence, predicted] = judged.logits.softmax(1).max(1);
        run["judge_confident"] = confidence.ge(0.9).to(torch::kDouble).mean().item<double>();
        // Share of the samples the judge puts in each class: a sampler that ignores some classes shows zeros.
        const auto histogram = torch::bincount(predicted, {}, k).to(torch::kDouble).div(static_cast<double>(n)).contiguous();
        run["judge_classes"] = std::vector<double>(histogram.data_ptr<double>(), histogram.data_ptr<double>() + k);
        if (reference) run["fid"] = frechet_distance(gaussian_statistics(judged.features), *reference);
      }
      const int64_t shown = std::min<int64_t>(n, k * std::max<int64_t>(1, o.grid_columns));
      run["grid_png"] = c.save("samples-unconditional-" + std::to_string(steps) + "-steps.png",
                               cff::data::make_grid(samples.slice(0, 0, shown), std::max<int64_t>(1, o.grid_columns), 2));
      unconditional.push_back(run);
    }
    result["unconditional"] = unconditional;
  }
  return result;
}

torch::Tensor to_pixels(const torch::Tensor &x) { return ((x.clamp(-1, 1) + 1) * 127.5).round(); }

// OpenCV's non-local means on each image (pixels: float [N, C, H, W] in 0..255, whole numbers).
torch::Tensor nlm_denoise(const torch::Tensor &pixels, double h) {
  const int64_t n = pixels.size(0), c = pixels.size(1), height = pixels.size(2), width = pixels.size(3);
  auto bytes = pixels.to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
  auto result = torch::empty_like(bytes);
  for (int64_t i = 0; i < n; ++i) {
    cv::Mat source(static_cast<int>(height), static_cast<int>(width), c == 1 ? CV_8UC1 : CV_8UC3, bytes[i].data_ptr<uint8_t>());
    cv::Mat target(static_cast<int>(height), static_cast<int>(width), c == 1 ? CV_8UC1 : CV_8UC3, result[i].data_ptr<uint8_t>());
    if (c == 1) {
      cv::fastNlMeansDenoising(source, target, static_cast<float>(h), 7, 21);
    } else {
      cv::Mat bgr, denoised;
      cv::cvtColor(source, bgr, cv::COLOR_RGB2BGR);
      cv::fastNlMeansDenoisingColored(bgr, denoised, static_cast<float>(h), static_cast<float>(h), 7, 21);
      cv::cvtColor(denoised, target, cv::COLOR_BGR2RGB);
    }
  }
  return result.permute({0, 3, 1, 2}).to(torch::kFloat32);
}

json denoising_part(Context &c) {
  const auto &o = c.options;
  const int64_t n = std::min(o.denoise_images, c.x_test.size(0));
  const auto clean = to_pixels(c.x_test.slice(0, 0, n));
  json result = {{"images", n},
                 {"cff", {{"steps", o.denoise_steps}, {"eta", 0.0}, {"sigma", "known, sigma / 127.5 in [-1, 1] units"}}},
                 {"cff_estimated", {{"sigma", "estimated per image by cff::estimate_noise_sigma"}}},
                 {"nlm", {{"function", "cv::fastNlMeansDenoising"}, {"template_window", 7}, {"search_window", 21},
                          {"h_over_sigma", o.nlm_h}, {"h_max", o.nlm_h_max}}},
                 {"noise", "Gaussian, added in 0-255 units, rounded and clipped to 8 bits; both denoisers get the same image"}};
  DenoiseOptions denoise_options;
  denoise_options.steps = o.denoise_steps;
  denoise_options.seed = o.seed;
  // cff on images of the model's size, batched, at one noise level per image ([-1, 1] units).
  auto cff_batched = [&](const torch::Tensor &noisy_x, const torch::Tensor &levels) {
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < noisy_x.size(0); i += o.batch) {
      const int64_t end = std::min(noisy_x.size(0), i + o.batch);
      parts.push_back(denoise(c.f, c.model.metadata.schedule, noisy_x.slice(0, i, end).to(c.device),
                              levels.slice(0, i, end), denoise_options)
                          .to(torch::kCPU));
    }
    return torch::cat(parts);
  };
  // cff on larger frames: overlapping model-sized tiles, one frame at a time (what cffdenoise does).
  auto cff_tiled = [&](const torch::Tensor &noisy_x, const torch::Tensor &levels) {
    std::vector<torch::Tensor> frames;
    for (int64_t i = 0; i < noisy_x.size(0); ++i) {
      frames.push_back(denoise_tiled(c.f, c.model.metadata.schedule, noisy_x[i].to(c.device), c.chw()[1], c.chw()[2],
                                     levels[i].item<double>(), denoise_options)
                           .to(torch::kCPU));
    }
    return torch::stack(frames);
  };
  auto figures = [](const torch::Tensor &image, const torch::Tensor &reference) {
    return json{{"psnr", psnr(image, reference).mean().item<double>()}, {"ssim", ssim(image, reference).mean().item<double>()}};
  };
  // One noise level on one set: noisy, cff with the known sigma, cff with the estimated sigma, NLM.
  auto level_row = [&](const torch::Tensor &reference, double sigma, bool tiled, const std::string &strip_name) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(
        batch_seed(o.seed, static_cast<uint64_t>(std::lround(sigma * 100)), 0, 0));
    const auto noisy = (reference + sigma * torch::randn(reference.sizes(), generator)).round().clamp(0, 255);
    const auto noisy_x = noisy / 127.5 - 1;
    const int64_t count = reference.size(0);
    const auto known = torch::full({count}, sigma / 127.5, torch::kFloat32);
    const auto estimated = estimate_noise_sigma(noisy_x).to(torch::kFloat32);
    const auto by_cff = to_pixels(tiled ? cff_tiled(noisy_x, known) : cff_batched(noisy_x, known));
    const auto by_cff_estimated = to_pixels(tiled ? cff_tiled(noisy_x, estimated) : cff_batched(noisy_x, estimated));
    const double h = std::min(o.nlm_h * sigma, o.nlm_h_max);
    const auto by_nlm = nlm_denoise(noisy, h);
    json row = {{"sigma", sigma},
                {"sigma_model_units", sigma / 127.5},
                {"sigma_estimated_mean", estimated.mean().item<double>() * 127.5},
                {"nlm_h", h},
                {"noisy", figures(noisy, reference)},
                {"cff", figures(by_cff, reference)},
                {"cff_estimated", figures(by_cff_estimated, reference)},
                {"nlm", figures(by_nlm, reference)}};
    const int64_t strip = std::min(o.strip_images, count);
    if (strip > 0) {
      std::vector<torch::Tensor> tiles;
      for (int64_t i = 0; i < strip; ++i) {
        for (const auto *t : {&reference, &noisy, &by_cff, &by_nlm}) tiles.push_back((*t)[i] / 127.5 - 1);
      }
      row["strip_png"] = c.save(strip_name, cff::data::make_grid(torch::stack(tiles), 4, 3));
    }
    return row;
  };

  json rows = json::array();
  for (const double sigma : o.sigmas) {
    auto row = level_row(clean, sigma, false, "denoise-sigma-" + format("%g", sigma) + ".png");
    c.progress("denoising sigma " + format("%g", sigma) + ": PSNR noisy " + format("%.2f", row["noisy"]["psnr"].get<double>()) +
               ", cff " + format("%.2f", row["cff"]["psnr"].get<double>()) + " (estimated sigma " +
               format("%.2f", row["cff_estimated"]["psnr"].get<double>()) + "), NLM " +
               format("%.2f", row["nlm"]["psnr"].get<double>()) + " dB");
    rows.push_back(row);
  }
  result["rows"] = rows;

  // Out of domain: frames of a natural video, grey or RGB as the model takes them, at 160x120.
  if (!o.denoise_video.empty()) {
    const int64_t width = 160, height = 120;
    const auto frames = to_pixels(read_video_frames(o.denoise_video, o.denoise_video_frames, c.chw()[0], height, width));
    json video_rows = json::array();
    for (const double sigma : o.sigmas) {
      auto row = level_row(frames, sigma, true, "denoise-video-sigma-" + format("%g", sigma) + ".png");
      c.progress("denoising " + o.denoise_video + " sigma " + format("%g", sigma) + ": PSNR noisy " +
                 format("%.2f", row["noisy"]["psnr"].get<double>()) + ", cff " + format("%.2f", row["cff"]["psnr"].get<double>()) +
                 ", NLM " + format("%.2f", row["nlm"]["psnr"].get<double>()) + " dB");
      video_rows.push_back(row);
    }
    result["video"] = {{"path", o.denoise_video}, {"frames", frames.size(0)}, {"width", width}, {"height", height},
                       {"rows", video_rows}};
  }
  return result;
}

}  // namespace

static json robustness_part(Context &c) {
  const auto &o = c.options;
  RobustnessOptions r;
  for (const auto &text : o.attacks) r.attacks.push_back(AttackSpec::parse(text));
  r.scale = PixelScale{c.model.metadata.normalization.mean, c.model.metadata.normalization.std};
  r.energy_threshold = c.model.metadata.ood.threshold("energy");
  r.batch = std::min<int64_t>(o.batch, 100);
  std::optional<Model> transfer;
  if (!o.attack_transfer.empty()) {
    transfer = load_model(o.attack_transfer, c.device);
    if (transfer->channels() != c.model.channels() || transfer->height() != c.model.height() ||
        transfer->width() != c.model.width() || transfer->num_classes() != c.model.num_classes()) {
      throw std::runtime_error(o.attack_transfer + ": the transfer model takes other images or classes than the model");
    }
    r.transfer = transfer->logits_function();
    r.transfer_name = fs::path(o.attack_transfer).filename().string();
  }
  const int64_t n = std::min<int64_t>(o.attack_images, c.x_test.size(0));
  auto f = c.f;
  const auto device = c.device;
  const LogitsFunction on_device = [f, device](const torch::Tensor &x) { return f(x.to(device)).to(torch::kCPU); };
  return robustness(on_device, c.x_test.slice(0, 0, n), c.y_test.slice(0, 0, n), c.model.metadata.labels, r,
                    [&](const std::string &line) { c.progress(line); });
}

const std::vector<std::string> &part_names() {
  static const std::vector<std::string> names = {"classification", "ood", "generation", "denoising", "robustness"};
  return names;
}

json evaluate(const EvalOptions &o) {
  for (const auto &part : o.skip) {
    if (std::find(part_names().begin(), part_names().end(), part) == part_names().end()) {
      throw std::invalid_argument("--skip: unknown part '" + part + "'");
    }
  }
  set_threads(o.threads);
  const auto device = parse_device(o.device);
  Context c{o, fs::path(o.out_dir), device, load_model(o.model_path, device), {}, {}, {}, {}, {}, {}, {}};
  c.f = c.model.logits_function();
  const auto &meta = c.model.metadata;
  if (static_cast<int64_t>(meta.labels.size()) != c.model.num_classes()) {
    throw std::runtime_error(o.model_path + ": metadata has " + std::to_string(meta.labels.size()) + " labels for " +
                             std::to_string(c.model.num_classes()) + " classes");
  }
  if (!o.judge_path.empty() && c.runs("generation")) {
    c.judge = load_model(o.judge_path, device);
    if (c.judge->channels() != c.model.channels() || c.judge->height() != c.model.height() ||
        c.judge->width() != c.model.width() || c.judge->num_classes() != c.model.num_classes()) {
      throw std::runtime_error(o.judge_path + ": the judge takes " +
                               shape_text(c.judge->channels(), c.judge->height(), c.judge->width()) + " images and has " +
                               std::to_string(c.judge->num_classes()) + " classes; the model " +
                               shape_text(c.model.channels(), c.model.height(), c.model.width()) + " and " +
                               std::to_string(c.model.num_classes()));
    }
  }
  c.progress("model " + o.model_path + ": " + shape_text(c.model.channels(), c.model.height(), c.model.width()) + ", " +
             std::to_string(c.model.num_classes()) + " classes, " + describe_device(device));

  auto test = cff::data::load_dataset(o.data, "test", c.model.channels(), c.model.height(), c.model.width());
  if (test.images.size(1) != c.model.channels() || test.images.size(2) != c.model.height() ||
      test.images.size(3) != c.model.width()) {
    throw cff::data::DatasetError(o.data + ": images are " + shape_text(test.images.size(1), test.images.size(2), test.images.size(3)) +
                                  ", the model needs " + shape_text(c.model.channels(), c.model.height(), c.model.width()));
  }
  const int64_t n_test = o.limit > 0 ? std::min(o.limit, test.size()) : test.size();
  c.x_test = test.normalized().slice(0, 0, n_test);
  c.y_test = test.labels.slice(0, 0, n_test);
  if (n_test == 0) throw cff::data::DatasetError(o.data + ": the test split is empty");
  if (c.y_test.max().item<int64_t>() >= c.model.num_classes()) {
    throw cff::data::DatasetError(o.data + ": labels go beyond the model's " + std::to_string(c.model.num_classes()) + " classes");
  }
  c.data_description = test.description;
  // Every input is read before the long parts start, so a bad OOD path fails in seconds.
  const auto ood_sets = c.runs("ood") ? load_ood_sets(c) : std::vector<OodSet>{};
  std::error_code error;
  fs::create_directories(c.out, error);
  if (error || !fs::is_directory(c.out)) {
    throw std::runtime_error(o.out_dir + ": cannot create the report folder (" +
                             (error ? error.message() : std::string("a file of that name exists")) + ")");
  }

  json summary = {{"tool", "cff-eval"},
                  {"command_line", o.command_line},
                  {"device", describe_device(device)},
                  {"model", {{"path", o.model_path},
                             {"input", shape_text(c.model.channels(), c.model.height(), c.model.width())},
                             {"classes", c.model.num_classes()},
                             {"labels", meta.labels},
                             {"parameters", c.model.network ? json(c.model.network->parameter_count()) : json(nullptr)},
                             {"ood", meta.ood.to_json()},
                             {"metrics_at_export", meta.metrics}}},
                  {"data", {{"spec", o.data}, {"description", test.description}, {"test_images", n_test}}},
                  {"skipped", o.skip}};
  json timing = json::object();

  Outputs test_outputs;
  if (c.runs("classification")) {
    const double start = c.progress.seconds();
    c.progress("classification: " + std::to_string(n_test) + " test images");
    test_outputs = batched_outputs(c.model, c.x_test, device, o.batch);
    summary["classification"] = classification_part(c, test_outputs.logits);
    timing["classification"] = c.progress.seconds() - start;
  }
  if (c.runs("ood")) {
    const double start = c.progress.seconds();
    summary["ood"] = ood_part(c, ood_sets);
    timing["ood"] = c.progress.seconds() - start;
  }
  if (c.runs("generation")) {
    const double start = c.progress.seconds();
    summary["generation"] = generation_part(c);
    timing["generation"] = c.progress.seconds() - start;
  }
  if (c.runs("denoising")) {
    const double start = c.progress.seconds();
    summary["denoising"] = denoising_part(c);
    timing["denoising"] = c.progress.seconds() - start;
  }
  if (c.runs("robustness") && !o.attacks.empty()) {
    const double start = c.progress.seconds();
    summary["robustness"] = robustness_part(c);
    timing["robustness"] = c.progress.seconds() - start;
  }
  timing["total"] = c.progress.seconds();
  summary["seconds"] = timing;
  summary["files"] = c.files;
  return summary;
}

}  // namespace cff::eval
