#!/usr/bin/env bash
# Installs aiomoqt 0.13.3 (PyPI) into target/peers/aiomoqt, a venv of its own,
# unless it is there already. aiomoqt is the foreign MoQ client, relay and
# conformance suite the tests and the interop matrix run against.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$PWD/target/peers/aiomoqt
if "$venv/bin/python" -c 'import aiomoqt' >/dev/null 2>&1; then
  exit 0
fi
# A Python >= 3.12 that really runs (pyenv shims may exist but refuse).
py=
for c in python3.13 python3.12 \
         "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 \
         /usr/bin/python3.1[2-9] /usr/local/bin/python3.1[2-9]; do
  if "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
    py=$c
    break
  fi
done
if [ -z "$py" ]; then
  echo "aiomoqt needs Python >= 3.12; install it (e.g. pyenv install 3.12) and re-run" >&2
  exit 1
fi
mkdir -p "$(dirname "$venv")"
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check aiomoqt==0.13.3
