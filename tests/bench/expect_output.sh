#!/usr/bin/env bash
# Runs a command, shows its output and fails unless every given pattern (grep -E) occurs in it.
# Usage: expect_output.sh PATTERN... -- COMMAND [ARGS...]. Exit status 77 (skip) passes through.
set -uo pipefail
patterns=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do patterns+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || { echo "expect_output: no command" >&2; exit 2; }

output="$("$@" 2>&1)"
status=$?
printf '%s\n' "$output"
[ $status -eq 77 ] && exit 77
[ $status -eq 0 ] || { echo "expect_output: command failed with status $status" >&2; exit 1; }
for p in "${patterns[@]}"; do
  grep -Eq -- "$p" <<<"$output" || { echo "expect_output: no line matches '$p'" >&2; exit 1; }
done
