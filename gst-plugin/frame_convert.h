// The one conversion from video pixels to model input, used by every cff element.
//
// A region of a frame becomes C x H x W floats: grey (BT.601 luma for RGB formats, the Y plane for
// YUV formats) for 1-channel models, RGB for 3-channel models; resized to the model's H x W
// (area-average along an axis that shrinks, bilinear along one that grows); then normalised as
// (p / 255 - mean[c]) / std[c]. Limited-range ("16-235") luma and chroma are expanded to full range
// first, so a frame means the same whatever its format.
//
// Torch-free on purpose: elements compile fast, and a fuzzer can call convert_region on any size.
#pragma once

#include <cstdint>
#include <vector>

#include <gst/video/video.h>

namespace cff::gst {

struct Region {
  int x = 0, y = 0, width = 0, height = 0;
};

// What the model takes (cff::ModelInfo carries these).
struct InputLayout {
  int channels = 1;          // 1 or 3
  int height = 0, width = 0; // model input size
  std::vector<double> mean;  // per channel, or one value for all
  std::vector<double> std;
};

// Unowned view of the pixels of one frame.
struct PixelView {
  GstVideoFormat format = GST_VIDEO_FORMAT_UNKNOWN;
  int width = 0, height = 0;
  const uint8_t *planes[3] = {nullptr, nullptr, nullptr};
  int strides[3] = {0, 0, 0};  // bytes per row of each plane
  bool limited_range = false;  // YUV formats: Y in 16..235, U/V in 16..240
};

// The formats convert_region reads (and the elements advertise in their caps).
bool is_supported_format(GstVideoFormat format);
// The caps string listing them, e.g. "{ GRAY8, RGB, ... }".
const char *supported_formats_caps();

// A view of a mapped frame. Throws std::invalid_argument if its format is not supported.
PixelView pixel_view(const GstVideoFrame &frame);

// The part of `region` that lies inside a width x height frame (possibly empty).
Region clamp_region(const Region &region, int width, int height);

// Writes layout.channels * layout.height * layout.width floats to `out`.
// Throws std::invalid_argument on an unsupported format, a region not inside the view or empty,
// a bad layout (channels other than 1 or 3, empty size, mean/std of the wrong length, std == 0),
// or missing planes.
void convert_region(const PixelView &view, const Region &region, const InputLayout &layout, float *out);

}  // namespace cff::gst
