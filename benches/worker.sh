#!/usr/bin/env bash
# Worker benchmarks: `status` over N key sets (file store, fixture keys), the idle worker's
# resident memory and CPU between ticks, and the /metrics scrape time with N key sets.
# Usage: benches/worker.sh [N=1000] [IDLE_SECONDS=60]
# Prints a Markdown table for BENCHMARKS.md. Linux only (/proc).
set -euo pipefail
cd "$(dirname "$0")/.."
sets=${1:-1000}
idle=${2:-60}

cargo build --release --locked --quiet --bin jwk-rotator --example seed_store
bin=target/release/jwk-rotator
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ms() { python3 -c "import sys; print(f'{float(sys.argv[1]) * 1000:.1f}')" "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

# --- status over N key sets -------------------------------------------------------------
port=$(free_port)
config=$(target/release/examples/seed_store "$work/big" "$sets" "$port")
status_times=()
for _ in 1 2 3 4 5; do
  start=$(date +%s.%N)
  "$bin" --config "$config" status >/dev/null 2>&1 || true # exit 1 (WARNING) is fine here
  end=$(date +%s.%N)
  status_times+=("$(python3 -c "print($end - $start)")")
done
status_median=$(printf '%s\n' "${status_times[@]}" | median)

# --- the worker, idle after its first run -----------------------------------------------
# Starts the worker on a config, waits for its first run, then measures RSS and CPU.
# Sets: rss_kb, cpu_ms, first_run_s.
measure_worker() {
  local config=$1 port=$2
  local start
  start=$(date +%s.%N)
  "$bin" --config "$config" worker 2>"$work/worker.log" &
  pid=$!
  for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$port/healthz" 2>/dev/null | grep -q '"last_success":"'; then break; fi
    sleep 0.1
  done
  first_run_s=$(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')")
  sleep 2
  local tck before after
  tck=$(getconf CLK_TCK)
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  sleep "$idle"
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  cpu_ms=$(( (after - before) * 1000 / tck ))
  rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
}

measure_worker "$config" "$port"
big_rss=$rss_kb big_cpu=$cpu_ms big_first=$first_run_s

# --- /metrics scrape with N key sets (same worker) --------------------------------------
scrapes=()
for _ in $(seq 1 20); do
  scrapes+=("$(curl -fsS -o "$work/metrics.txt" -w '%{time_total}' "http://127.0.0.1:$port/metrics")")
done
scrape_median=$(printf '%s\n' "${scrapes[@]}" | median)
scrape_bytes=$(wc -c <"$work/metrics.txt")
scrape_series=$(grep -c -v '^#' "$work/metrics.txt")
kill -TERM "$pid"; wait "$pid" || true; pid=

# --- a small worker (one key set) -------------------------------------------------------
port=$(free_port)
small=$(target/release/examples/seed_store "$work/small" 1 "$port")
measure_worker "$small" "$port"
small_rss=$rss_kb small_cpu=$cpu_ms
kill -TERM "$pid"; wait "$pid" || true; pid=

cat <<EOF
| measure | result | target |
|---|---|---|
| \`status\` over $sets key sets (file store, median of 5) | $(ms "$status_median") ms | < 1 s |
| worker first run over $sets key sets (start to healthy, nothing due) | ${big_first} s | |
| worker idle RSS, $sets key sets, after its first run | $((big_rss / 1024)) MB ($big_rss kB) | ≤ 20 MB |
| worker idle RSS, 1 key set | $((small_rss / 1024)) MB ($small_rss kB) | ≤ 20 MB |
| worker CPU between ticks, $sets key sets, over ${idle} s | ${big_cpu} ms | |
| worker CPU between ticks, 1 key set, over ${idle} s | ${small_cpu} ms | |
| \`/metrics\` scrape, $sets key sets (median of 20) | $(ms "$scrape_median") ms, ${scrape_bytes} bytes, ${scrape_series} samples | |
EOF
