"""A minimal Digdir written with jwcrypto, to check the grants jwk-rotator signs.

It serves HTTPS on localhost: `POST /token` (JWT grants, by kid or by x5c) and
`GET`/`POST /api/v1/clients/{client_id}/jwks` (the self-service API, with the admin token).
Every grant is verified with jwcrypto, independently of the Rust code and of the Rust fake in
tests/it/maskinporten. It writes its certificates into DIR and serves until killed.

Usage: digdir.py DIR PORT_FILE ADMIN_CLIENT_ID CLIENT_ID SCOPE
"""

import base64
import datetime
import json
import secrets
import ssl
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwcrypto import jwk, jws

ADMIN_SCOPES = {"idporten:dcr.read", "idporten:dcr.write"}


def certificate(subject, issuer_name, issuer_key, key, ca, dns=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class Digdir:
    def __init__(self, issuer, admin_client_id, client_id, scope, ca_cert):
        self.issuer = issuer
        self.admin_client_id = admin_client_id
        self.client_id = client_id
        self.scope = scope
        self.ca_cert = ca_cert
        self.keys = {client_id: []}
        self.tokens = {}
        self.jtis = set()
        self.grants = []

    def check_claims(self, claims, iss):
        now = int(time.time())
        assert claims["aud"] == self.issuer, f"aud {claims['aud']!r}"
        assert claims["iss"] == iss, f"iss {claims['iss']!r}"
        assert abs(claims["iat"] - now) <= 10, "iat more than 10 s off"
        assert 0 < claims["exp"] - claims["iat"] <= 120, "exp - iat must be at most 120"
        assert claims["jti"] not in self.jtis, "jti reused"
        self.jtis.add(claims["jti"])
        assert set(claims) <= {"aud", "iss", "scope", "iat", "exp", "jti", "resource"}, f"claims {sorted(claims)}"

    def grant(self, assertion):
        token = jws.JWS()
        token.deserialize(assertion)
        header = token.jose_header
        if "x5c" in header:
            leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
            leaf.verify_directly_issued_by(self.ca_cert)
            token.verify(jwk.JWK.from_pyca(leaf.public_key()), alg=header["alg"])
            claims = json.loads(token.payload)
            self.check_claims(claims, self.admin_client_id)
            granted = set(claims["scope"].split())
            assert granted <= ADMIN_SCOPES, f"admin scopes {granted}"
        else:
            registered = [k for k in self.keys[self.client_id] if k["kid"] == header["kid"]]
            assert registered, "Unknown key identifier (kid) for client"
            assert registered[0]["exp"] > time.time(), "MP-121 expired key"
            token.verify(jwk.JWK(**registered[0]), alg=header["alg"])
            claims = json.loads(token.payload)
            self.check_claims(claims, self.client_id)
            assert claims["scope"] == self.scope, f"scope {claims['scope']!r}"
            granted = {self.scope}
        access = secrets.token_urlsafe(24)
        self.tokens[access] = granted
        self.grants.append(header.get("kid", "x5c"))
        return {"access_token": access, "token_type": "Bearer", "expires_in": 120, "scope": " ".join(sorted(granted))}


class Handler(BaseHTTPRequestHandler):
    digdir = None

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def scopes(self):
        auth = self.headers.get("Authorization", "")
        return self.digdir.tokens.get(auth.removeprefix("Bearer "), set())

    def client(self):
        parts = self.path.split("/")
        if parts[:4] != ["", "api", "v1", "clients"] or len(parts) != 6 or parts[5] != "jwks":
            return None
        return urllib.parse.unquote(parts[4])

    def do_POST(self):
        if self.path == "/token":
            form = urllib.parse.parse_qs(self.body().decode())
            assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
            try:
                self.answer(200, self.digdir.grant(form["assertion"][0]))
            except Exception as e:  # any failed check is a refused grant
                print(f"grant refused: {e}", file=sys.stderr)
                self.answer(400, {"error": "invalid_grant", "error_description": str(e)})
            return
        client = self.client()
        if client not in self.digdir.keys or "idporten:dcr.write" not in self.scopes():
            self.answer(403, {"error": "forbidden"})
            return
        keys = json.loads(self.body())["keys"]
        for key in keys:
            assert {"kid", "kty", "alg", "use", "n", "e", "exp"} <= set(key), f"key members {sorted(key)}"
            assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
        assert len(keys) <= 5
        self.digdir.keys[client] = keys
        self.answer(201, {"keys": keys})

    def do_GET(self):
        client = self.client()
        if client not in self.digdir.keys or "idporten:dcr.read" not in self.scopes():
            self.answer(403, {"error": "forbidden"})
            return
        self.answer(200, {"keys": self.digdir.keys[client], "created": "x", "last_updated": "y"})


def main():
    out, port_file, admin_client_id, client_id, scope = sys.argv[1:]
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = certificate("interop business CA", "interop business CA", ca_key, ca_key, True)
    business_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    business = certificate("interop business certificate", "interop business CA", ca_key, business_key, False)
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = certificate("localhost", "interop business CA", ca_key, server_key, False, dns="localhost")
    with open(f"{out}/ca.pem", "wb") as f:
        f.write(pem(ca))
    with open(f"{out}/business-chain.pem", "wb") as f:
        f.write(pem(business) + pem(ca))
    with open(f"{out}/business-key.pem", "wb") as f:
        f.write(key_pem(business_key))
    with open(f"{out}/server.pem", "wb") as f:
        f.write(pem(server) + pem(ca))
    with open(f"{out}/server-key.pem", "wb") as f:
        f.write(key_pem(server_key))

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    Handler.digdir = Digdir(f"https://localhost:{port}/", admin_client_id, client_id, scope, ca)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{out}/server.pem", f"{out}/server-key.pem")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    import os

    os.rename(port_file + ".tmp", port_file)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
