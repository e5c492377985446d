// How the cff elements attach their results to a buffer, the contract downstream readers rely on
// (gst-plugin/README.md "Metas"): a GstVideoRegionOfInterestMeta of type "cff" with one GstStructure
// param per result ("cff/classification", "cff/generation", "cff/denoise").
#pragma once

#include <gst/video/gstvideometa.h>

namespace cff::gst {

// The ROI type of every cff meta.
inline constexpr const char *kRoiType = "cff";

// Attaches `params` (ownership taken) to a new whole-frame (width x height) "cff" ROI meta whose id no
// ROI meta already on the buffer has (a frame generated, denoised and classified carries one of each),
// so readers can fetch it with gst_buffer_get_video_region_of_interest_meta_id. Returns the meta.
GstVideoRegionOfInterestMeta *add_frame_result(GstBuffer *buffer, int width, int height, GstStructure *params);

}  // namespace cff::gst
