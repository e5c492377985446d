#include "cff/tensor_file.h"

#include <cstring>
#include <map>
#include <sstream>

#include <torch/torch.h>
#include <zlib.h>

namespace cff {
namespace {

template <typename T>
void put(std::string &out, T value) {
  // The format is little-endian; every platform LibTorch supports for us is too.
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

// Bounds-checked reader over bytes; every read names what it was reading.
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
    if (n > end_ - pos_) throw TensorFileError(source_, std::string("truncated while reading ") + what);
  }
  const std::string &bytes_;
  size_t pos_, end_;
  const std::string &source_;
};

std::string shape_string(c10::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

// Sizes no cff file comes near (the networks are a few MB); larger announcements are refused before any
// allocation.
constexpr uint64_t kMaxJsonSize = uint64_t{64} << 20;     // 64 MiB of JSON
constexpr uint64_t kMaxTensorSize = uint64_t{16} << 30;   // 16 GiB of weights

struct Header {
  uint64_t json_size = 0, tensor_size = 0;
  uint32_t checksum = 0;
};

Header read_header(const TensorFileKind &kind, const std::string &head, uint64_t file_size, const std::string &source) {
  if (file_size == 0) throw TensorFileError(source, "file is empty");
  if (head.size() < sizeof(kind.magic) || std::memcmp(head.data(), kind.magic, sizeof(kind.magic)) != 0) {
    throw TensorFileError(source, std::string("not a ") + kind.name + " (wrong magic)");
  }
  Reader header(head, sizeof(kind.magic), head.size(), source);
  const auto version = header.get<uint32_t>("header (version)");
  if (version != kind.version) {
    throw TensorFileError(source, "unsupported format version " + std::to_string(version) + " (this build reads " +
                                      std::to_string(kind.version) + ")");
  }
  header.get<uint32_t>("header (flags)");
  Header h;
  h.json_size = header.get<uint64_t>("header (metadata size)");
  h.tensor_size = header.get<uint64_t>("header (tensor size)");
  h.checksum = header.get<uint32_t>("header (checksum)");
  if (h.json_size > kMaxJsonSize || h.tensor_size > kMaxTensorSize) {
    throw TensorFileError(source, "header announces " + std::to_string(h.json_size) + " bytes of metadata and " +
                                      std::to_string(h.tensor_size) + " bytes of tensors, more than a " + kind.name +
                                      " can have (" + std::to_string(kMaxJsonSize >> 20) + " MiB, " +
                                      std::to_string(kMaxTensorSize >> 30) + " GiB)");
  }
  const uint64_t body = file_size - kTensorFileHeaderSize;
  if (h.json_size > body || h.tensor_size > body - h.json_size) {
    throw TensorFileError(source, "truncated (header announces " + std::to_string(h.json_size + h.tensor_size) +
                                      " bytes of content, file has " + std::to_string(body) + ")");
  }
  if (h.json_size + h.tensor_size != body) {
    throw TensorFileError(source, std::to_string(body - h.json_size - h.tensor_size) + " unexpected bytes after the content");
  }
  return h;
}

uint32_t body_checksum(const std::string &bytes) {
  return static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef *>(bytes.data()) + kTensorFileHeaderSize,
                                       bytes.size() - kTensorFileHeaderSize));
}

}  // namespace

std::string encode_tensors(const std::vector<std::pair<std::string, torch::Tensor>> &tensors) {
  std::string block;
  for (const auto &item : tensors) {
    auto t = item.second.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    put<uint32_t>(block, static_cast<uint32_t>(item.first.size()));
    block += item.first;
    put<uint32_t>(block, static_cast<uint32_t>(t.dim()));
    for (auto d : t.sizes()) put<int64_t>(block, d);
    block.append(reinterpret_cast<const char *>(t.data_ptr<float>()), t.numel() * sizeof(float));
  }
  return block;
}

std::vector<StoredTensor> decode_tensors(const std::string &block, const std::string &source) {
  std::vector<StoredTensor> entries;
  Reader r(block, 0, block.size(), source);
  while (!r.done()) {
    StoredTensor entry;
    const auto name_size = r.get<uint32_t>("tensor name length");
    if (name_size == 0 || name_size > 4096) throw TensorFileError(source, "bad tensor name length");
    entry.name = r.get_bytes(name_size, "tensor name");
    const auto rank = r.get<uint32_t>("tensor rank");
    if (rank > 8) throw TensorFileError(source, "tensor '" + entry.name + "' has rank " + std::to_string(rank));
    std::vector<int64_t> dims(rank);
    uint64_t count = 1;
    for (auto &d : dims) {
      d = r.get<int64_t>("tensor shape");
      if (d < 0 || d > (int64_t{1} << 32)) throw TensorFileError(source, "tensor '" + entry.name + "' has a bad dimension");
      count *= static_cast<uint64_t>(d);
      if (count > (uint64_t{1} << 34)) throw TensorFileError(source, "tensor '" + entry.name + "' is too large");
    }
    const char *data = r.take(count * sizeof(float), "tensor data");
    entry.values = torch::from_blob(const_cast<char *>(data), dims, torch::kFloat32).clone();
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::string pack_tensor_file(const TensorFileKind &kind, const std::string &json, const std::string &tensor_block) {
  std::string out(kind.magic, sizeof(kind.magic));
  put<uint32_t>(out, kind.version);
  put<uint32_t>(out, 0);
  put<uint64_t>(out, json.size());
  put<uint64_t>(out, tensor_block.size());
  put<uint32_t>(out, 0);
  out += json;
  out += tensor_block;
  reseal_tensor_file(out);
  return out;
}

void check_tensor_file_header(const TensorFileKind &kind, const std::string &head, uint64_t file_size,
                              const std::string &source) {
  read_header(kind, head, file_size, source);
}

TensorFileContent unpack_tensor_file(const TensorFileKind &kind, const std::string &bytes, const std::string &source) {
  const Header h = read_header(kind, bytes, bytes.size(), source);
  if (body_checksum(bytes) != h.checksum) throw TensorFileError(source, "checksum mismatch (the file is corrupt)");
  TensorFileContent content;
  content.json = bytes.substr(kTensorFileHeaderSize, h.json_size);
  content.tensor_block = bytes.substr(kTensorFileHeaderSize + h.json_size);
  return content;
}

void reseal_tensor_file(std::string &bytes) {
  if (bytes.size() < kTensorFileHeaderSize) return;
  const uint32_t crc = body_checksum(bytes);
  std::memcpy(&bytes[kTensorFileChecksumOffset], &crc, sizeof(crc));
}

std::vector<std::pair<std::string, torch::Tensor>> network_tensors(Classifier &network, const std::string &prefix) {
  // Sorted by name, as the model file has always written them.
  std::map<std::string, torch::Tensor> state;
  for (const auto &item : network->named_parameters()) state[prefix + item.key()] = item.value();
  for (const auto &item : network->named_buffers()) state[prefix + item.key()] = item.value();
  return {state.begin(), state.end()};
}

void load_network_tensors(Classifier &network, const std::vector<StoredTensor> &stored, const std::string &source) {
  std::map<std::string, torch::Tensor> state;
  for (auto &item : network_tensors(network)) state.insert(std::move(item));
  std::map<std::string, bool> seen;
  torch::NoGradGuard no_grad;
  for (const auto &entry : stored) {
    const std::string &name = entry.name;
    auto it = state.find(name);
    if (it == state.end()) throw TensorFileError(source, "tensor '" + name + "' does not belong to the architecture in the metadata");
    if (it->second.sizes() != entry.values.sizes()) {
      throw TensorFileError(source, "tensor '" + name + "' has shape " + shape_string(entry.values.sizes()) +
                                        " but the architecture expects " + shape_string(it->second.sizes()));
    }
    if (seen[name]) throw TensorFileError(source, "tensor '" + name + "' appears twice");
    seen[name] = true;
    if (!torch::isfinite(entry.values).all().item<bool>()) {
      throw TensorFileError(source, "tensor '" + name + "' holds NaN or Inf values");
    }
    it->second.copy_(entry.values);
  }
  for (const auto &item : state) {
    if (!seen[item.first]) throw TensorFileError(source, "tensor '" + item.first + "' is missing");
  }
}

}  // namespace cff
