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

# Grants checked by jwcrypto: a minimal Digdir in Python (tests/interop/digdir.py) verifies the
# admin client's x5c grant (to register keys through the self-service API) and the client's kid
# grant (`verify`), so that the Rust fake and the Rust client can not share a mistake.
mp="$work/mp"
mkdir -p "$mp"
python3 tests/interop/digdir.py "$mp" "$mp/port" admin-client interop-client interop:scope &
digdir=$!
trap 'kill "$digdir" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do [ -f "$mp/port" ] && break; sleep 0.1; done
port=$(cat "$mp/port")
cat > "$mp/jwk-rotator.toml" <<TOML
[store]
kind = "file"
path = "keys"

[publish]
dir = "jwks"

[maskinporten.TEST]
api_url = "https://localhost:$port"
issuer = "https://localhost:$port/"
token_url = "https://localhost:$port/token"
ca_cert = "ca.pem"
admin_client_id = "admin-client"
admin_certificate_pem = "business-chain.pem"
admin_key_pem = "business-key.pem"
verify_wait = "1s"

[maskinporten.TEST.retry]
max_retries = 1
initial_delay = "100ms"

[[client]]
name = "interop"
environments = ["TEST"]
publish = ["files", "maskinporten-api"]
client_id = { TEST = "interop-client" }
verify_scope = "interop:scope"
TOML
"$bin" --config "$mp/jwk-rotator.toml" rotate > /dev/null
"$bin" --config "$mp/jwk-rotator.toml" verify interop-TEST
"$bin" --config "$mp/jwk-rotator.toml" rotate --force interop-TEST > /dev/null
"$bin" --config "$mp/jwk-rotator.toml" verify interop-TEST
"$bin" --config "$mp/jwk-rotator.toml" status interop-TEST
echo "ok: admin (x5c) and client (kid) grants verified by jwcrypto; status OK"
