#!/usr/bin/env bash
# Interop: keys made by jwk-rotator, used and verified by Python's jwcrypto.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet --bin jwk-rotator
bin="$PWD/target/debug/jwk-rotator"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/jwk-rotator.toml" <<'TOML'
[store]
kind = "file"
path = "keys"

[publish]
dir = "jwks"

[[client]]
name = "interop"
environments = ["TEST"]

[[client]]
name = "big"
environments = ["PROD"]
key_size = 3072
algorithm = "RS384"
TOML
"$bin" --config "$work/jwk-rotator.toml" rotate > /dev/null
# A second key in the published set: the grant must still verify by kid.
"$bin" --config "$work/jwk-rotator.toml" rotate --force interop-TEST > /dev/null
python3 tests/interop/check_jwt.py "$bin" "$work/jwk-rotator.toml" interop-TEST big-PROD
