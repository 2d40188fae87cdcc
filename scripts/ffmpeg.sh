#!/usr/bin/env bash
# Installs Debian's ffmpeg (the content service's transcoder and its tests) when it is missing; prints its path.
# Used by `make setup`, scripts/test.sh, tests/*/content and scripts/bench/content.py; safe to run concurrently.
set -euo pipefail
BIN=/usr/bin/ffmpeg
if [ ! -x "$BIN" ]; then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  exec 9>/tmp/bianjie-ffmpeg.lock
  flock 9
  if [ ! -x "$BIN" ]; then
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
  fi
fi
echo "$BIN"
