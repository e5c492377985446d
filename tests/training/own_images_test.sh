#!/usr/bin/env bash
# "Train on your own images" end to end, as the README's quick start does it, on sets that
# tools/make_dataset.py draws: a grey glyph set learns with cff-train's defaults (only shorter and
# on a smaller network), and RGB sets (crops of opencv-doc pictures, one class per picture; 16x16, and 64x64
# on the network --widths auto chooses) go through cff-train -> cffgenerate -> cffclassify -> cffdenoise.
set -euo pipefail
root=${CFF_SOURCE_ROOT:?run through meson test}
build=${CFF_BUILD_ROOT:?run through meson test}
python=/usr/bin/python3
command -v "$python" >/dev/null || python=python3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
train=(nice "$build/training/cff-train" --threads 1 --device cpu --progress 1000 --samples-every 0 --ood uniform)

accuracy() {  # the last test accuracy in a run folder's metrics
  "$python" -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]["test_accuracy"])' "$1/metrics.jsonl"
}
above() { "$python" -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$1" "$2"; }

# 1. Grey glyphs (digits in OpenCV's Hershey fonts): a few hundred steps of the CFF defaults learn them.
"$python" "$root/tools/make_dataset.py" glyphs "$out/glyphs" --train 1200 --test 200 --seed 3
"${train[@]}" --data "$out/glyphs/train" --test-data "$out/glyphs/test" --out "$out/glyphs-run" \
  --min-steps 250 --batch 64 --widths 16,32,64 > "$out/glyphs.log"
grep -qE "epochs of [0-9]+ steps = [0-9]+ steps \\(" "$out/glyphs.log" || { echo "cff-train did not say why it chose its length"; cat "$out/glyphs.log"; exit 1; }
acc=$(accuracy "$out/glyphs-run")
echo "glyphs: test accuracy $acc after $(grep -o '"steps":[0-9]*' "$out/glyphs-run/metrics.jsonl" | tail -1)"
above "$acc" 0.5 || { echo "glyphs: accuracy $acc is not above 0.5 (chance 0.1)"; tail -5 "$out/glyphs.log"; exit 1; }
# Its samples: 10 steps of the default sampler, read by a CE classifier trained on the same glyphs. With the
# noise centred on the data and beta 3 (the recipe since 2026-12-07) the judge read 46% of them as the class
# asked for (82% after 500 steps); with the paper's process and beta 1 (--beta 1 --centre zero), 10%: chance.
"${train[@]}" --data "$out/glyphs/train" --test-data "$out/glyphs/test" --out "$out/glyphs-judge" --objective ce \
  --min-steps 250 --batch 64 --widths 16,32,64 > "$out/glyphs-judge.log"
"$build/tools/cff-eval" "$out/glyphs-run/model.cff" --judge "$out/glyphs-judge/model.cff" --data "$out/glyphs/test" \
  --skip classification,ood,denoising --steps 10 --samples 100 --fid-images 200 --threads 1 --out "$out/glyphs-eval" \
  > "$out/glyphs-eval.log" 2>&1 || { cat "$out/glyphs-eval.log"; exit 1; }
agreement=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"]["runs"][0]["judge_agreement"])' \
  "$out/glyphs-eval/summary.json")
echo "glyphs: the CE judge reads ${agreement} of 100 samples as the class asked for"
above "$agreement" 0.3 ||
  { echo "glyphs: judge agreement $agreement is not above 0.3 (chance 0.1)"; exit 1; }

# 2. RGB picture crops, 16x16: train, then generate, classify and denoise colour frames with the model.
"$python" "$root/tools/make_dataset.py" patches "$out/patches" --train 1200 --test 200 --size 16x16 --seed 4
"${train[@]}" --data "$out/patches/train" --test-data "$out/patches/test" --out "$out/patches-run" --channels 3 \
  --size 16x16 --min-steps 250 --batch 64 --widths 16,32 > "$out/patches.log"
acc=$(accuracy "$out/patches-run")
echo "patches: test accuracy $acc"
above "$acc" 0.5 || { echo "patches: accuracy $acc is not above 0.5 (chance 0.125)"; tail -5 "$out/patches.log"; exit 1; }
model="$out/patches-run/model.cff"
"$build/training/cff-train" --info "$model" > "$out/info.txt" && grep -q '"channels": 3' "$out/info.txt" || { echo "the model is not RGB"; exit 1; }

# 3. RGB 64x64 with the default --widths auto: the network gets a fourth stage (its last maps 8x8). A short run
# (the 16x16 leg above shows learning); the elements below take its 64x64 colour frames.
"$python" "$root/tools/make_dataset.py" patches "$out/big" --train 160 --test 40 --size 64x64 --seed 5
"${train[@]}" --data "$out/big/train" --test-data "$out/big/test" --out "$out/big-run" --channels 3 --size 64x64 \
  --epochs 2 --batch 32 > "$out/big.log"
grep -q "stage widths 32,64,128,256 (4 stages: the last one's maps are 8x8), --widths auto" "$out/big.log" ||
  { echo "64x64: cff-train did not choose four stages"; cat "$out/big.log"; exit 1; }
big="$out/big-run/model.cff"
"$build/training/cff-train" --info "$big" | tr -d ' \n' | grep -q '"widths":\[32,64,128,256\]' ||
  { echo "64x64: the model file does not hold the four stages"; exit 1; }

# The system's plugins (tee, queue, videoconvert, ...) as well as the freshly built one, in a private registry.
export GST_PLUGIN_PATH_1_0=$build/gst-plugin GST_REGISTRY_1_0=$out/registry.bin
unset GST_PLUGIN_SYSTEM_PATH_1_0
if ! command -v gst-launch-1.0 >/dev/null || [ ! -d "$GST_PLUGIN_PATH_1_0" ]; then
  echo "no GStreamer plugin built: the element half is left out"
  exit 0
fi
# cffgenerate makes RGB frames of the model's size; cffclassify reads them back (RGB and I420).
gst-launch-1.0 -m cffgenerate model="$model" label=cycle num-buffers=8 seed=1 \
  ! video/x-raw,format=RGB,width=16,height=16 ! tee name=t \
  t. ! queue ! cffclassify model="$model" message=all name=rgb ! fakesink \
  t. ! queue ! videoconvert ! video/x-raw,format=I420 ! cffclassify model="$model" message=all name=yuv ! fakesink \
  > "$out/gen.log" 2>&1 || { cat "$out/gen.log"; exit 1; }
labels() { grep "from element \"$1\"" "${2:-$out/gen.log}" | sed -n 's/.* label=(string)\([a-z0-9_]*\).*/\1/p'; }  # ELEMENT [LOG]
for element in rgb yuv; do
  n=$(labels $element | wc -l)
  [ "$n" -eq 8 ] || { echo "cffclassify $element posted $n results, expected 8"; cat "$out/gen.log"; exit 1; }
done
# The same frames as RGB and as I420 get the same class (colour survives both conversions).
same=$(paste -d' ' <(labels rgb) <(labels yuv) | awk '$1 == $2' | wc -l)
[ "$same" -ge 6 ] || { echo "RGB and I420 frames classified alike only $same of 8 times"; exit 1; }
# label=cycle asks for each class in turn (the eight classes, sorted by name): how many read as asked.
agree=$(paste -d' ' <(ls "$out/patches/train" | sort) <(labels rgb) | awk '$1 == $2' | wc -l)
echo "cffgenerate -> cffclassify: $agree of 8 RGB frames read as the class asked for; RGB and I420 agree on $same"
# cffdenoise cleans colour frames with the model.
gst-launch-1.0 videotestsrc num-buffers=3 pattern=ball ! video/x-raw,format=RGB,width=48,height=32 \
  ! cffdenoise model="$model" sigma=20 ! videoconvert ! fakesink > "$out/denoise.log" 2>&1 ||
  { cat "$out/denoise.log"; exit 1; }
echo "cffdenoise: 3 RGB frames denoised"
# The 64x64 model: cffgenerate makes 64x64 colour frames, cffclassify reads them, cffdenoise cleans them.
gst-launch-1.0 -m cffgenerate model="$big" label=cycle num-buffers=2 seed=1 ! video/x-raw,format=RGB,width=64,height=64 \
  ! cffclassify model="$big" message=all name=big ! cffdenoise model="$big" sigma=20 ! fakesink > "$out/big-gst.log" 2>&1 ||
  { cat "$out/big-gst.log"; exit 1; }
n=$(labels big "$out/big-gst.log" | wc -l)
[ "$n" -eq 2 ] || { echo "cffclassify on 64x64 frames posted $n results, expected 2"; cat "$out/big-gst.log"; exit 1; }
echo "64x64: cffgenerate -> cffclassify -> cffdenoise on 2 RGB frames"
