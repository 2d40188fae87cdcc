#!/usr/bin/env bash
# Installs Debian's chromium for browser tests and benchmarks when it is missing; prints its path.
# Used by tests/integration/film (browser test) and scripts/bench/film.py; safe to run concurrently.
set -euo pipefail
BIN=/usr/bin/chromium
if [ ! -x "$BIN" ]; then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  # one installer at a time when several test workers ask together
  exec 9>/tmp/bianjie-chromium.lock
  flock 9
  if [ ! -x "$BIN" ]; then
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
  fi
fi
echo "$BIN"
