#!/usr/bin/env bash
# Install what liveness needs on a fresh Debian machine: system tools (as root) and a venv.
# Idempotent: skips what is already there. Used by `make` targets and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# System tools: one package per command in scripts/system-tools.txt (the testbed, the peer
# scanners, independent decoders, Chromium for the report's screenshot test).
APT_PACKAGES=$(awk '!/^[[:space:]]*(#|$)/ {print $2}' scripts/system-tools.txt | sort -u | tr '\n' ' ')
missing=""
for pkg in $APT_PACKAGES; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing system packages:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections || true
    apt-get update -qq
    # Servers the testbed runs in its own namespaces (nginx, sshd) must not start on the host
    # when their packages are installed: policy-rc.d forbids every service start meanwhile.
    policy=/usr/sbin/policy-rc.d
    made_policy=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
    fi
    status=0
    apt-get install -y -qq --no-install-recommends $missing >/dev/null || status=$?
    if [ -n "$made_policy" ]; then rm -f "$policy"; fi
    [ "$status" = 0 ] || exit "$status"
  else
    echo "bootstrap: missing system packages:$missing (not root: tests that need them will skip)" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/pip" install -q -e ".[dev]"
