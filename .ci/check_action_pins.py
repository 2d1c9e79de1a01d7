#!/usr/bin/env python3
"""Checks that every action in .github/workflows is pinned as `owner/repo@<40-hex SHA> # vX.Y.Z`.

With an output directory, also writes copies of the workflows whose pins are replaced by the
major version tag of their comment (`@v5`), so that actionlint can check each pinned action's
inputs and runtime (a SHA tells actionlint nothing; a deprecated node20 action fails on GitHub).

Usage: python3 .ci/check_action_pins.py [OUT_DIR]. Exits 1 with one line per problem.
"""

import re
import sys
from pathlib import Path

USES = re.compile(r"^(?P<lead>\s*(?:-\s+)?uses:\s*)(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})$")
COMMENT = re.compile(r"^\s+#\s+(?P<tag>v(?P<major>\d+)(?:\.\d+){0,2})\s*$")


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    problems, pins = [], 0
    for workflow in sorted(Path(".github/workflows").glob("*.y*ml")):
        lines = workflow.read_text().splitlines(keepends=True)
        for number, line in enumerate(lines, 1):
            match = USES.match(line.rstrip("\n"))
            if not match or match["ref"].startswith(("./", "docker://")):
                continue
            pinned, comment = PINNED.match(match["ref"]), COMMENT.match(match["rest"])
            if not pinned or not comment:
                problems.append(f"{workflow}:{number}: pin {match['ref']} by a full commit SHA "
                                "followed by its version tag, e.g. @<sha> # v1.2.3")
                continue
            pins += 1
            lines[number - 1] = f"{match['lead']}{pinned['action']}@v{comment['major']}\n"
        if out:
            (out / workflow.name).write_text("".join(lines))
    if problems:
        print("\n".join(problems))
        return 1
    print(f"action pins: {pins} uses pinned by commit SHA with a version comment")
    return 0


if __name__ == "__main__":
    sys.exit(main())
