// What the cff elements share: the model, device and threads properties, and loading the shared
// engine in start() with the errors a user sees.
#pragma once

#include <memory>
#include <string>

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

#include "cff/engine.h"

// Installs the three properties every cff element has, with ids prop_model (the model file),
// prop_model + 1 (device) and prop_model + 2 (LibTorch threads), all changeable up to READY.
// `model_blurb` says what the element does with the model.
void cff_install_model_properties(GObjectClass *gobject_class, guint prop_model, const char *model_blurb);

namespace cff::gst {

// The values of those three properties. Set and read under the element's object lock.
struct ModelSettings {
  std::string model_path;
  std::string device = "auto";
  int threads = 0;
};

// set_property / get_property for the three properties (ids as installed above): true when prop_id
// was one of them.
bool set_model_property(GObject *object, ModelSettings &settings, guint prop_model, guint prop_id, const GValue *value);
bool get_model_property(GObject *object, const ModelSettings &settings, guint prop_model, guint prop_id, GValue *value);

// The flags of the elements' properties: readable, writable, static strings; and those that may change up
// to READY and up to PLAYING.
constexpr GParamFlags kPropertyFlags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
constexpr GParamFlags kMutableReady = static_cast<GParamFlags>(kPropertyFlags | GST_PARAM_MUTABLE_READY);
constexpr GParamFlags kMutablePlaying = static_cast<GParamFlags>(kPropertyFlags | GST_PARAM_MUTABLE_PLAYING);

// GObject finalize for an element whose instance struct holds its state in `priv` (a C++ object made with
// new in instance init): deletes it, then chains up to `parent_class`.
template <typename Element>
void finalize_private(GObject *object, gpointer parent_class) {
  auto *self = reinterpret_cast<Element *>(object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

// The GObject methods every element sets in class_init.
inline void set_object_methods(GObjectClass *gobject_class, GObjectSetPropertyFunc set_property,
                               GObjectGetPropertyFunc get_property, GObjectFinalizeFunc finalize) {
  gobject_class->set_property = set_property;
  gobject_class->get_property = get_property;
  gobject_class->finalize = finalize;
}

// GstBaseTransform::transform_ip for the in-place GstVideoFilter elements (cffclassify, cffdenoise): a
// buffer without a GstVideoMeta that is shorter than its caps' frame is passed on untouched with a
// warning naming both sizes (GstVideoFilter's own would say only "invalid video buffer received");
// every other buffer goes on to GstVideoFilter's transform_ip.
GstFlowReturn transform_ip_checked(GstBaseTransform *trans, GstBuffer *buffer);

// A copy taken under the object lock, for start().
ModelSettings snapshot(GObject *object, const ModelSettings &settings);

// The shared engine for `path` on the settings' device and threads; `what` names the file in errors
// ("Model", "Guide model"). Posts GST_ELEMENT_ERROR (RESOURCE NOT_FOUND for a missing file, SETTINGS when
// it cannot load, naming the path and the reason) and returns null on failure.
std::shared_ptr<cff::Engine> acquire_engine(GstElement *element, const std::string &path, const ModelSettings &settings,
                                            const char *what);

// The element's own model: as acquire_engine, after "No model file set" when the property is empty, and
// refused unless it has 1 or 3 channels (the frames the elements read and write).
std::shared_ptr<cff::Engine> acquire_model(GstElement *element, const ModelSettings &settings);

}  // namespace cff::gst
