#!/usr/bin/env bash
# Create .venv and install the project with the known-good versions (constraints.txt); a no-op when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
# Python 3.11 first: this machine's torch wheels are built for it. Any Python >= 3.11 is supported.
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "uda needs Python >= 3.11"'
# Debian's chromium, for the browser test of the MLflow UI (Playwright drives it; no browser download), and
# Debian's PostgreSQL, the backend store of the tests' shared MLflow server (tests/test_fanout.py).
apt_need() {  # apt_need <command> <package>
  command -v "$1" >/dev/null || ls /usr/lib/postgresql/*/bin/"$1" >/dev/null 2>&1 && return 0
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    (apt-get install -y -q "$2" || (apt-get update -q && apt-get install -y -q "$2")) >/dev/null
  else
    echo "setup: no $1 and no root to install it (apt-get install $2): the tests that need it will fail" >&2
  fi
}
apt_need chromium chromium
apt_need initdb postgresql
stamp=.venv/.installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
# pip (not uv/poetry): it takes torch/torchvision from this machine's local wheel store instead of 3 GB.
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]" 2> >(grep -v "is ignored: it is neither" >&2)
echo "$want" > "$stamp"
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
