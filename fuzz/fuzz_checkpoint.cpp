// Fuzzes the checkpoint reader behind cff-train --resume (cff::train::read_checkpoint: CRC trailer, the
// LibTorch archive, the stored options, epoch and counters), then restores the archives into the tiny network
// of the seeds, an EMA copy and an AdamW optimiser as a resume does. Contract: read_checkpoint throws
// std::runtime_error (naming the file) and nothing else; restoring is LibTorch's and may throw c10::Error
// (load_checkpoint turns that into std::runtime_error).
//
// The CRC-32 trailer is recomputed so that mutations reach the archive (the checksum check itself is
// covered by tests/training: TrainerResume).
#include <cstdint>
#include <cstring>
#include <string>

#include <torch/torch.h>
#include <zlib.h>

#include "fuzz_common.h"
#include "tiny_network.h"
#include "training/trainer.h"

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  torch::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string bytes(reinterpret_cast<const char *>(data), size);
  if (bytes.size() >= 4) {
    const auto crc =
        static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef *>(bytes.data()), bytes.size() - 4));
    std::memcpy(&bytes[bytes.size() - 4], &crc, 4);
  }
  cff::train::Checkpoint c;
  try {
    c = cff::train::read_checkpoint(bytes, "fuzz-input");
  } catch (const std::runtime_error &) {
    return 0;
  } catch (const std::exception &e) {
    cff_fuzz::unexpected("read_checkpoint", e);
  }
  try {
    torch::NoGradGuard no_grad;
    cff::Classifier net(cff_fuzz::tiny_network()), ema(cff_fuzz::tiny_network());
    torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(1e-3));
    net->load(c.model);
    ema->load(c.ema);
    optimizer.load(c.optimizer);
  } catch (const std::exception &) {
  }
  return 0;
}
