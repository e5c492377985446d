// cffgenerate: a video source that generates images with a cff model by walking noise along the
// model's force field (centripetal sampler; Langevin and gradient ascent for comparison).
//
// Frames come out at the model's size, GRAY8 for 1-channel models and RGB for 3-channel ones, one
// per sample (or, with trajectory=true, one per sampler step: the x0 estimate of each step). Each
// buffer carries a GstVideoRegionOfInterestMeta (roi-type "cff", the whole frame) with a
// GstStructure param named "cff/generation":
//   label (string, "" when unconditional), class-id (int, -1 when unconditional), seed (guint64, the
//   sample's own seed), sample (guint64, index of the sample in the stream), step (int, the sampler
//   step the frame shows; steps - 1 for a finished sample), steps (int), sampler (string),
//   guidance (double), predicted-label (string), predicted-class-id (int), confidence (double,
//   p(predicted|x)), label-probability (double, p(requested class|x); -1 when unconditional),
//   energy (double, U(x) = -logsumexp of the logits), the model's own reading of the frame.
#pragma once

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_CFF_GENERATE (gst_cff_generate_get_type())
G_DECLARE_FINAL_TYPE(GstCffGenerate, gst_cff_generate, GST, CFF_GENERATE, GstPushSrc)

GST_ELEMENT_REGISTER_DECLARE(cffgenerate);

G_END_DECLS
