#include "data/png_writer.h"

#include <stdexcept>

#include <torch/torch.h>
#ifdef CFF_HAVE_LIBPNG
#include <png.h>
#endif

#include "support/files.h"

namespace cff::data {

bool png_supported() {
#ifdef CFF_HAVE_LIBPNG
  return true;
#else
  return false;
#endif
}

std::string encode_png(const torch::Tensor &image) {
  auto img = image.to(torch::kCPU, torch::kUInt8);
  if (img.dim() == 2) img = img.unsqueeze(0);
  if (img.dim() != 3 || (img.size(0) != 1 && img.size(0) != 3)) {
    throw std::invalid_argument("png: expected [H, W], [1, H, W] or [3, H, W]");
  }
#ifdef CFF_HAVE_LIBPNG
  const auto hwc = img.permute({1, 2, 0}).contiguous();
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(img.size(2));
  png.height = static_cast<png_uint_32>(img.size(1));
  png.format = img.size(0) == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  // The first call sizes the file, the second writes it.
  png_alloc_size_t size = 0;
  const void *pixels = hwc.data_ptr<uint8_t>();
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, pixels, 0, nullptr)) {
    const std::string reason = png.message;
    png_image_free(&png);
    throw std::runtime_error("png: " + reason);
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&png, &out[0], &size, 0, pixels, 0, nullptr)) {
    const std::string reason = png.message;
    png_image_free(&png);
    throw std::runtime_error("png: " + reason);
  }
  out.resize(size);
  return out;
#else
  throw std::runtime_error("png: this build of cff has no libpng (install libpng-dev and rebuild)");
#endif
}

void write_png(const std::string &path, const torch::Tensor &image) { files::write_atomically(path, encode_png(image)); }

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
