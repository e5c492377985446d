#include "overlay.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace cff::gst {
namespace {

// 3x5 glyphs: five rows, each an octal digit whose bits 4, 2, 1 are the left, middle and right pixel.
struct Glyph {
  char c;
  const char *rows;
};
constexpr Glyph kFont[] = {
    {'0', "75557"}, {'1', "26227"}, {'2', "71747"}, {'3', "71317"}, {'4', "55711"}, {'5', "74717"},
    {'6', "74757"}, {'7', "71122"}, {'8', "75757"}, {'9', "75717"}, {'A', "25755"}, {'B', "65656"},
    {'C', "34443"}, {'D', "65556"}, {'E', "74647"}, {'F', "74644"}, {'G', "34553"}, {'H', "55755"},
    {'I', "72227"}, {'J', "11152"}, {'K', "55655"}, {'L', "44447"}, {'M', "57755"}, {'N', "65555"},
    {'O', "25552"}, {'P', "65644"}, {'Q', "25563"}, {'R', "65655"}, {'S', "34216"}, {'T', "72222"},
    {'U', "55557"}, {'V', "55552"}, {'W', "55775"}, {'X', "55255"}, {'Y', "55222"}, {'Z', "71247"},
    {'.', "00002"}, {'%', "51245"}, {'-', "00700"}, {':', "02020"}, {'/', "11244"}, {'(', "24442"},
    {')', "21112"}, {'=', "07070"}, {'+', "02720"},
};

const char *glyph_rows(char c) {
  const char upper = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto &g : kFont) {
    if (g.c == upper) return g.rows;
  }
  return nullptr;
}

struct Colour {
  uint8_t r, g, b;
};

class Painter {
 public:
  Painter(GstVideoFrame &frame, const Region &clip)
      : view_(mutable_pixel_view(frame)), clip_(clip), packed_(packed_layout(view_.format, rgb_)) {}

  void fill(int x, int y, int w, int h, Colour colour) {
    const int x0 = std::max(x, clip_.x), y0 = std::max(y, clip_.y);
    const int x1 = std::min(x + w, clip_.x + clip_.width), y1 = std::min(y + h, clip_.y + clip_.height);
    for (int yy = y0; yy < y1; ++yy) {
      for (int xx = x0; xx < x1; ++xx) put(xx, yy, colour);
    }
  }

 private:
  void put(int x, int y, Colour c) {
    uint8_t *line = view_.planes[0] + static_cast<ptrdiff_t>(y) * view_.strides[0];
    if (packed_) {
      uint8_t *p = line + static_cast<ptrdiff_t>(x) * rgb_.bytes;
      p[rgb_.r] = c.r, p[rgb_.g] = c.g, p[rgb_.b] = c.b;
      return;
    }
    // Luma-only formats: the marks keep their brightness, not their hue.
    double luma = 0.299 * c.r + 0.587 * c.g + 0.114 * c.b;
    if (view_.limited_range) luma = compress_to_limited_luma(luma);
    line[x] = static_cast<uint8_t>(std::lround(luma));
  }

  MutablePixelView view_;
  Region clip_;
  PackedLayout rgb_;
  bool packed_;
};

}  // namespace

void draw_overlay(GstVideoFrame &frame, const Region &region_in, const OverlayMarks &marks) {
  if (!format_fits(GST_VIDEO_FRAME_FORMAT(&frame), FormatUse::read)) return;
  const Region region = clamp_region(region_in, GST_VIDEO_FRAME_WIDTH(&frame), GST_VIDEO_FRAME_HEIGHT(&frame));
  if (region.width <= 0 || region.height <= 0) return;
  Painter painter(frame, region);
  // Glyphs grow with the region so the text stays readable on large frames.
  const int scale = std::max(1, std::min(region.width, region.height) / 120);
  const Colour ink = marks.out_of_distribution ? Colour{255, 48, 48} : Colour{64, 255, 64};
  const Colour dark{0, 0, 0}, grey{96, 96, 96};

  const int advance = 4 * scale, line_height = 7 * scale;
  const int text_width = static_cast<int>(marks.text.size()) * advance + scale;
  painter.fill(region.x, region.y, text_width, line_height, dark);
  for (size_t i = 0; i < marks.text.size(); ++i) {
    const char *rows = glyph_rows(marks.text[i]);
    if (!rows) continue;
    const int gx = region.x + scale + static_cast<int>(i) * advance, gy = region.y + scale;
    for (int row = 0; row < 5; ++row) {
      const int bits = rows[row] - '0';
      for (int col = 0; col < 3; ++col) {
        if (bits & (4 >> col)) painter.fill(gx + col * scale, gy + row * scale, scale, scale, ink);
      }
    }
  }
  // The energy bar under the text: its filled part in the result's colour.
  const int bar_y = region.y + line_height, bar_height = 2 * scale;
  const int bar_width = std::max(1, region.width);
  const double fraction = std::isfinite(marks.bar_fraction) ? std::clamp(marks.bar_fraction, 0.0, 1.0) : 1.0;
  const int filled = static_cast<int>(std::lround(fraction * bar_width));
  painter.fill(region.x, bar_y, bar_width, bar_height, grey);
  painter.fill(region.x, bar_y, filled, bar_height, ink);
}

}  // namespace cff::gst
