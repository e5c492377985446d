// Fuzzes the model-file loader (cff::load_model_from_bytes): header, checksum, JSON metadata, tensor table,
// OOD scores. Contract: a bad file throws cff::ModelFileError and nothing else; a file that loads gives a
// network that runs on an input of the declared size.
//
// Mutated files rarely keep a valid CRC-32, which would stop nearly every input at the checksum. So the
// checksum is recomputed unless bit 0 of the header's flags field (which the loader ignores) is set.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <zlib.h>

#include "cff/model_file.h"
#include "fuzz_common.h"

namespace {

constexpr size_t kHeaderSize = 36;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  torch::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string bytes(reinterpret_cast<const char *>(data), size);
  if (bytes.size() >= kHeaderSize && !(static_cast<uint8_t>(bytes[12]) & 1)) {
    const auto crc = static_cast<uint32_t>(
        crc32_z(0, reinterpret_cast<const Bytef *>(bytes.data()) + kHeaderSize, bytes.size() - kHeaderSize));
    std::memcpy(&bytes[32], &crc, 4);
  }
  cff::Model model;
  try {
    model = cff::load_model_from_bytes(bytes, "fuzz-input");
  } catch (const cff::ModelFileError &) {
    return 0;
  } catch (const std::exception &e) {
    cff_fuzz::unexpected("load_model_from_bytes", e);
  }
  if (!model.network) cff_fuzz::broken("load_model_from_bytes returned no network");
  const auto &net = model.metadata.network;
  if (net.channels * net.height * net.width <= 4096) {
    try {
      torch::NoGradGuard no_grad;
      const auto logits = model.logits_function()(torch::zeros({1, net.channels, net.height, net.width}));
      if (logits.dim() != 2 || logits.size(0) != 1 || logits.size(1) != net.num_classes) {
        cff_fuzz::broken("a loaded model's logits have the wrong shape");
      }
    } catch (const std::exception &e) {
      cff_fuzz::unexpected("forward pass of a loaded model", e);
    }
  }
  return 0;
}
