// The one conversion between frames and model images: formats, strides, regions, resizing,
// normalisation, and back (write_image); the format lists the elements' caps come from.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "fixture.h"
#include "frame_convert.h"

using namespace cff::gst;

namespace {

InputLayout grey_layout(int h, int w) { return InputLayout{1, h, w, {0.5}, {0.5}}; }
InputLayout rgb_layout(int h, int w) { return InputLayout{3, h, w, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}}; }

// An owned frame of any supported format, mapped through GStreamer so strides are real.
struct Frame {
  GstVideoInfo info;
  GstBuffer *buffer = nullptr;
  GstVideoFrame frame;

  // range: the YUV formats' colorimetry range (UNKNOWN keeps GStreamer's default, limited).
  Frame(GstVideoFormat format, int width, int height, GstVideoColorRange range = GST_VIDEO_COLOR_RANGE_UNKNOWN) {
    cff_gst_test::ensure_gst();
    gst_video_info_set_format(&info, format, width, height);
    if (range != GST_VIDEO_COLOR_RANGE_UNKNOWN) info.colorimetry.range = range;
    buffer = gst_buffer_new_allocate(nullptr, info.size, nullptr);
    gst_buffer_memset(buffer, 0, 0, info.size);
    EXPECT_TRUE(gst_video_frame_map(&frame, &info, buffer, GST_MAP_READWRITE));
  }
  ~Frame() {
    gst_video_frame_unmap(&frame);
    gst_buffer_unref(buffer);
  }
  // The whole buffer (every plane) and byte offsets into it.
  uint8_t *base() { return static_cast<uint8_t *>(frame.map[0].data); }
  std::vector<uint8_t> bytes() {
    GstMapInfo map;
    EXPECT_TRUE(gst_buffer_map(buffer, &map, GST_MAP_READ));
    std::vector<uint8_t> out(map.data, map.data + map.size);
    gst_buffer_unmap(buffer, &map);
    return out;
  }
  // Byte offset of component c (0 for grey/Y; R, G, B) of pixel (x, y) in the buffer.
  size_t offset(int x, int y, int c) const {
    return GST_VIDEO_INFO_PLANE_OFFSET(&info, 0) + static_cast<size_t>(y) * GST_VIDEO_INFO_PLANE_STRIDE(&info, 0) +
           static_cast<size_t>(x) * GST_VIDEO_INFO_COMP_PSTRIDE(&info, c) + GST_VIDEO_INFO_COMP_POFFSET(&info, c);
  }
  uint8_t *row(int plane, int y) {
    return static_cast<uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, plane)) +
           static_cast<ptrdiff_t>(y) * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, plane);
  }
};

std::vector<float> convert(const Frame &f, Region region, const InputLayout &layout) {
  std::vector<float> out(static_cast<size_t>(layout.channels) * layout.height * layout.width);
  convert_region(pixel_view(f.frame), region, layout, out.data());
  return out;
}

// Per-channel statistics unlike the tests' usual 0.5 / 0.5, so a channel mix-up shows.
InputLayout imagenet_layout(int channels, int h, int w) {
  if (channels == 1) return InputLayout{1, h, w, {0.45}, {0.22}};
  return InputLayout{3, h, w, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};
}

// Random bytes in every plane, luma inside lo..hi.
void fill_random(Frame &f, std::mt19937 &rng, int lo = 0, int hi = 255) {
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(&f.frame); ++p) {
    const int rows = p == 0 ? f.info.height : (f.info.height + 1) / 2;
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < GST_VIDEO_FRAME_PLANE_STRIDE(&f.frame, p); ++x)
        f.row(static_cast<int>(p), y)[x] = static_cast<uint8_t>(rng() % 256);
  }
  if (GST_VIDEO_INFO_IS_RGB(&f.info)) return;
  for (int y = 0; y < f.info.height; ++y)
    for (int x = 0; x < f.info.width; ++x) f.row(0, y)[x] = static_cast<uint8_t>(lo + rng() % (hi - lo + 1));
}

// The bytes of a zeroed w x h frame after write_image.
std::vector<uint8_t> written(GstVideoFormat format, int w, int h, const InputLayout &layout,
                             const std::vector<float> &image,
                             GstVideoColorRange range = GST_VIDEO_COLOR_RANGE_UNKNOWN) {
  Frame f(format, w, h, range);
  write_image(mutable_pixel_view(f.frame), layout, image.data());
  return f.bytes();
}

}  // namespace

TEST(FrameConvert, FormatListsAreTheElementsCaps) {
  cff_gst_test::ensure_gst();
  // These strings are the elements' caps: cffclassify reads all, cffdenoise writes back into its
  // own frames, cffgenerate makes frames in the model's native layout.
  EXPECT_EQ(formats_caps(FormatUse::read),
            "{ GRAY8, RGB, BGR, RGBA, BGRA, RGBx, BGRx, xRGB, xBGR, ARGB, ABGR, I420, NV12 }");
  EXPECT_EQ(formats_caps(FormatUse::read, 3), formats_caps(FormatUse::read));
  EXPECT_EQ(formats_caps(FormatUse::write), "{ GRAY8, I420, NV12, RGB, BGR, RGBx, BGRx }");
  EXPECT_EQ(formats_caps(FormatUse::write, 1), "{ GRAY8, I420, NV12 }");
  EXPECT_EQ(formats_caps(FormatUse::write, 3), "{ RGB, BGR, RGBx, BGRx }");
  EXPECT_EQ(formats_caps(FormatUse::native), "{ GRAY8, RGB }");
  EXPECT_EQ(native_format(1), GST_VIDEO_FORMAT_GRAY8);
  EXPECT_EQ(native_format(3), GST_VIDEO_FORMAT_RGB);
  EXPECT_EQ(native_format(2), GST_VIDEO_FORMAT_UNKNOWN);
  EXPECT_TRUE(format_fits(GST_VIDEO_FORMAT_NV12, FormatUse::write, 1));
  EXPECT_FALSE(format_fits(GST_VIDEO_FORMAT_NV12, FormatUse::write, 3));
  EXPECT_FALSE(format_fits(GST_VIDEO_FORMAT_RGBA, FormatUse::write, 3));
  EXPECT_TRUE(format_fits(GST_VIDEO_FORMAT_RGBA, FormatUse::read, 1));
  GstCaps *caps = video_caps(FormatUse::write, 1);
  ASSERT_NE(caps, nullptr);
  EXPECT_EQ(gst_caps_get_size(caps), 1u);
  gst_caps_unref(caps);
  // The packed layouts agree with GStreamer's own component offsets.
  for (auto format : {GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGR, GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA,
                      GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_xRGB, GST_VIDEO_FORMAT_xBGR,
                      GST_VIDEO_FORMAT_ARGB, GST_VIDEO_FORMAT_ABGR}) {
    PackedLayout layout;
    ASSERT_TRUE(packed_layout(format, layout));
    const GstVideoFormatInfo *finfo = gst_video_format_get_info(format);
    EXPECT_EQ(layout.bytes, GST_VIDEO_FORMAT_INFO_PSTRIDE(finfo, 0));
    EXPECT_EQ(layout.r, static_cast<int>(GST_VIDEO_FORMAT_INFO_POFFSET(finfo, 0)));
    EXPECT_EQ(layout.g, static_cast<int>(GST_VIDEO_FORMAT_INFO_POFFSET(finfo, 1)));
    EXPECT_EQ(layout.b, static_cast<int>(GST_VIDEO_FORMAT_INFO_POFFSET(finfo, 2)));
  }
  PackedLayout unused;
  EXPECT_FALSE(packed_layout(GST_VIDEO_FORMAT_GRAY8, unused));
}

TEST(FrameConvert, LimitedRangeLumaRule) {
  for (int y = 16; y <= 235; ++y) {
    const float full = expand_limited_luma(static_cast<float>(y));
    EXPECT_EQ(std::lround(compress_to_limited_luma(full)), y);
  }
  EXPECT_FLOAT_EQ(expand_limited_luma(16.0f), 0.0f);
  EXPECT_FLOAT_EQ(expand_limited_luma(235.0f), 255.0f);
  EXPECT_DOUBLE_EQ(compress_to_limited_luma(255.0), 235.0);
}

// Pixels -> model input -> pixels gives the pixels back, for every format: the writable formats into
// themselves (other bytes untouched), the read-only ones into the native format of their channels.
TEST(FrameConvert, RoundTripGivesThePixelsBack) {
  std::mt19937 rng(11);
  const int w = 13, h = 6;  // odd width: padded rows for 3-byte formats
  struct Case {
    GstVideoFormat format;
    GstVideoColorRange range;
  };
  std::vector<Case> cases;
  for (auto format : {GST_VIDEO_FORMAT_GRAY8, GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGR, GST_VIDEO_FORMAT_RGBA,
                      GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_xRGB,
                      GST_VIDEO_FORMAT_xBGR, GST_VIDEO_FORMAT_ARGB, GST_VIDEO_FORMAT_ABGR})
    cases.push_back({format, GST_VIDEO_COLOR_RANGE_UNKNOWN});
  for (auto format : {GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12})
    for (auto range : {GST_VIDEO_COLOR_RANGE_16_235, GST_VIDEO_COLOR_RANGE_0_255}) cases.push_back({format, range});
  for (const auto &k : cases) {
    const std::string name = std::string(gst_video_format_to_string(k.format)) +
                             (k.range == GST_VIDEO_COLOR_RANGE_16_235 ? " limited" : "");
    const bool limited = k.range == GST_VIDEO_COLOR_RANGE_16_235;
    Frame f(k.format, w, h, k.range);
    fill_random(f, rng, limited ? 16 : 0, limited ? 235 : 255);
    ASSERT_EQ(pixel_view(f.frame).limited_range, limited) << name;
    const int channels = GST_VIDEO_INFO_IS_RGB(&f.info) ? 3 : 1;
    const InputLayout layout = imagenet_layout(channels, h, w);
    std::vector<float> image(static_cast<size_t>(channels) * h * w);
    convert_region(pixel_view(f.frame), {0, 0, w, h}, layout, image.data());

    const auto before = f.bytes();
    const bool in_place = format_fits(k.format, FormatUse::write, channels);
    Frame out(in_place ? k.format : native_format(channels), w, h, k.range);
    if (in_place) std::memcpy(out.base(), before.data(), before.size());
    // Scramble the components the image goes to, so that only write_image can restore them.
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < channels; ++c) out.base()[out.offset(x, y, c)] ^= 0x5a;
    write_image(mutable_pixel_view(out.frame), layout, image.data());
    const auto after = out.bytes();

    std::vector<bool> component(after.size(), false);
    int worst = 0;
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        for (int c = 0; c < channels; ++c) {
          component[out.offset(x, y, c)] = true;
          worst = std::max(worst, std::abs(after[out.offset(x, y, c)] - before[f.offset(x, y, c)]));
        }
      }
    }
    // The promise is within one code value; at 1:1 scale 8-bit values in fact come back exactly.
    EXPECT_LE(worst, 1) << name;
    EXPECT_EQ(worst, 0) << name;
    if (in_place) {
      for (size_t i = 0; i < after.size(); ++i) {
        if (!component[i]) {
          ASSERT_EQ(after[i], before[i]) << name << ": byte " << i << " (chroma, alpha, padding)";
        }
      }
    }
  }
}

TEST(FrameConvert, KnownValuesWriteKnownPixels) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // Grey, mean = std = 0.5: p = 255 * (x / 2 + 1 / 2), rounded to nearest, clamped; non-finite -> 0.
  const std::vector<float> grey = {-1.0f, 1.0f, 0.2f, -0.2f, 3.0f, -3.0f, nan, inf};
  const std::vector<int> full = {0, 255, 153, 102, 255, 0, 0, 0};
  const auto g = written(GST_VIDEO_FORMAT_GRAY8, 8, 1, InputLayout{1, 1, 8, {0.5}, {0.5}}, grey);
  for (size_t i = 0; i < full.size(); ++i) EXPECT_EQ(g[i], full[i]) << i;
  // Limited-range luma: 16 + p * 219 / 255 (153 -> 147.4, 102 -> 103.6); the second row repeats the first.
  const std::vector<int> limited = {16, 235, 147, 104, 235, 16, 16, 16};
  std::vector<float> two_rows = grey;
  two_rows.insert(two_rows.end(), grey.begin(), grey.end());
  for (auto format : {GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12}) {
    const auto y = written(format, 8, 2, InputLayout{1, 2, 8, {0.5}, {0.5}}, two_rows);
    for (size_t i = 0; i < limited.size(); ++i) {
      EXPECT_EQ(y[i], limited[i]) << gst_video_format_to_string(format) << " " << i;
    }
    const auto yf = written(format, 8, 2, InputLayout{1, 2, 8, {0.5}, {0.5}}, std::vector<float>(16, 0.2f),
                            GST_VIDEO_COLOR_RANGE_0_255);
    EXPECT_EQ(yf[0], 153) << "full-range YUV is not compressed";
  }
  // Colour with per-channel statistics: x = 0 is the mean, 255 * (0.485, 0.456, 0.406) = (123.7, 116.3,
  // 103.5); x = 1 is mean + std: 255 * (0.714, 0.680, 0.631) = (182.1, 173.4, 160.9).
  const InputLayout rgb{3, 1, 2, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};
  const std::vector<float> image = {0.0f, 1.0f, 0.0f, 1.0f, 0.0f, 1.0f};  // R R G G B B
  const auto p = written(GST_VIDEO_FORMAT_BGRx, 2, 1, rgb, image);
  EXPECT_EQ(std::vector<int>(p.begin(), p.begin() + 3), (std::vector<int>{104, 116, 124}));  // B, G, R
  EXPECT_EQ(std::vector<int>(p.begin() + 4, p.begin() + 7), (std::vector<int>{161, 173, 182}));
  EXPECT_EQ(p[3], 0) << "padding untouched";
  const auto q = written(GST_VIDEO_FORMAT_RGB, 2, 1, rgb, image);
  EXPECT_EQ(std::vector<int>(q.begin(), q.begin() + 6), (std::vector<int>{124, 116, 104, 182, 173, 161}));
}

TEST(FrameConvert, WriteBadArguments_n) {
  Frame grey(GST_VIDEO_FORMAT_GRAY8, 4, 4), rgba(GST_VIDEO_FORMAT_RGBA, 4, 4), rgb(GST_VIDEO_FORMAT_RGB, 4, 4);
  std::vector<float> image(3 * 4 * 4, 0.0f);
  const InputLayout one{1, 4, 4, {0.5}, {0.5}}, three{3, 4, 4, {0.5}, {0.5}};
  EXPECT_NO_THROW(write_image(mutable_pixel_view(grey.frame), one, image.data()));
  EXPECT_THROW(write_image(mutable_pixel_view(grey.frame), three, image.data()), std::invalid_argument);
  EXPECT_THROW(write_image(mutable_pixel_view(rgb.frame), one, image.data()), std::invalid_argument);
  EXPECT_THROW(write_image(mutable_pixel_view(rgba.frame), three, image.data()), std::invalid_argument);
  EXPECT_THROW(write_image(mutable_pixel_view(grey.frame), InputLayout{1, 4, 5, {0.5}, {0.5}}, image.data()),
               std::invalid_argument);
  EXPECT_THROW(write_image(mutable_pixel_view(grey.frame), InputLayout{1, 4, 4, {0.5}, {0.0}}, image.data()),
               std::invalid_argument);
  EXPECT_THROW(write_image(mutable_pixel_view(rgb.frame), InputLayout{3, 4, 4, {0.5, 0.5}, {0.5}}, image.data()),
               std::invalid_argument);
  EXPECT_THROW(write_image(mutable_pixel_view(grey.frame), one, nullptr), std::invalid_argument);
  auto view = mutable_pixel_view(grey.frame);
  view.planes[0] = nullptr;
  EXPECT_THROW(write_image(view, one, image.data()), std::invalid_argument);
  view = mutable_pixel_view(grey.frame);
  view.format = GST_VIDEO_FORMAT_UYVY;
  EXPECT_THROW(write_image(view, one, image.data()), std::invalid_argument);
}

TEST(FrameConvert, GreyAtModelSizeIsJustNormalised) {
  Frame f(GST_VIDEO_FORMAT_GRAY8, 28, 28);
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) f.row(0, y)[x] = static_cast<uint8_t>((x * 9 + y * 3) % 256);
  auto out = convert(f, {0, 0, 28, 28}, grey_layout(28, 28));
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) EXPECT_NEAR(out[y * 28 + x], ((x * 9 + y * 3) % 256) / 127.5 - 1.0, 1e-5);
}

TEST(FrameConvert, EveryPackedRgbFormatReadsTheSameColours) {
  const GstVideoFormat formats[] = {GST_VIDEO_FORMAT_RGB,  GST_VIDEO_FORMAT_BGR,  GST_VIDEO_FORMAT_RGBA,
                                    GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_BGRx,
                                    GST_VIDEO_FORMAT_xRGB, GST_VIDEO_FORMAT_xBGR, GST_VIDEO_FORMAT_ARGB,
                                    GST_VIDEO_FORMAT_ABGR};
  const int w = 13, h = 7;  // odd width: rows are padded for 3-byte formats
  auto colour = [](int x, int y, int c) { return static_cast<uint8_t>((x * 17 + y * 29 + c * 71) % 256); };
  std::vector<float> reference_rgb, reference_luma;
  for (auto format : formats) {
    Frame f(format, w, h);
    const auto *finfo = f.info.finfo;
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        uint8_t *p = f.row(0, y) + x * GST_VIDEO_FORMAT_INFO_PSTRIDE(finfo, 0);
        for (int c = 0; c < 3; ++c) p[GST_VIDEO_FORMAT_INFO_POFFSET(finfo, c)] = colour(x, y, c);
      }
    }
    auto rgb = convert(f, {0, 0, w, h}, rgb_layout(h, w));
    auto luma = convert(f, {0, 0, w, h}, grey_layout(h, w));
    if (reference_rgb.empty()) {
      reference_rgb = rgb;
      reference_luma = luma;
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          for (int c = 0; c < 3; ++c) EXPECT_NEAR(rgb[(c * h + y) * w + x], colour(x, y, c) / 127.5 - 1.0, 1e-5);
          const double l = 0.299 * colour(x, y, 0) + 0.587 * colour(x, y, 1) + 0.114 * colour(x, y, 2);
          EXPECT_NEAR(luma[y * w + x], l / 127.5 - 1.0, 1e-4);
        }
      }
    } else {
      EXPECT_EQ(rgb, reference_rgb) << gst_video_format_to_string(format);
      EXPECT_EQ(luma, reference_luma) << gst_video_format_to_string(format);
    }
  }
}

TEST(FrameConvert, YuvLumaIsExpandedFromLimitedRangeAndGreyStaysGrey) {
  for (auto format : {GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12}) {
    Frame f(format, 8, 6);
    ASSERT_EQ(f.info.colorimetry.range, GST_VIDEO_COLOR_RANGE_16_235);
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 8; ++x) f.row(0, y)[x] = static_cast<uint8_t>(16 + 20 * x);
    for (int y = 0; y < 3; ++y) {
      std::fill(f.row(1, y), f.row(1, y) + (format == GST_VIDEO_FORMAT_NV12 ? 8 : 4), 128);
      if (format == GST_VIDEO_FORMAT_I420) std::fill(f.row(2, y), f.row(2, y) + 4, 128);
    }
    auto luma = convert(f, {0, 0, 8, 6}, grey_layout(6, 8));
    auto rgb = convert(f, {0, 0, 8, 6}, rgb_layout(6, 8));
    for (int x = 0; x < 8; ++x) {
      const double expected = std::min(255.0, 20.0 * x * 255.0 / 219.0) / 127.5 - 1.0;
      EXPECT_NEAR(luma[x], expected, 1e-4);
      for (int c = 0; c < 3; ++c) EXPECT_NEAR(rgb[c * 48 + x], expected, 1e-4);  // neutral chroma = grey
    }
  }
}

TEST(FrameConvert, DownscalingAveragesAndUpscalingKeepsConstants) {
  Frame f(GST_VIDEO_FORMAT_GRAY8, 8, 8);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) f.row(0, y)[x] = static_cast<uint8_t>(((x + y) % 2) * 200);
  auto half = convert(f, {0, 0, 8, 8}, InputLayout{1, 4, 4, {0.0}, {1.0}});
  for (float v : half) EXPECT_NEAR(v, 100.0 / 255.0, 1e-5);  // a checkerboard averages to its mean
  Frame g(GST_VIDEO_FORMAT_GRAY8, 3, 5);
  for (int y = 0; y < 5; ++y) std::fill(g.row(0, y), g.row(0, y) + 3, 77);
  for (float v : convert(g, {0, 0, 3, 5}, InputLayout{1, 17, 11, {0.0}, {1.0}})) EXPECT_NEAR(v, 77.0 / 255.0, 1e-5);
}

TEST(FrameConvert, RegionEqualsTheCroppedFrame) {
  Frame big(GST_VIDEO_FORMAT_RGB, 40, 30);
  Frame crop(GST_VIDEO_FORMAT_RGB, 10, 12);
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 120; ++x) big.row(0, y)[x] = static_cast<uint8_t>((x * 7 + y * 13) % 256);
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 30; ++x) crop.row(0, y)[x] = big.row(0, y + 5)[x + 3 * 7];
  EXPECT_EQ(convert(big, {7, 5, 10, 12}, rgb_layout(28, 28)), convert(crop, {0, 0, 10, 12}, rgb_layout(28, 28)));
}

TEST(FrameConvert, ClampRegion) {
  auto r = clamp_region({-5, 3, 20, 100}, 10, 10);
  EXPECT_EQ(r.x, 0);
  EXPECT_EQ(r.y, 3);
  EXPECT_EQ(r.width, 10);
  EXPECT_EQ(r.height, 7);
  EXPECT_EQ(clamp_region({20, 0, 5, 5}, 10, 10).width, 0);
  EXPECT_EQ(clamp_region({2147483000, 0, 2147483000, 5}, 10, 10).width, 0);
  // An upstream meta's unsigned sizes of 2^31 and more are clamped to the frame, not wrapped to negatives.
  const guint huge = 4294967295u;
  r = clamp_region(guint{2}, guint{1}, huge, guint{2147483648u}, 10, 10);
  EXPECT_EQ(r.x, 2);
  EXPECT_EQ(r.y, 1);
  EXPECT_EQ(r.width, 8);
  EXPECT_EQ(r.height, 9);
  EXPECT_EQ(clamp_region(int64_t{1} << 62, 0, 5, 5, 10, 10).width, 0);
}

TEST(FrameConvert, RandomSizesFormatsAndRegionsStayInRange) {
  const GstVideoFormat formats[] = {GST_VIDEO_FORMAT_GRAY8, GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_xBGR,
                                    GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12};
  std::mt19937 rng(3);
  for (int trial = 0; trial < 60; ++trial) {
    const auto format = formats[trial % 5];
    const int w = 1 + static_cast<int>(rng() % 50), h = 1 + static_cast<int>(rng() % 50);
    Frame f(format, w, h);
    for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(&f.frame); ++p) {
      const int rows = p == 0 ? h : (h + 1) / 2;
      for (int y = 0; y < rows; ++y)
        for (int x = 0; x < GST_VIDEO_FRAME_PLANE_STRIDE(&f.frame, p); ++x) f.row(static_cast<int>(p), y)[x] = rng() % 256;
    }
    const Region region = clamp_region({static_cast<int>(rng() % w), static_cast<int>(rng() % h),
                                        1 + static_cast<int>(rng() % w), 1 + static_cast<int>(rng() % h)},
                                       w, h);
    const int mh = 1 + static_cast<int>(rng() % 40), mw = 1 + static_cast<int>(rng() % 40);
    for (const auto &layout : {grey_layout(mh, mw), rgb_layout(mh, mw)}) {
      for (float v : convert(f, region, layout)) {
        ASSERT_TRUE(std::isfinite(v));
        ASSERT_GE(v, -1.0f - 1e-5f);
        ASSERT_LE(v, 1.0f + 1e-5f);
      }
    }
  }
}

TEST(FrameConvert, BadArguments_n) {
  Frame f(GST_VIDEO_FORMAT_GRAY8, 8, 8);
  std::vector<float> out(3 * 28 * 28);
  auto view = pixel_view(f.frame);
  EXPECT_THROW(convert_region(view, {0, 0, 0, 8}, grey_layout(28, 28), out.data()), std::invalid_argument);
  EXPECT_THROW(convert_region(view, {4, 4, 8, 8}, grey_layout(28, 28), out.data()), std::invalid_argument);
  EXPECT_THROW(convert_region(view, {0, 0, 8, 8}, InputLayout{2, 28, 28, {0.5}, {0.5}}, out.data()),
               std::invalid_argument);
  EXPECT_THROW(convert_region(view, {0, 0, 8, 8}, InputLayout{1, 28, 28, {0.5}, {0.0}}, out.data()),
               std::invalid_argument);
  EXPECT_THROW(convert_region(view, {0, 0, 8, 8}, grey_layout(0, 28), out.data()), std::invalid_argument);
  view.format = GST_VIDEO_FORMAT_UYVY;
  EXPECT_THROW(convert_region(view, {0, 0, 8, 8}, grey_layout(28, 28), out.data()), std::invalid_argument);
  EXPECT_FALSE(format_fits(GST_VIDEO_FORMAT_UYVY, FormatUse::read));
}
