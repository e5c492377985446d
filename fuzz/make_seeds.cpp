// Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/), a few small real files each, made by
// the project's own code where it writes the format:
//   fuzz_make_seeds OUT_DIR        (tools/fuzz.sh --seeds regenerates fuzz/corpus with it)
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>
#include <zlib.h>

#include "cff/model_file.h"
#include "tiny_network.h"
#include "training/trainer.h"

namespace fs = std::filesystem;

namespace {

fs::path out_dir;

void write(const std::string &target, const std::string &name, const std::string &bytes) {
  const auto dir = out_dir / target;
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string gzip(const std::string &bytes) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, bytes.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef *>(&out[0]);
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string idx_images(uint32_t n, uint32_t h, uint32_t w) {
  std::string s = be32(0x0803) + be32(n) + be32(h) + be32(w);
  for (uint32_t i = 0; i < n * h * w; ++i) s += static_cast<char>(i * 37);
  return s;
}

std::string idx_labels(uint32_t n) {
  std::string s = be32(0x0801) + be32(n);
  for (uint32_t i = 0; i < n; ++i) s += static_cast<char>(i % 10);
  return s;
}

std::string encode(const std::string &ext, const cv::Mat &m) {
  std::vector<uchar> buf;
  cv::imencode(ext, m, buf);
  return std::string(buf.begin(), buf.end());
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds OUT_DIR\n");
    return 2;
  }
  out_dir = argv[1];
  torch::manual_seed(1);

  // Model files: the tiny network, with one and with three channels.
  for (int channels : {1, 3}) {
    auto config = cff_fuzz::tiny_network();
    config.channels = channels;
    cff::Classifier net(config);
    cff::ModelMetadata m;
    m.network = config;
    m.labels = {"a", "b", "c"};
    m.normalization.mean.assign(channels, 0.5);
    m.normalization.std.assign(channels, 0.5);
    write("fuzz_model_file", "tiny-" + std::to_string(channels) + "ch.cff", cff::serialize_model(net, m));
  }

  // A checkpoint as cff-train writes it (cff::train::serialize_checkpoint), of the tiny network after one
  // AdamW step (so the optimiser state is there).
  {
    cff::Classifier net(cff_fuzz::tiny_network()), ema(cff_fuzz::tiny_network());
    torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(1e-3));
    net->forward(torch::zeros({2, 1, 8, 8})).sum().backward();
    optimizer.step();
    auto c = cff::train::capture_checkpoint(net, ema, optimizer);
    c.options = {{"batch", 4}, {"lr", 0.001}, {"network", {{"channels", 1}}}};
    c.epoch = 3;
    c.noised_from = 40;
    c.running_accuracy = 0.5;
    write("fuzz_checkpoint", "tiny.ckpt", cff::train::serialize_checkpoint(c));
  }

  // IDX: byte 0 picks the reader (0 images, 1 labels, 2 folder: bytes 1-2 the images file's size).
  write("fuzz_idx", "images", std::string(1, '\0') + idx_images(2, 4, 3));
  write("fuzz_idx", "images.gz", std::string(1, '\0') + gzip(idx_images(3, 5, 5)));
  write("fuzz_idx", "labels", std::string(1, '\1') + idx_labels(5));
  write("fuzz_idx", "labels.gz", std::string(1, '\1') + gzip(idx_labels(7)));
  {
    const std::string images = idx_images(2, 3, 3), labels = idx_labels(2);
    write("fuzz_idx", "folder", std::string(1, '\2') + be32(static_cast<uint32_t>(images.size())).substr(2) + images + labels);
  }

  // CIFAR-10: records of 1 label byte and 3 x 32 x 32 pixels.
  {
    std::string records;
    for (int r = 0; r < 2; ++r) {
      records += static_cast<char>(r * 7);
      for (int i = 0; i < 3 * 32 * 32; ++i) records += static_cast<char>(i * 13 + r);
    }
    write("fuzz_cifar", "two-records.bin", records);
    write("fuzz_cifar", "two-records.bin.gz", gzip(records));
  }

  // Images: 3 bytes (channels, height, width) then the file.
  {
    cv::Mat grey(6, 5, CV_8UC1), colour(4, 7, CV_8UC3);
    cv::randu(grey, 0, 255);
    cv::randu(colour, 0, 255);
    const std::string rgb{1, 9, 9}, gray{0, 5, 12};
    write("fuzz_image_folder", "grey.png", gray + encode(".png", grey));
    write("fuzz_image_folder", "colour.png", rgb + encode(".png", colour));
    write("fuzz_image_folder", "colour.jpg", rgb + encode(".jpg", colour));
    write("fuzz_image_folder", "grey.bmp", gray + encode(".bmp", grey));
    write("fuzz_image_folder", "colour.ppm", rgb + encode(".ppm", colour));
  }

  // Frames: the target reads its parameters from the bytes; a few plain patterns.
  for (int k = 0; k < 4; ++k) {
    std::string bytes;
    for (int i = 0; i < 64 + 96 * k; ++i) bytes += static_cast<char>((i * (2 * k + 3)) ^ (k * 40));
    write("fuzz_frame_convert", "pattern-" + std::to_string(k), bytes);
  }
  std::printf("seeds written to %s\n", out_dir.c_str());
  return 0;
}
