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
#include <zlib.h>

#include "support/files.h"

namespace cff {
namespace {

constexpr char kMagic[8] = {'C', 'F', 'F', 'M', 'O', 'D', 'E', 'L'};
constexpr size_t kHeaderSize = 8 + 4 + 4 + 8 + 8 + 4;

template <typename T>
void put(std::string &out, T value) {
  // The format is little-endian; every platform LibTorch supports for us is too.
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

// Bounds-checked reader over the bytes of a model file; every read names what it was reading.
class Reader {
 public:
  Reader(const std::string &bytes, size_t begin, size_t end, const std::string &source)
      : bytes_(bytes), pos_(begin), end_(end), source_(source) {}

  template <typename T>
  T get(const char *what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string get_bytes(size_t n, const char *what) {
    need(n, what);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  const char *take(size_t n, const char *what) {
    need(n, what);
    const char *p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }
  bool done() const { return pos_ == end_; }

 private:
  void need(size_t n, const char *what) {
    if (n > end_ - pos_) throw ModelFileError(source_ + ": truncated while reading " + what);
  }
  const std::string &bytes_;
  size_t pos_, end_;
  const std::string &source_;
};

std::map<std::string, torch::Tensor> named_state(Classifier &network) {
  std::map<std::string, torch::Tensor> state;
  for (const auto &item : network->named_parameters()) state[item.key()] = item.value();
  for (const auto &item : network->named_buffers()) state[item.key()] = item.value();
  return state;
}

std::string shape_string(c10::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

// Sizes no cff model comes near (the networks are a few MB); larger announcements are refused before any
// allocation.
constexpr uint64_t kMaxMetadataSize = uint64_t{64} << 20;  // 64 MiB of JSON
constexpr uint64_t kMaxTensorSize = uint64_t{16} << 30;    // 16 GiB of weights

struct Header {
  uint64_t metadata_size = 0, tensor_size = 0;
  uint32_t checksum = 0;
};

// Checks the header at the start of `head` (the first bytes of a file of `file_size` bytes): magic,
// version, and the content sizes it announces against the file's size and the caps above.
Header check_header(const std::string &head, uint64_t file_size, const std::string &source) {
  if (file_size == 0) throw ModelFileError(source + ": file is empty");
  if (head.size() < sizeof(kMagic) || std::memcmp(head.data(), kMagic, sizeof(kMagic)) != 0) {
    throw ModelFileError(source + ": not a cff model file (wrong magic)");
  }
  Reader header(head, sizeof(kMagic), head.size(), source);
  const auto version = header.get<uint32_t>("header (version)");
  if (version != kModelFormatVersion) {
    throw ModelFileError(source + ": unsupported format version " + std::to_string(version) + " (this build reads " +
                         std::to_string(kModelFormatVersion) + ")");
  }
  header.get<uint32_t>("header (flags)");
  Header h;
  h.metadata_size = header.get<uint64_t>("header (metadata size)");
  h.tensor_size = header.get<uint64_t>("header (tensor size)");
  h.checksum = header.get<uint32_t>("header (checksum)");
  if (h.metadata_size > kMaxMetadataSize || h.tensor_size > kMaxTensorSize) {
    throw ModelFileError(source + ": header announces " + std::to_string(h.metadata_size) + " bytes of metadata and " +
                         std::to_string(h.tensor_size) + " bytes of tensors, more than a cff model can have (" +
                         std::to_string(kMaxMetadataSize >> 20) + " MiB, " + std::to_string(kMaxTensorSize >> 30) +
                         " GiB)");
  }
  const uint64_t body = file_size - kHeaderSize;
  if (h.metadata_size > body || h.tensor_size > body - h.metadata_size) {
    throw ModelFileError(source + ": truncated (header announces " + std::to_string(h.metadata_size + h.tensor_size) +
                         " bytes of content, file has " + std::to_string(body) + ")");
  }
  if (h.metadata_size + h.tensor_size != body) {
    throw ModelFileError(source + ": " + std::to_string(body - h.metadata_size - h.tensor_size) +
                         " unexpected bytes after the content");
  }
  return h;
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
  std::string bytes(static_cast<size_t>(std::min<uint64_t>(size, kHeaderSize)), '\0');
  in.read(&bytes[0], static_cast<std::streamsize>(bytes.size()));
  check_header(bytes, size, path);
  bytes.resize(static_cast<size_t>(size));
  in.read(&bytes[kHeaderSize], static_cast<std::streamsize>(size - kHeaderSize));
  if (in.bad() || static_cast<uint64_t>(in.gcount()) != size - kHeaderSize || in.peek() != EOF) {
    throw ModelFileError(path + ": read error (the file changed while it was read)");
  }
  return bytes;
}

struct ParsedFile {
  nlohmann::json metadata;
  std::string tensor_block;
};

ParsedFile parse_file(const std::string &bytes, const std::string &source) {
  const Header h = check_header(bytes, bytes.size(), source);
  const uint64_t metadata_size = h.metadata_size, body = bytes.size() - kHeaderSize;
  if (crc32_z(0, reinterpret_cast<const Bytef *>(bytes.data()) + kHeaderSize, body) != h.checksum) {
    throw ModelFileError(source + ": checksum mismatch (the file is corrupt)");
  }
  ParsedFile parsed;
  try {
    parsed.metadata = nlohmann::json::parse(bytes.begin() + kHeaderSize, bytes.begin() + kHeaderSize + metadata_size);
  } catch (const nlohmann::json::exception &e) {
    throw ModelFileError(source + ": metadata is not valid JSON (" + e.what() + ")");
  }
  parsed.tensor_block = bytes.substr(kHeaderSize + metadata_size);
  return parsed;
}

// One entry of the tensor block: its name, shape and float data (pointing into the block).
struct TensorEntry {
  std::string name;
  std::vector<int64_t> dims;
  const char *data = nullptr;
  bool ood() const { return name.rfind("ood/", 0) == 0; }
};

// Walks the tensor block, checking each entry's framing, and calls `visit` on each.
template <typename Visit>
void for_each_tensor(const std::string &block, const std::string &source, Visit visit) {
  Reader r(block, 0, block.size(), source);
  while (!r.done()) {
    TensorEntry entry;
    const auto name_size = r.get<uint32_t>("tensor name length");
    if (name_size == 0 || name_size > 4096) throw ModelFileError(source + ": bad tensor name length");
    entry.name = r.get_bytes(name_size, "tensor name");
    const auto rank = r.get<uint32_t>("tensor rank");
    if (rank > 8) throw ModelFileError(source + ": tensor '" + entry.name + "' has rank " + std::to_string(rank));
    entry.dims.resize(rank);
    uint64_t count = 1;
    for (auto &d : entry.dims) {
      d = r.get<int64_t>("tensor shape");
      if (d < 0 || d > (int64_t{1} << 32)) {
        throw ModelFileError(source + ": tensor '" + entry.name + "' has a bad dimension");
      }
      count *= static_cast<uint64_t>(d);
      if (count > (uint64_t{1} << 34)) throw ModelFileError(source + ": tensor '" + entry.name + "' is too large");
    }
    entry.data = r.take(count * sizeof(float), "tensor data");
    visit(entry);
  }
}

// Checks the network the metadata declares against the tensor table before anything is built: the table
// must hold exactly as many network weights as that architecture has (names and shapes are checked one by
// one when they are read). So a metadata edit cannot make loading allocate more than the file holds.
void check_declared_network(const NetworkConfig &network, const std::string &block, const std::string &source) {
  uint64_t stored = 0;
  for_each_tensor(block, source, [&](const TensorEntry &entry) {
    if (entry.ood()) return;
    uint64_t count = 1;
    for (auto d : entry.dims) count *= static_cast<uint64_t>(d);
    stored += count;
  });
  const auto declared = static_cast<uint64_t>(network.parameter_count());
  if (stored != declared) {
    throw ModelFileError(source + ": the metadata declares a network of " + std::to_string(declared) +
                         " weights but the file holds " + std::to_string(stored));
  }
}

// Reads the network's tensors into `network` and returns the OOD detector's ("ood/..." names).
std::map<std::string, torch::Tensor> load_tensors(Classifier &network, const std::string &block,
                                                  const std::string &source) {
  auto state = named_state(network);
  std::map<std::string, torch::Tensor> ood;
  std::map<std::string, bool> seen;
  torch::NoGradGuard no_grad;
  for_each_tensor(block, source, [&](const TensorEntry &entry) {
    const std::string &name = entry.name;
    const auto &dims = entry.dims;
    auto *data = const_cast<char *>(entry.data);
    if (entry.ood()) {
      if (ood.count(name)) throw ModelFileError(source + ": tensor '" + name + "' appears twice");
      ood[name] = torch::from_blob(data, dims, torch::kFloat32).clone();
      return;
    }
    auto it = state.find(name);
    if (it == state.end()) {
      throw ModelFileError(source + ": tensor '" + name + "' does not belong to the architecture in the metadata");
    }
    if (it->second.sizes() != c10::IntArrayRef(dims)) {
      throw ModelFileError(source + ": tensor '" + name + "' has shape " + shape_string(dims) +
                           " but the architecture expects " + shape_string(it->second.sizes()));
    }
    if (seen[name]) throw ModelFileError(source + ": tensor '" + name + "' appears twice");
    seen[name] = true;
    auto values = torch::from_blob(data, dims, torch::kFloat32).clone();
    if (!torch::isfinite(values).all().item<bool>()) {
      throw ModelFileError(source + ": tensor '" + name + "' holds NaN or Inf values");
    }
    it->second.copy_(values);
  });
  for (const auto &item : state) {
    if (!seen[item.first]) throw ModelFileError(source + ": tensor '" + item.first + "' is missing");
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
  return m;
}

std::string serialize_model(Classifier network, const ModelMetadata &metadata) {
  const std::string meta = metadata.to_json().dump(2);
  std::string tensors;
  auto state = named_state(network);
  const auto ood = metadata.ood.tensors();
  std::vector<std::pair<std::string, torch::Tensor>> items(state.begin(), state.end());
  items.insert(items.end(), ood.begin(), ood.end());
  for (const auto &item : items) {
    auto t = item.second.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    put<uint32_t>(tensors, static_cast<uint32_t>(item.first.size()));
    tensors += item.first;
    put<uint32_t>(tensors, static_cast<uint32_t>(t.dim()));
    for (auto d : t.sizes()) put<int64_t>(tensors, d);
    tensors.append(reinterpret_cast<const char *>(t.data_ptr<float>()), t.numel() * sizeof(float));
  }
  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(out, kModelFormatVersion);
  put<uint32_t>(out, 0);
  put<uint64_t>(out, meta.size());
  put<uint64_t>(out, tensors.size());
  uLong crc = crc32_z(0, reinterpret_cast<const Bytef *>(meta.data()), meta.size());
  crc = crc32_z(crc, reinterpret_cast<const Bytef *>(tensors.data()), tensors.size());
  put<uint32_t>(out, static_cast<uint32_t>(crc));
  out += meta;
  out += tensors;
  return out;
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
  check_declared_network(model.metadata.network, parsed.tensor_block, source);
  model.network = Classifier(model.metadata.network);
  const auto ood = load_tensors(model.network, parsed.tensor_block, source);
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
