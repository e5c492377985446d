#include "data/datasets.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <zlib.h>
#include <torch/torch.h>

#ifdef CFF_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace fs = std::filesystem;

namespace cff::data {
namespace {

// Reads a whole file, transparently inflating gzip. Throws DatasetError naming the path.
std::string read_maybe_gzip(const std::string &path) {
  if (!fs::exists(path)) throw DatasetError(path + ": file not found");
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) throw DatasetError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::string bytes;
  char buffer[1 << 16];
  while (true) {
    const int n = gzread(file, buffer, sizeof(buffer));
    if (n < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      throw DatasetError(path + ": cannot read (" + message + ")");
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<size_t>(n));
  }
  gzclose(file);
  return bytes;
}

uint32_t big_endian_u32(const std::string &bytes, size_t at) {
  const auto *p = reinterpret_cast<const unsigned char *>(bytes.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string hex32(uint32_t v) {
  char s[9];
  std::snprintf(s, sizeof(s), "%08x", v);
  return s;
}

// Parses an IDX header of `rank` dimensions with unsigned-byte data; returns the dims.
std::vector<int64_t> idx_header(const std::string &bytes, const std::string &path, uint32_t rank) {
  if (bytes.size() < 4) throw DatasetError(path + ": too short for an IDX header");
  const uint32_t magic = big_endian_u32(bytes, 0);
  if ((magic >> 8) != 0x08) throw DatasetError(path + ": not an unsigned-byte IDX file (bad magic)");
  if ((magic & 0xFF) != rank) {
    throw DatasetError(path + ": IDX file has " + std::to_string(magic & 0xFF) + " dimensions, expected " +
                       std::to_string(rank));
  }
  if (bytes.size() < 4 + 4 * rank) throw DatasetError(path + ": too short for an IDX header");
  std::vector<int64_t> dims(rank);
  for (uint32_t i = 0; i < rank; ++i) dims[i] = big_endian_u32(bytes, 4 + 4 * i);
  // A record (one image) of more than 2^31 bytes is no dataset's. Refusing it first keeps the count below
  // 2^63 (three 32-bit dimensions could otherwise wrap 64 bits to a count the file seems to hold), and keeps
  // a file of zero records from giving a tensor whose strides overflow.
  uint64_t record = 1;
  for (uint32_t i = 1; i < rank; ++i) record *= static_cast<uint64_t>(dims[i]);  // two 32-bit factors: no overflow
  if (record > (uint64_t{1} << 31)) {
    throw DatasetError(path + ": records of " + std::to_string(record) + " bytes (" + std::to_string(dims[1]) + " x " +
                       std::to_string(dims[2]) + "), more than an image can have");
  }
  const uint64_t count = static_cast<uint64_t>(dims[0]) * record;
  const uint64_t available = bytes.size() - 4 - 4 * rank;
  if (count > available) {
    const uint64_t per_record = rank > 1 ? count / std::max<int64_t>(1, dims[0]) : 1;
    throw DatasetError(path + ": truncated at record " + std::to_string(available / std::max<uint64_t>(1, per_record)) +
                       " of " + std::to_string(dims[0]));
  }
  return dims;
}

std::string find_idx(const std::string &folder, const std::string &stem) {
  for (const auto &name : {stem, stem + ".gz"}) {
    const auto p = fs::path(folder) / name;
    if (fs::exists(p)) return p.string();
  }
  throw DatasetError(folder + ": neither " + stem + " nor " + stem + ".gz found");
}

std::vector<std::string> digit_classes() {
  std::vector<std::string> c;
  for (int i = 0; i < 10; ++i) c.push_back(std::to_string(i));
  return c;
}

}  // namespace

torch::Tensor Dataset::normalized() const { return images.to(torch::kFloat32).div(127.5).sub(1.0); }

torch::Tensor read_idx_images(const std::string &path) {
  const auto bytes = read_maybe_gzip(path);
  const auto dims = idx_header(bytes, path, 3);
  auto t = torch::empty({dims[0], 1, dims[1], dims[2]}, torch::kUInt8);
  // An empty tensor has no data pointer (memcpy to null is undefined even for 0 bytes).
  if (t.numel() > 0) std::memcpy(t.data_ptr<uint8_t>(), bytes.data() + 16, static_cast<size_t>(t.numel()));
  return t;
}

torch::Tensor read_idx_labels(const std::string &path) {
  const auto bytes = read_maybe_gzip(path);
  const auto dims = idx_header(bytes, path, 1);
  auto t = torch::empty({dims[0]}, torch::kUInt8);
  if (t.numel() > 0) std::memcpy(t.data_ptr<uint8_t>(), bytes.data() + 8, static_cast<size_t>(t.numel()));
  return t.to(torch::kLong);
}

const std::vector<std::string> &fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

std::string fashion_mnist_dir() {
  const char *env = std::getenv("CFF_FASHION_MNIST_DIR");
  return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

Dataset load_idx_folder(const std::string &folder, const std::string &split) {
  if (split != "train" && split != "test") throw DatasetError("split must be train or test, got '" + split + "'");
  const std::string prefix = split == "train" ? "train" : "t10k";
  const auto image_path = find_idx(folder, prefix + "-images-idx3-ubyte");
  const auto label_path = find_idx(folder, prefix + "-labels-idx1-ubyte");
  Dataset d;
  d.images = read_idx_images(image_path);
  d.labels = read_idx_labels(label_path);
  if (d.images.size(0) != d.labels.size(0)) {
    throw DatasetError(folder + ": " + std::to_string(d.images.size(0)) + " images but " +
                       std::to_string(d.labels.size(0)) + " labels");
  }
  const int64_t max_label = d.labels.numel() ? d.labels.max().item<int64_t>() : 0;
  if (max_label > 9) {
    const auto bad = d.labels.gt(9).nonzero()[0][0].item<int64_t>();
    throw DatasetError(label_path + ": record " + std::to_string(bad) + " has label " +
                       std::to_string(d.labels[bad].item<int64_t>()) + " (expected 0..9)");
  }
  std::string lower = folder;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  d.classes = lower.find("fashion") != std::string::npos ? fashion_mnist_classes() : digit_classes();
  d.description = folder + " " + split + " (" + std::to_string(d.size()) + " images)";
  uLong crc = crc32_z(0, d.images.data_ptr<uint8_t>(), static_cast<size_t>(d.images.numel()));
  auto labels_u8 = d.labels.to(torch::kUInt8);
  crc = crc32_z(crc, labels_u8.data_ptr<uint8_t>(), static_cast<size_t>(labels_u8.numel()));
  d.checksum = hex32(crc);
  return d;
}

Dataset load_cifar10(const std::string &folder, const std::string &split) {
  std::vector<std::string> files;
  if (split == "train") {
    for (int i = 1; i <= 5; ++i) files.push_back((fs::path(folder) / ("data_batch_" + std::to_string(i) + ".bin")).string());
  } else if (split == "test") {
    files.push_back((fs::path(folder) / "test_batch.bin").string());
  } else {
    throw DatasetError("split must be train or test, got '" + split + "'");
  }
  constexpr size_t kRecord = 1 + 3 * 32 * 32;
  std::vector<torch::Tensor> images, labels;
  uLong crc = 0;
  for (const auto &path : files) {
    const auto bytes = read_maybe_gzip(path);
    if (bytes.empty() || bytes.size() % kRecord != 0) {
      throw DatasetError(path + ": size " + std::to_string(bytes.size()) + " is not a whole number of CIFAR-10 records (" +
                         std::to_string(kRecord) + " bytes each); truncated at record " +
                         std::to_string(bytes.size() / kRecord));
    }
    crc = crc32_z(crc, reinterpret_cast<const Bytef *>(bytes.data()), bytes.size());
    const int64_t n = static_cast<int64_t>(bytes.size() / kRecord);
    auto raw = torch::from_blob(const_cast<char *>(bytes.data()), {n, static_cast<int64_t>(kRecord)}, torch::kUInt8).clone();
    auto y = raw.select(1, 0).to(torch::kLong);
    if (y.max().item<int64_t>() > 9) {
      const auto bad = y.gt(9).nonzero()[0][0].item<int64_t>();
      throw DatasetError(path + ": record " + std::to_string(bad) + " has label " + std::to_string(y[bad].item<int64_t>()));
    }
    labels.push_back(y);
    images.push_back(raw.slice(1, 1).view({n, 3, 32, 32}));
  }
  Dataset d;
  d.images = torch::cat(images);
  d.labels = torch::cat(labels);
  d.classes = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  d.description = folder + " cifar10 " + split + " (" + std::to_string(d.size()) + " images)";
  d.checksum = hex32(crc);
  return d;
}

Dataset load_image_folder(const std::string &folder, int64_t channels, int64_t height, int64_t width) {
#ifdef CFF_HAVE_OPENCV
  if (!fs::is_directory(folder)) throw DatasetError(folder + ": not a folder");
  if (channels != 1 && channels != 3) throw DatasetError(folder + ": image folders support 1 or 3 channels");
  Dataset d;
  for (const auto &entry : fs::directory_iterator(folder)) {
    if (entry.is_directory()) d.classes.push_back(entry.path().filename().string());
  }
  std::sort(d.classes.begin(), d.classes.end());
  if (d.classes.empty()) throw DatasetError(folder + ": no class sub-folders");
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  uLong crc = 0;
  for (size_t k = 0; k < d.classes.size(); ++k) {
    std::vector<fs::path> paths;
    for (const auto &entry : fs::directory_iterator(fs::path(folder) / d.classes[k])) {
      if (entry.is_regular_file()) paths.push_back(entry.path());
    }
    std::sort(paths.begin(), paths.end());
    // A class with no examples would be a class the network can never learn, reported as if it were there.
    if (paths.empty()) throw DatasetError((fs::path(folder) / d.classes[k]).string() + ": class sub-folder has no images");
    for (const auto &p : paths) {
      cv::Mat img = cv::imread(p.string(), channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
      if (img.empty()) throw DatasetError(p.string() + ": not a readable image");
      if (channels == 3) cv::cvtColor(img, img, cv::COLOR_BGR2RGB);
      const bool shrinking = img.cols > width || img.rows > height;
      cv::resize(img, img, cv::Size(static_cast<int>(width), static_cast<int>(height)), 0, 0,
                 shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
      auto t = torch::from_blob(img.data, {height, width, channels}, torch::kUInt8).permute({2, 0, 1}).clone();
      crc = crc32_z(crc, t.data_ptr<uint8_t>(), static_cast<size_t>(t.numel()));
      images.push_back(t);
      labels.push_back(static_cast<int64_t>(k));
    }
  }
  if (images.empty()) throw DatasetError(folder + ": no images in the class sub-folders");
  d.images = torch::stack(images);
  d.labels = torch::tensor(labels, torch::kLong);
  d.description = folder + " (" + std::to_string(d.size()) + " images, " + std::to_string(d.classes.size()) + " classes)";
  d.checksum = hex32(crc);
  return d;
#else
  (void)channels, (void)height, (void)width;
  throw DatasetError(folder + ": image folders need OpenCV, which this build does not have");
#endif
}

torch::Tensor render_glyphs(int64_t n, int64_t channels, int64_t height, int64_t width, uint64_t seed) {
#ifdef CFF_HAVE_OPENCV
  static const std::string characters = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+-*/=#%&@?$<>";
  static const int fonts[] = {cv::FONT_HERSHEY_SIMPLEX, cv::FONT_HERSHEY_DUPLEX, cv::FONT_HERSHEY_COMPLEX,
                              cv::FONT_HERSHEY_TRIPLEX, cv::FONT_HERSHEY_PLAIN, cv::FONT_HERSHEY_SCRIPT_SIMPLEX};
  cv::RNG rng(seed);
  std::vector<torch::Tensor> images;
  const int big = static_cast<int>(4 * std::max(height, width));
  for (int64_t i = 0; i < n; ++i) {
    // Draw large, then warp (scale, rotation, slant, shift) into the target size.
    cv::Mat canvas = cv::Mat::zeros(big, big, CV_32F);
    const std::string text(1, characters[static_cast<size_t>(rng.uniform(0, static_cast<int>(characters.size())))]);
    const int font = fonts[rng.uniform(0, static_cast<int>(std::size(fonts)))];
    const int thickness = rng.uniform(2, 9);
    const double scale = cv::getFontScaleFromHeight(font, big / 2, thickness);
    int baseline = 0;
    const auto size = cv::getTextSize(text, font, scale, thickness, &baseline);
    cv::putText(canvas, text, {(big - size.width) / 2, (big + size.height) / 2}, font, scale, 1.0, thickness, cv::LINE_AA);
    const cv::Rect box = cv::boundingRect(canvas > 0.1);
    const double extent = std::max(std::max(box.width, box.height), 1);
    const double s = static_cast<double>(std::min(height, width)) * rng.uniform(0.5, 0.85) / extent;
    const double angle = rng.uniform(-0.3, 0.3), shear = rng.uniform(-0.3, 0.3);
    const cv::Matx22d a(s * std::cos(angle), s * (-std::sin(angle) + shear), s * std::sin(angle), s * std::cos(angle));
    const cv::Vec2d centre(width * (0.5 + rng.uniform(-0.12, 0.12)), height * (0.5 + rng.uniform(-0.12, 0.12)));
    const cv::Vec2d shift = centre - a * cv::Vec2d(box.x + box.width / 2.0, box.y + box.height / 2.0);
    const cv::Matx23d m(a(0, 0), a(0, 1), shift[0], a(1, 0), a(1, 1), shift[1]);
    cv::Mat mask;
    cv::warpAffine(canvas, mask, m, cv::Size(static_cast<int>(width), static_cast<int>(height)), cv::INTER_AREA);
    auto alpha = torch::from_blob(mask.ptr<float>(), {1, height, width}, torch::kFloat32).clone().clamp(0, 1);
    auto fg = torch::full({channels, 1, 1}, 0.0f), bg = torch::full({channels, 1, 1}, 0.0f);
    for (int64_t ch = 0; ch < channels; ++ch) {
      fg[ch] = static_cast<float>(rng.uniform(150.0, 255.0));
      bg[ch] = static_cast<float>(rng.uniform(0.0, 60.0));
    }
    images.push_back((bg * (1 - alpha) + fg * alpha).round().clamp(0, 255).to(torch::kUInt8));
  }
  return torch::stack(images);
#else
  (void)n, (void)channels, (void)height, (void)width, (void)seed;
  throw DatasetError("glyphs: drawing glyphs needs OpenCV, which this build does not have");
#endif
}

namespace {

bool has_file(const std::string &folder, const std::string &name) {
  return fs::exists(fs::path(folder) / name) || fs::exists(fs::path(folder) / (name + ".gz"));
}
bool is_idx_folder(const std::string &folder) {
  return has_file(folder, "train-images-idx3-ubyte") || has_file(folder, "t10k-images-idx3-ubyte");
}
bool is_cifar_folder(const std::string &folder) {
  return has_file(folder, "test_batch.bin") || has_file(folder, "data_batch_1.bin");
}
std::string dataset_folder(const std::string &spec) { return spec == "fashion-mnist" ? fashion_mnist_dir() : spec; }

}  // namespace

bool has_test_split(const std::string &spec) {
  const std::string folder = dataset_folder(spec);
  if (is_idx_folder(folder)) return has_file(folder, "t10k-images-idx3-ubyte");
  if (is_cifar_folder(folder)) return has_file(folder, "test_batch.bin");
  return fs::is_directory(fs::path(folder) / "test");
}

Dataset load_dataset(const std::string &spec, const std::string &split, int64_t channels, int64_t height,
                     int64_t width) {
  const std::string folder = dataset_folder(spec);
  if (!fs::exists(folder)) throw DatasetError(folder + ": dataset folder not found");
  if (is_idx_folder(folder)) return load_idx_folder(folder, split);
  if (is_cifar_folder(folder)) return load_cifar10(folder, split);
  const auto sub = fs::path(folder) / split;
  return load_image_folder(fs::is_directory(sub) ? sub.string() : folder, channels, height, width);
}

}  // namespace cff::data
