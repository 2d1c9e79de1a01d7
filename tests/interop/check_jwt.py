"""Interop check with an independent implementation (jwcrypto).

For each key set: take the private key from `export-key --base64`, sign a JWT grant with the
kid in its header, and verify it against the public set from `jwks`; the public set must hold no
private member. Usage: check_jwt.py BINARY CONFIG SET [SET...]
"""

import base64
import json
import subprocess
import sys
import time
import uuid

from jwcrypto import jwk, jwt

PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "oth"}


def run(binary, config, *args):
    out = subprocess.run([binary, "--config", config, *args], check=True, capture_output=True)
    return out.stdout.decode()


def check(binary, config, key_set):
    encoded = run(binary, config, "export-key", key_set, "--base64").strip()
    assert "-" not in encoded and "_" not in encoded, "EncodedJwk must be standard base64"
    private = json.loads(base64.b64decode(encoded, validate=True))
    # altinn-jwks writes empty key_ops, oth and x5c lists; jwcrypto refuses `oth` (multi-prime
    # RSA) even when empty, so the empty lists are dropped before import.
    assert private.get("oth") == [] and private.get("x5c") == [], "altinn-jwks members missing"
    key = jwk.JWK(**{k: v for k, v in private.items() if v != []})
    assert key.has_private, "export-key gave no private key"
    kid, alg = private["kid"], private["alg"]

    now = int(time.time())
    claims = {"aud": "https://test.maskinporten.no/", "iss": "client-id", "scope": "test:scope",
              "iat": now, "exp": now + 120, "jti": str(uuid.uuid4())}
    token = jwt.JWT(header={"alg": alg, "kid": kid}, claims=claims)
    token.make_signed_token(key)
    grant = token.serialize()

    public_set = json.loads(run(binary, config, "jwks", key_set))
    for member in public_set["keys"]:
        leaked = PRIVATE & set(member)
        assert not leaked, f"{key_set}: public set holds {leaked}"
    mp = json.loads(run(binary, config, "jwks", key_set, "--format", "maskinporten"))
    assert all(not (PRIVATE - {"oth"}) & set(m) for m in mp), "maskinporten set holds private members"

    keys = jwk.JWKSet.from_json(json.dumps(public_set))
    verified = jwt.JWT(jwt=grant, key=keys, expected_type="JWS")
    header = json.loads(verified.header)
    assert header["kid"] == kid and json.loads(verified.claims)["iss"] == "client-id"
    print(f"ok {key_set}: {alg} grant signed with {kid} verified against {len(public_set['keys'])} public key(s)")


def main():
    binary, config, *sets = sys.argv[1:]
    for key_set in sets:
        check(binary, config, key_set)


if __name__ == "__main__":
    main()
