// The cff model file: one file holding a network's weights and its JSON metadata.
//
// The container is cff/tensor_file.h's with the magic "CFFMODEL": a header with the sizes and a CRC-32, the
// metadata as JSON, then the tensor block: the network's parameters and buffers, then the fitted OOD class
// models ("ood/<score>/means", ...).
// Saving writes a temporary file next to the target and renames it, so a crash never leaves a
// partial file in place of a good one. Loading checks every field and fails with ModelFileError
// naming the file and the reason.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "cff/energy.h"
#include "cff/network.h"
#include "cff/ood.h"
#include "cff/schedule.h"

namespace torch::jit {
struct Module;
}

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

constexpr uint32_t kModelFormatVersion = 1;

class ModelFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How pixel values become network inputs: x[c] = (p / 255 - mean[c]) / std[c].
// The default maps [0, 255] to [-1, 1].
struct Normalization {
  std::vector<double> mean = {0.5};
  std::vector<double> std = {0.5};
};

struct ModelMetadata {
  NetworkConfig network;
  std::vector<std::string> labels;  // one name per class, size K
  Normalization normalization;
  CosineSchedule schedule;
  // The OOD scores and their calibrated thresholds (ood.h); the fitted class models travel in the
  // tensor block under "ood/..." names. A file without them carries the energy only.
  OodDetector ood;
  nlohmann::json provenance = nlohmann::json::object();  // command line, commit, dataset checksum...
  nlohmann::json metrics = nlohmann::json::object();     // figures measured at export

  nlohmann::json to_json() const;
  // Throws ModelFileError (with `source` in the message) on missing or inconsistent fields.
  static ModelMetadata from_json(const nlohmann::json &j, const std::string &source = "metadata");
};

// A loaded model, ready to evaluate on its device. Either a native Classifier or an imported
// TorchScript module stands behind `logits`.
struct Model {
  ModelMetadata metadata;
  Classifier network{nullptr};                 // set for native models
  std::shared_ptr<torch::jit::Module> script;  // set for imported TorchScript models
  c10::Device device{c10::kCPU};

  // f(x): [N, C, H, W] -> [N, K] on the model's device. Thread-compatible (not for concurrent use).
  LogitsFunction logits_function() const;
  // What the OOD scores need for images x ([N, C, H, W], any device; no autograd), on the CPU: the
  // logits, and what metadata.ood's scores read (the features of a native network, the complexity), or
  // with `everything` all a native network gives (for fitting; a TorchScript import gives logits only).
  OodInputs ood_inputs(const torch::Tensor &x, bool everything = false) const;
  // The same for the named scores only (the logits always).
  OodInputs ood_inputs_for(const torch::Tensor &x, const std::vector<std::string> &scores) const;
  int64_t channels() const { return metadata.network.channels; }
  int64_t height() const { return metadata.network.height; }
  int64_t width() const { return metadata.network.width; }
  int64_t num_classes() const { return metadata.network.num_classes; }
};

// Writes `network`'s parameters and buffers with `metadata` to `path` atomically.
// Throws ModelFileError if the file cannot be written.
void save_model(const std::string &path, Classifier network, const ModelMetadata &metadata);

// Serialises to bytes (same format as the file).
std::string serialize_model(Classifier network, const ModelMetadata &metadata);

// Loads and verifies a model file, builds the network on `device` with parameters frozen
// (requires_grad off) and in eval mode. Throws ModelFileError naming the file and the reason:
// missing, empty, truncated, wrong magic, unsupported version, checksum mismatch, bad metadata,
// tensor missing or of the wrong shape.
Model load_model(const std::string &path, const c10::Device &device = c10::Device(c10::kCPU));

// Same checks on an in-memory image of a file; `source` names it in error messages.
Model load_model_from_bytes(const std::string &bytes, const std::string &source,
                            const c10::Device &device = c10::Device(c10::kCPU));

// Reads only the metadata (checks header and checksum); no network is built.
ModelMetadata read_model_metadata(const std::string &path);

// Imports a TorchScript classifier (torch.jit.save / torch::jit::Module::save) as f(x).
// The module's forward must map [N, C, H, W] to [N, K]. `metadata` gives C, H, W, the labels and
// the normalisation (its network.widths are ignored). The import runs one forward pass on zeros
// and throws ModelFileError if the output is not [1, K].
Model import_torchscript(const std::string &path, const ModelMetadata &metadata,
                         const c10::Device &device = c10::Device(c10::kCPU));

}  // namespace cff
#pragma GCC visibility pop
