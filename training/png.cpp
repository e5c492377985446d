#include "png.h"

#include <stdexcept>

#include <zlib.h>
#include <torch/torch.h>

#include "cff/model_file.h"

namespace cff::data {
namespace {

void put_u32(std::string &out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void put_chunk(std::string &out, const char *type, const std::string &data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  put_u32(out, cff::crc32(body.data(), body.size()));
}

}  // namespace

std::string encode_png(const torch::Tensor &image) {
  auto img = image.to(torch::kCPU, torch::kUInt8);
  if (img.dim() == 2) img = img.unsqueeze(0);
  if (img.dim() != 3 || (img.size(0) != 1 && img.size(0) != 3)) {
    throw std::invalid_argument("png: expected [H, W], [1, H, W] or [3, H, W]");
  }
  const int64_t channels = img.size(0), height = img.size(1), width = img.size(2);
  auto hwc = img.permute({1, 2, 0}).contiguous();
  std::string raw;
  raw.reserve(static_cast<size_t>(height * (width * channels + 1)));
  const auto *pixels = reinterpret_cast<const char *>(hwc.data_ptr<uint8_t>());
  for (int64_t y = 0; y < height; ++y) {
    raw.push_back(0);  // filter type: none
    raw.append(pixels + y * width * channels, static_cast<size_t>(width * channels));
  }
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::string packed(packed_size, '\0');
  if (compress2(reinterpret_cast<Bytef *>(&packed[0]), &packed_size, reinterpret_cast<const Bytef *>(raw.data()),
                static_cast<uLong>(raw.size()), 6) != Z_OK) {
    throw std::runtime_error("png: compression failed");
  }
  packed.resize(packed_size);
  std::string header;
  put_u32(header, static_cast<uint32_t>(width));
  put_u32(header, static_cast<uint32_t>(height));
  header += std::string{8, static_cast<char>(channels == 3 ? 2 : 0), 0, 0, 0};
  std::string out("\x89PNG\r\n\x1a\n", 8);
  put_chunk(out, "IHDR", header);
  put_chunk(out, "IDAT", packed);
  put_chunk(out, "IEND", "");
  return out;
}

void write_png(const std::string &path, const torch::Tensor &image) { cff::write_file_atomically(path, encode_png(image)); }

torch::Tensor make_grid(const torch::Tensor &images, int64_t columns, int64_t zoom) {
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2) * zoom, w = images.size(3) * zoom;
  const int64_t rows = (n + columns - 1) / columns;
  auto grid = torch::full({c, rows * (h + 1) + 1, columns * (w + 1) + 1}, 64, torch::kUInt8);
  auto pixels = ((images.detach().to(torch::kCPU, torch::kFloat32).clamp(-1, 1) + 1) * 127.5).round().to(torch::kUInt8);
  if (zoom > 1) pixels = pixels.repeat_interleave(zoom, 2).repeat_interleave(zoom, 3);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / columns, q = i % columns;
    grid.slice(1, 1 + r * (h + 1), 1 + r * (h + 1) + h).slice(2, 1 + q * (w + 1), 1 + q * (w + 1) + w).copy_(pixels[i]);
  }
  return grid;
}

}  // namespace cff::data
