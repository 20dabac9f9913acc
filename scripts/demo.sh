#!/usr/bin/env bash
# The main job: make .venv, build the example models if missing, serve pipelines/examples/churn.yaml,
# zoo.yaml and tenants.yaml, send them real requests and print the answers with per-step times, and
# for tenants (MultiModel) which instance holds which model and the CloudWatch figures of the run.
# demo.py stops the gateway itself; the trap below also stops it if demo.py is killed outright.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"

pidfile="$(mktemp "${TMPDIR:-/tmp}/tandem-demo.XXXXXX")"
child=""

cleanup() {
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  local pid
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "demo: stopping the gateway (pid $pid)" >&2
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# In the background so that a signal to this script runs the trap at once, not after demo.py ends.
TANDEM_DEMO_PIDFILE="$pidfile" .venv/bin/python scripts/demo.py "$@" &
child=$!
status=0
wait "$child" || status=$?
child=""
exit "$status"
