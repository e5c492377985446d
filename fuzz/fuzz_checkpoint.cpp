// Fuzzes the checkpoint reader behind cff-train --resume (cff::train::read_checkpoint: the tensor-file
// header and checksum, the JSON state, every tensor entry), then restores what it read into the tiny network
// of the seeds, an EMA copy and an AdamW optimiser as a resume does (cff::train::restore_checkpoint).
// Contract: both throw std::runtime_error (naming the file) and nothing else, and never crash.
//
// The header's checksum is recomputed so that mutations reach the content (the checksum check itself is
// covered by tests/training: Trainer.CorruptCheckpointIsRefused_n).
#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "cff/tensor_file.h"
#include "fuzz_common.h"
#include "tiny_network.h"
#include "training/trainer.h"

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  torch::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string bytes(reinterpret_cast<const char *>(data), size);
  cff::reseal_tensor_file(bytes);
  try {
    const auto c = cff::train::read_checkpoint(bytes, "fuzz-input");
    cff::Classifier net(cff_fuzz::tiny_network()), ema(cff_fuzz::tiny_network());
    torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(1e-3));
    cff::train::restore_checkpoint(c, net, ema, optimizer, "fuzz-input");
  } catch (const std::runtime_error &) {
    return 0;
  } catch (const std::exception &e) {
    cff_fuzz::unexpected("read_checkpoint/restore_checkpoint", e);
  }
  return 0;
}
