#!/usr/bin/env python3
"""Tests of scripts/check-anonymous-pull.py against a fake registry on 127.0.0.1 that answers as
ghcr.io does: a 401 with a Bearer challenge, an anonymous token from /token, then the manifest.
A public package passes; a private one (token refused, or token accepted but the manifest
denied) and a missing tag fail with the one-time step that makes the package public.

Run: python3 -m unittest discover -s .ci -p 'test_*.py'
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check-anonymous-pull.py"
IMAGE = "ghcr.io/jwk-rotator/jwk-rotator:0.1.0"
MANIFEST = "/v2/jwk-rotator/jwk-rotator/manifests/0.1.0"


class FakeRegistry(BaseHTTPRequestHandler):
    """visibility: "public", "private" (no anonymous token) or "denied" (token, then 403)."""

    visibility = "public"
    requests: list[str] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        FakeRegistry.requests.append(f"GET {self.path}")
        if not self.path.startswith("/token?"):
            return self.send(404)
        if "scope=repository%3Ajwk-rotator%2Fjwk-rotator%3Apull" not in self.path:
            return self.send(400)
        if self.visibility == "private":
            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
        self.send(200, json.dumps({"token": "anonymous"}).encode())

    def do_HEAD(self) -> None:
        FakeRegistry.requests.append(f"HEAD {self.path} {self.headers.get('Authorization')}")
        port = self.server.server_address[1]
        challenge = (f'Bearer realm="http://127.0.0.1:{port}/token",service="ghcr.io",'
                     'scope="repository:jwk-rotator/jwk-rotator:pull"')
        if self.path != MANIFEST and self.path != MANIFEST.replace("0.1.0", "9.9.9"):
            return self.send(404)
        if self.headers.get("Authorization") != "Bearer anonymous":
            return self.send(401, headers={"WWW-Authenticate": challenge})
        if self.visibility == "denied":
            return self.send(403)
        if self.path.endswith("9.9.9"):
            return self.send(404)
        self.send(200, headers={"Docker-Content-Digest": "sha256:" + "0" * 64})


class AnonymousPull(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        cls.url = f"http://127.0.0.1:{cls.server.server_address[1]}"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()
        cls.server.server_close()

    def run_check(self, visibility: str, image: str = IMAGE) -> subprocess.CompletedProcess:
        FakeRegistry.visibility = visibility
        FakeRegistry.requests = []
        env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
        return subprocess.run(
            [sys.executable, str(SCRIPT), image, "--registry-url", self.url, "--attempts", "1"],
            capture_output=True, text=True, timeout=60, env=env, check=False,
        )

    def test_a_public_package_passes_with_an_anonymous_token(self) -> None:
        result = self.run_check("public")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("anonymous pull works", result.stdout)
        self.assertIn("with an anonymous pull token", result.stdout)
        # The token request carried no credentials of any kind.
        self.assertEqual(FakeRegistry.requests[0], f"HEAD {MANIFEST} None")
        self.assertTrue(FakeRegistry.requests[1].startswith("GET /token?"), FakeRegistry.requests)
        self.assertEqual(FakeRegistry.requests[2], f"HEAD {MANIFEST} Bearer anonymous")

    def assert_not_public(self, result: subprocess.CompletedProcess, why: str) -> None:
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(f"{IMAGE.rsplit(':', 1)[0]}", result.stderr)
        self.assertIn(why, result.stderr)
        for step in ["Package settings", "Change visibility", "Public", "re-run this job",
                     "Configuring a package's access control and visibility"]:
            self.assertIn(step, result.stderr)

    def test_a_private_package_fails_with_the_step_that_makes_it_public(self) -> None:
        self.assert_not_public(self.run_check("private"), "refused an anonymous pull token (HTTP 401)")

    def test_a_manifest_that_denies_the_anonymous_token_fails(self) -> None:
        self.assert_not_public(self.run_check("denied"), "(HTTP 403)")

    def test_a_tag_that_is_not_there_fails(self) -> None:
        result = self.run_check("public", IMAGE.replace("0.1.0", "9.9.9"))
        self.assertEqual(result.returncode, 1)
        self.assertIn("does not exist for an anonymous client (HTTP 404)", result.stderr)

    def test_github_actions_gets_an_error_annotation(self) -> None:
        FakeRegistry.visibility = "private"
        result = subprocess.run(
            [sys.executable, str(SCRIPT), IMAGE, "--registry-url", self.url, "--attempts", "1"],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "GITHUB_ACTIONS": "true"},
        )
        self.assertEqual(result.returncode, 1)
        self.assertTrue(result.stdout.startswith("::error title=image not public::"), result.stdout)

    def test_an_unreachable_registry_is_not_called_private(self) -> None:
        result = subprocess.run(
            [sys.executable, str(SCRIPT), IMAGE, "--registry-url", "http://127.0.0.1:9", "--attempts", "2",
             "--delay", "0"],
            capture_output=True, text=True, timeout=120, check=False,
        )
        self.assertEqual(result.returncode, 1)
        self.assertIn("did not answer", result.stderr)
        self.assertNotIn("Change visibility", result.stderr)

    def test_a_reference_that_is_not_host_name_tag_is_a_usage_error(self) -> None:
        for bad in ["jwk-rotator:0.1.0", "ghcr.io/jwk-rotator/jwk-rotator", "ghcr.io/x/y@sha256:00"]:
            result = subprocess.run([sys.executable, str(SCRIPT), bad], capture_output=True, text=True,
                                    timeout=60, check=False)
            self.assertEqual(result.returncode, 2, bad)
            self.assertIn("is not HOST/NAME:TAG", result.stderr)


if __name__ == "__main__":
    unittest.main()
