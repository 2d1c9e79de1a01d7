#!/usr/bin/env python3
"""What check_manifests.py and manifest_workflows.py share: the names of the published image
and release, the one scheduled command, the Checker that counts checks and collects problems,
and the check of a jwk-rotator.toml shipped with a deployment file."""

from __future__ import annotations

import re
import tomllib

# Where the release workflow pushes (ghcr.io/OWNER/REPO of this repository) and whose releases
# rotate.yml downloads. If the repository moves, change these two and follow the failures.
PUBLISHED_IMAGE = "ghcr.io/jwk-rotator/jwk-rotator"
RELEASE_REPO = "jwk-rotator/jwk-rotator"
# The calling workflow users copy (it holds the schedule) and the config it uses.
EXAMPLE_CALLER = "examples/github-actions/rotate-keys.yml"
EXAMPLE_CONFIG = "examples/github-actions/jwk-rotator.toml"
# The one scheduled command: a run, then an exit code by the findings.
ROTATE = ["rotate", "--exit-on", "warning"]


class Checker:
    def __init__(self, image: str) -> None:
        self.problems: list[str] = []
        self.checked = 0
        # The published image at the package version, e.g. ghcr.io/jwk-rotator/jwk-rotator:0.1.0
        self.image = image

    def expect(self, ok: bool, where: str, message: str) -> bool:
        self.checked += 1
        if not ok:
            self.problems.append(f"{where}: {message}")
        return ok


def dig(node, *path, default=None):
    """node[path[0]][path[1]]... or default when any step is missing."""
    for key in path:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and -len(node) <= key < len(node):
            node = node[key]
        else:
            return default
    return node


def check_rotator_config(c: Checker, where: str, text: str, credential: str, publish_dir: str) -> None:
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        c.expect(False, where, f"jwk-rotator.toml is not valid TOML: {err}")
        return
    c.expect(dig(config, "store", "kind") == "azure-key-vault", where, 'store.kind must be "azure-key-vault"')
    c.expect(str(dig(config, "store", "vault_url", default="")).startswith("https://"), where,
             "store.vault_url must be an https URL")
    c.expect(dig(config, "store", "credential") == credential, where, f'store.credential must be "{credential}"')
    c.expect(dig(config, "publish", "dir") == publish_dir, where, f'publish.dir must be "{publish_dir}"')
    clients = config.get("client") or []
    c.expect(bool(clients), where, "needs at least one [[client]]")
    for client in clients:
        c.expect(re.fullmatch(r"[A-Za-z0-9-]+", str(client.get("name", ""))) is not None, where,
                 f"client name {client.get('name')!r} must match [A-Za-z0-9-]+")
        envs = client.get("environments") or []
        c.expect(bool(envs) and all(re.fullmatch(r"[A-Z0-9]+", e) for e in envs), where,
                 f"client environments {envs} must be non-empty and match [A-Z0-9]+")
