// Datasets for cff-train and the tests: Fashion-MNIST/MNIST IDX files (raw or .gz), CIFAR-10 binary
// batches and image folders (one sub-folder per class; needs OpenCV).
//
// Every loader returns images as uint8 [N, C, H, W] and labels as int64 [N], and throws
// DatasetError naming the file, the record when there is one, and the reason.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <torch/types.h>

namespace cff::data {

class DatasetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Dataset {
  torch::Tensor images;             // uint8 [N, C, H, W]
  torch::Tensor labels;             // int64 [N]
  std::vector<std::string> classes; // class names, index = label
  std::string description;          // where it came from, e.g. "fashion-mnist train (60000 images)"
  std::string checksum;             // CRC-32 (hex) over the files read, for provenance

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  // Images as float [N, C, H, W] in [-1, 1] (the default normalisation).
  torch::Tensor normalized() const;
};

// Raw IDX file readers (gzip-compressed files are read too). Images: uint8 [N, 1, H, W].
torch::Tensor read_idx_images(const std::string &path);
torch::Tensor read_idx_labels(const std::string &path);

// The Fashion-MNIST class names, in label order.
const std::vector<std::string> &fashion_mnist_classes();

// Folder with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...: split is "train" or "test".
// Class names are Fashion-MNIST's when the folder name contains "fashion", else the digits 0..9.
Dataset load_idx_folder(const std::string &folder, const std::string &split);

// CIFAR-10 binary batches (data_batch_1..5.bin for train, test_batch.bin for test) in `folder`.
Dataset load_cifar10(const std::string &folder, const std::string &split);

// Image folder: folder/<class>/<image files>, classes sorted by name. Images are converted to
// `channels` and resized to height x width. Throws DatasetError if OpenCV support was not built.
Dataset load_image_folder(const std::string &folder, int64_t channels, int64_t height, int64_t width);

// n images of random characters (digits, letters, symbols) drawn with OpenCV's Hershey fonts, light
// strokes on a dark background, with font, size, position, slant and stroke-width jitter: uint8
// [n, channels, height, width]; RGB images get a random foreground and background tint. Throws
// DatasetError if OpenCV support was not built.
torch::Tensor render_glyphs(int64_t n, int64_t channels, int64_t height, int64_t width, uint64_t seed);

// Picks a loader by what `spec` names: "fashion-mnist" (Debian's dataset-fashion-mnist), a folder of
// IDX files, a folder of CIFAR-10 batches, or an image folder.
Dataset load_dataset(const std::string &spec, const std::string &split, int64_t channels = 1, int64_t height = 28,
                     int64_t width = 28);

// Whether `spec` has a test split of its own: an IDX folder with t10k-* files, CIFAR-10's test_batch.bin, or an
// image folder with a "test" sub-folder. Without one, load_dataset(spec, "test") gives the images of the
// training split (an image folder has only the one set).
bool has_test_split(const std::string &spec);

// The default location of Debian's Fashion-MNIST (overridable with CFF_FASHION_MNIST_DIR).
std::string fashion_mnist_dir();

}  // namespace cff::data
