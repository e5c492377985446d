#!/usr/bin/env bash
# README command 1: install, build, and show the four jobs of one CFF model with the shipped model:
#   1. generate frames per class (cffgenerate) and classify them (cffclassify checks the generator),
#   2. classify a clip and flag its out-of-distribution frames (Fashion-MNIST mixed with a natural video),
#   3. denoise a noisy clip (cffdenoise),
#   4. the same jobs through libcff directly, with figures on 2000 test images (cff-demo).
# Ends with where the images/videos are and a table of figures. Takes a few minutes on 2 cores.
# Without a shipped model (a fresh checkout before the first release), it first trains a small one
# for about a minute so the demo always has something real to show.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
root="$(pwd)"
model=models/fashion-mnist-cff.cff
if [ ! -f "$model" ]; then
  model=build/demo-model.cff
  if [ ! -f "$model" ]; then
    echo "demo: no shipped model yet; training a small one on 6000 Fashion-MNIST images (about a minute)"
    ./build/training/cff-train --limit 6000 --epochs 2 --eval-limit 1000 --samples-every 0 \
      --out build/demo-run --export "$model" --progress 20
  fi
fi
out="${DEMO_OUT:-demo-output}"
mkdir -p "$out/generated" "$out/denoised"
export MODEL="$root/$model" CLIPS="$root/$out/clips" CLIP_FRAMES="${CLIP_FRAMES:-50}"
export GST_PLUGIN_PATH_1_0="$root/build/gst-plugin"
app="$root/build/pipelines/cff-classify-app"
threads="${THREADS:-$(nproc)}"

echo
echo "== clips: Fashion-MNIST test images, a natural video from opencv-doc, and noisy frames"
bash pipelines/make-clips.sh "$CLIPS"

echo
echo "== 1. generate 2 frames per class with cffgenerate (default sampler: 10 steps) and let cffclassify check them"
names=("T-shirt/top" Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag "Ankle boot")
{ echo "frame,kind,label,name"; for i in $(seq 0 19); do echo "$i,in,$((i % 10)),${names[$((i % 10))]}"; done; } \
  > "$out/generated/requested.csv"
"$app" --quiet --truth "$out/generated/requested.csv" --launch \
  "cffgenerate model=$MODEL label=cycle num-buffers=20 threads=$threads ! tee name=t \
   t. ! queue ! cffclassify model=$MODEL threads=$threads ! appsink name=sink sync=false \
   t. ! queue ! videoconvert ! videoscale method=nearest-neighbour ! video/x-raw,width=112,height=112 \
      ! pngenc ! multifilesink location=$out/generated/frame_%02d.png" | tee "$out/generate.txt"

echo
echo "== 2. classify the mixed clip and flag out-of-distribution frames (cffclassify, overlay video)"
"$app" --quiet --threads "$threads" --truth "$CLIPS/mixed.csv" "$CLIPS/mixed.avi" | tee "$out/classify.txt"
FRAMES=$((2 * CLIP_FRAMES)) bash pipelines/classify-clip.sh "$out/classified.mp4" "$CLIPS/mixed.avi" > /dev/null

echo
echo "== 3. denoise the noisy clip (cffdenoise, noise level estimated per frame)"
FRAMES=8 bash pipelines/denoise-clip.sh "$out/denoised" > /dev/null
echo "wrote $out/denoised/"

echo
echo "== 4. the same jobs through libcff, on 2000 Fashion-MNIST test images"
./build/tools/cff-demo "$model" "$out" | tee "$out/library.txt"

echo
echo "demo: outputs in $root/$out"
echo "  generated/frame_*.png   frames from cffgenerate (walks the classes)"
echo "  classified.mp4          the mixed clip with cffclassify's overlay (red bar = out of distribution)"
echo "  denoised/               noisy_*.png, denoised_*.png, denoised.mp4"
echo "  samples.png, denoise.png, ood.png   from cff-demo"
echo
echo "| figure | value |"
echo "|---|---|"
gen_acc=$(sed -n 's/.*accuracy \([0-9.]*\).*/\1/p' "$out/generate.txt")
in_line=$(grep '^in-distribution' "$out/classify.txt")
ood_rate=$(sed -n 's/^out-of-distribution.*flagged OOD \([0-9.]*\).*/\1/p' "$out/classify.txt")
echo "| generated frames classified as the requested class | $gen_acc |"
echo "| clip: accuracy on Fashion-MNIST frames | $(echo "$in_line" | sed -n 's/.*accuracy \([0-9.]*\).*/\1/p') |"
echo "| clip: Fashion-MNIST frames flagged OOD | $(echo "$in_line" | sed -n 's/.*flagged OOD \([0-9.]*\).*/\1/p') |"
echo "| clip: natural-video frames flagged OOD | $ood_rate |"
sed -n 's/^1\. classify: accuracy on 2000 Fashion-MNIST test images: \(.*\)/| library: test accuracy (2000 images) | \1 |/p' "$out/library.txt"
sed -n 's/^   PSNR noisy \(.*\) dB -> restored \(.*\) dB/| library: denoise sigma 50, PSNR noisy -> restored | \1 -> \2 dB |/p' "$out/library.txt"
