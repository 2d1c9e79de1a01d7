#!/usr/bin/env python3
"""Checks that the Dockerfile builds without BuildKit: with the legacy builder and with ACR quick
builds (`az acr build`, which does not run BuildKit: Azure/acr issue 721).

No Docker engine is needed: the file is read instruction by instruction (continuation lines
joined) and every BuildKit-only construct is reported with its line:

- a `# syntax=` parser directive (it loads a BuildKit frontend image);
- RUN flags `--mount`, `--network`, `--security`, `--device`;
- COPY/ADD flags `--chmod`, `--link`, `--parents`, `--exclude`, `--checksum`, `--keep-git-dir`;
- here-documents (`<<EOF`) in RUN, COPY or ADD;
- the automatic platform ARGs (BUILDPLATFORM, TARGETPLATFORM, TARGETARCH, ...) that only
  BuildKit sets.

It also checks that the image runs as the distroless nonroot user, has jwk-rotator as its
ENTRYPOINT and sets JWK_ROTATOR_CONFIG, as the deployment files expect, and that the build stage
and the runtime stage are the same Debian release (the binary links against the glibc of the
build stage, and runs with the runtime stage's).

Usage: python3 .ci/check_dockerfile.py [DOCKERFILE]. Exits 1 with one line per problem.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

RUN_FLAGS = ("--mount", "--network", "--security", "--device")
COPY_FLAGS = ("--chmod", "--link", "--parents", "--exclude", "--checksum", "--keep-git-dir")
PLATFORM_ARGS = re.compile(r"\$\{?(BUILDPLATFORM|BUILDOS|BUILDARCH|BUILDVARIANT|TARGETPLATFORM|TARGETOS|TARGETARCH|TARGETVARIANT)\b")
HEREDOC = re.compile(r"<<-?\s*['\"]?[A-Za-z_]+['\"]?")
# Debian release of an image tag: rust:1-trixie, gcr.io/distroless/cc-debian13:nonroot.
DEBIAN = {"bookworm": "12", "trixie": "13", "forky": "14"}
DEBIAN_TAG = re.compile(r"(?:-|:)(?P<name>bookworm|trixie|forky)\b|-debian(?P<number>\d+)\b")


def instructions(text: str) -> list[tuple[int, str, str]]:
    """(first line number, keyword, rest) of every instruction; comments and blank lines dropped."""
    out, buffer, start = [], "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        buffer += stripped
        keyword, _, rest = buffer.partition(" ")
        out.append((start, keyword.upper(), rest.strip()))
        buffer = ""
    return out


def debian_release(image: str) -> str | None:
    found = DEBIAN_TAG.search(image)
    if not found:
        return None
    return DEBIAN[found["name"]] if found["name"] else found["number"]


def check_debian(path: Path, steps: list[tuple[int, str, str]]) -> list[str]:
    """The first stage (the build) and the last (the runtime) are the same Debian release."""
    images = [rest.split()[0] for _, keyword, rest in steps if keyword == "FROM" and rest]
    if len(images) < 2:
        return []
    build, runtime = debian_release(images[0]), debian_release(images[-1])
    if build is None or runtime is None:
        return [f"{path}: can not tell the Debian release of {images[0]} and {images[-1]}: use tags that name it (rust:1-trixie, cc-debian13)"]
    if build != runtime:
        return [f"{path}: the build stage {images[0]} is Debian {build} and the runtime {images[-1]} is Debian {runtime}: the binary needs the glibc it was linked against; use the same release"]
    return []


def check(path: Path) -> list[str]:
    text = path.read_text()
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith("#"):
            break
        if re.match(r"#\s*syntax\s*=", line, re.I):
            problems.append(f"{path}:{number}: `{line.strip()}` loads a BuildKit frontend; remove it")
    steps = instructions(text)
    for number, keyword, rest in steps:
        if keyword == "RUN":
            for flag in RUN_FLAGS:
                if re.search(rf"(^|\s){flag}(=|\s)", rest):
                    problems.append(f"{path}:{number}: RUN {flag} needs BuildKit; drop it (az acr build and the legacy builder fail)")
        if keyword in ("COPY", "ADD"):
            for flag in COPY_FLAGS:
                if re.search(rf"(^|\s){flag}(=|\s|$)", rest):
                    problems.append(f"{path}:{number}: {keyword} {flag} needs BuildKit; drop it")
        if keyword in ("RUN", "COPY", "ADD") and HEREDOC.search(rest):
            problems.append(f"{path}:{number}: a here-document in {keyword} needs BuildKit; use a script file or `printf`")
        if PLATFORM_ARGS.search(rest):
            problems.append(f"{path}:{number}: {PLATFORM_ARGS.search(rest).group(1)} is set by BuildKit only")
    problems += check_debian(path, steps)
    keywords = {k for _, k, _ in steps}
    last_user = [r for _, k, r in steps if k == "USER"][-1:] or [""]
    if last_user[0] not in ("65532:65532", "65532", "nonroot", "nonroot:nonroot"):
        problems.append(f"{path}: the image must run as the distroless nonroot user 65532 (USER 65532:65532)")
    if '["jwk-rotator"]' not in [r for _, k, r in steps if k == "ENTRYPOINT"]:
        problems.append(f'{path}: ENTRYPOINT must be ["jwk-rotator"] (the manifests pass only arguments)')
    if not any(k == "ENV" and r.startswith("JWK_ROTATOR_CONFIG=/config/jwk-rotator.toml") for _, k, r in steps):
        problems.append(f"{path}: ENV JWK_ROTATOR_CONFIG=/config/jwk-rotator.toml is missing")
    if "FROM" not in keywords:
        problems.append(f"{path}: no FROM instruction")
    return problems


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "Dockerfile")
    problems = check(path)
    if problems:
        print("\n".join(problems))
        print(f"Dockerfile check: {len(problems)} problems")
        return 1
    print(f"Dockerfile check: {path} builds without BuildKit-only syntax")
    return 0


if __name__ == "__main__":
    sys.exit(main())
