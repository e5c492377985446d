#include "cff/engine.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <torch/torch.h>

#include "cff/denoise.h"
#include "cff/device.h"
#include "cff/energy.h"
#include "cff/model_file.h"
#include "cff/sampler.h"

namespace cff {

struct Engine::Impl {
  Model model;
  LogitsFunction logits;
  ModelInfo info;
  std::mutex forward_mutex;  // Model::logits_function is not for concurrent use
};

namespace {

// Identifies one version of a file on one device: a rewritten model file gets a fresh engine.
std::string cache_key(const std::string &path, const c10::Device &device) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  char *resolved = ::realpath(path.c_str(), nullptr);
  std::string canonical = resolved ? resolved : path;
  std::free(resolved);
  return canonical + '\n' + device.str() + '\n' + std::to_string(st.st_size) + '\n' +
         std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec);
}

std::mutex cache_mutex;
std::map<std::string, std::weak_ptr<Engine>> &cache() {
  static std::map<std::string, std::weak_ptr<Engine>> engines;
  return engines;
}

}  // namespace

int ModelInfo::find_class(const std::string &name) const {
  char *end = nullptr;
  const long number = std::strtol(name.c_str(), &end, 10);
  if (!name.empty() && end && *end == '\0') return number >= 0 && number < num_classes ? static_cast<int>(number) : -1;
  auto lower = [](std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
  };
  const auto wanted = lower(name);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (lower(labels[i]) == wanted) return static_cast<int>(i);
  }
  return -1;
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

const ModelInfo &Engine::info() const { return impl_->info; }

std::string Engine::describe_device() const { return cff::describe_device(impl_->model.device); }

std::shared_ptr<Engine> Engine::acquire(const std::string &model_path, const std::string &device_spec, int threads) {
  if (model_path.empty()) throw std::runtime_error("no model file given");
  c10::Device device(c10::kCPU);
  try {
    device = parse_device(device_spec);
  } catch (const std::exception &e) {
    throw std::runtime_error(model_path + ": " + e.what());
  }
  if (threads >= 0) set_threads(threads);

  std::lock_guard<std::mutex> lock(cache_mutex);
  const std::string key = cache_key(model_path, device);
  if (key.empty()) throw std::runtime_error(model_path + ": " + std::strerror(errno));
  auto &engines = cache();
  for (auto it = engines.begin(); it != engines.end();) {
    it = it->second.expired() ? engines.erase(it) : std::next(it);
  }
  if (auto found = engines.find(key); found != engines.end()) {
    if (auto engine = found->second.lock()) return engine;
  }

  auto impl = std::make_unique<Impl>();
  try {
    impl->model = load_model(model_path, device);
  } catch (const c10::Error &e) {
    throw std::runtime_error(model_path + ": " + e.what_without_backtrace());
  }
  // ModelFileError is a std::runtime_error and already names the file.
  impl->logits = impl->model.logits_function();
  const auto &meta = impl->model.metadata;
  auto &info = impl->info;
  info.path = model_path;
  info.device = device.str();
  info.channels = static_cast<int>(meta.network.channels);
  info.height = static_cast<int>(meta.network.height);
  info.width = static_cast<int>(meta.network.width);
  info.num_classes = static_cast<int>(meta.network.num_classes);
  info.labels = meta.labels;
  info.mean = meta.normalization.mean;
  info.std = meta.normalization.std;
  info.max_time = static_cast<double>(meta.schedule.max_time());
  for (const auto &name : meta.ood.available()) {
    const auto threshold = meta.ood.threshold(name);
    info.ood_scores.push_back({name, threshold.value_or(0.0), threshold.has_value()});
  }
  info.ood_recommended = meta.ood.has(meta.ood.recommended()) ? meta.ood.recommended() : "energy";
  info.ood_keep_rate = meta.ood.keep_rate();

  std::shared_ptr<Engine> engine(new Engine(std::move(impl)));
  engines[key] = engine;
  return engine;
}

std::vector<Classification> Engine::classify(const float *chw_batch, int n, int top_k, int score_index) {
  if (n < 0) throw std::invalid_argument("classify: negative batch size");
  if (n == 0) return {};
  if (!chw_batch) throw std::invalid_argument("classify: null input buffer");
  const auto &info = impl_->info;
  const int k = std::clamp(top_k, 1, info.num_classes);

  torch::InferenceMode inference;
  auto x = torch::from_blob(const_cast<float *>(chw_batch), {n, info.channels, info.height, info.width},
                            torch::kFloat32);
  // A NaN or Inf pixel must not reach the network: GroupNorm would spread it over the image and
  // nothing downstream can act on a NaN score. Such images are zeroed, run with the others and
  // reported as non-finite.
  auto finite = torch::isfinite(x).flatten(1).all(1);
  const bool all_finite = finite.all().item<bool>();
  if (!all_finite) x = torch::where(torch::isfinite(x), x, torch::zeros({}, x.options()));

  if (score_index < -1 || score_index >= static_cast<int>(info.ood_scores.size())) {
    throw std::invalid_argument("classify: no OOD score " + std::to_string(score_index));
  }
  auto wants = [score_index](size_t i) { return score_index < 0 || static_cast<int>(i) == score_index; };
  std::vector<std::string> wanted;
  for (size_t i = 0; i < info.ood_scores.size(); ++i) {
    if (wants(i)) wanted.push_back(info.ood_scores[i].name);
  }
  torch::Tensor logits;
  std::vector<torch::Tensor> scores;  // one per ood_scores entry; undefined when not wanted
  try {
    OodInputs inputs;
    {
      std::lock_guard<std::mutex> lock(impl_->forward_mutex);
      inputs = impl_->model.ood_inputs_for(x, wanted);
    }
    // The scores read only the inputs and the fitted (const) class models: no lock needed.
    logits = inputs.logits.to(torch::kFloat64);
    for (size_t i = 0; i < info.ood_scores.size(); ++i) {
      scores.push_back(wants(i) ? impl_->model.metadata.ood.score(info.ood_scores[i].name, inputs).contiguous()
                                : torch::Tensor());
    }
  } catch (const c10::Error &e) {
    throw std::runtime_error(info.path + ": forward pass failed: " + e.what_without_backtrace());
  }
  finite = finite.logical_and(torch::isfinite(logits).all(1));
  for (const auto &score : scores) {
    if (score.defined()) finite = finite.logical_and(torch::isfinite(score));
  }
  auto energy = free_energy(logits).contiguous();
  auto probabilities = class_posterior(logits);
  auto [top_probabilities, top_ids] = probabilities.topk(k, 1);
  top_probabilities = top_probabilities.contiguous();
  top_ids = top_ids.contiguous();

  const auto finite_a = finite.accessor<bool, 1>();
  const auto energy_a = energy.accessor<double, 1>();
  const auto prob_a = top_probabilities.accessor<double, 2>();
  const auto id_a = top_ids.accessor<int64_t, 2>();
  std::vector<Classification> results(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto &r = results[static_cast<size_t>(i)];
    if (!finite_a[i]) {
      r.non_finite = true;
      r.energy = std::numeric_limits<double>::infinity();
      r.scores.assign(scores.size(), std::numeric_limits<double>::infinity());
      continue;
    }
    r.energy = energy_a[i];
    r.scores.reserve(scores.size());
    for (const auto &score : scores) {
      r.scores.push_back(score.defined() ? score.data_ptr<double>()[i] : std::numeric_limits<double>::quiet_NaN());
    }
    r.class_id = static_cast<int>(id_a[i][0]);
    r.label = info.labels.at(static_cast<size_t>(r.class_id));
    r.confidence = prob_a[i][0];
    r.top_k.reserve(static_cast<size_t>(k));
    for (int j = 0; j < k; ++j) r.top_k.push_back({static_cast<int>(id_a[i][j]), prob_a[i][j]});
  }
  return results;
}

namespace {

// Copies [..] tensor values (any device) into a float vector, appending.
void append_floats(std::vector<float> &out, const torch::Tensor &t) {
  auto cpu = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  out.insert(out.end(), cpu.data_ptr<float>(), cpu.data_ptr<float>() + cpu.numel());
}

// Turns LibTorch's errors into std::runtime_error naming the model file.
template <typename Body>
auto guarded(const std::string &path, const char *what, Body body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::Error &e) {
    throw std::runtime_error(path + ": " + what + " failed: " + e.what_without_backtrace());
  }
}

}  // namespace

Engine::Generated Engine::generate(const std::vector<int> &labels, const std::vector<uint64_t> &seeds,
                                   const GenerateOptions &options) {
  const auto &info = impl_->info;
  const int n = static_cast<int>(labels.size());
  if (n < 1) throw std::invalid_argument("generate: no images asked for");
  if (seeds.size() != labels.size()) throw std::invalid_argument("generate: one seed per image expected");
  const bool conditional = labels[0] >= 0;
  for (int label : labels) {
    if ((label >= 0) != conditional) {
      throw std::invalid_argument("generate: a batch is either all conditional or all unconditional");
    }
    if (label >= info.num_classes) {
      throw std::invalid_argument("generate: class " + std::to_string(label) + " out of range (the model has " +
                                  std::to_string(info.num_classes) + ")");
    }
  }
  const bool centripetal = options.sampler == Sampler::centripetal;
  const auto &schedule = impl_->model.metadata.schedule;
  try {
    options.validate(static_cast<double>(schedule.max_time()));
  } catch (const std::invalid_argument &e) {
    throw std::invalid_argument(std::string("generate: ") + e.what());
  }
  Engine *guide = centripetal && options.guide && conditional ? options.guide.get() : nullptr;
  if (guide) {
    const auto &g = guide->info();
    if (g.channels != info.channels || g.height != info.height || g.width != info.width ||
        g.num_classes != info.num_classes) {
      throw std::invalid_argument("generate: guide model " + g.path + " does not match " + info.path +
                                  " (input size or number of classes)");
    }
  }

  const c10::Device device = impl_->model.device;
  Generated result;
  result.n = n;
  auto record = [&result](int64_t, const torch::Tensor &x) { append_floats(result.trajectory, x); };
  torch::Tensor label_tensor;
  if (conditional) {
    std::vector<int64_t> l(labels.begin(), labels.end());
    label_tensor = torch::tensor(l, torch::kLong).to(device);
  }

  // Both engines' forward passes are taken, in a deadlock-free order (two generators may guide
  // each other's models).
  std::unique_lock<std::mutex> own(impl_->forward_mutex, std::defer_lock), other;
  if (guide && guide != this) {
    other = std::unique_lock<std::mutex>(guide->impl_->forward_mutex, std::defer_lock);
    std::lock(own, other);
  } else {
    own.lock();
  }

  torch::Tensor images = guarded(info.path, "generation", [&]() {
    const std::vector<int64_t> chw = {info.channels, info.height, info.width};
    // Langevin and ascent draw the whole batch from one seed (the first image's).
    const auto batch_options = [&](auto o) {
      o.steps = options.steps;
      o.seed = seeds[0];
      o.labels = label_tensor;
      if (options.trajectory) o.on_step = record;
      return o;
    };
    switch (options.sampler) {
      case Sampler::centripetal: {
        auto o = centripetal_options(options, seeds[0]);
        o.labels = label_tensor;
        if (guide) {
          const c10::Device guide_device = guide->impl_->model.device;
          o.guide = [f = guide->impl_->logits, guide_device](const torch::Tensor &x) {
            return f(x.to(guide_device)).to(x.device());
          };
        }
        if (options.trajectory) o.on_step = record;
        // Each image's start noise from its own seed (as sample_centripetal draws it), so an image
        // generated alone depends on nothing but its seed.
        std::vector<torch::Tensor> starts;
        for (int i = 0; i < n; ++i) {
          starts.push_back(centripetal_start(schedule, 1, chw, seeds[static_cast<size_t>(i)], device));
        }
        auto t = torch::full({n}, options.t_start, torch::kDouble);
        return run_centripetal(impl_->logits, schedule, torch::cat(starts), t, o);
      }
      case Sampler::langevin: return sample_langevin(impl_->logits, n, chw, batch_options(LangevinOptions{}), device);
      case Sampler::ascent: return sample_ascent(impl_->logits, n, chw, batch_options(AscentOptions{}), device);
    }
    throw std::invalid_argument("generate: unknown sampler");
  });
  append_floats(result.images, images);
  result.steps = options.trajectory ? static_cast<int>(result.trajectory.size() / result.images.size()) : 0;
  return result;
}

double Engine::estimate_noise(const float *chw, int height, int width) {
  if (!chw || height < 1 || width < 1) throw std::invalid_argument("estimate_noise: empty image");
  const auto &info = impl_->info;
  auto x = torch::from_blob(const_cast<float *>(chw), {1, info.channels, height, width}, torch::kFloat32);
  return guarded(info.path, "noise estimate", [&]() { return estimate_noise_sigma(x)[0].item<double>(); });
}

double Engine::denoise(float *chw, int height, int width, const FrameDenoiseOptions &options) {
  if (!chw || height < 1 || width < 1) throw std::invalid_argument("denoise: empty image");
  if (options.steps < 1) throw std::invalid_argument("denoise: steps must be >= 1");
  const auto &info = impl_->info;
  double sigma = options.sigma;
  if (sigma < 0.0) sigma = estimate_noise(chw, height, width);
  if (!(sigma > 0.0) || !std::isfinite(sigma)) return sigma;  // nothing to remove
  auto x = torch::from_blob(chw, {info.channels, height, width}, torch::kFloat32);
  cff::DenoiseOptions denoise_options;
  denoise_options.steps = options.steps;
  std::lock_guard<std::mutex> lock(impl_->forward_mutex);
  guarded(info.path, "denoising", [&]() {
    auto clean = denoise_tiled(impl_->logits, impl_->model.metadata.schedule, x.to(impl_->model.device), info.height,
                               info.width, sigma, denoise_options);
    x.copy_(clean.to(torch::kCPU));
    return 0;
  });
  return sigma;
}

}  // namespace cff
