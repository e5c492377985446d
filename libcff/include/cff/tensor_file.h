// The container of cff's files: the model file (model_file.h) and cff-train's checkpoints share it.
//
// Layout (little-endian):
//   8 bytes  magic (the kind of file)
//   u32      format version
//   u32      flags (0)
//   u64      JSON size M
//   u64      tensor block size B
//   u32      CRC-32 of the M + B bytes that follow the header
//   M bytes  UTF-8 JSON
//   B bytes  tensors: repeated { u32 name length, name, u32 rank, i64 dims[rank], f32 data }
// Reading checks the header against the file's size, the caps below and the checksum before anything is
// parsed, and every entry's framing before its data is touched; nothing in a file can make the reader
// allocate more than the file holds. Errors are TensorFileError naming the source and the reason.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "cff/network.h"

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

class TensorFileError : public std::runtime_error {
 public:
  TensorFileError(const std::string &source, const std::string &reason)
      : std::runtime_error(source + ": " + reason), reason_(reason) {}
  // The reason without the source ("checksum mismatch (the file is corrupt)").
  const std::string &reason() const { return reason_; }

 private:
  std::string reason_;
};

// Which kind of file: its magic, the version this build writes and reads, and its name in messages.
struct TensorFileKind {
  char magic[8];
  uint32_t version;
  const char *name;  // "cff model file"
};

constexpr size_t kTensorFileHeaderSize = 8 + 4 + 4 + 8 + 8 + 4;
// Where the header's CRC-32 sits.
constexpr size_t kTensorFileChecksumOffset = kTensorFileHeaderSize - 4;

// One entry of a tensor block: its name and values (f32 on the CPU, a copy of the block's bytes).
struct StoredTensor {
  std::string name;
  torch::Tensor values;
};

// Named float tensors (any device and floating type; written as f32) as a tensor block.
std::string encode_tensors(const std::vector<std::pair<std::string, torch::Tensor>> &tensors);
// The entries of a tensor block, each one's framing checked (name length, rank, dimensions, data size).
std::vector<StoredTensor> decode_tensors(const std::string &block, const std::string &source);

// The header, JSON and tensor block as one file's bytes.
std::string pack_tensor_file(const TensorFileKind &kind, const std::string &json, const std::string &tensor_block);

struct TensorFileContent {
  std::string json;
  std::string tensor_block;
};
// Checks the header at the start of `head` (the first bytes of a file of `file_size` bytes): magic, version,
// and the sizes it announces against the file's size and the caps.
void check_tensor_file_header(const TensorFileKind &kind, const std::string &head, uint64_t file_size,
                              const std::string &source);
// The JSON and tensor block of a whole file's bytes, after the header and checksum checks.
TensorFileContent unpack_tensor_file(const TensorFileKind &kind, const std::string &bytes, const std::string &source);
// Recomputes the header's checksum of a file's bytes (for tests and fuzzers that forge content behind a
// valid checksum); bytes shorter than the header are left as they are.
void reseal_tensor_file(std::string &bytes);

// A network's parameters and buffers by name, each name after `prefix`.
std::vector<std::pair<std::string, torch::Tensor>> network_tensors(Classifier &network, const std::string &prefix = "");
// Copies `stored` into `network`: every parameter and buffer exactly once, by name, with its shape and finite
// values; an entry that is none of them is refused. Throws TensorFileError naming `source`.
void load_network_tensors(Classifier &network, const std::vector<StoredTensor> &stored, const std::string &source);

}  // namespace cff
#pragma GCC visibility pop
