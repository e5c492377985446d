#!/usr/bin/env bash
# Data-parallel scaling of cff-train on one machine (issue 18): the same CFF training run as one process
# with all T threads, and as R ranks of T/R threads each started by torchrun (Gloo on localhost), in
# interleaved rounds so that background load hits both alike. Prints images/s of each (the trainer's own
# figure, from metrics.jsonl), the speed-up R ranks / 1 process and the efficiency, and the all-reduce
# payload per step (the parameters' bytes x 2(R-1)/R, a ring all-reduce).
#
# Usage: tools/bench/distributed_scaling.sh [--ranks 2] [--threads 2] [--images 2048] [--rounds 2]
#                                           [--widths 32,64,128] [--out DIR]
# Environment: CFF_BUILD_ROOT (default <repo>/build).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${CFF_BUILD_ROOT:-$root/build}"
ranks=2 threads=2 images=2048 rounds=2 widths=32,64,128 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --images) images="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --widths) widths="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "distributed_scaling: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
exe="$build/training/cff-train"
[ -x "$exe" ] || { echo "distributed_scaling: $exe is not built" >&2; exit 2; }
command -v torchrun >/dev/null || { echo "distributed_scaling: torchrun not found (Debian: python3-torch)" >&2; exit 2; }
per_rank=$(( threads / ranks )); [ "$per_rank" -ge 1 ] || per_rank=1
[ -n "$out" ] || out="$(mktemp -d)"
mkdir -p "$out"

# One epoch of `images` images, no evaluation or sample grid to speak of: the figure is training speed.
common=(--data fashion-mnist --limit "$images" --epochs 1 --widths "$widths" --holdout 200 --eval-limit 100
        --samples-every 0 --ood uniform --device cpu --progress 1000)
speed() { /usr/bin/python3 -c 'import json,sys; print(round(json.loads(open(sys.argv[1]).readlines()[-1])["images_per_second"], 1))' "$1/metrics.jsonl"; }

one=() many=()
for round in $(seq 1 "$rounds"); do
  rm -rf "$out/one" "$out/many"
  "$exe" "${common[@]}" --threads "$threads" --out "$out/one" > "$out/one-$round.log" 2>&1
  one+=("$(speed "$out/one")")
  torchrun --standalone --nproc_per_node "$ranks" --no_python --redirects 1 --tee 1 \
    "$exe" "${common[@]}" --threads "$per_rank" --out "$out/many" > "$out/many-$round.log" 2>&1
  many+=("$(speed "$out/many")")
  echo "round $round: 1 process x $threads threads ${one[-1]} img/s; $ranks ranks x $per_rank threads ${many[-1]} img/s"
done
params=$(grep -o '([0-9]* parameters)' "$out/one-1.log" | head -1 | tr -dc 0-9)
/usr/bin/python3 - "$ranks" "$threads" "$per_rank" "$params" "${one[*]}" "${many[*]}" <<'EOF'
import statistics, sys
ranks, threads, per_rank, params = (int(v) for v in sys.argv[1:5])
one = [float(v) for v in sys.argv[5].split()]
many = [float(v) for v in sys.argv[6].split()]
a, b = statistics.median(one), statistics.median(many)
payload = params * 4 * 2 * (ranks - 1) / ranks
print(f"1 process x {threads} threads: {a:.1f} img/s (median of {len(one)})")
print(f"{ranks} ranks x {per_rank} threads: {b:.1f} img/s (median of {len(many)})")
print(f"ratio {ranks} ranks / 1 process {b / a:.2f} (the same {threads} cores: 1.00 is perfect scaling)")
print(f"all-reduce payload per step: {params} parameters x 4 bytes x 2({ranks}-1)/{ranks} = {payload / 1e6:.2f} MB")
EOF
