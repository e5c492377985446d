// Fuzzes the IDX readers (Fashion-MNIST/MNIST files, raw or gzip): read_idx_images, read_idx_labels and
// load_idx_folder. Byte 0 picks the reader; the rest is the file (for the folder, bytes 1-2 give where the
// images file ends and the labels file begins). Contract: a bad file throws DatasetError and nothing else;
// what is read has the shape the header declares and no more elements than the file has bytes.
#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "data/datasets.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  torch::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const auto &dir = cff_fuzz::scratch();
  const int mode = data[0] % 3;
  ++data, --size;
  try {
    if (mode == 0) {
      cff_fuzz::write_file(dir / "images", data, size);
      const auto t = cff::data::read_idx_images((dir / "images").string());
      if (t.dim() != 4 || t.size(1) != 1 || t.scalar_type() != torch::kUInt8) cff_fuzz::broken("images: bad shape");
      (void)t.sum().item<int64_t>();  // every element readable
    } else if (mode == 1) {
      cff_fuzz::write_file(dir / "labels", data, size);
      const auto t = cff::data::read_idx_labels((dir / "labels").string());
      if (t.dim() != 1 || t.scalar_type() != torch::kLong) cff_fuzz::broken("labels: bad shape");
      (void)t.sum().item<int64_t>();
    } else {
      if (size < 2) return 0;
      const size_t split = std::min<size_t>(size - 2, (size_t{data[0]} << 8) | data[1]);
      const auto folder = dir / "folder";
      std::filesystem::create_directories(folder);
      cff_fuzz::write_file(folder / "train-images-idx3-ubyte", data + 2, split);
      cff_fuzz::write_file(folder / "train-labels-idx1-ubyte", data + 2 + split, size - 2 - split);
      const auto d = cff::data::load_idx_folder(folder.string(), "train");
      if (d.images.size(0) != d.labels.size(0)) cff_fuzz::broken("folder: images and labels differ in number");
      if (d.labels.numel() && (d.labels.min().item<int64_t>() < 0 || d.labels.max().item<int64_t>() > 9)) {
        cff_fuzz::broken("folder: a label outside 0..9");
      }
    }
  } catch (const cff::data::DatasetError &) {
  } catch (const std::exception &e) {
    cff_fuzz::unexpected("IDX reader", e);
  }
  return 0;
}
