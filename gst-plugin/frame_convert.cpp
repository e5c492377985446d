#include "frame_convert.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace cff::gst {
namespace {

// Every format the elements handle, once. The order is the caps' order (preference in negotiation).
struct FormatEntry {
  GstVideoFormat format;
  int channels;         // what a pixel holds: 1 (grey or Y'CbCr, whose luma a 1-channel model takes) or 3 (RGB)
  PackedLayout packed;  // packed RGB formats; bytes == 0 for the others
  bool write;           // FormatUse::write
  bool native;          // FormatUse::native
};

// The alpha formats and the x-first layouts are read only: write_image could fill them, but no element
// writes them (cffdenoise's caps have never offered them).
constexpr FormatEntry kFormats[] = {
    {GST_VIDEO_FORMAT_GRAY8, 1, {}, true, true},
    {GST_VIDEO_FORMAT_RGB, 3, {0, 1, 2, 3}, true, true},
    {GST_VIDEO_FORMAT_BGR, 3, {2, 1, 0, 3}, true, false},
    {GST_VIDEO_FORMAT_RGBA, 3, {0, 1, 2, 4}, false, false},
    {GST_VIDEO_FORMAT_BGRA, 3, {2, 1, 0, 4}, false, false},
    {GST_VIDEO_FORMAT_RGBx, 3, {0, 1, 2, 4}, true, false},
    {GST_VIDEO_FORMAT_BGRx, 3, {2, 1, 0, 4}, true, false},
    {GST_VIDEO_FORMAT_xRGB, 3, {1, 2, 3, 4}, false, false},
    {GST_VIDEO_FORMAT_xBGR, 3, {3, 2, 1, 4}, false, false},
    {GST_VIDEO_FORMAT_ARGB, 3, {1, 2, 3, 4}, false, false},
    {GST_VIDEO_FORMAT_ABGR, 3, {3, 2, 1, 4}, false, false},
    {GST_VIDEO_FORMAT_I420, 1, {}, true, false},
    {GST_VIDEO_FORMAT_NV12, 1, {}, true, false},
};

const FormatEntry *find_format(GstVideoFormat format) {
  for (const auto &e : kFormats) {
    if (e.format == format) return &e;
  }
  return nullptr;
}

bool entry_fits(const FormatEntry &e, FormatUse use, int channels) {
  if (use == FormatUse::read) return channels == 0 || channels == 1 || channels == 3;
  if (channels != 0 && channels != e.channels) return false;
  return use == FormatUse::write ? e.write : e.native;
}

bool is_yuv(GstVideoFormat format) { return format == GST_VIDEO_FORMAT_I420 || format == GST_VIDEO_FORMAT_NV12; }

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

inline float expand_luma(float y, bool limited) { return limited ? expand_limited_luma(y) : y; }
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

template <typename Byte>
BasicPixelView<Byte> make_view(const GstVideoFrame &frame) {
  BasicPixelView<Byte> view;
  view.format = GST_VIDEO_FRAME_FORMAT(&frame);
  if (!format_fits(view.format, FormatUse::read)) {
    throw std::invalid_argument(std::string("unsupported video format ") + gst_video_format_to_string(view.format));
  }
  view.width = GST_VIDEO_FRAME_WIDTH(&frame);
  view.height = GST_VIDEO_FRAME_HEIGHT(&frame);
  const int planes = std::min(3, static_cast<int>(GST_VIDEO_FRAME_N_PLANES(&frame)));
  for (int p = 0; p < planes; ++p) {
    view.planes[p] = static_cast<Byte *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, p));
    view.strides[p] = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, p);
  }
  view.limited_range = GST_VIDEO_INFO_IS_YUV(&frame.info) &&
                       frame.info.colorimetry.range == GST_VIDEO_COLOR_RANGE_16_235;
  return view;
}

void check_layout(const InputLayout &layout, const char *what) {
  if (layout.channels != 1 && layout.channels != 3) {
    throw std::invalid_argument(std::string(what) + ": models with " + std::to_string(layout.channels) +
                                " channels are not supported (1 or 3)");
  }
  if (layout.height <= 0 || layout.width <= 0) throw std::invalid_argument(std::string(what) + ": empty model size");
  const size_t channels = static_cast<size_t>(layout.channels);
  for (const auto *v : {&layout.mean, &layout.std}) {
    if (v->size() != channels && v->size() != 1) throw std::invalid_argument(std::string(what) + ": mean/std size");
  }
  for (double s : layout.std) {
    if (s == 0.0 || !std::isfinite(s)) throw std::invalid_argument(std::string(what) + ": std must be finite, non-zero");
  }
}

template <typename View>
void check_planes(const View &view, const char *what) {
  for (int p = 0; p < planes_needed(view.format); ++p) {
    if (!view.planes[p] || view.strides[p] <= 0) throw std::invalid_argument(std::string(what) + ": missing plane");
  }
}

}  // namespace

bool packed_layout(GstVideoFormat format, PackedLayout &layout) {
  const FormatEntry *e = find_format(format);
  if (!e || e->packed.bytes == 0) return false;
  layout = e->packed;
  return true;
}

bool format_fits(GstVideoFormat format, FormatUse use, int channels) {
  const FormatEntry *e = find_format(format);
  return e && entry_fits(*e, use, channels);
}

std::string formats_caps(FormatUse use, int channels) {
  std::string list;
  // channels 0: the 1-channel formats, then the 3-channel ones not listed yet.
  for (int c : {1, 3}) {
    if (channels != 0 && c != channels) continue;
    for (const auto &e : kFormats) {
      if (!entry_fits(e, use, c) || (channels == 0 && c == 3 && entry_fits(e, use, 1))) continue;
      list += (list.empty() ? "{ " : ", ") + std::string(gst_video_format_to_string(e.format));
    }
  }
  return list.empty() ? "{ }" : list + " }";
}

GstCaps *video_caps(FormatUse use, int channels) {
  const std::string caps = "video/x-raw, format = (string) " + formats_caps(use, channels) +
                           ", width = (int) [ 1, max ], height = (int) [ 1, max ], framerate = (fraction) [ 0/1, max ]";
  return gst_caps_from_string(caps.c_str());
}

GstVideoFormat native_format(int channels) {
  for (const auto &e : kFormats) {
    if (e.native && e.channels == channels) return e.format;
  }
  return GST_VIDEO_FORMAT_UNKNOWN;
}

PixelView pixel_view(const GstVideoFrame &frame) { return make_view<const uint8_t>(frame); }
MutablePixelView mutable_pixel_view(GstVideoFrame &frame) { return make_view<uint8_t>(frame); }

Region clamp_region(int64_t x, int64_t y, int64_t region_width, int64_t region_height, int width, int height) {
  // Inputs up to 2^32 in magnitude (an upstream meta's guint fields): the sums below cannot overflow.
  const auto bound = [](int64_t v) { return std::clamp<int64_t>(v, -(int64_t{1} << 40), int64_t{1} << 40); };
  x = bound(x), y = bound(y), region_width = bound(region_width), region_height = bound(region_height);
  const int64_t x0 = std::clamp<int64_t>(x, 0, width);
  const int64_t y0 = std::clamp<int64_t>(y, 0, height);
  const int64_t x1 = std::clamp<int64_t>(x + std::max<int64_t>(0, region_width), 0, width);
  const int64_t y1 = std::clamp<int64_t>(y + std::max<int64_t>(0, region_height), 0, height);
  return Region{static_cast<int>(x0), static_cast<int>(y0), static_cast<int>(x1 - x0), static_cast<int>(y1 - y0)};
}

Region clamp_region(const Region &region, int width, int height) {
  return clamp_region(region.x, region.y, region.width, region.height, width, height);
}

void convert_region(const PixelView &view, const Region &region, const InputLayout &layout, float *out) {
  if (!format_fits(view.format, FormatUse::read)) throw std::invalid_argument("convert: unsupported video format");
  check_layout(layout, "convert");
  if (region.width <= 0 || region.height <= 0 || region.x < 0 || region.y < 0 ||
      static_cast<int64_t>(region.x) + region.width > view.width ||
      static_cast<int64_t>(region.y) + region.height > view.height) {
    throw std::invalid_argument("convert: region is empty or outside the frame");
  }
  check_planes(view, "convert");
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
    const double mean = layout.mean_of(c), std = layout.std_of(c);
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

void write_image(const MutablePixelView &view, const InputLayout &layout, const float *image) {
  if (!format_fits(view.format, FormatUse::write, layout.channels)) {
    throw std::invalid_argument("write: format does not take a " + std::to_string(layout.channels) + "-channel image");
  }
  check_layout(layout, "write");
  if (layout.height != view.height || layout.width != view.width) {
    throw std::invalid_argument("write: image size differs from the frame's");
  }
  check_planes(view, "write");
  if (!image) throw std::invalid_argument("write: null image");

  // Component c of pixel x is byte offset[c] + x * step of a row of plane 0 (the Y plane for YUV).
  PackedLayout packed{0, 0, 0, 1};
  packed_layout(view.format, packed);
  const int offset[3] = {packed.r, packed.g, packed.b};
  const ptrdiff_t step = packed.bytes;
  // As convert_region: only YUV luma has a limited range.
  const bool limited = view.limited_range && is_yuv(view.format);
  const int H = view.height, W = view.width;
  for (int c = 0; c < layout.channels; ++c) {
    const double mean = layout.mean_of(c), sd = layout.std_of(c);
    for (int y = 0; y < H; ++y) {
      uint8_t *row = view.planes[0] + static_cast<ptrdiff_t>(y) * view.strides[0] + offset[c];
      const float *in = image + (static_cast<size_t>(c) * H + y) * W;
      for (int x = 0; x < W; ++x) {
        // Clamp in full range, then compress: limited luma stays inside 16..235 as convert_region assumes.
        double p = std::isfinite(in[x]) ? 255.0 * (in[x] * sd + mean) : 0.0;
        p = std::clamp(p, 0.0, 255.0);
        if (limited) p = compress_to_limited_luma(p);
        row[x * step] = static_cast<uint8_t>(std::lround(p));
      }
    }
  }
}

}  // namespace cff::gst
