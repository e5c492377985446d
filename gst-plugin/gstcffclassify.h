// cffclassify: classifies video frames, or the regions of interest upstream marked on them, with a
// cff model, and flags out-of-distribution content by its free energy.
//
// Results travel with each buffer as a GstVideoRegionOfInterestMeta (roi-type "cff", the whole
// frame, or the upstream ROI metas themselves with roi=upstream) carrying a GstStructure param
// named "cff/classification":
//   label (string), class-id (int), confidence (double, p(class|x)), energy (double, U = -logsumexp
//   of the logits; +inf for non-finite input), ood (boolean), ood-threshold (double),
//   non-finite (boolean), top-k-labels (array of strings), top-k-class-ids (array of ints),
//   top-k-probabilities (array of doubles, parallel to the labels; most probable first).
// With message=ood or all, an element message named "cffclassify" carries the same fields plus
// timestamp, running-time, stream-time (guint64 nanoseconds, GST_CLOCK_TIME_NONE when unknown),
// x, y, width, height (the region classified) and roi-id (the upstream meta id, -1 for frames).
#pragma once

#include <gst/video/gstvideofilter.h>

G_BEGIN_DECLS

#define GST_TYPE_CFF_CLASSIFY (gst_cff_classify_get_type())
G_DECLARE_FINAL_TYPE(GstCffClassify, gst_cff_classify, GST, CFF_CLASSIFY, GstVideoFilter)

GST_ELEMENT_REGISTER_DECLARE(cffclassify);

G_END_DECLS
