// The overlay cffclassify draws: Pango/cairo marks blended by GstVideoOverlayComposition. Pixels
// change inside the region and nowhere else in every supported format, the marks' colour tells in
// from out of distribution, any UTF-8 text renders, the size follows the region, and several
// threads may draw at once.
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fixture.h"
#include "overlay.h"

using namespace cff::gst;

namespace {

// An owned frame mapped through GStreamer (real strides and plane offsets), filled with random bytes
// so that a blend which rewrote pixels it should have left alone would show.
struct Frame {
  GstVideoInfo info;
  GstBuffer *buffer = nullptr;
  GstVideoFrame frame;

  Frame(GstVideoFormat format, int width, int height, uint8_t fill = 0, bool random = true) {
    cff_gst_test::ensure_gst();
    gst_video_info_set_format(&info, format, width, height);
    buffer = gst_buffer_new_allocate(nullptr, info.size, nullptr);
    gst_buffer_memset(buffer, 0, fill, info.size);
    EXPECT_TRUE(gst_video_frame_map(&frame, &info, buffer, GST_MAP_READWRITE));
    if (random) {
      std::mt19937 rng(7);
      for (size_t i = 0; i < size(); ++i) data()[i] = static_cast<uint8_t>(rng() % 256);
    }
  }
  ~Frame() {
    gst_video_frame_unmap(&frame);
    gst_buffer_unref(buffer);
  }
  Frame(const Frame &) = delete;
  Frame &operator=(const Frame &) = delete;

  uint8_t *data() { return static_cast<uint8_t *>(frame.map[0].data); }
  size_t size() const { return frame.map[0].size; }
  std::vector<uint8_t> bytes() { return std::vector<uint8_t>(data(), data() + size()); }
  // Byte offset in the buffer of component c's sample (sx, sy), in that component's (subsampled) grid.
  size_t offset(int c, int sx, int sy) {
    const auto *comp = static_cast<uint8_t *>(GST_VIDEO_FRAME_COMP_DATA(&frame, c));
    return static_cast<size_t>(comp - data()) + static_cast<size_t>(sy) * GST_VIDEO_FRAME_COMP_STRIDE(&frame, c) +
           static_cast<size_t>(sx) * GST_VIDEO_FRAME_COMP_PSTRIDE(&frame, c);
  }
};

struct Changes {
  int inside = 0;   // samples covering only pixels of the region that changed
  int outside = 0;  // samples covering no pixel of the region that changed
  int rows = 0;     // frame rows with a changed sample of component 0 (grey, luma or R)
};

// Compares every sample of every component of `f` with `before`.
Changes changes(Frame &f, const std::vector<uint8_t> &before, const Region &r) {
  Changes out;
  const GstVideoFormatInfo *finfo = f.info.finfo;
  std::vector<bool> row_changed(static_cast<size_t>(f.info.height), false);
  for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS(&f.frame); ++c) {
    const int ws = GST_VIDEO_FORMAT_INFO_W_SUB(finfo, c), hs = GST_VIDEO_FORMAT_INFO_H_SUB(finfo, c);
    for (int sy = 0; sy < GST_VIDEO_FRAME_COMP_HEIGHT(&f.frame, c); ++sy) {
      for (int sx = 0; sx < GST_VIDEO_FRAME_COMP_WIDTH(&f.frame, c); ++sx) {
        const size_t at = f.offset(static_cast<int>(c), sx, sy);
        if (f.data()[at] == before[at]) continue;
        // The pixels this sample covers: [x0, x1) x [y0, y1).
        const int x0 = sx << ws, x1 = (sx + 1) << ws, y0 = sy << hs, y1 = (sy + 1) << hs;
        const bool all_in = x0 >= r.x && x1 <= r.x + r.width && y0 >= r.y && y1 <= r.y + r.height;
        const bool any_in = x1 > r.x && x0 < r.x + r.width && y1 > r.y && y0 < r.y + r.height;
        if (all_in) ++out.inside;
        if (!any_in) ++out.outside;
        if (c == 0) row_changed[static_cast<size_t>(sy)] = true;
      }
    }
  }
  for (bool changed : row_changed) out.rows += changed;
  return out;
}

Changes draw_and_compare(Frame &f, const Region &r, const OverlayMarks &marks) {
  const auto before = f.bytes();
  draw_overlay(f.frame, r, marks);
  return changes(f, before, r);
}

// Pixels of a packed RGB frame inside `r` that are clearly green or clearly red.
struct Hues {
  int green = 0, red = 0;
};
Hues hues(Frame &f, const Region &r) {
  PackedLayout rgb;
  EXPECT_TRUE(packed_layout(GST_VIDEO_INFO_FORMAT(&f.info), rgb));
  Hues out;
  for (int y = r.y; y < r.y + r.height; ++y) {
    for (int x = r.x; x < r.x + r.width; ++x) {
      const uint8_t *p = f.data() + f.offset(0, x, y) - rgb.r;  // the pixel's first byte
      const int red = p[rgb.r], green = p[rgb.g], blue = p[rgb.b];
      if (green > red + 80 && green > blue + 80) ++out.green;
      if (red > green + 80 && red > blue + 80) ++out.red;
    }
  }
  return out;
}

const OverlayMarks kMarks{"Pullover 97%", 0.6, false};

}  // namespace

TEST(Overlay, ChangesPixelsInsideTheRegionOnly) {
  // Even-aligned regions: a chroma sample of I420/NV12 then covers pixels all inside or all outside.
  for (auto format : {GST_VIDEO_FORMAT_GRAY8, GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_BGRA,
                      GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12}) {
    for (const Region region : {Region{10, 8, 48, 36}, Region{0, 0, 96, 72}, Region{40, 30, 28, 28}}) {
      Frame f(format, 96, 72);
      for (const bool ood : {false, true}) {
        const Changes c = draw_and_compare(f, region, OverlayMarks{"Ankle boot 42%", 0.5, ood});
        EXPECT_GT(c.inside, 50) << gst_video_format_to_string(format) << " at " << region.x << "," << region.y;
        EXPECT_EQ(c.outside, 0) << gst_video_format_to_string(format) << " at " << region.x << "," << region.y;
      }
    }
  }
}

TEST(Overlay, OddRegionsAndRegionsPastTheFrameEdge) {
  for (auto format : {GST_VIDEO_FORMAT_GRAY8, GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12}) {
    // An odd-aligned region: its luma (and every RGB component) stays inside it.
    {
      Frame f(format, 95, 71);
      const Changes c = draw_and_compare(f, Region{7, 5, 33, 29}, kMarks);
      EXPECT_GT(c.inside, 50) << gst_video_format_to_string(format);
      if (format == GST_VIDEO_FORMAT_GRAY8 || format == GST_VIDEO_FORMAT_RGB) {
        EXPECT_EQ(c.outside, 0) << gst_video_format_to_string(format);
      }
    }
    // Partly outside the frame: drawn where it overlaps; wholly outside or empty: nothing at all.
    {
      Frame f(format, 64, 48);
      EXPECT_GT(draw_and_compare(f, Region{40, 30, 100, 100}, kMarks).inside, 20) << gst_video_format_to_string(format);
      const auto before = f.bytes();
      draw_overlay(f.frame, Region{64, 0, 10, 10}, kMarks);
      draw_overlay(f.frame, Region{-20, -20, 10, 10}, kMarks);
      draw_overlay(f.frame, Region{5, 5, 0, 10}, kMarks);
      EXPECT_EQ(f.bytes(), before) << gst_video_format_to_string(format);
    }
  }
}

TEST(Overlay, UnsupportedFormatsAreLeftAlone) {
  Frame f(GST_VIDEO_FORMAT_YUY2, 32, 16);
  const auto before = f.bytes();
  draw_overlay(f.frame, Region{0, 0, 32, 16}, kMarks);
  EXPECT_EQ(f.bytes(), before);
}

TEST(Overlay, InAndOutOfDistributionDifferInColour) {
  const Region region{4, 4, 120, 90};
  for (auto format : {GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGRx}) {
    Frame in(format, 128, 96, 128, false), out(format, 128, 96, 128, false);  // mid-grey: neither hue
    draw_overlay(in.frame, region, OverlayMarks{"Sneaker 88%", 1.0, false});
    draw_overlay(out.frame, region, OverlayMarks{"Sneaker 88% OOD", 1.0, true});
    const Hues h_in = hues(in, region), h_out = hues(out, region);
    // A full bar alone is region.width pixels wide and at least 2 rows tall.
    EXPECT_GE(h_in.green, 2 * region.width) << gst_video_format_to_string(format);
    EXPECT_EQ(h_in.red, 0) << gst_video_format_to_string(format);
    EXPECT_GE(h_out.red, 2 * region.width) << gst_video_format_to_string(format);
    EXPECT_EQ(h_out.green, 0) << gst_video_format_to_string(format);
  }
}

TEST(Overlay, BarFillsWithTheFraction) {
  const Region region{0, 0, 100, 60};
  std::vector<int> green;
  for (double fraction : {0.0, 0.25, 1.0, std::numeric_limits<double>::quiet_NaN()}) {
    Frame f(GST_VIDEO_FORMAT_RGB, 100, 60, 128, false);
    draw_overlay(f.frame, region, OverlayMarks{"", fraction, false});  // no text: the bar's pixels only
    green.push_back(hues(f, region).green);
  }
  EXPECT_EQ(green[0], 0);
  EXPECT_GT(green[1], 0);
  EXPECT_NEAR(green[1], green[2] / 4.0, 0.05 * green[2] + 2.0);  // a quarter of the width
  EXPECT_EQ(green[3], green[2]);  // not finite: full
}

TEST(Overlay, RendersLowerCaseAndNonAsciiText) {
  // With an empty bar, the only green pixels are the glyphs' ink: blanks have none; lower-case,
  // accented, non-Latin and invalid UTF-8 text (drawn as U+FFFD) all have some.
  const Region region{0, 0, 160, 48};
  auto ink = [&](const std::string &text) {
    Frame f(GST_VIDEO_FORMAT_RGB, 160, 48, 128, false);
    draw_overlay(f.frame, region, OverlayMarks{text, 0.0, false});
    return hues(f, region).green;
  };
  EXPECT_EQ(ink(""), 0);
  EXPECT_EQ(ink("   "), 0);
  for (const std::string text : {"abc", "t-shirt/top", "\u00e4", "Gr\u00f6\u00dfe \u00e9t\u00e9", "\u0416\u03a9",
                                 "\xff\xfe"}) {
    EXPECT_GT(ink(text), 5) << text;
  }
  // Different text, different pixels: the glyphs are really drawn, not just boxes of their width.
  Frame a(GST_VIDEO_FORMAT_RGB, 160, 48, 128, false), b(GST_VIDEO_FORMAT_RGB, 160, 48, 128, false);
  draw_overlay(a.frame, region, OverlayMarks{"\u00e4bc", 0.0, false});
  draw_overlay(b.frame, region, OverlayMarks{"abc", 0.0, false});
  EXPECT_NE(a.bytes(), b.bytes());
}

TEST(Overlay, TextSizeFollowsTheRegion) {
  // GRAY8 rows touched by the marks: a few on a 28x28 image, many more on a 1080p frame, and never
  // more than the region has.
  Frame small(GST_VIDEO_FORMAT_GRAY8, 28, 28);
  const Changes s = draw_and_compare(small, Region{0, 0, 28, 28}, kMarks);
  EXPECT_GE(s.rows, 8);
  EXPECT_LE(s.rows, 20);
  Frame large(GST_VIDEO_FORMAT_GRAY8, 1920, 1080);
  const Changes l = draw_and_compare(large, Region{0, 0, 1920, 1080}, kMarks);
  EXPECT_GE(l.rows, 60);
  EXPECT_LE(l.rows, 200);
  EXPECT_EQ(l.outside, 0);
}

TEST(Overlay, ThreadsDrawAtOnce) {
  // Elements draw from their own streaming threads; the shared Pango state must cope.
  std::vector<std::thread> threads;
  std::vector<int> drawn(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &drawn] {
      Frame f(t % 2 ? GST_VIDEO_FORMAT_I420 : GST_VIDEO_FORMAT_RGB, 64, 48);
      for (int i = 0; i < 25; ++i) {
        const auto before = f.bytes();
        draw_overlay(f.frame, Region{0, 0, 64, 48}, OverlayMarks{"Bag " + std::to_string(i) + "%", i / 25.0, i % 2 == 1});
        drawn[static_cast<size_t>(t)] += f.bytes() != before;
      }
    });
  }
  for (auto &thread : threads) thread.join();
  for (int count : drawn) EXPECT_EQ(count, 25);
}
