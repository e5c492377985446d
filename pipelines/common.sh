# Sourced by the pipeline scripts: finds the plugin in the build tree and the shipped model.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${CFF_BUILD_ROOT:-$root/build}"
export GST_PLUGIN_PATH_1_0="${GST_PLUGIN_PATH_1_0:-$BUILD/gst-plugin}"
MODEL="${MODEL:-$root/models/fashion-mnist-cff.cff}"
FRAMES="${FRAMES:-100}"
CLIPS="${CLIPS:-$BUILD/clips}"     # where make-clips.sh puts the clips
CLIP_FRAMES="${CLIP_FRAMES:-100}"  # frames of each kind in those clips

# The clips made by make-clips.sh; made on first use.
ensure_clips() {
  if [ ! -f "$CLIPS/mixed.avi" ] || [ ! -f "$CLIPS/noisy.avi" ] || [ ! -f "$CLIPS/fashion.avi" ]; then
    bash "$root/pipelines/make-clips.sh" "$CLIPS"
  fi
}
