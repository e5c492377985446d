#include "element_common.h"

#include <exception>

#include <gst/video/gstvideofilter.h>
#include <gst/video/video.h>

void cff_install_model_properties(GObjectClass *gobject_class, guint prop_model, const char *model_blurb) {
  const auto ready = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(gobject_class, prop_model,
                                  g_param_spec_string("model", "Model file", model_blurb, nullptr, ready));
  g_object_class_install_property(
      gobject_class, prop_model + 1,
      g_param_spec_string("device", "Device",
                          "Where the model runs: auto (a CUDA GPU when available, else the CPU), cpu, cuda or cuda:N",
                          "auto", ready));
  g_object_class_install_property(
      gobject_class, prop_model + 2,
      g_param_spec_int("threads", "Threads",
                       "CPU threads for inference. LibTorch has one thread count per process: a positive value sets it "
                       "for every element and the application (a warning tells when it replaces another count); 0 "
                       "(automatic) keeps a count set earlier in the process, else uses one thread per core", 0,
                       1024, 0, ready));
}

namespace cff::gst {

bool set_model_property(GObject *object, ModelSettings &settings, guint prop_model, guint prop_id, const GValue *value) {
  if (prop_id < prop_model || prop_id > prop_model + 2) return false;
  // Strings are built outside the lock: nothing under it can throw.
  const gchar *s = prop_id == prop_model + 2 ? nullptr : g_value_get_string(value);
  std::string text = s ? s : (prop_id == prop_model + 1 ? "auto" : "");
  GST_OBJECT_LOCK(object);
  if (prop_id == prop_model) {
    settings.model_path.swap(text);
  } else if (prop_id == prop_model + 1) {
    settings.device.swap(text);
  } else {
    settings.threads = g_value_get_int(value);
  }
  GST_OBJECT_UNLOCK(object);
  return true;
}

bool get_model_property(GObject *object, const ModelSettings &settings, guint prop_model, guint prop_id, GValue *value) {
  if (prop_id < prop_model || prop_id > prop_model + 2) return false;
  GST_OBJECT_LOCK(object);
  if (prop_id == prop_model) {
    g_value_set_string(value, settings.model_path.empty() ? nullptr : settings.model_path.c_str());
  } else if (prop_id == prop_model + 1) {
    g_value_set_string(value, settings.device.c_str());
  } else {
    g_value_set_int(value, settings.threads);
  }
  GST_OBJECT_UNLOCK(object);
  return true;
}

ModelSettings snapshot(GObject *object, const ModelSettings &settings) {
  GST_OBJECT_LOCK(object);
  try {
    ModelSettings copy = settings;
    GST_OBJECT_UNLOCK(object);
    return copy;
  } catch (...) {
    GST_OBJECT_UNLOCK(object);
    throw;
  }
}

GstFlowReturn transform_ip_checked(GstBaseTransform *trans, GstBuffer *buffer) {
  auto *filter = GST_VIDEO_FILTER(trans);
  const gsize have = gst_buffer_get_size(buffer);
  const gsize need = GST_VIDEO_INFO_SIZE(&filter->in_info);
  if (filter->negotiated && have < need && !gst_buffer_get_video_meta(buffer)) {
    GST_ELEMENT_WARNING(trans, STREAM, FORMAT,
                        ("Buffer of %" G_GSIZE_FORMAT " bytes is shorter than a %dx%d %s frame (%" G_GSIZE_FORMAT
                         " bytes): passed on without a result",
                         have, GST_VIDEO_INFO_WIDTH(&filter->in_info), GST_VIDEO_INFO_HEIGHT(&filter->in_info),
                         GST_VIDEO_INFO_NAME(&filter->in_info), need),
                        ("buffer timestamp %" GST_TIME_FORMAT, GST_TIME_ARGS(GST_BUFFER_PTS(buffer))));
    return GST_FLOW_OK;
  }
  auto *video_filter_class = GST_BASE_TRANSFORM_CLASS(g_type_class_peek(GST_TYPE_VIDEO_FILTER));
  return video_filter_class->transform_ip(trans, buffer);
}

std::shared_ptr<cff::Engine> acquire_engine(GstElement *element, const std::string &path, const ModelSettings &settings,
                                            const char *what) {
  if (!g_file_test(path.c_str(), G_FILE_TEST_EXISTS)) {
    GST_ELEMENT_ERROR(element, RESOURCE, NOT_FOUND, ("%s file '%s' not found", what, path.c_str()), (nullptr));
    return nullptr;
  }
  try {
    const int before = cff::set_threads(settings.threads);
    if (settings.threads > 0 && before > 0 && before != settings.threads) {
      GST_ELEMENT_WARNING(element, RESOURCE, SETTINGS,
                          ("threads=%d replaces the %d threads set earlier in this process", settings.threads, before),
                          ("LibTorch has one thread count per process: the element that starts last decides it"));
    }
    return cff::Engine::acquire(path, settings.device, /*threads=*/-1);
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR(element, RESOURCE, SETTINGS, ("Cannot load %s file '%s': %s", what, path.c_str(), e.what()),
                      (nullptr));
    return nullptr;
  }
}

std::shared_ptr<cff::Engine> acquire_model(GstElement *element, const ModelSettings &settings) {
  if (settings.model_path.empty()) {
    GST_ELEMENT_ERROR(element, RESOURCE, SETTINGS, ("No model file set"),
                      ("set the 'model' property to a cff model file"));
    return nullptr;
  }
  auto engine = acquire_engine(element, settings.model_path, settings, "Model");
  if (engine && engine->info().channels != 1 && engine->info().channels != 3) {
    GST_ELEMENT_ERROR(element, RESOURCE, SETTINGS,
                      ("Model file '%s' works on %d-channel images; %s handles 1 (grey) or 3 (RGB)",
                       settings.model_path.c_str(), engine->info().channels,
                       gst_element_get_factory(element)
                           ? gst_plugin_feature_get_name(GST_PLUGIN_FEATURE(gst_element_get_factory(element)))
                           : "the element"),
                      (nullptr));
    return nullptr;
  }
  return engine;
}

}  // namespace cff::gst
