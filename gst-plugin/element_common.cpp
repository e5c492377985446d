#include "element_common.h"

#include <gst/gst.h>

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
                       "CPU threads for inference (0 = one per core). LibTorch's thread count is process-wide", 0,
                       1024, 0, ready));
}
