#!/usr/bin/env python3
"""The GitHub workflows' part of check_manifests.py: rotate.yml is only called (no schedule in
this repository), builds nothing and runs a checked release, its example caller holds the
schedule, and release.yml packages with scripts/release.sh, attests, and checks an anonymous
pull of the image."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from manifest_common import (EXAMPLE_CALLER, EXAMPLE_CONFIG, RELEASE_REPO, Checker, check_rotator_config,
                             dig)

RELEASE_TARGETS = {
    "x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl", "aarch64-unknown-linux-gnu",
    "aarch64-unknown-linux-musl", "aarch64-apple-darwin", "x86_64-apple-darwin", "x86_64-pc-windows-msvc",
}


def check_workflow(c: Checker, root: Path) -> list[list[str]]:
    where = ".github/workflows/rotate.yml"
    text = (root / where).read_text()
    workflow = yaml.safe_load(text)
    triggers = workflow.get("on", workflow.get(True)) or {}
    c.expect("workflow_call" in triggers, where, "must be reusable from other repositories (on: workflow_call)")
    steps = dig(workflow, "jobs", "rotate", "steps", default=[]) or []
    runs = "\n".join(step.get("run", "") for step in steps)
    c.expect(re.search(r"\b(cargo|rustup)\b", runs) is None, where,
             "must not build from source: download a pinned release binary instead")
    c.expect("gh release download" in runs and "sha256sum --check" in runs, where,
             "must download a release archive and check its SHA-256 (sha256sum --check)")
    c.expect("gh attestation verify" in runs, where, "must verify the archive's build provenance (gh attestation verify)")
    env = workflow.get("env") or {}
    c.expect(env.get("RELEASE_REPO") == RELEASE_REPO, where, f"env.RELEASE_REPO must be {RELEASE_REPO}")
    commands: list[list[str]] = []
    for line in runs.splitlines():
        found = re.search(r'\bjwk-rotator --config "\$JWK_ROTATOR_CONFIG" ([a-z-]+)(.*)', line)
        if found:
            words = [w for w in found.group(2).replace("\\", " ").split() if w.startswith("--exit-on") or w == '"$EXIT_ON"']
            exit_on = str(env.get("EXIT_ON", ""))
            default = re.search(r"'([a-z]+)'", exit_on)
            args = [found.group(1)] + [
                (default.group(1) if default else exit_on) if w == '"$EXIT_ON"' else w for w in words
            ]
            commands.append(args)
    c.expect(set(triggers) == {"workflow_call"}, where,
             f"must run only when called (on: workflow_call), not {sorted(set(triggers) - {'workflow_call'})}: "
             "this repository has no vault or credentials, so a schedule here fails every day; the "
             f"schedule belongs in the calling workflow ({EXAMPLE_CALLER})")
    config_path = str(env.get("JWK_ROTATOR_CONFIG", ""))
    default_config = re.search(r"'([^']+)'", config_path)
    config_path = default_config.group(1) if default_config else config_path
    if c.expect(config_path == ".github/jwk-rotator.toml", where,
                "env.JWK_ROTATOR_CONFIG must default to .github/jwk-rotator.toml, where the example config goes"):
        config_file = root / EXAMPLE_CONFIG
        if c.expect(config_file.is_file(), where, f"the example config {EXAMPLE_CONFIG} does not exist"):
            text = config_file.read_text()
            check_rotator_config(c, EXAMPLE_CONFIG, text, "github-oidc", "../jwks")
    check_example_caller(c, root)
    return commands


def check_example_caller(c: Checker, root: Path) -> None:
    """The example calling workflow has the schedule and calls the release this version ships."""
    path = root / EXAMPLE_CALLER
    if not c.expect(path.is_file(), EXAMPLE_CALLER, "is missing: it is the rotate workflow's scheduled caller"):
        return
    workflow = yaml.safe_load(path.read_text())
    triggers = workflow.get("on", workflow.get(True)) or {}
    c.expect("schedule" in triggers and "workflow_dispatch" in triggers, EXAMPLE_CALLER,
             "must run on a schedule and by hand (schedule, workflow_dispatch)")
    job = dig(workflow, "jobs", "rotate", default={}) or {}
    version = c.image.rsplit(":", 1)[1]
    c.expect(job.get("uses") == f"{RELEASE_REPO}/.github/workflows/rotate.yml@v{version}", EXAMPLE_CALLER,
             f"must call {RELEASE_REPO}/.github/workflows/rotate.yml@v{version}")
    c.expect(str(dig(job, "with", "version")) == version, EXAMPLE_CALLER, f"with.version must be {version}")
    c.expect(dig(job, "permissions", "id-token") == "write", EXAMPLE_CALLER,
             "the calling job must grant id-token: write (github-oidc)")


def check_release(c: Checker, root: Path) -> None:
    where = ".github/workflows/release.yml"
    text = (root / where).read_text()
    workflow = yaml.safe_load(text)
    jobs = workflow.get("jobs") or {}
    targets = {e.get("target") for job in jobs.values()
               for e in dig(job, "strategy", "matrix", "include", default=[]) or [] if e.get("target")}
    c.expect(targets >= RELEASE_TARGETS, where, f"binaries missing for {sorted(RELEASE_TARGETS - targets)}")
    arches = {e.get("arch") for job in jobs.values()
              for e in dig(job, "strategy", "matrix", "include", default=[]) or [] if e.get("arch")}
    c.expect(arches >= {"amd64", "arm64"}, where, "the image must be built for linux/amd64 and linux/arm64")
    for needle, message in [
        ("--sbom=true", "the image needs an SBOM attestation"),
        ("--provenance=mode=max", "the image needs build provenance"),
        ('--tag "${image}:${version}"', "the image must be tagged X.Y.Z"),
        ('--tag "${image}:${version%.*}"', "the image must be tagged X.Y"),
        ('--tag "${image}:latest"', "the image must be tagged latest"),
        ("actions/attest-build-provenance@", "the image and the binaries must carry a GitHub artifact attestation"),
        ("push-to-registry: true", "the image attestation must be pushed to the registry"),
        ("scripts/check-anonymous-pull.py ", "after the push, an anonymous pull of the image must be checked"),
        ("scripts/release.sh docs ", "completions and the man page must come from scripts/release.sh docs"),
        ("scripts/release.sh check-man ", "the man page must be checked to render (scripts/release.sh check-man)"),
        ("scripts/release.sh check-static ", "the musl binaries must pass scripts/release.sh check-static"),
        ("scripts/release.sh archive ", "the archives must be made by scripts/release.sh archive"),
        ("scripts/release.sh verify ", "every archive must be verified by scripts/release.sh verify"),
        ("crt-static", "the musl binaries must be linked statically"),
    ]:
        c.expect(needle in text, where, message)
    # What the archives hold is the script's: the same one .ci/package-check.sh runs.
    script = root / "scripts" / "release.sh"
    script_text = script.read_text() if script.is_file() else ""
    for needle, message in [
        ('sha256 "$archive" >"$archive.sha256"', "every archive needs a SHA-256 checksum file"),
        ("completions \"$shell\"", "the archives need shell completions"),
        ("_jwk-rotator.ps1", "the archives need the PowerShell completion"),
        ('"$bin" man >', "the archives need the man page"),
        ("INTERP", "check-static must refuse a program interpreter"),
        ("(NEEDED)", "check-static must refuse needed shared libraries"),
    ]:
        c.expect(needle in script_text, "scripts/release.sh", message)
    ci = (root / ".ci" / "run").read_text()
    c.expect("package-check.sh" in ci, ".ci/run", "must run .ci/package-check.sh (the release packaging for the host target)")
    c.expect("DOCKER_BUILDKIT" not in text or "buildx" in text, where, "build the image with buildx")
