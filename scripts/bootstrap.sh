#!/usr/bin/env bash
# Make (or refresh) the project's .venv with every extra installed. Sourced by demo.sh and test.sh.
# Re-installs only when pyproject.toml or this script changed since the last install.
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
want="$(cat "$root/pyproject.toml" "$root/scripts/bootstrap.sh" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing tandem and its extras into $venv (first time takes a few minutes)" >&2
  pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
  "${pip[@]}" install --upgrade pip
  # PyTorch first, alone: here `torch==2.13.0` resolves to the CPU-only build. Inside the full
  # resolution pip may swap it for the CUDA build (gigabytes, and it crashes without a GPU), so the
  # build it got is then held fixed by a constraint.
  "${pip[@]}" install "torch==2.13.0"
  constraints="$venv/.tandem-constraints.txt"
  "${pip[@]}" freeze | grep -i '^torch==' >"$constraints"
  "${pip[@]}" install -c "$constraints" -e "$root[sklearn,pytorch,tensorflow,docker,test]"
  echo "$want" >"$stamp"
fi
