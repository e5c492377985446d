// Fuzzes the image-folder loader's decode (load_image_folder on a folder with one class holding one image
// file: the input after 3 bytes that give the channels, 1 or 3, and the target height and width, 1..64).
// Contract: an unreadable image throws DatasetError and nothing else; a readable one comes back as
// [1, C, H, W] uint8.
#include <cstdint>

#include <torch/torch.h>

#include "data/datasets.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  torch::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  const int64_t channels = (data[0] & 1) ? 3 : 1, height = 1 + data[1] % 64, width = 1 + data[2] % 64;
  const auto folder = cff_fuzz::scratch() / "images";
  std::filesystem::create_directories(folder / "class");
  cff_fuzz::write_file(folder / "class" / "image", data + 3, size - 3);
  try {
    const auto d = cff::data::load_image_folder(folder.string(), channels, height, width);
    const auto &x = d.images;
    if (x.dim() != 4 || x.size(0) != 1 || x.size(1) != channels || x.size(2) != height || x.size(3) != width) {
      cff_fuzz::broken("decoded image has the wrong shape");
    }
    if (d.labels.numel() != 1 || d.labels[0].item<int64_t>() != 0) cff_fuzz::broken("wrong label");
  } catch (const cff::data::DatasetError &) {
  } catch (const std::exception &e) {
    cff_fuzz::unexpected("load_image_folder", e);
  }
  return 0;
}
