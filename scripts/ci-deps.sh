#!/usr/bin/env bash
# System packages some tests need, installed from Debian's archive when missing (CI runs as root).
# Today: haproxy, for tests/gateway/ops (the affinity test skips and says why without it).
# Elsewhere (not root, no apt-get) it only says what is missing, so a developer's run still works.
set -euo pipefail
missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ci-deps: not installing ${missing[*]} (needs root and apt-get); their tests will skip" >&2
  exit 0
fi
echo "ci-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A failed install must not fail the run: the tests that need these packages skip and say why.
if ! { timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null; }; then
  echo "ci-deps: could not install ${missing[*]}; their tests will skip" >&2
fi
