#!/usr/bin/env python3
"""Prints one closing line for a meson test run: 'N passed, N failed' over all GoogleTest cases.

Reads build/meson-logs/testlog.json; a test program that crashed or printed no GoogleTest summary
counts as one failure, so a broken suite never looks green."""
import json
import re
import sys

log = sys.argv[1] if len(sys.argv) > 1 else "build/meson-logs/testlog.json"
passed = failed = skipped = 0
with open(log) as f:
    for line in f:
        entry = json.loads(line)
        out = entry.get("stdout") or ""
        p = re.search(r"\[  PASSED  \] (\d+) test", out)
        fl = re.search(r"\[  FAILED  \] (\d+) test", out)
        sk = re.search(r"\[  SKIPPED \] (\d+) test", out)
        if p or fl:
            passed += int(p.group(1)) if p else 0
            failed += int(fl.group(1)) if fl else 0
            skipped += int(sk.group(1)) if sk else 0
            if entry.get("result") not in ("OK", "EXPECTEDFAIL") and not fl:
                failed += 1  # crashed after its summary, or timed out
        elif entry.get("result") in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif entry.get("result") == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
