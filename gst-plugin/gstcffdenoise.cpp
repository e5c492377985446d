// cffdenoise: properties, caps, buffers and metas. The tiling and the denoising are
// cff::Engine::denoise (libcff: cff::denoise_tiled), the reading and writing of pixels and the formats
// frame_convert.cpp.
#include "gstcffdenoise.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <gst/video/gstvideometa.h>
#include <gst/video/video.h>

#include "cff/engine.h"
#include "element_common.h"
#include "frame_convert.h"
#include "result_meta.h"

GST_DEBUG_CATEGORY_STATIC(gst_cff_denoise_debug);
#define GST_CAT_DEFAULT gst_cff_denoise_debug

namespace {

constexpr const char *kParamName = "cff/denoise";
constexpr const char *kMessageName = "cffdenoise";
constexpr double kDefaultSigma = 0.0;
constexpr guint kDefaultSteps = 1;
constexpr double kDefaultStrength = 1.0;

enum {
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_THREADS,
  PROP_SIGMA,
  PROP_STEPS,
  PROP_STRENGTH,
  PROP_MESSAGE,
};

struct Private {
  cff::gst::ModelSettings model;  // model, device, threads: read in start(), under the object lock
  std::atomic<double> sigma{kDefaultSigma};
  std::atomic<guint> steps{kDefaultSteps};
  std::atomic<double> strength{kDefaultStrength};
  std::atomic<bool> message{false};

  std::shared_ptr<cff::Engine> engine;
  std::vector<float> image, original;
};

}  // namespace

struct _GstCffDenoise {
  GstVideoFilter parent;
  Private *priv;
};

G_DEFINE_TYPE(GstCffDenoise, gst_cff_denoise, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE(cffdenoise, "cffdenoise", GST_RANK_NONE, GST_TYPE_CFF_DENOISE);

namespace {

gboolean start(GstBaseTransform *trans) {
  auto *self = GST_CFF_DENOISE(trans);
  auto &p = *self->priv;
  try {
    const auto settings = cff::gst::snapshot(G_OBJECT(self), p.model);
    const std::string &path = settings.model_path;
    p.engine = cff::gst::acquire_model(GST_ELEMENT(self), settings);
    if (!p.engine) return FALSE;
    const auto &info = p.engine->info();
    GST_INFO_OBJECT(self, "model %s: %dx%dx%d on %s", path.c_str(), info.channels, info.height, info.width,
                    p.engine->describe_device().c_str());
    return TRUE;
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("%s", e.what()), (nullptr));
    p.engine.reset();
    return FALSE;
  }
}

gboolean stop(GstBaseTransform *trans) {
  auto *self = GST_CFF_DENOISE(trans);
  auto &p = *self->priv;
  try {
    p.engine.reset();
    p.image = {};
    p.original = {};
    return TRUE;
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR(self, LIBRARY, SHUTDOWN, ("%s", e.what()), (nullptr));
    return FALSE;
  }
}

// Once a model is loaded, only the formats it can denoise are offered (any size).
GstCaps *transform_caps(GstBaseTransform *trans, GstPadDirection, GstCaps *caps, GstCaps *filter) {
  auto *self = GST_CFF_DENOISE(trans);
  auto &p = *self->priv;
  GstCaps *result = gst_caps_copy(caps);
  try {
    if (p.engine) {
      GstCaps *allowed = cff::gst::video_caps(cff::gst::FormatUse::write, p.engine->info().channels);
      GstCaps *narrowed = gst_caps_intersect(result, allowed);
      gst_caps_unref(allowed);
      gst_caps_unref(result);
      result = narrowed;
    }
  } catch (const std::exception &e) {
    GST_WARNING_OBJECT(self, "transform_caps: %s", e.what());
  }
  if (filter) {
    GstCaps *intersection = gst_caps_intersect_full(filter, result, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(result);
    result = intersection;
  }
  return result;
}

gboolean set_info(GstVideoFilter *filter, GstCaps *, GstVideoInfo *in_info, GstCaps *, GstVideoInfo *) {
  auto *self = GST_CFF_DENOISE(filter);
  auto &p = *self->priv;
  if (!p.engine) return TRUE;  // checked again per frame
  const int channels = p.engine->info().channels;
  if (!cff::gst::format_fits(GST_VIDEO_INFO_FORMAT(in_info), cff::gst::FormatUse::write, channels)) {
    GST_WARNING_OBJECT(self, "format %s does not suit a %d-channel model",
                       gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(in_info)), channels);
    return FALSE;
  }
  return TRUE;
}

GstFlowReturn transform_frame_ip(GstVideoFilter *filter, GstVideoFrame *frame) {
  auto *self = GST_CFF_DENOISE(filter);
  auto &p = *self->priv;
  try {
    if (!p.engine) {
      GST_ELEMENT_ERROR(self, CORE, STATE_CHANGE, ("No model loaded"), ("transform called before start"));
      return GST_FLOW_ERROR;
    }
    const auto &info = p.engine->info();
    if (!cff::gst::format_fits(GST_VIDEO_FRAME_FORMAT(frame), cff::gst::FormatUse::write, info.channels)) {
      GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                        ("Format %s does not suit a %d-channel model",
                         gst_video_format_to_string(GST_VIDEO_FRAME_FORMAT(frame)), info.channels),
                        (nullptr));
      return GST_FLOW_NOT_NEGOTIATED;
    }
    const int width = GST_VIDEO_FRAME_WIDTH(frame), height = GST_VIDEO_FRAME_HEIGHT(frame);
    // The frame at its own size in model units (convert_region at 1:1 scale copies and normalises).
    const cff::gst::InputLayout layout{info.channels, height, width, info.mean, info.std};
    p.image.resize(static_cast<size_t>(info.channels) * height * width);
    cff::gst::convert_region(cff::gst::pixel_view(*frame), cff::gst::Region{0, 0, width, height}, layout,
                             p.image.data());

    const double sigma_pixels = p.sigma.load();
    const double strength = p.strength.load();
    const guint steps = p.steps.load();
    const double pixel_to_model = 1.0 / (255.0 * layout.std_of(0));
    cff::Engine::FrameDenoiseOptions options;
    options.sigma = sigma_pixels > 0.0 ? sigma_pixels * pixel_to_model : -1.0;
    options.steps = static_cast<int>(steps);
    if (strength < 1.0) p.original = p.image;
    const double used = p.engine->denoise(p.image.data(), height, width, options);
    if (strength < 1.0) {
      for (size_t i = 0; i < p.image.size(); ++i) {
        p.image[i] = static_cast<float>(p.original[i] + strength * (p.image[i] - p.original[i]));
      }
    }
    if (strength > 0.0 && used > 0.0) {
      cff::gst::write_image(cff::gst::mutable_pixel_view(*frame), layout, p.image.data());
    }

    const double used_pixels = std::max(0.0, used) / pixel_to_model;
    auto make_structure = [&](const char *name) {
      return gst_structure_new(name, "sigma", G_TYPE_DOUBLE, used_pixels, "estimated", G_TYPE_BOOLEAN,
                               static_cast<gboolean>(sigma_pixels <= 0.0), "steps", G_TYPE_INT,
                               static_cast<int>(steps), "strength", G_TYPE_DOUBLE, strength, nullptr);
    };
    cff::gst::add_frame_result(frame->buffer, width, height, make_structure(kParamName));
    if (p.message.load()) {
      GstStructure *s = make_structure(kMessageName);
      gst_structure_set(s, "timestamp", G_TYPE_UINT64, static_cast<guint64>(GST_BUFFER_PTS(frame->buffer)), nullptr);
      gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
    }
    return GST_FLOW_OK;
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Denoising failed: %s", e.what()), (nullptr));
    return GST_FLOW_ERROR;
  }
}

void set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  auto *self = GST_CFF_DENOISE(object);
  auto &p = *self->priv;
  try {
    if (cff::gst::set_model_property(object, p.model, PROP_MODEL, prop_id, value)) return;
    switch (prop_id) {
      case PROP_SIGMA: p.sigma = g_value_get_double(value); break;
      case PROP_STEPS: p.steps = g_value_get_uint(value); break;
      case PROP_STRENGTH: p.strength = g_value_get_double(value); break;
      case PROP_MESSAGE: p.message = g_value_get_boolean(value); break;
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  } catch (const std::exception &e) {
    GST_ERROR_OBJECT(self, "cannot set property %s: %s", pspec->name, e.what());
  }
}

void get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  auto *self = GST_CFF_DENOISE(object);
  auto &p = *self->priv;
  if (cff::gst::get_model_property(object, p.model, PROP_MODEL, prop_id, value)) return;
  switch (prop_id) {
    case PROP_SIGMA: g_value_set_double(value, p.sigma.load()); break;
    case PROP_STEPS: g_value_set_uint(value, p.steps.load()); break;
    case PROP_STRENGTH: g_value_set_double(value, p.strength.load()); break;
    case PROP_MESSAGE: g_value_set_boolean(value, p.message.load()); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

void finalize(GObject *object) { cff::gst::finalize_private<GstCffDenoise>(object, gst_cff_denoise_parent_class); }

}  // namespace

static void gst_cff_denoise_class_init(GstCffDenoiseClass *klass) {
  auto *gobject_class = G_OBJECT_CLASS(klass);
  auto *element_class = GST_ELEMENT_CLASS(klass);
  auto *trans_class = GST_BASE_TRANSFORM_CLASS(klass);
  auto *filter_class = GST_VIDEO_FILTER_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_cff_denoise_debug, "cffdenoise", 0, "cff denoiser");

  cff::gst::set_object_methods(gobject_class, set_property, get_property, finalize);

  cff_install_model_properties(gobject_class, PROP_MODEL, "Path of the cff model file to denoise with (required)");
  g_object_class_install_property(
      gobject_class, PROP_SIGMA,
      g_param_spec_double("sigma", "Sigma",
                          "Standard deviation of the noise in pixel units (0-255); 0 = estimate it on every frame "
                          "(the estimate is in the meta)",
                          0.0, 255.0, kDefaultSigma, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_STEPS,
      g_param_spec_uint("steps", "Steps", "Sampler steps from the frame's noise level down to 0 (1 = one-shot)", 1,
                        1000, kDefaultSteps, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_STRENGTH,
      g_param_spec_double("strength", "Strength", "Blend of the denoised frame with the input: 0 = input, 1 = denoised",
                          0.0, 1.0, kDefaultStrength, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_MESSAGE,
      g_param_spec_boolean("message", "Message",
                           "Post an element message named \"cffdenoise\" with the noise level of every frame", FALSE,
                           cff::gst::kMutablePlaying));

  gst_element_class_set_static_metadata(
      element_class, "CFF denoiser", "Filter/Effect/Video",
      "Removes Gaussian noise from frames of any size with a Central Force Field model (tiled, blended), and reports "
      "the noise level as a GstVideoRegionOfInterestMeta",
      "cff developers");

  GstCaps *caps = cff::gst::video_caps(cff::gst::FormatUse::write);
  gst_element_class_add_pad_template(element_class, gst_pad_template_new("sink", GST_PAD_SINK, GST_PAD_ALWAYS, caps));
  gst_element_class_add_pad_template(element_class, gst_pad_template_new("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
  gst_caps_unref(caps);

  trans_class->start = start;
  trans_class->stop = stop;
  trans_class->transform_caps = transform_caps;
  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->transform_ip_on_passthrough = FALSE;
  trans_class->transform_ip = cff::gst::transform_ip_checked;
  filter_class->set_info = set_info;
  filter_class->transform_frame_ip = transform_frame_ip;
}

static void gst_cff_denoise_init(GstCffDenoise *self) {
  self->priv = new Private();
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
}
