#!/usr/bin/env bash
# Make (or refresh) the project's .venv with every extra installed. Sourced by demo.sh and test.sh.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${TANDEM_PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating $venv with $python" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.tandem-installed"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing tandem and its extras into $venv (first time takes a few minutes)" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  # torch==2.13.0 is pinned in the pytorch extra: that version resolves to a CPU-only build.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -e "$root[sklearn,pytorch,tensorflow,docker,test]"
  echo "$want" >"$stamp"
fi
