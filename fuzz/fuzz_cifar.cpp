// Fuzzes the CIFAR-10 reader (load_cifar10 on a folder whose test_batch.bin is the input, raw or gzip).
// Contract: a bad file throws DatasetError and nothing else; what is read is [N, 3, 32, 32] uint8 with N
// labels in 0..9.
#include <cstdint>

#include <torch/torch.h>

#include "data/datasets.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  torch::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const auto folder = cff_fuzz::scratch() / "cifar";
  std::filesystem::create_directories(folder);
  cff_fuzz::write_file(folder / "test_batch.bin", data, size);
  try {
    const auto d = cff::data::load_cifar10(folder.string(), "test");
    const auto &x = d.images;
    if (x.dim() != 4 || x.size(1) != 3 || x.size(2) != 32 || x.size(3) != 32) cff_fuzz::broken("bad image shape");
    if (d.labels.size(0) != x.size(0)) cff_fuzz::broken("images and labels differ in number");
    if (d.labels.min().item<int64_t>() < 0 || d.labels.max().item<int64_t>() > 9) cff_fuzz::broken("label outside 0..9");
    (void)x.sum().item<int64_t>();
  } catch (const cff::data::DatasetError &) {
  } catch (const std::exception &e) {
    cff_fuzz::unexpected("load_cifar10", e);
  }
  return 0;
}
