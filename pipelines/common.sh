# Sourced by the pipeline scripts: finds the plugin in the build tree and the shipped model.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GST_PLUGIN_PATH_1_0="${GST_PLUGIN_PATH_1_0:-$root/build/gst-plugin}"
MODEL="${MODEL:-$root/models/fashion-mnist-cff.cff}"
FRAMES="${FRAMES:-100}"
