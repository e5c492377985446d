#!/usr/bin/env bash
# The benchmark tools answer --help with their usage (exit 0) and refuse bad options with exit 2 and a
# one-line reason, without running anything. Usage: usage.sh TOOL...
set -uo pipefail
fail() { echo "usage.sh: $*" >&2; exit 1; }
expect() {  # expect STATUS PATTERN COMMAND...
  local want=$1 pattern=$2; shift 2
  local output status
  output="$("$@" 2>&1)"
  status=$?
  [ "$status" -eq "$want" ] || fail "$*: exit $status, expected $want: $output"
  grep -Eq -- "$pattern" <<<"$output" || fail "$*: no line matches '$pattern': $output"
}
for tool in "$@"; do
  name="$(basename "$tool")"
  expect 0 "^usage: $name" "$tool" --help
  case "$name" in
    bench-train-throughput)
      expect 2 "^bench-train-throughput: --rounds: 'many' is not an integer" "$tool" --rounds many
      expect 2 "needs a value" "$tool" --batch
      expect 2 "force-fraction: each must be in \(0, 1\]" "$tool" --force-fraction 1.5
      expect 2 "unexpected argument 'extra'" "$tool" extra ;;
    bench-classify)
      expect 2 "needs a value" "$tool" --frames
      expect 2 "unknown option --bogus" "$tool" --bogus 1
      expect 2 "--format: RGBx16 is not one of" "$tool" --format RGBx16 ;;
    bench-element-fps)
      expect 2 "needs a value" "$tool" --warmup
      expect 2 "--warmup: must be at least 1" "$tool" --warmup 0 'fakesink name=sink'
      expect 2 "no pipeline description" "$tool" --repeat 2 ;;
  esac
done
echo "usage.sh: ok ($# tools)"
