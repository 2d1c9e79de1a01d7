#!/usr/bin/env python3
"""Keeps the source readable in pieces: no file under src/ over 650 lines, and no function over
60 lines (65 for a flat table: a `// flat table` comment on the line above its `fn`). Also fails on
any `Result<_, String>` in src/, and on any error type that is only a String (`struct XError(String)`,
`struct XError { message: String }`): errors carry fields, not only text.

A function's length runs from its `fn` line to its closing brace. Strings, raw strings, chars
and comments are skipped when braces are matched, so a brace in a message does not count.

Usage: python3 .ci/check_sizes.py [src]. Prints the largest files and functions; exits 1 with one
line per problem.
"""

import re
import sys
from pathlib import Path

MAX_FILE = 650
MAX_FN = 60
MAX_TABLE = 65

FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+\"C\"\s+)?fn\s+(\w+)")
RESULT = re.compile(r"\bResult<")


def code_only(text: str) -> str:
    """The text with the contents of strings, chars and comments blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif (m := re.match(r'b?r(#*)"', text[i:])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find('"' + m.group(1), i + m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(blank(text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i : j + 1]))
            i = j + 1
        elif c == "'" and (m := re.match(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i:], re.S)):
            out.append(blank(m.group(0)))
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def blank(s: str) -> str:
    return "".join("\n" if ch == "\n" else " " for ch in s)


def functions(path: Path):
    """(name, first line, length in lines, is a flat table) of every fn with a body."""
    raw = path.read_text()
    lines = raw.splitlines()
    code = code_only(raw)
    starts = [0]
    for k, ch in enumerate(code):
        if ch == "\n":
            starts.append(k + 1)
    for number, line in enumerate(code.splitlines()):
        m = FN.match(line)
        if not m:
            continue
        pos = starts[number] + m.end()
        # The body opens at the first `{` after the signature, unless a `;` ends it first (a trait
        # method without a body).
        depth_paren, k = 0, pos
        while k < len(code):
            ch = code[k]
            if ch in "([<":
                depth_paren += 1
            elif ch in ")]>" and depth_paren:
                depth_paren -= 1
            elif ch == ";" and depth_paren == 0:
                k = -1
                break
            elif ch == "{" and depth_paren == 0:
                break
            k += 1
        if k < 0 or k >= len(code):
            continue
        depth, j = 0, k
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        end_line = code.count("\n", 0, j)
        above = lines[number - 1].strip() if number > 0 else ""
        yield m.group(1), number + 1, end_line - number + 1, above == "// flat table"


def string_errors(code: str):
    """Offsets of every `Result<T, String>`: the error argument at the top level is `String`."""
    for m in RESULT.finditer(code):
        depth, k, args, start = 1, m.end(), [], m.end()
        while k < len(code) and depth:
            ch = code[k]
            if ch in "<([":
                depth += 1
            elif ch in ">)]" and not (ch == ">" and code[k - 1] == "-"):
                depth -= 1
            if depth == 1 and ch == ",":
                args.append(code[start:k])
                start = k + 1
            k += 1
        args.append(code[start : k - 1])
        if len(args) == 2 and args[1].strip() == "String":
            yield m.start()


STRING_ONLY = re.compile(
    r"\b(?:struct|enum)\s+(\w*Error)\s*(?:\(\s*(?:pub(?:\([^)]*\))?\s+)?String\s*\)\s*;"
    r"|\{\s*(?:pub(?:\([^)]*\))?\s+)?(?:message|msg|reason|cause|error|description|detail|text)\s*:\s*String\s*,?\s*\})"
)


def string_only_errors(code: str):
    """(offset, name) of every error struct that is only a message: one String, unnamed or named
    as text about the failure (`message`, `reason`, ...). One String that holds the refused value
    (`StageError { given }`) is data, not a message, and passes."""
    for m in STRING_ONLY.finditer(code):
        if code[m.start():].startswith("struct"):
            yield m.start(), m.group(1)


def main() -> int:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    problems, sizes, fns = [], [], []
    for path in sorted(src.rglob("*.rs")):
        text = path.read_text()
        count = text.count("\n")
        sizes.append((count, path))
        if count > MAX_FILE:
            problems.append(f"{path}: {count} lines; split it by job (at most {MAX_FILE})")
        for name, line, length, table in functions(path):
            fns.append((length, f"{path}:{line} {name}"))
            limit = MAX_TABLE if table else MAX_FN
            if length > limit:
                problems.append(f"{path}:{line}: fn {name} has {length} lines (at most {limit}); split it")
        for offset in string_errors(code_only(text)):
            line = text.count("\n", 0, offset) + 1
            problems.append(f"{path}:{line}: Result<_, String>; give the error a type with fields")
        for offset, name in string_only_errors(code_only(text)):
            line = text.count("\n", 0, offset) + 1
            problems.append(f"{path}:{line}: {name} is only a String; give it fields that say what failed")
    print("largest files:", ", ".join(f"{p} {n}" for n, p in sorted(sizes, reverse=True)[:5]))
    print("longest functions:", ", ".join(f"{w} {n}" for n, w in sorted(fns, reverse=True)[:5]))
    if problems:
        print("\n".join(problems))
        return 1
    print(f"sizes: {len(sizes)} files, {len(fns)} functions within their limits; no Result<_, String>, no error that is only a String")
    return 0


if __name__ == "__main__":
    sys.exit(main())
