#!/usr/bin/env bash
# Interop: the event documents that the end-to-end events test received, parsed by the
# CloudEvents SDK for Python (tests/interop/check_cloudevents.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
JWK_ROTATOR_EVENT_SAMPLES="$work/events.jsonl" \
  cargo test --locked --quiet --test it events::months_of_runs > /dev/null
python3 tests/interop/check_cloudevents.py "$work/events.jsonl"
