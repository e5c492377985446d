// The "cff" GStreamer plugin: Central Force Field elements.
#include <gst/gst.h>

#include "gstcffclassify.h"
#include "gstcffdenoise.h"
#include "gstcffgenerate.h"

// The package name and origin come from meson (options package-name and package-origin), as in GStreamer's
// own modules; the licence is one GStreamer's registry knows.
static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ok = GST_ELEMENT_REGISTER(cffclassify, plugin);
  ok = GST_ELEMENT_REGISTER(cffgenerate, plugin) && ok;
  ok = GST_ELEMENT_REGISTER(cffdenoise, plugin) && ok;
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, cff,
                  "Central Force Field vision: classification with out-of-distribution flags, generation, denoising", plugin_init,
                  CFF_VERSION, "MIT/X11", GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
