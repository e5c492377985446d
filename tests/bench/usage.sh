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
      expect 2 "bad value 'many' for --rounds" "$tool" --rounds many
      expect 2 "needs a value" "$tool" --batch
      expect 2 "force-fraction in \(0, 1\]" "$tool" --force-fraction 1.5 ;;
    bench-classify)
      expect 2 "needs a value" "$tool" --frames
      expect 2 "unknown option --bogus" "$tool" --bogus 1 ;;
    bench-element-fps)
      expect 2 "needs a value" "$tool" --warmup ;;
  esac
done
echo "usage.sh: ok ($# tools)"
