// The one conversion between video pixels and model images, both directions, used by every cff element.
//
// Pixels -> model input (convert_region): a region of a frame becomes C x H x W floats: grey (BT.601
// luma for RGB formats, the Y plane for YUV formats) for 1-channel models, RGB for 3-channel models;
// resized to the model's H x W (area-average along an axis that shrinks, bilinear along one that
// grows); then normalised as (p / 255 - mean[c]) / std[c]. Limited-range ("16-235") luma and chroma are
// expanded to full range first, so a frame means the same whatever its format.
//
// Model image -> pixels (write_image): the exact inverse at 1:1 scale, p = 255 * (x * std[c] + mean[c])
// rounded to nearest and clamped to 0..255, compressed back to 16-235 for limited-range luma.
//
// This file also owns which formats suit which model and use (the elements' caps come from here), the
// byte layout of the packed RGB formats and the limited-range rule.
//
// Torch-free on purpose: elements compile fast, and a fuzzer can call convert_region on any size.
#pragma once

#include <cstdint>
#include <string>
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

  // Channel c's value, whether given per channel or once for all.
  double mean_of(int c) const { return mean.size() == 1 ? mean.at(0) : mean.at(static_cast<size_t>(c)); }
  double std_of(int c) const { return std.size() == 1 ? std.at(0) : std.at(static_cast<size_t>(c)); }
};

// Unowned view of the pixels of one frame: PixelView to read, MutablePixelView to write.
template <typename Byte>
struct BasicPixelView {
  GstVideoFormat format = GST_VIDEO_FORMAT_UNKNOWN;
  int width = 0, height = 0;
  Byte *planes[3] = {nullptr, nullptr, nullptr};
  int strides[3] = {0, 0, 0};  // bytes per row of each plane
  bool limited_range = false;  // YUV formats: Y in 16..235, U/V in 16..240
};
using PixelView = BasicPixelView<const uint8_t>;
using MutablePixelView = BasicPixelView<uint8_t>;

// What a format is wanted for. A model of C channels suits:
enum class FormatUse {
  read,    // convert_region reads it, for any C (RGB frames give 1-channel models their luma, grey
           // frames give 3-channel models grey RGB): GRAY8, the packed RGB formats, I420, NV12
  write,   // write_image writes a C-channel image into it, keeping what else the frame holds:
           // C = 1: GRAY8 and the luma of I420, NV12 (chroma kept); C = 3: RGB, BGR, RGBx, BGRx
  native,  // the bytes of a pixel are exactly the model's channels in order (GRAY8, RGB): what a
           // frame made from scratch (cffgenerate) is given
};

// Whether `format` suits `use` by a model of `channels` channels (0: of 1 or 3 channels).
bool format_fits(GstVideoFormat format, FormatUse use, int channels = 0);
// The formats that fit as a caps list, "{ GRAY8, I420, NV12 }"; for channels 0 the 1-channel ones
// come first.
std::string formats_caps(FormatUse use, int channels = 0);
// "video/x-raw" caps with those formats, any size and frame rate: the elements' pad templates, and what
// they narrow their caps to once the model is loaded.
GstCaps *video_caps(FormatUse use, int channels = 0);
// The native format of a C-channel model (GRAY8 or RGB); GST_VIDEO_FORMAT_UNKNOWN for other C.
GstVideoFormat native_format(int channels);

// Byte offsets of R, G, B within a pixel and bytes per pixel of a packed RGB format.
struct PackedLayout {
  int r = 0, g = 0, b = 0, bytes = 0;
};
// Whether `format` is a packed RGB format; if so `layout` is its layout.
bool packed_layout(GstVideoFormat format, PackedLayout &layout);

// Limited-range ("studio swing") luma, 16..235 for full-range 0..255 (BT.601): the one rule both
// directions and the overlay use. Neither clamps.
inline float expand_limited_luma(float y) { return (y - 16.0f) * (255.0f / 219.0f); }
inline double compress_to_limited_luma(double p) { return 16.0 + p * (219.0 / 255.0); }

// A view of a mapped frame. Throws std::invalid_argument if its format is not supported (read).
PixelView pixel_view(const GstVideoFrame &frame);
// The same for a frame mapped with GST_MAP_WRITE.
MutablePixelView mutable_pixel_view(GstVideoFrame &frame);

// The part of a rectangle that lies inside a width x height frame (possibly empty). 64-bit, so an upstream
// GstVideoRegionOfInterestMeta (unsigned sizes up to 2^32 - 1) is clamped, never wrapped.
Region clamp_region(int64_t x, int64_t y, int64_t region_width, int64_t region_height, int width, int height);
Region clamp_region(const Region &region, int width, int height);

// Writes layout.channels * layout.height * layout.width floats to `out`.
// Throws std::invalid_argument on an unsupported format, a region not inside the view or empty,
// a bad layout (channels other than 1 or 3, empty size, mean/std of the wrong length, std == 0),
// or missing planes.
void convert_region(const PixelView &view, const Region &region, const InputLayout &layout, float *out);

// The reverse of convert_region over the whole frame at 1:1 scale: writes `image`, layout.channels x
// view.height x view.width floats in model units, into the components FormatUse::write names (a
// non-finite value writes 0, before the limited-range compression). Other components, padding and
// alpha bytes are left as they are. Throws std::invalid_argument on a format that does not fit
// (write, layout.channels), layout.height/width other than the view's, a bad mean/std, a missing
// plane or a null image.
void write_image(const MutablePixelView &view, const InputLayout &layout, const float *image);

}  // namespace cff::gst
