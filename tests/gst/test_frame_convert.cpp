// The one frame -> model-input conversion: formats, strides, regions, resizing, normalisation.
#include <cmath>
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

  Frame(GstVideoFormat format, int width, int height) {
    cff_gst_test::ensure_gst();
    gst_video_info_set_format(&info, format, width, height);
    buffer = gst_buffer_new_allocate(nullptr, info.size, nullptr);
    gst_buffer_memset(buffer, 0, 0, info.size);
    EXPECT_TRUE(gst_video_frame_map(&frame, &info, buffer, GST_MAP_READWRITE));
  }
  ~Frame() {
    gst_video_frame_unmap(&frame);
    gst_buffer_unref(buffer);
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

}  // namespace

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
  EXPECT_FALSE(is_supported_format(GST_VIDEO_FORMAT_UYVY));
}
