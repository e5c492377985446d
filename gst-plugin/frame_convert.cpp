#include "frame_convert.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace cff::gst {
namespace {

// Byte offsets of R, G, B within a pixel and bytes per pixel, for the packed RGB formats.
struct PackedLayout {
  int r, g, b, bytes;
};

bool packed_layout(GstVideoFormat format, PackedLayout &layout) {
  switch (format) {
    case GST_VIDEO_FORMAT_RGB: layout = {0, 1, 2, 3}; return true;
    case GST_VIDEO_FORMAT_BGR: layout = {2, 1, 0, 3}; return true;
    case GST_VIDEO_FORMAT_RGBA:
    case GST_VIDEO_FORMAT_RGBx: layout = {0, 1, 2, 4}; return true;
    case GST_VIDEO_FORMAT_BGRA:
    case GST_VIDEO_FORMAT_BGRx: layout = {2, 1, 0, 4}; return true;
    case GST_VIDEO_FORMAT_ARGB:
    case GST_VIDEO_FORMAT_xRGB: layout = {1, 2, 3, 4}; return true;
    case GST_VIDEO_FORMAT_ABGR:
    case GST_VIDEO_FORMAT_xBGR: layout = {3, 2, 1, 4}; return true;
    default: return false;
  }
}

// Resampling weights along one axis: output sample d is sum_j weights[j] * input[first + j].
struct Taps {
  int first = 0;
  std::vector<float> weights;
};

std::vector<Taps> make_taps(int source, int target) {
  std::vector<Taps> taps(static_cast<size_t>(target));
  const double scale = static_cast<double>(source) / target;
  for (int d = 0; d < target; ++d) {
    auto &t = taps[static_cast<size_t>(d)];
    if (source > target) {
      // Area average: each output sample is the mean of the input span it covers, which keeps
      // thin strokes and avoids the aliasing that bilinear sampling has when shrinking.
      const double start = d * scale, end = (d + 1) * scale;
      const int first = static_cast<int>(std::floor(start));
      const int last = std::min(source - 1, static_cast<int>(std::ceil(end)) - 1);
      t.first = first;
      for (int i = first; i <= last; ++i) {
        const double overlap = std::min(end, i + 1.0) - std::max(start, static_cast<double>(i));
        t.weights.push_back(static_cast<float>(std::max(0.0, overlap) / scale));
      }
    } else {
      // Bilinear with pixel centres aligned (OpenCV's INTER_LINEAR convention).
      const double s = std::clamp((d + 0.5) * scale - 0.5, 0.0, static_cast<double>(source - 1));
      const int i0 = static_cast<int>(std::floor(s));
      const double f = s - i0;
      t.first = i0;
      if (i0 + 1 < source && f > 0.0) {
        t.weights = {static_cast<float>(1.0 - f), static_cast<float>(f)};
      } else {
        t.weights = {1.0f};
      }
    }
  }
  return taps;
}

inline float expand_luma(float y, bool limited) { return limited ? (y - 16.0f) * (255.0f / 219.0f) : y; }
inline float expand_chroma(float c, bool limited) { return limited ? (c - 128.0f) * (255.0f / 224.0f) : c - 128.0f; }
inline float clamp255(float v) { return std::min(255.0f, std::max(0.0f, v)); }

// One row of a packed RGB-like format; the pixel size is a template argument so that the loops have a
// constant stride (the per-frame conversion cost is mostly here on large frames).
template <int Bytes>
void read_packed_row(const uint8_t *line, int w, const PackedLayout &packed, int channels, std::vector<float> *rows) {
  const int ri = packed.r, gi = packed.g, bi = packed.b;
  if (channels == 1) {
    float *luma = rows[0].data();
    for (int x = 0; x < w; ++x) {
      const uint8_t *p = line + static_cast<ptrdiff_t>(x) * Bytes;
      luma[x] = 0.299f * p[ri] + 0.587f * p[gi] + 0.114f * p[bi];  // BT.601 luma
    }
    return;
  }
  float *r = rows[0].data(), *g = rows[1].data(), *b = rows[2].data();
  for (int x = 0; x < w; ++x) {
    const uint8_t *p = line + static_cast<ptrdiff_t>(x) * Bytes;
    r[x] = p[ri];
    g[x] = p[gi];
    b[x] = p[bi];
  }
}

// Reads one row of the region as `channels` float rows (full-range 0..255) into rows[c][0..w).
void read_row(const PixelView &view, const Region &region, int y, int channels, std::vector<float> *rows) {
  const int w = region.width;
  const int sy = region.y + y;
  PackedLayout packed{};
  if (packed_layout(view.format, packed)) {
    const uint8_t *line = view.planes[0] + static_cast<ptrdiff_t>(sy) * view.strides[0] +
                          static_cast<ptrdiff_t>(region.x) * packed.bytes;
    if (packed.bytes == 3) {
      read_packed_row<3>(line, w, packed, channels, rows);
    } else {
      read_packed_row<4>(line, w, packed, channels, rows);
    }
    return;
  }
  const uint8_t *luma = view.planes[0] + static_cast<ptrdiff_t>(sy) * view.strides[0] + region.x;
  if (view.format == GST_VIDEO_FORMAT_GRAY8) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < channels; ++c) rows[c][x] = luma[x];
    }
    return;
  }
  // I420 or NV12.
  const bool limited = view.limited_range;
  if (channels == 1) {
    for (int x = 0; x < w; ++x) rows[0][x] = clamp255(expand_luma(luma[x], limited));
    return;
  }
  const int cy = sy / 2;
  for (int x = 0; x < w; ++x) {
    const int cx = (region.x + x) / 2;
    float u, v;
    if (view.format == GST_VIDEO_FORMAT_I420) {
      u = view.planes[1][static_cast<ptrdiff_t>(cy) * view.strides[1] + cx];
      v = view.planes[2][static_cast<ptrdiff_t>(cy) * view.strides[2] + cx];
    } else {
      const uint8_t *uv = view.planes[1] + static_cast<ptrdiff_t>(cy) * view.strides[1] + 2 * cx;
      u = uv[0];
      v = uv[1];
    }
    const float yy = expand_luma(luma[x], limited), cb = expand_chroma(u, limited), cr = expand_chroma(v, limited);
    rows[0][x] = clamp255(yy + 1.402f * cr);  // BT.601 YCbCr -> RGB
    rows[1][x] = clamp255(yy - 0.344136f * cb - 0.714136f * cr);
    rows[2][x] = clamp255(yy + 1.772f * cb);
  }
}

int planes_needed(GstVideoFormat format) {
  switch (format) {
    case GST_VIDEO_FORMAT_I420: return 3;
    case GST_VIDEO_FORMAT_NV12: return 2;
    default: return 1;
  }
}

}  // namespace

bool is_supported_format(GstVideoFormat format) {
  PackedLayout unused{};
  return packed_layout(format, unused) || format == GST_VIDEO_FORMAT_GRAY8 || format == GST_VIDEO_FORMAT_I420 ||
         format == GST_VIDEO_FORMAT_NV12;
}

const char *supported_formats_caps() {
  return "{ GRAY8, RGB, BGR, RGBA, BGRA, RGBx, BGRx, xRGB, xBGR, ARGB, ABGR, I420, NV12 }";
}

PixelView pixel_view(const GstVideoFrame &frame) {
  PixelView view;
  view.format = GST_VIDEO_FRAME_FORMAT(&frame);
  if (!is_supported_format(view.format)) {
    throw std::invalid_argument(std::string("unsupported video format ") + gst_video_format_to_string(view.format));
  }
  view.width = GST_VIDEO_FRAME_WIDTH(&frame);
  view.height = GST_VIDEO_FRAME_HEIGHT(&frame);
  const int planes = std::min(3, static_cast<int>(GST_VIDEO_FRAME_N_PLANES(&frame)));
  for (int p = 0; p < planes; ++p) {
    view.planes[p] = static_cast<const uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, p));
    view.strides[p] = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, p);
  }
  view.limited_range = GST_VIDEO_INFO_IS_YUV(&frame.info) &&
                       frame.info.colorimetry.range == GST_VIDEO_COLOR_RANGE_16_235;
  return view;
}

Region clamp_region(const Region &region, int width, int height) {
  // 64-bit arithmetic: a fuzzer (or an upstream meta) may hand in any int.
  const int64_t x0 = std::clamp<int64_t>(region.x, 0, width);
  const int64_t y0 = std::clamp<int64_t>(region.y, 0, height);
  const int64_t x1 = std::clamp<int64_t>(static_cast<int64_t>(region.x) + std::max(0, region.width), 0, width);
  const int64_t y1 = std::clamp<int64_t>(static_cast<int64_t>(region.y) + std::max(0, region.height), 0, height);
  return Region{static_cast<int>(x0), static_cast<int>(y0), static_cast<int>(x1 - x0), static_cast<int>(y1 - y0)};
}

void convert_region(const PixelView &view, const Region &region, const InputLayout &layout, float *out) {
  if (!is_supported_format(view.format)) throw std::invalid_argument("convert: unsupported video format");
  if (layout.channels != 1 && layout.channels != 3) {
    throw std::invalid_argument("convert: models with " + std::to_string(layout.channels) +
                                " channels are not supported (1 or 3)");
  }
  if (layout.height <= 0 || layout.width <= 0) throw std::invalid_argument("convert: empty model input size");
  const size_t channels = static_cast<size_t>(layout.channels);
  for (const auto *v : {&layout.mean, &layout.std}) {
    if (v->size() != channels && v->size() != 1) throw std::invalid_argument("convert: mean/std size mismatch");
  }
  for (double s : layout.std) {
    if (s == 0.0 || !std::isfinite(s)) throw std::invalid_argument("convert: std must be finite and non-zero");
  }
  if (region.width <= 0 || region.height <= 0 || region.x < 0 || region.y < 0 ||
      static_cast<int64_t>(region.x) + region.width > view.width ||
      static_cast<int64_t>(region.y) + region.height > view.height) {
    throw std::invalid_argument("convert: region is empty or outside the frame");
  }
  for (int p = 0; p < planes_needed(view.format); ++p) {
    if (!view.planes[p] || view.strides[p] <= 0) throw std::invalid_argument("convert: missing plane");
  }
  if (!out) throw std::invalid_argument("convert: null output");

  const int C = layout.channels, H = layout.height, W = layout.width;
  const int width = region.width;
  const auto horizontal = make_taps(width, W);
  const auto vertical = make_taps(region.height, H);

  // Vertical pass first: each source row is converted once and added, with its weight, into the output
  // rows it contributes to (contiguous multiply-adds the compiler vectorises). The horizontal taps then
  // run on H rows only instead of every source row. Memory: C x H x region width floats.
  // (source row, output row, weight) for every vertical tap, ordered by source row: one allocation a frame.
  struct Contribution {
    int source, row;
    float weight;
  };
  std::vector<Contribution> contributions;
  contributions.reserve(static_cast<size_t>(H) * 4);
  for (int y = 0; y < H; ++y) {
    const auto &t = vertical[static_cast<size_t>(y)];
    for (size_t j = 0; j < t.weights.size(); ++j) contributions.push_back({t.first + static_cast<int>(j), y, t.weights[j]});
  }
  // Area taps already come in source order; bilinear taps of neighbouring outputs can interleave.
  std::stable_sort(contributions.begin(), contributions.end(),
                   [](const Contribution &a, const Contribution &b) { return a.source < b.source; });
  std::vector<float> source_rows[3];
  for (int c = 0; c < C; ++c) source_rows[c].resize(static_cast<size_t>(width));
  std::vector<float> columns(static_cast<size_t>(C) * H * width, 0.0f);
  for (size_t k = 0; k < contributions.size();) {
    const int sy = contributions[k].source;
    size_t end = k;
    while (end < contributions.size() && contributions[end].source == sy) ++end;
    read_row(view, region, sy, C, source_rows);  // source rows no output covers are never read
    for (int c = 0; c < C; ++c) {
      const float *src = source_rows[c].data();
      for (size_t i = k; i < end; ++i) {
        float *acc = columns.data() + (static_cast<size_t>(c) * H + contributions[i].row) * width;
        const float w = contributions[i].weight;
        for (int x = 0; x < width; ++x) acc[x] += w * src[x];
      }
    }
    k = end;
  }
  // Horizontal pass and normalisation.
  for (int c = 0; c < C; ++c) {
    const double mean = layout.mean.size() == 1 ? layout.mean[0] : layout.mean[static_cast<size_t>(c)];
    const double std = layout.std.size() == 1 ? layout.std[0] : layout.std[static_cast<size_t>(c)];
    const float scale = static_cast<float>(1.0 / (255.0 * std));
    const float offset = static_cast<float>(mean / std);
    float *dst = out + static_cast<size_t>(c) * H * W;
    for (int y = 0; y < H; ++y) {
      const float *row = columns.data() + (static_cast<size_t>(c) * H + y) * width;
      for (int x = 0; x < W; ++x) {
        const auto &t = horizontal[static_cast<size_t>(x)];
        const float *src = row + t.first;
        float sum = 0.0f;
        for (size_t j = 0; j < t.weights.size(); ++j) sum += t.weights[j] * src[j];
        dst[static_cast<size_t>(y) * W + x] = sum * scale - offset;
      }
    }
  }
}

}  // namespace cff::gst
