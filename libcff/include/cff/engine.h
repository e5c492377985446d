// A torch-free facade over a loaded model for elements and tools that only need results, so that
// their sources compile without LibTorch's headers.
//
// Engines are shared: Engine::acquire returns the one instance for a model file on a device, and
// every caller (e.g. several cffclassify elements in one process) holds it through a shared_ptr.
// The engine lives as long as its last holder. Calls are thread-safe: a mutex inside serialises
// the forward passes.
//
// Inputs are float images in the model's input space, C x H x W per image, already normalised
// with ModelInfo::mean / std (see gst-plugin/frame_convert.h for the conversion from video frames).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cff/sampler_defaults.h"
#include "cff/threads.h"

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

// What a caller needs to know about the model behind an engine.
struct ModelInfo {
  std::string path;                 // the model file, as given to acquire
  std::string device;               // "cpu" or "cuda:N" (Engine::describe_device adds the thread count)
  int channels = 0;                 // C
  int height = 0;                   // H
  int width = 0;                    // W
  int num_classes = 0;              // K
  std::vector<std::string> labels;  // one name per class
  std::vector<double> mean;         // per channel: x = (p / 255 - mean) / std
  std::vector<double> std;
  double max_time = 0.0;            // T of the model's noise schedule: samplers start at t_start <= T
  // The OOD scores classify computes (cff/ood.h: higher = more unusual), in Classification::scores order,
  // each with the threshold the trainer calibrated (keeps ood_keep_rate of held-out training images).
  struct OodScore {
    std::string name;          // "energy", "msp", "mahalanobis", "mahalanobis-moments", "complexity-energy"
    double threshold = 0.0;    // a score above it is out of distribution (when calibrated)
    bool calibrated = false;   // false: the file carries no threshold for this score
  };
  std::vector<OodScore> ood_scores;
  std::string ood_recommended = "energy";  // the score the model file recommends (chosen by cff-train)
  double ood_keep_rate = 0.95;
  // Index of a score in ood_scores, or -1.
  int ood_score_index(const std::string &name) const {
    for (size_t i = 0; i < ood_scores.size(); ++i) {
      if (ood_scores[i].name == name) return static_cast<int>(i);
    }
    return -1;
  }
  // The class a user names: its index in decimal ("3") or its label, case-insensitively ("trouser").
  // -1 if it names no class of this model.
  int find_class(const std::string &name) const;
};

struct ClassProbability {
  int class_id = 0;
  double probability = 0.0;
};

// The result for one image.
struct Classification {
  int class_id = -1;                   // argmax of the logits; -1 when non_finite
  std::string label;                   // labels[class_id], empty when non_finite
  double confidence = 0.0;             // p(class_id | x)
  double energy = 0.0;                 // U(x) = -logsumexp f(x): higher = less like the training data
  std::vector<ClassProbability> top_k; // most probable classes first
  std::vector<double> scores;          // one per ModelInfo::ood_scores entry; +inf when non_finite
  // The input held NaN or Inf (or the network produced them): the image was not classified,
  // energy is +inf and the image must be treated as out of distribution.
  bool non_finite = false;
};

// The OOD decision every caller should make: non-finite results, or score `score_index` (into
// ModelInfo::ood_scores) above the threshold.
inline bool is_out_of_distribution(const Classification &result, int score_index, double threshold) {
  return result.non_finite || result.scores.at(static_cast<size_t>(score_index)) > threshold;
}

class Engine {
 public:
  // The shared engine for `model_path` on `device_spec` ("auto", "cpu", "cuda", "cuda:N").
  // threads >= 0 is passed to cff::set_threads (cff/threads.h: process-wide; 0 = automatic), < 0 leaves
  // LibTorch's thread count alone. A file changed on disk (size or modification time) is loaded afresh.
  // Throws std::runtime_error naming the file (or device) and the reason.
  static std::shared_ptr<Engine> acquire(const std::string &model_path, const std::string &device_spec = "auto",
                                         int threads = -1);

  ~Engine();
  Engine(const Engine &) = delete;
  Engine &operator=(const Engine &) = delete;

  const ModelInfo &info() const;
  // The device with, on the CPU, LibTorch's thread count now ("cpu (2 threads)"): a per-process setting
  // that a later element may change, so it is read at each call.
  std::string describe_device() const;

  // Classifies n images packed as n x C x H x W floats (row-major, the caller owns the buffer).
  // top_k is clamped to [1, K]. score_index (into ModelInfo::ood_scores) computes that OOD score only
  // (the others are NaN; the energy field is always set), -1 computes every score. Returns n results in order. Throws std::invalid_argument on a null
  // buffer with n > 0 or n < 0, std::runtime_error if the forward pass fails.
  std::vector<Classification> classify(const float *chw_batch, int n, int top_k = 1, int score_index = -1);

  // Generation (docs/method.md "Sampling"). Images come back in the model's input space, like classify's
  // inputs: pixels are p = 255 * (x * std + mean).
  using Sampler = SamplerKind;
  // The sampler settings (sampler_defaults.h, validated by generate), and what only the engine takes.
  struct GenerateOptions : SamplerSettings {
    // Optional decoupled guide (centripetal only): its log p(y|x) gradient steers. It must take the
    // same C x H x W and have the same number of classes. May be this engine itself.
    std::shared_ptr<Engine> guide;
    bool trajectory = false;     // also return the x0 estimate (centripetal) or state of every step
  };
  struct Generated {
    int n = 0, steps = 0;
    std::vector<float> images;      // n x C x H x W
    std::vector<float> trajectory;  // steps x n x C x H x W when asked, else empty
  };
  // Generates one image per entry of `labels` (class index, or -1 for unconditional; a batch is
  // either all conditional or all unconditional). For the centripetal sampler image i starts from
  // noise drawn with seeds[i] and the step noise comes from seeds[0], so with one image per call the
  // image depends only on its seed; the baselines draw everything from seeds[0].
  // Throws std::invalid_argument on bad arguments (sizes, label range, mixed batch, guide shape),
  // std::runtime_error if the model fails.
  Generated generate(const std::vector<int> &labels, const std::vector<uint64_t> &seeds,
                     const GenerateOptions &options);

  // Denoising (docs/method.md "Denoising"). `chw` is one image of C x height x width in the
  // model's input space, any size: it is cut into model-sized tiles that overlap by half a tile and
  // are blended with raised-cosine weights; an image smaller than the model is reflect-padded and
  // cropped back. The result replaces `chw` in place.
  // (Not cff::DenoiseOptions of denoise.h, the tensor-level sampler options this call fills.)
  struct FrameDenoiseOptions {
    double sigma = -1.0;  // noise level in model input units; < 0: estimate from the image; 0: unchanged
    int steps = 1;        // 1 = one-shot x0 estimate
  };
  // Returns the sigma used (model input units). Throws std::invalid_argument on a null buffer, a
  // non-positive size or steps < 1; std::runtime_error if the model fails.
  double denoise(float *chw, int height, int width, const FrameDenoiseOptions &options);
  // The noise estimate denoise uses (cff::estimate_noise_sigma), in model input units.
  double estimate_noise(const float *chw, int height, int width);

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cff
#pragma GCC visibility pop
