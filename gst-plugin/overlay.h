// Drawing a classification result into a frame: a text line (label and probability) and an energy
// bar, green when in distribution, red when out of distribution. The marks are rendered with Pango
// and cairo into an ARGB image the size of the marks, which becomes a GstVideoOverlayRectangle and is
// blended into the frame by gst_video_overlay_composition_blend: GStreamer's own route for text on
// raw video, so every format gets proper colour (RGB) or luma and chroma (GRAY8, I420, NV12). The
// text is any UTF-8 (invalid bytes draw as U+FFFD) in the system's "Sans" font (DejaVu Sans on
// Debian, tools/setup.sh installs it); its size follows the region.
#pragma once

#include <string>

#include <gst/video/video.h>

#include "frame_convert.h"

namespace cff::gst {

struct OverlayMarks {
  std::string text;
  double bar_fraction = 0.0;  // 0..1: how far the energy bar fills (not finite: full)
  bool out_of_distribution = false;
};

// Draws into `frame` (mapped writable) at the top-left of `region`, clipped to the region: pixels
// outside it are left as they are (for I420 and NV12, chroma shared with pixels inside an odd-aligned
// region edge may change). Does nothing for formats frame_convert does not support, or when drawing
// fails (a warning is logged). Safe to call from several streaming threads at once; never throws.
void draw_overlay(GstVideoFrame &frame, const Region &region, const OverlayMarks &marks) noexcept;

}  // namespace cff::gst
