#include "overlay.h"

#include <algorithm>
#include <cmath>

#include <pango/pangocairo.h>

namespace cff::gst {
namespace {

struct Colour {
  double r, g, b;
};
constexpr Colour kInDistribution{0.25, 1.0, 0.25};
constexpr Colour kOutOfDistribution{1.0, 0.19, 0.19};
constexpr Colour kBarTrack{0.38, 0.38, 0.38};
constexpr double kTextBackgroundAlpha = 0.65;  // the dark box behind the text
constexpr int kRegionPerTextPixel = 16;        // the em size grows with the region's smaller side,
constexpr int kMinTextPixels = 8;              // from this (legible on a 28x28 region);
constexpr int kMinFittedTextPixels = 6;        // text too wide shrinks to fit, down to this, then ellipsizes

// The font map and Pango context every overlay shares: making a font map loads fontconfig's
// configuration, far too slow for every frame. Pango objects are not thread-safe and each element
// draws from its own streaming thread, so whoever lays out or renders text holds `lock`. Created on
// first use, released when the process exits.
class TextRenderer {
 public:
  static TextRenderer &instance() {
    static TextRenderer renderer;
    return renderer;
  }
  TextRenderer(const TextRenderer &) = delete;
  TextRenderer &operator=(const TextRenderer &) = delete;

  GMutex lock;

  // A one-line layout of `text` (UTF-8, made valid) at `pixels` em size; when wider than `max_width`
  // pixels it shrinks to fit (not below kMinFittedTextPixels), then ellipsizes at the end. The caller
  // holds `lock` and unrefs the layout.
  PangoLayout *layout(const std::string &text, int pixels, int max_width) {
    PangoLayout *layout = pango_layout_new(context_);
    pango_layout_set_single_paragraph_mode(layout, TRUE);
    gchar *valid = g_utf8_make_valid(text.data(), static_cast<gssize>(text.size()));
    pango_layout_set_text(layout, valid, -1);
    g_free(valid);
    set_size(layout, pixels);
    int width = 0;
    pango_layout_get_pixel_size(layout, &width, nullptr);
    if (width > max_width && pixels > kMinFittedTextPixels) {
      set_size(layout, std::max(kMinFittedTextPixels, pixels * std::max(0, max_width) / width));
    }
    pango_layout_set_width(layout, std::max(1, max_width) * PANGO_SCALE);
    pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_END);
    return layout;
  }

 private:
  TextRenderer() {
    g_mutex_init(&lock);
    font_map_ = pango_cairo_font_map_new();
    context_ = pango_font_map_create_context(font_map_);
    // Grey antialiasing and no hinting: the image is blended into video of any format, where
    // sub-pixel (LCD) colour fringes would be wrong, and hinting would make sizes jump.
    cairo_font_options_t *options = cairo_font_options_create();
    cairo_font_options_set_antialias(options, CAIRO_ANTIALIAS_GRAY);
    cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
    pango_cairo_context_set_font_options(context_, options);  // keeps a copy
    cairo_font_options_destroy(options);
    font_ = pango_font_description_from_string("Sans Bold");
  }
  ~TextRenderer() {
    pango_font_description_free(font_);
    g_object_unref(context_);
    g_object_unref(font_map_);
    g_mutex_clear(&lock);
  }

  void set_size(PangoLayout *layout, int pixels) {
    pango_font_description_set_absolute_size(font_, static_cast<double>(pixels) * PANGO_SCALE);
    pango_layout_set_font_description(layout, font_);  // copies it
  }

  PangoFontMap *font_map_ = nullptr;
  PangoContext *context_ = nullptr;
  PangoFontDescription *font_ = nullptr;
};

// Renders the marks for a `width`-pixel-wide region at most `max_height` tall into a new buffer of
// premultiplied ARGB (cairo's ARGB32, which is GStreamer's overlay format BGRA on little-endian and
// ARGB on big-endian machines) with a GstVideoMeta; its height goes to `height`. Null on failure.
GstBuffer *render_marks(const OverlayMarks &marks, int width, int max_height, int &height) {
  const int em = std::max(kMinTextPixels, std::min(width, max_height) / kRegionPerTextPixel);
  const int pad = std::max(1, em / 8);
  const int bar_height = std::max(2, em / 4);
  const Colour ink = marks.out_of_distribution ? kOutOfDistribution : kInDistribution;

  auto &renderer = TextRenderer::instance();
  g_mutex_lock(&renderer.lock);
  PangoLayout *layout = renderer.layout(marks.text, em, width - 2 * pad);
  PangoRectangle text;  // logical extents: where the line sits, whatever its glyphs
  pango_layout_get_pixel_extents(layout, nullptr, &text);
  const int text_height = marks.text.empty() ? 0 : text.height;
  height = std::min(max_height, text_height + bar_height);

  GstBuffer *buffer = nullptr;
  const int stride = cairo_format_stride_for_width(CAIRO_FORMAT_ARGB32, width);
  if (stride > 0 && height > 0) {
    buffer = gst_buffer_new_allocate(nullptr, static_cast<gsize>(stride) * static_cast<gsize>(height), nullptr);
  }
  GstMapInfo map;
  if (buffer && !gst_buffer_map(buffer, &map, GST_MAP_WRITE)) gst_clear_buffer(&buffer);
  if (buffer) {
    std::fill(map.data, map.data + map.size, 0);  // transparent
    cairo_surface_t *surface = cairo_image_surface_create_for_data(map.data, CAIRO_FORMAT_ARGB32, width, height, stride);
    cairo_t *cr = cairo_create(surface);
    if (text_height > 0) {
      // The dark box behind the text, then the text in the result's colour.
      cairo_set_source_rgba(cr, 0.0, 0.0, 0.0, kTextBackgroundAlpha);
      cairo_rectangle(cr, 0, 0, std::min(width, text.width + 2 * pad), text_height);
      cairo_fill(cr);
      cairo_set_source_rgb(cr, ink.r, ink.g, ink.b);
      cairo_move_to(cr, pad - text.x, -text.y);
      pango_cairo_show_layout(cr, layout);
    }
    // The energy bar under the text: a grey track, its filled part in the result's colour.
    const double fraction = std::isfinite(marks.bar_fraction) ? std::clamp(marks.bar_fraction, 0.0, 1.0) : 1.0;
    cairo_set_source_rgb(cr, kBarTrack.r, kBarTrack.g, kBarTrack.b);
    cairo_rectangle(cr, 0, text_height, width, bar_height);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, ink.r, ink.g, ink.b);
    cairo_rectangle(cr, 0, text_height, std::round(fraction * width), bar_height);
    cairo_fill(cr);
    const bool drawn = cairo_status(cr) == CAIRO_STATUS_SUCCESS;
    cairo_destroy(cr);
    cairo_surface_finish(surface);  // all drawing is in map.data before it is unmapped
    cairo_surface_destroy(surface);
    gst_buffer_unmap(buffer, &map);
    if (!drawn) gst_clear_buffer(&buffer);
  }
  g_object_unref(layout);
  g_mutex_unlock(&renderer.lock);

  if (buffer) {
    gsize offsets[GST_VIDEO_MAX_PLANES] = {0};
    gint strides[GST_VIDEO_MAX_PLANES] = {stride};
    gst_buffer_add_video_meta_full(buffer, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB,
                                   static_cast<guint>(width), static_cast<guint>(height), 1, offsets, strides);
  }
  return buffer;
}

}  // namespace

void draw_overlay(GstVideoFrame &frame, const Region &region_in, const OverlayMarks &marks) noexcept {
  if (!format_fits(GST_VIDEO_FRAME_FORMAT(&frame), FormatUse::read)) return;
  const Region region = clamp_region(region_in, GST_VIDEO_FRAME_WIDTH(&frame), GST_VIDEO_FRAME_HEIGHT(&frame));
  if (region.width <= 0 || region.height <= 0) return;
  int height = 0;
  GstBuffer *pixels = render_marks(marks, region.width, region.height, height);
  if (!pixels) {
    GST_WARNING("overlay: could not render %dx%d marks", region.width, region.height);
    return;
  }
  // The image is no larger than the region and drawn at its top-left at 1:1, so the blend stays inside.
  GstVideoOverlayRectangle *rectangle = gst_video_overlay_rectangle_new_raw(
      pixels, region.x, region.y, static_cast<guint>(region.width), static_cast<guint>(height),
      GST_VIDEO_OVERLAY_FORMAT_FLAG_PREMULTIPLIED_ALPHA);
  gst_buffer_unref(pixels);  // the rectangle holds its own reference
  GstVideoOverlayComposition *composition = gst_video_overlay_composition_new(rectangle);
  gst_video_overlay_rectangle_unref(rectangle);
  if (!gst_video_overlay_composition_blend(composition, &frame)) {
    GST_WARNING("overlay: could not blend into a %s frame", gst_video_format_to_string(GST_VIDEO_FRAME_FORMAT(&frame)));
  }
  gst_video_overlay_composition_unref(composition);
}

}  // namespace cff::gst
