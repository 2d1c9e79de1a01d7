#!/usr/bin/env python3
"""Checks that anyone can pull an image without credentials, as Container Apps and Kubernetes do
with the published image: the release workflow runs it after pushing to ghcr.io.

A package that is new on ghcr.io is private until an admin of the package changes its
visibility (GitHub Docs, "Configuring a package's access control and visibility": "When you first
publish a package, the default visibility is private"). Pulls then fail with "unauthorized"
(Container Apps) or ImagePullBackOff (Kubernetes). This check asks the registry as an anonymous
client, the way `docker pull` does (the registry token flow of the Docker Registry HTTP API v2):

  1. HEAD /v2/NAME/manifests/TAG without credentials: 200 means public;
  2. a 401 names a token endpoint (WWW-Authenticate: Bearer realm=...,service=...,scope=...);
     GET it without credentials for an anonymous pull token (ghcr.io: /token?scope=...);
  3. HEAD the manifest again with that token: 200 means public.

Anything else fails with the one-time step that makes the package public.

Usage: check-anonymous-pull.py IMAGE:TAG [--registry-url URL] [--attempts N] [--delay SECONDS]
  IMAGE:TAG       e.g. ghcr.io/jwk-rotator/jwk-rotator:0.1.0
  --registry-url  where to reach the registry (default https://HOST of the image; tests use a
                  local fake)
Exit 0 when an anonymous pull works, 1 when it does not (with what to do), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# Manifest types a pull accepts: OCI and Docker, index (multi-arch) and single image.
ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
TIMEOUT = 30


class NotPublic(Exception):
    """The registry refused an anonymous pull; the text says what it answered."""


class Unreachable(Exception):
    """The registry did not answer (network error or 5xx); worth another attempt."""


def request(url: str, method: str = "GET", headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        if err.code >= 500:
            raise Unreachable(f"{method} {url}: HTTP {err.code}") from err
        return err.code, dict(err.headers), err.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        raise Unreachable(f"{method} {url}: {err}") from err


def anonymous_token(challenge: str, name: str) -> str:
    """An anonymous pull token from the endpoint the 401's WWW-Authenticate names."""
    scheme, _, params = challenge.partition(" ")
    fields = dict(CHALLENGE.findall(params))
    if scheme.lower() != "bearer" or "realm" not in fields:
        raise NotPublic(f"the registry asks for {scheme or 'credentials'} authentication, not an anonymous token")
    query = {"scope": fields.get("scope") or f"repository:{name}:pull"}
    if "service" in fields:
        query["service"] = fields["service"]
    url = f"{fields['realm']}?{urllib.parse.urlencode(query)}"
    status, _, body = request(url)
    if status != 200:
        raise NotPublic(f"its token endpoint refused an anonymous pull token (HTTP {status})")
    try:
        answer = json.loads(body)
    except json.JSONDecodeError as err:
        raise NotPublic(f"its token endpoint answered something that is not JSON ({err})") from err
    token = answer.get("token") or answer.get("access_token")
    if not token:
        raise NotPublic("its token endpoint answered without a token")
    return token


def check(base: str, name: str, tag: str) -> str:
    """Returns how the anonymous pull worked, or raises NotPublic / Unreachable."""
    manifest = f"{base}/v2/{name}/manifests/{urllib.parse.quote(tag, safe='')}"
    status, headers, _ = request(manifest, "HEAD", {"Accept": ACCEPT})
    if status == 200:
        return "the manifest needs no token"
    challenge = {k.lower(): v for k, v in headers.items()}.get("www-authenticate", "")
    if status != 401 or not challenge:
        raise NotPublic(f"HEAD {manifest} answered HTTP {status}")
    token = anonymous_token(challenge, name)
    status, _, _ = request(manifest, "HEAD", {"Accept": ACCEPT, "Authorization": f"Bearer {token}"})
    if status == 404:
        raise NotPublic(f"{name}:{tag} does not exist for an anonymous client (HTTP 404)")
    if status != 200:
        raise NotPublic(f"the manifest of {name}:{tag} refused an anonymous pull token (HTTP {status})")
    return "with an anonymous pull token"


def make_public_step(host: str, name: str) -> str:
    owner, _, package = name.partition("/")
    return (
        f"A new package on {host} is private until an admin of the package makes it public, once "
        "(GitHub Docs, \"Configuring a package's access control and visibility\"): on GitHub, open "
        f"the page of {owner} (organization or user), select Packages, then {package}, then Package "
        "settings; under \"Danger Zone\" select Change visibility, choose Public and confirm with the "
        "package's name. An organization must allow public packages (organization Settings, "
        "Packages, Package creation). Then re-run this job. Until then Container Apps fails with "
        "\"unauthorized\" and Kubernetes with ImagePullBackOff."
    )


def split_image(image: str) -> tuple[str, str, str]:
    """(host, repository name, tag) of HOST/NAME:TAG."""
    host, _, rest = image.partition("/")
    name, _, tag = rest.rpartition(":")
    if not host or ("." not in host and ":" not in host) or not name or not tag or "@" in image:
        raise ValueError(f"{image} is not HOST/NAME:TAG (for example ghcr.io/jwk-rotator/jwk-rotator:0.1.0)")
    return host, name, tag


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--registry-url")
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--delay", type=float, default=10.0)
    args = parser.parse_args()
    try:
        host, name, tag = split_image(args.image)
    except ValueError as err:
        print(f"check-anonymous-pull: {err}", file=sys.stderr)
        return 2
    base = (args.registry_url or f"https://{host}").rstrip("/")
    for attempt in range(1, args.attempts + 1):
        try:
            how = check(base, name, tag)
            print(f"anonymous pull works: {args.image} ({how})")
            return 0
        except NotPublic as err:
            message = f"{args.image} can not be pulled without credentials: {err}. {make_public_step(host, name)}"
            break
        except Unreachable as err:
            message = f"{args.image}: the registry did not answer ({err}); run the job again later"
            if attempt < args.attempts:
                time.sleep(args.delay)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(f"::error title=image not public::{message}")
    print(f"check-anonymous-pull: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
