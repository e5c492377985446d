#!/bin/bash
# tools/sweep/sweep.py end to end on a tiny slice: two configurations (the paper-literal row is added
# by itself) train and evaluate in seconds, the table has a row each, a second run reuses them, and
# an unknown configuration is a usage error. Run by meson test (suite tools) with CFF_BUILD_ROOT set.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${CFF_BUILD_ROOT:?run through meson test}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
sweep=(/usr/bin/env python3 "$root/tools/sweep/sweep.py" --build "$build" --out "$out/sweep" --judge "" --threads 1
       --train-args "--limit 1100 --holdout 100 --epochs 2 --widths 8,16 --batch 50 --lr 5e-3 --eval-limit 200 --samples-every 0"
       --eval-args "--limit 200 --samples 20 --steps 2 --skip denoising --ood uniform,inverted --fit 300 --fid-images 50 --unconditional")

fail() { echo "sweep_test: $*" >&2; exit 1; }

"${sweep[@]}" --configs default,no-ema > "$out/first.txt" 2> "$out/first.err" || { cat "$out/first.err" >&2; fail "first sweep failed"; }
cat "$out/first.txt"
for name in paper-literal default no-ema; do
  grep -q "^| $name | [0-9.]*% |" "$out/first.txt" || fail "no row with an accuracy for $name"
  [ -f "$out/sweep/$name/model.cff" ] || fail "no model for $name"
done
grep -q "auroc uniform" "$out/first.txt" || fail "no AUROC column"
grep -q "uncond. confident 2 steps" "$out/first.txt" || fail "no unconditional column"
[ -f "$out/sweep/sweep.md" ] && [ -f "$out/sweep/sweep.json" ] || fail "sweep.md or sweep.json missing"
# Different settings train differently: the two rows must not be the same numbers.
[ "$(grep '^| default |' "$out/first.txt" | cut -d'|' -f3-)" != "$(grep '^| paper-literal |' "$out/first.txt" | cut -d'|' -f3-)" ] ||
  fail "paper-literal and default rows are identical"

"${sweep[@]}" --configs default > "$out/second.txt" 2> "$out/second.err" || fail "second sweep failed"
grep -q "default: already done" "$out/second.err" || fail "finished runs were not reused: $(cat "$out/second.err")"
diff <(grep '^| default |' "$out/first.txt") <(grep '^| default |' "$out/second.txt") || fail "reused row changed"

# A run stopped while training continues from its checkpoint (--resume) instead of starting again.
/usr/bin/env python3 - "$out/sweep/default/sweep-run.json" <<'PY'
import json, sys
record = json.load(open(sys.argv[1]))
record["state"] = "training"
json.dump(record, open(sys.argv[1], "w"))
PY
"${sweep[@]}" --configs default > "$out/third.txt" 2> "$out/third.err" || { cat "$out/third.err" >&2; fail "resumed sweep failed"; }
grep -q "default: resuming" "$out/third.err" || fail "the stopped run was not resumed: $(cat "$out/third.err")"
grep -q "resumed from" "$out/sweep/default/train.log" || fail "cff-train did not resume: $(tail -3 "$out/sweep/default/train.log")"
grep -q "^| default | [0-9.]*% |" "$out/third.txt" || fail "no default row after resuming"

# --model: no training, one row per sampler setting of tools/sweep/samplers.json on that model.
/usr/bin/env python3 "$root/tools/sweep/sweep.py" --build "$build" --out "$out/samplers" --judge "" --threads 1 \
  --model "$out/sweep/default/model.cff" --configs base,corrector-0.2 \
  --eval-args "--limit 200 --samples 20 --steps 3 --skip classification,ood,denoising --fid-images 50" \
  > "$out/samplers.txt" 2> "$out/samplers.err" || { cat "$out/samplers.err" >&2; fail "sampler sweep failed"; }
cat "$out/samplers.txt"
for name in base corrector-0.2; do
  grep -q "^| $name | " "$out/samplers.txt" || fail "no row for sampler setting $name"
done
grep -q "^| paper-literal |" "$out/samplers.txt" && fail "a sampler sweep trained the paper-literal recipe"
grep -q "ms per sample 3 steps" "$out/samplers.txt" || fail "no sampling time column"
grep -q "corrector-steps" "$out/samplers/corrector-0.2/eval/summary.json" || fail "corrector options not recorded"
# Columns: name, agreement, FID, diversity, ms per sample (no judge: agreement and FID are n/a).
[ "$(grep '^| base |' "$out/samplers.txt" | cut -d'|' -f5)" != "$(grep '^| corrector-0.2 |' "$out/samplers.txt" | cut -d'|' -f5)" ] ||
  fail "the corrector did not change the samples"

set +e
"${sweep[@]}" --configs default,bogus > /dev/null 2> "$out/bad.err"
status=$?
set -e
[ "$status" -eq 2 ] || fail "unknown configuration: exit $status, expected 2"
grep -q "unknown configuration(s) bogus" "$out/bad.err" || fail "unclear message: $(cat "$out/bad.err")"
echo "sweep_test: ok"
