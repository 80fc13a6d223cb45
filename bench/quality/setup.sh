#!/usr/bin/env bash
# bench/quality/setup.sh — the Python venv for the quality scoring (target/quality-venv), idempotent.
# Pinned: numpy, scipy, matplotlib (the harness's plots), and pesq (PyPI, ITU-T P.862 reference C code behind a Cython wrapper; it is
# built here from source, so it needs a C compiler and the Python headers: Debian's gcc, python3-dev,
# python3-venv). pesq's legacy setup.py imports numpy, so numpy goes in first.
# Use: bash bench/quality/setup.sh && target/quality-venv/bin/python bench/quality/score.py ...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=$root/target/quality-venv
NUMPY=numpy==2.3.5
SCIPY=scipy==1.16.3
PESQ=pesq==0.0.4
MPL=matplotlib==3.10.7   # run's plots (report.py)

# Debian's python3 has the headers pesq needs; another python3 on PATH (pyenv) may not.
py=${PYTHON:-}
if [[ -z $py ]]; then
  if [[ -x /usr/bin/python3 ]]; then py=/usr/bin/python3; else py=python3; fi
fi

want="$NUMPY $SCIPY $PESQ $MPL"
if [[ -x $venv/bin/python && -f $venv/.pins && "$(cat "$venv/.pins")" == "$want" ]] &&
  "$venv/bin/python" -c 'import numpy, scipy, pesq, matplotlib' 2>/dev/null; then
  exit 0
fi
if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "setup.sh: $py has no venv/ensurepip; install with: apt-get install -y python3-venv python3-dev gcc" >&2
  exit 2
fi
"$py" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "$NUMPY" "$SCIPY"
"$venv/bin/pip" install -q --disable-pip-version-check "$PESQ"
"$venv/bin/pip" install -q --disable-pip-version-check "$MPL"
"$venv/bin/python" -c 'import numpy, scipy, pesq, matplotlib'
echo "$want" >"$venv/.pins"
echo "setup.sh: $venv ready ($want)" >&2
