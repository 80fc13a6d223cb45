#!/usr/bin/env bash
# Makes sure the browser of the web phone's end-to-end tests (npm run e2e)
# is installed: Debian's chromium package at /usr/bin/chromium, driven by
# playwright-core (no Playwright browser download). Installs it as root;
# otherwise says what to run.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium is missing: run 'sudo apt-get install -y chromium' (or set CHROMIUM=/path/to/chrome) and re-run" >&2
  exit 1
fi
apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }
/usr/bin/chromium --version
