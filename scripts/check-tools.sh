#!/usr/bin/env bash
# The first step of `make test`: every external command the code and tests run must be on PATH.
# Prints each missing command with the Debian package that provides it, and fails, so a missing
# tool is one clear line instead of a test that fails later with "exec of ... failed".
# LIVENESS_ALLOW_MISSING_TOOLS=1 turns the failure into a warning (tests that need them skip or fail).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
while read -r command package _; do
  case "$command" in ''|'#'*) continue ;; esac
  command -v "$command" >/dev/null 2>&1 || missing+=("$command (apt-get install $package)")
done < scripts/system-tools.txt
if [ ${#missing[@]} -gt 0 ]; then
  printf 'check-tools: missing system commands:\n' >&2
  printf '  %s\n' "${missing[@]}" >&2
  if [ "${LIVENESS_ALLOW_MISSING_TOOLS:-0}" = "1" ]; then
    echo "check-tools: continuing (LIVENESS_ALLOW_MISSING_TOOLS=1)" >&2
    exit 0
  fi
  echo "check-tools: run 'make test' as root on Debian to install them (scripts/bootstrap.sh)" >&2
  exit 1
fi
echo "check-tools: all $(grep -cvE '^\s*(#|$)' scripts/system-tools.txt) system commands present" >&2
