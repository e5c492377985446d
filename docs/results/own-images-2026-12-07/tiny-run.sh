#!/usr/bin/env bash
# The own-images test's small glyph model, its CE judge and the judge agreement of 100 samples (issue 15, 2026-12-07).
# Usage, from a scratch folder: CFF_BUILD=/path/to/cff/build bash tiny-run.sh NAME [cff-train options]
set -e
B=${CFF_BUILD:-build}   # run from a scratch folder with CFF_BUILD pointing at the build
name=$1; shift
train=(nice $B/training/cff-train --threads 1 --device cpu --progress 1000 --samples-every 0 --ood uniform)
[ -d glyphs ] || /usr/bin/python3 "$(dirname "$B")/tools/make_dataset.py" glyphs glyphs --train 1200 --test 200 --seed 3 >/dev/null
[ -f judge/model.cff ] || "${train[@]}" --data glyphs/train --test-data glyphs/test --out judge --objective ce --min-steps 250 --batch 64 --widths 16,32,64 > judge.log
"${train[@]}" --data glyphs/train --test-data glyphs/test --out $name --batch 64 --widths 16,32,64 "$@" > $name.log
$B/tools/cff-eval $name/model.cff --judge judge/model.cff --data glyphs/test --skip classification,ood,denoising --steps 10 --samples 100 --fid-images 200 --threads 1 --out $name-eval > $name-eval.log 2>&1
echo "$name $* acc $(grep exported $name.log | grep -o 'accuracy [0-9.]*') agree $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"]["runs"][0]["judge_agreement"])' $name-eval/summary.json)"
