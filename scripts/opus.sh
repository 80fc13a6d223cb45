#!/usr/bin/env bash
# Installs libopus-dev (the Opus codec that moq-phone and chan_moq link) when
# pkg-config cannot find it: with apt as root, else says what to run.
# Used by ./scripts/test and interop/run.
set -euo pipefail
if pkg-config --exists opus 2>/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  apt-get install -y -q libopus-dev || { apt-get update -q && apt-get install -y -q libopus-dev; }
else
  echo "libopus-dev is missing: run 'sudo apt-get install libopus-dev' and re-run" >&2
  exit 1
fi
