// Drawing a classification result into a frame: a text line (label and probability) and an energy
// bar, green when in distribution, red when out of distribution. RGB formats get colour; GRAY8,
// I420 and NV12 get the same marks drawn in luma only. Uses a built-in 3x5 bitmap font (upper-case
// letters, digits and a little punctuation; other characters draw as blanks).
#pragma once

#include <string>

#include <gst/video/video.h>

#include "frame_convert.h"

namespace cff::gst {

struct OverlayMarks {
  std::string text;
  double bar_fraction = 0.0;  // 0..1: how far the energy bar fills
  bool out_of_distribution = false;
};

// Draws into `frame` (mapped writable) at the top-left of `region`, clipped to the region.
// Does nothing for formats frame_convert does not support.
void draw_overlay(GstVideoFrame &frame, const Region &region, const OverlayMarks &marks);

}  // namespace cff::gst
