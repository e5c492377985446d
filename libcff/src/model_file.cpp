#include "cff/model_file.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <torch/nn/utils.h>
#include <torch/script.h>

#include "cff/tensor_file.h"
#include "support/files.h"

namespace cff {
namespace {

constexpr TensorFileKind kModelFile{{'C', 'F', 'F', 'M', 'O', 'D', 'E', 'L'}, kModelFormatVersion, "cff model file"};

// The container's errors as the model file's.
template <typename F>
auto as_model_file_error(F f) -> decltype(f()) {
  try {
    return f();
  } catch (const TensorFileError &e) {
    throw ModelFileError(e.what());
  }
}

// A model file's bytes. Only regular files are read (a directory, a pipe or a device is refused by name),
// and the header is checked against the file's size before the content is read.
std::string read_model_file(const std::string &path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (error) throw ModelFileError(path + ": cannot open (" + error.message() + ")");
  if (std::filesystem::is_directory(status)) throw ModelFileError(path + ": is a directory, not a model file");
  if (!std::filesystem::is_regular_file(status)) {
    throw ModelFileError(path + ": not a regular file (a pipe or device cannot hold a model)");
  }
  const uint64_t size = std::filesystem::file_size(path, error);
  if (error) throw ModelFileError(path + ": cannot read its size (" + error.message() + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelFileError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::string bytes(static_cast<size_t>(std::min<uint64_t>(size, kTensorFileHeaderSize)), '\0');
  in.read(&bytes[0], static_cast<std::streamsize>(bytes.size()));
  as_model_file_error([&] { check_tensor_file_header(kModelFile, bytes, size, path); });
  bytes.resize(static_cast<size_t>(size));
  in.read(&bytes[kTensorFileHeaderSize], static_cast<std::streamsize>(size - kTensorFileHeaderSize));
  if (in.bad() || static_cast<uint64_t>(in.gcount()) != size - kTensorFileHeaderSize || in.peek() != EOF) {
    throw ModelFileError(path + ": read error (the file changed while it was read)");
  }
  return bytes;
}

std::string shape_string(c10::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

struct ParsedFile {
  nlohmann::json metadata;
  std::vector<StoredTensor> network, ood;  // the block's entries ("ood/..." names are the OOD detector's)
};

// The metadata and tensor entries of a model file's bytes (header, checksum and every entry's framing checked).
ParsedFile parse_file(const std::string &bytes, const std::string &source) {
  ParsedFile parsed;
  auto content = as_model_file_error([&] { return unpack_tensor_file(kModelFile, bytes, source); });
  try {
    parsed.metadata = nlohmann::json::parse(content.json);
  } catch (const nlohmann::json::exception &e) {
    throw ModelFileError(source + ": metadata is not valid JSON (" + e.what() + ")");
  }
  for (auto &entry : as_model_file_error([&] { return decode_tensors(content.tensor_block, source); })) {
    (entry.name.rfind("ood/", 0) == 0 ? parsed.ood : parsed.network).push_back(std::move(entry));
  }
  return parsed;
}

// Checks the network the metadata declares against the tensor table before anything is built: the table
// must hold exactly as many network weights as that architecture has (names and shapes are checked one by
// one when they are read). So a metadata edit cannot make loading allocate more than the file holds.
void check_declared_network(const NetworkConfig &network, const ParsedFile &parsed, const std::string &source) {
  uint64_t stored = 0;
  for (const auto &entry : parsed.network) stored += static_cast<uint64_t>(entry.values.numel());
  const auto declared = static_cast<uint64_t>(network.parameter_count());
  if (stored != declared) {
    throw ModelFileError(source + ": the metadata declares a network of " + std::to_string(declared) +
                         " weights but the file holds " + std::to_string(stored));
  }
}

// Reads the network's tensors into `network` and returns the OOD detector's ("ood/..." names).
std::map<std::string, torch::Tensor> load_tensors(Classifier &network, const ParsedFile &parsed, const std::string &source) {
  as_model_file_error([&] { load_network_tensors(network, parsed.network, source); });
  std::map<std::string, torch::Tensor> ood;
  for (const auto &entry : parsed.ood) {
    if (ood.count(entry.name)) throw ModelFileError(source + ": tensor '" + entry.name + "' appears twice");
    ood[entry.name] = entry.values;
  }
  return ood;
}

}  // namespace

nlohmann::json ModelMetadata::to_json() const {
  nlohmann::json j;
  j["format"] = "cff-model";
  j["format_version"] = kModelFormatVersion;
  j["network"] = network.to_json();
  j["labels"] = labels;
  j["normalization"] = {{"mean", normalization.mean}, {"std", normalization.std}};
  j["schedule"] = schedule.to_json();
  j["ood"] = ood.to_json();
  j["provenance"] = provenance;
  j["metrics"] = metrics;
  return j;
}

ModelMetadata ModelMetadata::from_json(const nlohmann::json &j, const std::string &source) {
  ModelMetadata m;
  try {
    if (!j.is_object()) throw std::invalid_argument("metadata is not a JSON object");
    for (const char *key : {"network", "labels", "normalization", "schedule"}) {
      if (!j.contains(key)) throw std::invalid_argument(std::string("metadata field '") + key + "' is missing");
    }
    m.network = NetworkConfig::from_json(j.at("network"));
    m.labels = j.at("labels").get<std::vector<std::string>>();
    m.normalization.mean = j.at("normalization").at("mean").get<std::vector<double>>();
    m.normalization.std = j.at("normalization").at("std").get<std::vector<double>>();
    m.schedule = CosineSchedule::from_json(j.at("schedule"));
    if (j.contains("ood")) m.ood = OodDetector::from_json(j.at("ood"));
    m.provenance = j.value("provenance", nlohmann::json::object());
    m.metrics = j.value("metrics", nlohmann::json::object());
  } catch (const nlohmann::json::exception &e) {
    throw ModelFileError(source + ": bad metadata (" + e.what() + ")");
  } catch (const std::invalid_argument &e) {
    throw ModelFileError(source + ": bad metadata (" + e.what() + ")");
  }
  if (static_cast<int64_t>(m.labels.size()) != m.network.num_classes) {
    throw ModelFileError(source + ": metadata has " + std::to_string(m.labels.size()) + " labels for " +
                         std::to_string(m.network.num_classes) + " classes");
  }
  const auto channels = static_cast<size_t>(m.network.channels);
  if (m.normalization.mean.size() != channels || m.normalization.std.size() != channels) {
    throw ModelFileError(source + ": normalization needs one mean and one std per channel");
  }
  for (double s : m.normalization.std) {
    if (!(s > 0.0)) throw ModelFileError(source + ": normalization std must be positive");
  }
  if (!m.schedule.centre().empty() && m.schedule.centre().size() != channels) {
    throw ModelFileError(source + ": the schedule's centre has " + std::to_string(m.schedule.centre().size()) +
                         " values for " + std::to_string(channels) + " channels");
  }
  return m;
}

std::string serialize_model(Classifier network, const ModelMetadata &metadata) {
  auto tensors = network_tensors(network);
  const auto ood = metadata.ood.tensors();
  tensors.insert(tensors.end(), ood.begin(), ood.end());
  return pack_tensor_file(kModelFile, metadata.to_json().dump(2), encode_tensors(tensors));
}

void save_model(const std::string &path, Classifier network, const ModelMetadata &metadata) {
  try {
    files::write_atomically(path, serialize_model(network, metadata));
  } catch (const std::runtime_error &e) {
    throw ModelFileError(e.what());
  }
}

Model load_model_from_bytes(const std::string &bytes, const std::string &source, const c10::Device &device) {
  auto parsed = parse_file(bytes, source);
  Model model;
  model.metadata = ModelMetadata::from_json(parsed.metadata, source);
  check_declared_network(model.metadata.network, parsed, source);
  model.network = Classifier(model.metadata.network);
  const auto ood = load_tensors(model.network, parsed, source);
  try {
    model.metadata.ood.attach_tensors(ood);
    const int64_t features = model.metadata.network.widths.back();
    model.metadata.ood.check_shapes(model.metadata.network.num_classes, features, 2 * features);
  } catch (const std::invalid_argument &e) {
    throw ModelFileError(source + ": bad OOD scores (" + e.what() + ")");
  }
  model.network->to(device);
  model.network->eval();
  freeze(*model.network);
  model.device = device;
  return model;
}

Model load_model(const std::string &path, const c10::Device &device) {
  return load_model_from_bytes(read_model_file(path), path, device);
}

ModelMetadata read_model_metadata(const std::string &path) {
  auto parsed = parse_file(read_model_file(path), path);
  return ModelMetadata::from_json(parsed.metadata, path);
}

LogitsFunction Model::logits_function() const {
  if (network) {
    auto net = network;
    return [net](const torch::Tensor &x) mutable { return net->forward(x); };
  }
  if (script) {
    auto module = script;
    return [module](const torch::Tensor &x) { return module->forward({x}).toTensor(); };
  }
  throw std::logic_error("model has no network");
}

OodInputs Model::ood_inputs(const torch::Tensor &x, bool everything) const {
  return ood_inputs_for(x, everything ? ood_score_names() : metadata.ood.available());
}

OodInputs Model::ood_inputs_for(const torch::Tensor &x, const std::vector<std::string> &scores) const {
  const bool features = std::any_of(scores.begin(), scores.end(), ood_score_needs_features);
  const bool complexity = std::any_of(scores.begin(), scores.end(), ood_score_needs_complexity);
  torch::NoGradGuard no_grad;
  OodInputs in;
  const auto input = x.to(device);
  if (network && features) {
    auto net = network;
    auto out = net->forward_with_features(input);
    in.logits = out.logits.to(torch::kCPU);
    in.penultimate = out.penultimate.to(torch::kCPU);
    in.moments = out.moments.to(torch::kCPU);
  } else {
    in.logits = logits_function()(input).to(torch::kCPU);
  }
  if (complexity) in.complexity = image_complexity(x, metadata.normalization.mean, metadata.normalization.std);
  return in;
}

Model import_torchscript(const std::string &path, const ModelMetadata &metadata, const c10::Device &device) {
  Model model;
  model.metadata = metadata;
  model.device = device;
  try {
    model.script = std::make_shared<torch::jit::Module>(torch::jit::load(path, device));
  } catch (const c10::Error &e) {
    throw ModelFileError(path + ": cannot load TorchScript module (" + e.what_without_backtrace() + ")");
  }
  model.script->eval();
  for (auto p : model.script->parameters()) p.set_requires_grad(false);
  const auto &net = metadata.network;
  torch::Tensor out;
  try {
    torch::NoGradGuard no_grad;
    out = model.script->forward({torch::zeros({1, net.channels, net.height, net.width}, torch::TensorOptions().device(device))})
              .toTensor();
  } catch (const c10::Error &e) {
    throw ModelFileError(path + ": forward on a [1, " + std::to_string(net.channels) + ", " + std::to_string(net.height) +
                         ", " + std::to_string(net.width) + "] input failed (" + e.what_without_backtrace() + ")");
  }
  if (out.dim() != 2 || out.size(0) != 1 || out.size(1) != net.num_classes) {
    throw ModelFileError(path + ": TorchScript module returns " + shape_string(out.sizes()) + ", expected [1, " +
                         std::to_string(net.num_classes) + "] logits");
  }
  return model;
}

}  // namespace cff
