// What the cff elements share at the GObject level.
#pragma once

#include <glib-object.h>

// Installs the three properties every cff element has, with ids prop_model (the model file),
// prop_model + 1 (device) and prop_model + 2 (LibTorch threads), all changeable up to READY.
// `model_blurb` says what the element does with the model.
void cff_install_model_properties(GObjectClass *gobject_class, guint prop_model, const char *model_blurb);
