// Fuzzes the frame <-> model image conversion (gst-plugin/frame_convert.h) for every format the elements
// read (formats_caps(FormatUse::read), so a format added there is fuzzed too) and one they do not: random
// frame sizes, row strides, range, regions (through clamp_region, or raw), model sizes, channels and
// normalisation; then write_image back into the frame where the format is writable, and now and then the
// same frame through GStreamer (gst_video_frame_map + pixel_view).
//
// Every plane is its own allocation of exactly stride * (rows - 1) + row bytes, so AddressSanitizer sees a
// read or write past the last row. Contract: convert_region and write_image throw std::invalid_argument on
// what their header lists and nothing else, write nothing outside the output / the pixels they own (row
// padding is checked), and give finite values for a finite normalisation.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "frame_convert.h"
#include "fuzz_common.h"

using namespace cff::gst;

namespace {

std::vector<GstVideoFormat> read_formats;

struct PlaneShape {
  int row_bytes = 0, rows = 0;
};

std::vector<PlaneShape> plane_shapes(GstVideoFormat format, int w, int h) {
  PackedLayout packed;
  if (packed_layout(format, packed)) return {{w * packed.bytes, h}};
  const int cw = (w + 1) / 2, ch = (h + 1) / 2;
  switch (format) {
    case GST_VIDEO_FORMAT_I420: return {{w, h}, {cw, ch}, {cw, ch}};
    case GST_VIDEO_FORMAT_NV12: return {{w, h}, {2 * cw, ch}};
    default: return {{w, h}};  // GRAY8, and the unsupported format (never read)
  }
}

constexpr uint8_t kPadding = 0xA5;

void check_padding(const std::vector<std::vector<uint8_t>> &planes, const std::vector<PlaneShape> &shapes,
                   const int *strides) {
  for (size_t p = 0; p < planes.size(); ++p) {
    for (int y = 0; y + 1 < shapes[p].rows; ++y) {
      for (int x = shapes[p].row_bytes; x < strides[p]; ++x) {
        if (planes[p][static_cast<size_t>(y) * strides[p] + x] != kPadding) cff_fuzz::broken("row padding written");
      }
    }
  }
}

bool finite_layout(const InputLayout &l) {
  // Values a model could have: |mean| / |std| must fit a float after the / 255 scaling.
  for (double v : l.mean) if (!(std::fabs(v) < 1e6)) return false;
  for (double v : l.std) if (!(std::fabs(v) >= 1e-3 && std::fabs(v) < 1e6)) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  gst_init(nullptr, nullptr);
  // "{ GRAY8, RGB, ... }"
  std::string list = formats_caps(FormatUse::read);
  for (char &c : list) if (c == '{' || c == '}' || c == ',') c = ' ';
  std::istringstream names(list);
  std::string name;
  while (names >> name) read_formats.push_back(gst_video_format_from_string(name.c_str()));
  read_formats.push_back(GST_VIDEO_FORMAT_YUY2);  // not supported: must be refused
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzedDataProvider in(data, size);
  const GstVideoFormat format = read_formats[in.ConsumeIntegralInRange<size_t>(0, read_formats.size() - 1)];
  const int width = in.ConsumeIntegralInRange(1, 300), height = in.ConsumeIntegralInRange(1, 300);
  const bool limited = in.ConsumeBool();
  const auto shapes = plane_shapes(format, width, height);
  MutablePixelView view;
  view.format = format;
  view.width = width;
  view.height = height;
  view.limited_range = limited;
  std::vector<std::vector<uint8_t>> planes(shapes.size());
  for (size_t p = 0; p < shapes.size(); ++p) {
    view.strides[p] = shapes[p].row_bytes + in.ConsumeIntegralInRange(0, 64);
    planes[p].assign(static_cast<size_t>(view.strides[p]) * (shapes[p].rows - 1) + shapes[p].row_bytes, kPadding);
    for (int y = 0; y < shapes[p].rows; ++y) {
      for (int x = 0; x < shapes[p].row_bytes; ++x) {
        planes[p][static_cast<size_t>(y) * view.strides[p] + x] = static_cast<uint8_t>(x * 7 + y * 13 + p * 101);
      }
    }
    view.planes[p] = planes[p].data();
  }
  // Pixel bytes from the input, where it has any.
  for (auto &plane : planes) {
    const auto bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, plane.size()));
    for (size_t i = 0; i < bytes.size(); ++i) {
      const size_t at = (i * 2654435761u) % plane.size();
      plane[at] = bytes[i];
    }
  }
  // Padding may have been overwritten above: restore it before checking writes.
  for (size_t p = 0; p < planes.size(); ++p) {
    for (int y = 0; y + 1 < shapes[p].rows; ++y) {
      for (int x = shapes[p].row_bytes; x < view.strides[p]; ++x) planes[p][static_cast<size_t>(y) * view.strides[p] + x] = kPadding;
    }
  }

  Region region{in.ConsumeIntegral<int>(), in.ConsumeIntegral<int>(), in.ConsumeIntegral<int>(), in.ConsumeIntegral<int>()};
  if (in.ConsumeBool()) {
    // Small regions near the frame, as the elements' region metas give.
    region = {in.ConsumeIntegralInRange(-8, width + 8), in.ConsumeIntegralInRange(-8, height + 8),
              in.ConsumeIntegralInRange(-8, width + 8), in.ConsumeIntegralInRange(-8, height + 8)};
  }
  if (in.ConsumeBool()) {
    const Region clamped = clamp_region(region, width, height);
    if (clamped.x < 0 || clamped.y < 0 || clamped.width < 0 || clamped.height < 0 ||
        int64_t{clamped.x} + clamped.width > width || int64_t{clamped.y} + clamped.height > height) {
      cff_fuzz::broken("clamp_region gave a region outside the frame");
    }
    region = clamped;
  }
  InputLayout layout;
  const int channel_choice = in.ConsumeIntegralInRange(0, 8);
  layout.channels = channel_choice < 4 ? 1 : channel_choice < 8 ? 3 : in.ConsumeIntegralInRange(-2, 5);
  layout.height = in.ConsumeIntegralInRange(-1, 64);
  layout.width = in.ConsumeIntegralInRange(-1, 64);
  const size_t n_norm = in.ConsumeBool() ? 1 : static_cast<size_t>(std::max(0, layout.channels));
  for (size_t c = 0; c < n_norm; ++c) {
    layout.mean.push_back(in.ConsumeBool() ? in.ConsumeFloatingPoint<double>() : in.ConsumeProbability<double>());
    layout.std.push_back(in.ConsumeBool() ? in.ConsumeFloatingPoint<double>() : 0.01 + in.ConsumeProbability<double>());
  }

  const bool valid_layout = (layout.channels == 1 || layout.channels == 3) && layout.height > 0 && layout.width > 0;
  const size_t out_size = valid_layout ? static_cast<size_t>(layout.channels) * layout.height * layout.width : 1;
  std::vector<float> out(out_size, -12345.0f);
  const PixelView read{view.format, view.width, view.height, {view.planes[0], view.planes[1], view.planes[2]},
                       {view.strides[0], view.strides[1], view.strides[2]}, view.limited_range};
  bool converted = false;
  try {
    convert_region(read, region, layout, out.data());
    converted = true;
  } catch (const std::invalid_argument &) {
  } catch (const std::exception &e) {
    cff_fuzz::unexpected("convert_region", e);
  }
  if (converted) {
    if (!valid_layout || !format_fits(format, FormatUse::read)) cff_fuzz::broken("convert_region took a bad input");
    if (finite_layout(layout)) {
      for (float v : out) if (!std::isfinite(v)) cff_fuzz::broken("convert_region gave a non-finite value");
    }
  }
  check_padding(planes, shapes, view.strides);

  // Back into the frame at 1:1 scale.
  if (in.ConsumeBool()) {
    InputLayout back = layout;
    back.height = height;
    back.width = width;
    std::vector<float> image(static_cast<size_t>(std::max(1, back.channels)) * height * width);
    for (auto &v : image) v = in.remaining_bytes() ? in.ConsumeFloatingPoint<float>() : 0.25f;
    try {
      write_image(view, back, image.data());
      if (!format_fits(format, FormatUse::write, back.channels)) cff_fuzz::broken("write_image took a bad format");
    } catch (const std::invalid_argument &) {
    } catch (const std::exception &e) {
      cff_fuzz::unexpected("write_image", e);
    }
    check_padding(planes, shapes, view.strides);
  }

  // Now and then the frame as GStreamer lays it out, through pixel_view.
  if (in.ConsumeIntegralInRange(0, 7) == 0) {
    GstVideoInfo info;
    if (gst_video_info_set_format(&info, format, static_cast<guint>(width), static_cast<guint>(height))) {
      GstBuffer *buffer = gst_buffer_new_allocate(nullptr, info.size, nullptr);
      gst_buffer_memset(buffer, 0, 0x80, info.size);
      GstVideoFrame frame;
      if (gst_video_frame_map(&frame, &info, buffer, GST_MAP_READ)) {
        try {
          const PixelView v = pixel_view(frame);
          if (v.width != width || v.height != height) cff_fuzz::broken("pixel_view: wrong size");
          const Region whole = clamp_region(region, width, height);
          if (whole.width > 0 && whole.height > 0 && valid_layout) {
            convert_region(v, whole, layout, out.data());
          }
        } catch (const std::invalid_argument &) {
        } catch (const std::exception &e) {
          cff_fuzz::unexpected("pixel_view / convert_region", e);
        }
        gst_video_frame_unmap(&frame);
      }
      gst_buffer_unref(buffer);
    }
  }
  return 0;
}
