#include "result_meta.h"

#include <algorithm>

namespace cff::gst {

GstVideoRegionOfInterestMeta *add_frame_result(GstBuffer *buffer, int width, int height, GstStructure *params) {
  gint id = 0;
  gpointer state = nullptr;
  while (GstMeta *m = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    id = std::max(id, reinterpret_cast<GstVideoRegionOfInterestMeta *>(m)->id + 1);
  }
  GstVideoRegionOfInterestMeta *meta = gst_buffer_add_video_region_of_interest_meta(
      buffer, kRoiType, 0, 0, static_cast<guint>(width), static_cast<guint>(height));
  meta->id = id;
  gst_video_region_of_interest_meta_add_param(meta, params);
  return meta;
}

}  // namespace cff::gst
