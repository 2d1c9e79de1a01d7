#!/usr/bin/env python3
"""Checks every external identifier against the record of checks in .ci/external-ids.toml.

An identifier written from memory looks right and fails at run time: an action SHA that shares
its first characters with another tag's commit fails the release at "Set up job", an image tag
that its maintainers stopped rebuilding ships old packages. This check can not reach GitHub,
a registry or Azure, but it can hold every file to the table of identifiers someone looked up:

- actions (.github/workflows): pinned as `owner/repo@<40-hex SHA> # vX.Y.Z`, and that SHA is the
  one the table records for that tag (so an invented or mistyped SHA fails, naming the right one);
- base images (Dockerfile FROM lines);
- Azure role definition ids (Bicep, docs, .ci): listed, and named as the table names them when a
  role name stands next to the id;
- Bicep resource types and API versions (infra/azure);
- URLs (README, CHANGELOG, docs, infra, .github, examples, scripts, Dockerfile), except example
  hosts that name nothing real;
- and the table itself: every row says what was checked (or why it can not be), and every row
  is still used somewhere.

With --tag-copies DIR it also writes copies of the workflows whose pins are replaced by the major
tag of their comment (`@v5`), so that actionlint can check each action's inputs and runtime.

Usage: python3 .ci/check_external_ids.py [--root DIR] [--tag-copies DIR]. Exits 1 with one line
per problem.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

TABLE = Path(".ci/external-ids.toml")
USES = re.compile(r"^(?P<lead>\s*(?:-\s+)?uses:\s*)(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+)(?P<path>/[\w./-]+)?@(?P<sha>[0-9a-f]{40})$")
COMMENT = re.compile(r"^\s+#\s+(?P<tag>v(?P<major>\d+)\.\d+\.\d+)\s*$")
SHA = re.compile(r"^[0-9a-f]{40}$")
TAG = re.compile(r"^v\d+\.\d+\.\d+$")
GUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
PLACEHOLDER_GUID = "00000000-0000-0000-0000-000000000000"
BICEP_TYPE = re.compile(r"'(?P<type>Microsoft\.[A-Za-z]+/[A-Za-z/]+)@(?P<version>\d{4}-\d{2}-\d{2}(?:-preview)?)'")
URL = re.compile(r"https?://[^\s)\"'<>`\]|\\]+")
# Hosts that stand for the reader's own resources or for nothing at all.
EXAMPLE_HOSTS = re.compile(
    r"^(localhost|127\.0\.0\.1|\[::1\]|[\w.-]*\.example|example\.[\w.]+|[\w.-]+\.invalid"
    r"|[\w-]+\.vault\.azure\.net|[\w-]+\.[\w-]+\.logic\.azure\.com|hooks\.slack\.com)(:\d+)?$"
)
URL_SOURCES = ["README.md", "CHANGELOG.md", "Dockerfile", "docs", "infra", ".github", "examples", "scripts"]
TEXT_SUFFIXES = {".md", ".yml", ".yaml", ".toml", ".bicep", ".bicepparam", ".sh", ".py", ".json", ""}
ROLE_ID_SOURCES = ["infra/azure", "docs", "README.md", ".ci/check_manifests.py"]


@dataclass
class Table:
    """The rows of .ci/external-ids.toml, by what identifies them, and which ones a file used."""

    actions: dict[tuple[str, str], dict] = field(default_factory=dict)
    images: dict[str, dict] = field(default_factory=dict)
    roles: dict[str, dict] = field(default_factory=dict)
    apis: dict[tuple[str, str], dict] = field(default_factory=dict)
    urls: dict[str, dict] = field(default_factory=dict)
    used: set = field(default_factory=set)


def norm_url(url: str) -> str:
    return url.split("#", 1)[0].rstrip("/")


def load_table(path: Path) -> tuple[Table, list[str]]:
    """The table and the problems with its rows (missing fields, bad formats, duplicates)."""
    data = tomllib.loads(path.read_text())
    table, problems = Table(), []
    kinds = {
        "action": (("repo", "tag", "sha"), lambda r: (r["repo"], r["tag"]), table.actions),
        "image": (("ref",), lambda r: r["ref"], table.images),
        "azure_role": (("name", "id"), lambda r: r["id"], table.roles),
        "bicep_api": (("type", "version"), lambda r: (r["type"], r["version"]), table.apis),
        "url": (("url",), lambda r: norm_url(r["url"]), table.urls),
    }
    for kind in data:
        if kind not in kinds:
            problems.append(f"{path}: unknown table [[{kind}]]; use {', '.join(kinds)}")
    for kind, (fields, key, rows) in kinds.items():
        for number, row in enumerate(data.get(kind, []), 1):
            where = f"{path}: [[{kind}]] #{number}"
            missing = [f for f in fields if not str(row.get(f, "")).strip()]
            if missing:
                problems.append(f"{where}: {', '.join(missing)} missing")
                continue
            if bool(str(row.get("checked", "")).strip()) == bool(str(row.get("unchecked", "")).strip()):
                problems.append(f"{where} ({key(row)}): say what was checked (checked = ...) or why it can not be (unchecked = ...), one of the two")
            if kind == "action" and not (SHA.match(row["sha"]) and TAG.match(row["tag"])):
                problems.append(f"{where} ({row['repo']}): sha must be 40 lowercase hex digits and tag vX.Y.Z")
            if key(row) in rows:
                problems.append(f"{where}: {key(row)} is listed twice")
            rows[key(row)] = row
    return table, problems


def check_workflows(root: Path, table: Table, out: Path | None = None) -> list[str]:
    """Every `uses:` in .github/workflows is pinned by the SHA the table records for its tag."""
    problems = []
    for workflow in sorted((root / ".github" / "workflows").glob("*.y*ml")):
        lines = workflow.read_text().splitlines(keepends=True)
        for number, line in enumerate(lines, 1):
            match = USES.match(line.rstrip("\n"))
            if not match or match["ref"].startswith(("./", "docker://")):
                continue
            where = f"{workflow.relative_to(root)}:{number}"
            pinned, comment = PINNED.match(match["ref"]), COMMENT.match(match["rest"])
            if not pinned or not comment:
                problems.append(f"{where}: pin {match['ref']} by the full commit SHA of a release tag, "
                                "followed by that tag: @<40-hex sha> # vX.Y.Z")
                continue
            problems += check_pin(where, pinned["action"], pinned["sha"], comment["tag"], table)
            lines[number - 1] = f"{match['lead']}{pinned['action']}{pinned['path'] or ''}@v{comment['major']}\n"
        if out:
            (out / workflow.name).write_text("".join(lines))
    return problems


def check_pin(where: str, action: str, sha: str, tag: str, table: Table) -> list[str]:
    row = table.actions.get((action, tag))
    if row is None:
        return [f"{where}: {action} {tag} is not in {TABLE}: look up the commit of refs/tags/{tag} in "
                f"{action} (peel an annotated tag) and add a row with the source you checked"]
    table.used.add(("action", (action, tag)))
    if row["sha"] == sha:
        return []
    other = [t for (a, t), r in table.actions.items() if a == action and r["sha"] == sha]
    known = f" ({sha[:12]} is {other[0]})" if other else ""
    return [f"{where}: {action}@{sha} is not {tag}{known}: {tag} is commit {row['sha']} "
            f"(its row in {TABLE} says where that was checked)"]


def check_dockerfile(root: Path, table: Table) -> list[str]:
    """Every FROM image that is not an earlier stage is a checked base image."""
    path = root / "Dockerfile"
    if not path.is_file():
        return []
    problems, stages = [], set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        image = args[0] if args else ""
        if len(args) >= 3 and args[1].upper() == "AS":
            stages.add(args[2])
        if image in stages or image == "scratch":
            continue
        if image in table.images:
            table.used.add(("image", image))
        else:
            problems.append(f"Dockerfile:{number}: base image {image} is not in {TABLE}: use a tag its "
                            "maintainers still rebuild, check it in their tag list and add a row")
    return problems


def text_files(root: Path, sources: list[str]) -> list[Path]:
    files = []
    for source in sources:
        path = root / source
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix in TEXT_SUFFIXES]
    return files


def check_bicep(root: Path, table: Table) -> list[str]:
    problems = []
    for path in text_files(root, ["infra/azure"]):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for m in BICEP_TYPE.finditer(line):
                key = (m["type"], m["version"])
                if key in table.apis:
                    table.used.add(("api", key))
                else:
                    problems.append(f"{path.relative_to(root)}:{number}: {m['type']}@{m['version']} is not in "
                                    f"{TABLE}: check the version in azure-rest-api-specs and add a row")
    return problems


def check_role_ids(root: Path, table: Table) -> list[str]:
    """Every role definition id is a checked one, named as the table names it where a name is near."""
    problems = []
    names = {row["name"]: rid for rid, row in table.roles.items()}
    for path in text_files(root, ROLE_ID_SOURCES):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            for guid in GUID.findall(line):
                if guid == PLACEHOLDER_GUID:
                    continue
                where = f"{path.relative_to(root)}:{number}"
                if guid not in table.roles:
                    problems.append(f"{where}: {guid} is not a role definition id in {TABLE}: look it up in "
                                    "Microsoft Learn's built-in roles and add a row")
                    continue
                table.used.add(("role", guid))
                near = " ".join(lines[max(0, number - 3):number])
                named = [n for n in names if n in near]
                if named and table.roles[guid]["name"] not in named:
                    problems.append(f"{where}: {guid} is {table.roles[guid]['name']}, not {named[0]} "
                                    f"({names[named[0]]})")
    return problems


def check_urls(root: Path, table: Table) -> list[str]:
    problems = []
    for path in text_files(root, URL_SOURCES):
        if path.resolve() == (root / TABLE).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for url in URL.findall(line):
                url = url.rstrip(".,;:")
                host = url.split("/")[2] if url.count("/") >= 2 else ""
                placeholder = host.isupper() or any(c in url for c in ("...", "{", "$", "OWNER"))
                if not host or placeholder or EXAMPLE_HOSTS.match(host):
                    continue
                key = norm_url(url)
                if key in table.urls:
                    table.used.add(("url", key))
                else:
                    problems.append(f"{path.relative_to(root)}:{number}: {url} is not in {TABLE}: check that "
                                    "the page exists and says what the text claims, then add a row")
    return problems


def stale_rows(table: Table) -> list[str]:
    kinds = [("action", table.actions), ("image", table.images), ("role", table.roles),
             ("api", table.apis), ("url", table.urls)]
    return [f"{TABLE}: {kind} {key} is used nowhere any more: remove its row"
            for kind, rows in kinds for key in rows if (kind, key) not in table.used]


def run(root: Path, out: Path | None = None) -> tuple[list[str], Table]:
    table, problems = load_table(root / TABLE)
    problems += check_workflows(root, table, out)
    problems += check_dockerfile(root, table)
    problems += check_bicep(root, table)
    problems += check_role_ids(root, table)
    problems += check_urls(root, table)
    problems += stale_rows(table)
    return problems, table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--tag-copies", type=Path, help="write the workflows with @vMAJOR pins here")
    args = parser.parse_args()
    problems, table = run(args.root, args.tag_copies)
    if problems:
        print("\n".join(problems))
        print(f"external identifiers: {len(problems)} problems")
        return 1
    print(f"external identifiers: {len(table.actions)} action pins, {len(table.images)} base images, "
          f"{len(table.roles)} role ids, {len(table.apis)} API versions and {len(table.urls)} URLs, "
          f"each used and checked against {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
