#!/usr/bin/env python3
"""Keeps docs/architecture.md's checkable claims true:

- every path it names under src/, tests/, benches/, examples/, scripts/ or .ci/ exists;
- every error type it names is defined in src/, and every error type src/ defines is named
  (so the list of error types is complete);
- every port it names in the ports table is a trait in src/.

Usage: python3 .ci/check_architecture.py [docs/architecture.md] [src]. Exits 1 with one line per
claim that is no longer true.
"""

import re
import sys
from pathlib import Path

PATH = re.compile(r"(?<![\w/.-])((?:src|tests|benches|examples|scripts|\.ci)/[\w./-]*[\w/])")
ERROR_DEF = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum)\s+(\w+Error)\b", re.M)
NAMED_ERROR = re.compile(r"`(\w+Error)`")
TRAIT_DEF = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?trait\s+(\w+)", re.M)
PORT_ROW = re.compile(r"^\|\s*`(\w+)`", re.M)


def defined(src: Path, pattern: re.Pattern) -> dict:
    """Name -> first file that defines it, outside test modules' own files."""
    found = {}
    for path in sorted(src.rglob("*.rs")):
        for name in pattern.findall(path.read_text()):
            found.setdefault(name, path)
    return found


def problems(doc: Path, src: Path) -> list:
    text = doc.read_text()
    root = doc.resolve().parent.parent
    out = []
    for path in sorted(set(PATH.findall(text))):
        if not (root / path).exists():
            out.append(f"{doc}: names {path}, which does not exist; correct the path")
    errors = defined(src, ERROR_DEF)
    named = set(NAMED_ERROR.findall(text))
    for name in sorted(named - errors.keys()):
        out.append(f"{doc}: names the error type {name}, which src/ does not define")
    for name, path in sorted(errors.items()):
        if name not in named:
            out.append(f"{doc}: does not name the error type {name} ({path}); add it to the list of errors")
    traits = defined(src, TRAIT_DEF)
    for port in PORT_ROW.findall(text):
        if port not in traits:
            out.append(f"{doc}: the ports table names {port}, which is not a trait in src/")
    return out


def main() -> int:
    doc = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/architecture.md")
    src = Path(sys.argv[2] if len(sys.argv) > 2 else "src")
    found = problems(doc, src)
    if found:
        print("\n".join(found))
        return 1
    print(f"{doc}: every path, error type and port it names is true of {src}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
