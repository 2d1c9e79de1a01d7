#!/usr/bin/env bash
# Worker checks: the Prometheus alert rules (promtool check and unit tests), then a smoke test
# of the real `jwk-rotator worker`: /healthz, /metrics through promtool, and SIGTERM exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool is missing; installing Debian's prometheus package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi
promtool --version 2>&1 | head -n 1

echo "==> promtool check rules"
promtool check rules infra/prometheus/jwk-rotator.rules.yaml
echo "==> promtool test rules"
(cd infra/prometheus && promtool test rules jwk-rotator.rules.test.yaml)

echo "==> Grafana dashboard: data source variable and PromQL (promtool)"
python3 .ci/check_dashboard.py

echo "==> worker smoke test"
cargo build --locked --quiet
bin=target/debug/jwk-rotator
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/jwk-rotator.toml" <<TOML
[store]
kind = "file"
path = "keys"

[publish]
dir = "jwks"

[schedule]
cron = "0 6 1 1 *"
timezone = "Europe/Oslo"
run_at_start = true

[server]
listen = "127.0.0.1:$port"

[[client]]
name = "smoke"
environments = ["TEST"]
TOML
"$bin" --config "$work/jwk-rotator.toml" worker 2>"$work/worker.log" &
pid=$!
healthy=
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >"$work/healthz.json" 2>/dev/null \
    && grep -q '"last_success":"' "$work/healthz.json"; then
    healthy=yes
    break
  fi
  sleep 0.2
done
if [ -z "$healthy" ]; then
  echo "the worker did not become healthy after its first run:" >&2
  cat "$work/worker.log" >&2
  exit 1
fi
cat "$work/healthz.json"; echo
curl -fsS "http://127.0.0.1:$port/metrics" >"$work/metrics.txt"
grep -q '^jwk_rotator_key_expiration_timestamp_seconds{key_set="smoke-TEST"' "$work/metrics.txt"
grep -q '^jwk_rotator_runs_total{outcome="success"} 1$' "$work/metrics.txt"
# promtool reads the Prometheus 0.0.4 format; in OpenMetrics a counter's HELP names the family
# (jwk_rotator_runs), not the sample (jwk_rotator_runs_total), so only that remark is expected.
lint=$(promtool check metrics <"$work/metrics.txt" 2>&1 || true)
unexpected=$(printf '%s\n' "$lint" | grep -v -E '^(jwk_rotator_[a-z_]+_total no help text)?$' || true)
if [ -n "$unexpected" ]; then
  echo "promtool check metrics found problems:" >&2
  printf '%s\n' "$unexpected" >&2
  exit 1
fi
kill -TERM "$pid"
status=0
timeout 20 tail --pid="$pid" -f /dev/null || { echo "the worker did not exit within 20 s of SIGTERM" >&2; exit 1; }
wait "$pid" || status=$?
pid=
if [ "$status" -ne 0 ]; then
  echo "the worker exited $status after SIGTERM, not 0:" >&2
  cat "$work/worker.log" >&2
  exit 1
fi
grep -q "worker stopped" "$work/worker.log"
echo "worker smoke test passed: healthy after its first run, metrics pass promtool, SIGTERM exits 0"
