#!/usr/bin/env bash
# Crash-safe training, measured: kills cff-train with SIGKILL at random moments (and at moments when a
# checkpoint, metrics or model file is being written), resumes each run with --resume, and checks that
#   - the checkpoint left behind always loads (the resume starts from it, or from scratch if none was written),
#   - the resume always finishes and leaves no temporary file,
#   - the model file equals the uninterrupted run's: the same tensor bytes, the same metadata but for the
#     clock (durations, speeds, the command line), and metrics.jsonl has the same lines but for the clock.
#
#   tools/kill-test.sh [KILLS] [BUILD_DIR]      (default 20 kills, build/)
#
# Prints one line per kill (when it landed, what it interrupted) and a summary; exits non-zero on the first
# run that does not match. Takes about a minute per kill on 2 cores.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kills="${1:-20}"
build="${2:-$root/build}"
python=/usr/bin/python3
command -v "$python" >/dev/null || python=python3
trainer="$build/training/cff-train"
[ -x "$trainer" ] || { echo "kill-test: $trainer not built" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" "$root/tools/make_dataset.py" glyphs "$work/glyphs" --train 600 --test 100 --seed 5 > /dev/null
# A short run that still has every kind of write: 4 epochs (checkpoint + metrics line each), a sample grid
# every other epoch, the OOD fit and the export.
train=("$trainer" --data "$work/glyphs/train" --test-data "$work/glyphs/test" --epochs 4 --batch 32
       --widths 8,16 --groups 4 --threads 1 --device cpu --progress 1000 --samples-every 2 --sample-steps 2
       --ood uniform,constant --ood-fit-images 300 --seed 11)

start=$(date +%s.%N)
"${train[@]}" --out "$work/reference" > "$work/reference.log"
duration=$("$python" -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)")
echo "kill-test: uninterrupted run takes ${duration%.*} s"

# Compares a run folder with the reference: model tensors byte for byte, metadata and metrics but for the clock.
compare() {
  "$python" - "$work/reference" "$1" <<'EOF'
import json, os, struct, sys
clock = {"epoch_seconds", "images_per_second", "train_seconds_this_run", "command_line"}
def scrub(value):
    if isinstance(value, dict):
        return {k: (os.path.basename(v) if k == "sample_grid" else scrub(v)) for k, v in value.items() if k not in clock}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value
def model(run):
    data = open(os.path.join(run, "model.cff"), "rb").read()
    meta_size, tensor_size = struct.unpack_from("<QQ", data, 16)
    meta = json.loads(data[36:36 + meta_size])
    meta["provenance"].pop("options", None)  # holds the run folder
    return scrub(meta), data[36 + meta_size:]
def metrics(run):
    return [scrub(json.loads(line)) for line in open(os.path.join(run, "metrics.jsonl"))]
ref, run = sys.argv[1], sys.argv[2]
(meta_a, tensors_a), (meta_b, tensors_b) = model(ref), model(run)
problems = []
if tensors_a != tensors_b: problems.append("tensor bytes differ")
if meta_a != meta_b: problems.append("metadata differs")
if metrics(ref) != metrics(run): problems.append("metrics.jsonl differs")
left = [f for f in os.listdir(run) if ".tmp." in f]
if left: problems.append("temporary files left: " + ", ".join(left))
print("; ".join(problems) if problems else "same")
sys.exit(1 if problems else 0)
EOF
}

mid_write=0
for ((i = 1; i <= kills; i++)); do
  run="$work/run$i"
  "${train[@]}" --out "$run" > "$run.log" 2>&1 &
  pid=$!
  if ((i % 3 == 0)); then
    # At a write: wait until a temporary file of an atomic write (checkpoint, metrics rewrite, sample grid,
    # model) exists, after a random number of them, then kill at once.
    skip=$((RANDOM % 6))
    seen=""
    while kill -0 "$pid" 2> /dev/null; do
      tmp=$(compgen -G "$run/*.tmp.*" || true)
      if [ -n "$tmp" ] && [ "$tmp" != "$seen" ]; then
        seen=$tmp
        if ((skip-- == 0)); then kill -9 "$pid" 2> /dev/null || true; break; fi
      fi
    done
    when="at a write ($(basename "${seen:-none}"))"
  else
    delay=$("$python" -c "import random, sys; random.seed($i); print(round(random.uniform(0.3, float(sys.argv[1])), 2))" "$duration")
    sleep "$delay"
    kill -9 "$pid" 2> /dev/null || true
    when="after ${delay} s"
  fi
  wait "$pid" 2> /dev/null && finished=yes || finished=no
  left=$(compgen -G "$run/*.tmp.*" || true)
  [ -n "$left" ] && mid_write=$((mid_write + 1))
  epochs=$(grep -c . "$run/metrics.jsonl" 2> /dev/null || echo 0)
  if [ "$finished" = yes ]; then
    state="had finished"
  elif [ -f "$run/checkpoint.pt" ]; then
    "${train[@]}" --out "$run" --resume > "$run.resume.log" 2>&1 ||
      { echo "kill $i ($when): --resume failed:"; tail -3 "$run.resume.log"; exit 1; }
    state="resumed from $(grep -o 'after epoch [0-9]*' "$run.resume.log")"
  else
    "${train[@]}" --out "$run" > "$run.resume.log" 2>&1 ||
      { echo "kill $i ($when): the restart failed:"; tail -3 "$run.resume.log"; exit 1; }
    state="no checkpoint yet: restarted"
  fi
  result=$(compare "$run") || { echo "kill $i ($when, $epochs metrics lines, ${left:+mid-write}): $result"; exit 1; }
  echo "kill $i: $when, $epochs metrics lines${left:+, interrupted $(basename "$left")}; $state: $result"
done
echo "kill-test: $kills kills ($mid_write in the middle of a write): every resume finished and equals the uninterrupted run"
