#!/usr/bin/env bash
# Create .venv with what ri2fl needs (idempotent). torch is pinned first to the local CPU
# build; the package itself only declares torch>=2.2 so that it never replaces it.
# `bootstrap.sh` installs what the commands need (`make demo`); `bootstrap.sh dev` adds the
# test, lint and napari tools (`make test`), which a first demo need not wait for.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
extra=${1:-}
stamp=.venv/.ri2fl-installed${extra:+-$extra}
for done_stamp in "$stamp" .venv/.ri2fl-installed-dev; do
  if [ -f "$done_stamp" ] && [ "$done_stamp" -nt pyproject.toml ]; then exit 0; fi
done
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".${extra:+[$extra]}"
touch "$stamp"
