// cffdenoise: removes Gaussian noise from video frames of any size with a cff model, in place.
//
// The frame is cut into model-sized tiles overlapping by half a tile and blended with raised-cosine
// weights (cff::denoise_tiled); frames smaller than the model are reflect-padded and cropped back.
// 1-channel models work on GRAY8 or the luma plane of I420/NV12 (chroma untouched), 3-channel
// models on RGB, BGR, RGBx, BGRx.
//
// Each buffer gets a GstVideoRegionOfInterestMeta (roi-type "cff", the whole frame) with a
// GstStructure param named "cff/denoise": sigma (double, the noise level used, 0-255 pixel units),
// estimated (boolean, sigma was estimated from the frame), steps (int), strength (double).
// With message=true an element message named "cffdenoise" carries the same fields plus timestamp.
#pragma once

#include <gst/video/gstvideofilter.h>

G_BEGIN_DECLS

#define GST_TYPE_CFF_DENOISE (gst_cff_denoise_get_type())
G_DECLARE_FINAL_TYPE(GstCffDenoise, gst_cff_denoise, GST, CFF_DENOISE, GstVideoFilter)

GST_ELEMENT_REGISTER_DECLARE(cffdenoise);

G_END_DECLS
