#!/usr/bin/env python3
"""Tests of .ci/check_sizes.py and .ci/check_architecture.py: the repository passes, and each
kind of slip they exist for fails.

Run: python3 -m unittest discover -s .ci -p 'test_*.py'
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / ".ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sizes = load("check_sizes")
architecture = load("check_architecture")


def run_sizes(files: dict) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text)
        sys.argv = ["check_sizes.py", tmp]
        return sizes.main()


def body(lines: int) -> str:
    return "fn long() {\n" + "    let _x = 1;\n" * (lines - 2) + "}\n"


class Sizes(unittest.TestCase):
    def test_the_repository_passes(self):
        sys.argv = ["check_sizes.py", str(ROOT / "src")]
        self.assertEqual(sizes.main(), 0)

    def test_a_function_over_60_lines_fails_and_a_flat_table_may_reach_65(self):
        self.assertEqual(run_sizes({"a.rs": body(60)}), 0)
        self.assertEqual(run_sizes({"a.rs": body(61)}), 1)
        self.assertEqual(run_sizes({"a.rs": "// flat table\n" + body(65)}), 0)
        self.assertEqual(run_sizes({"a.rs": "// flat table\n" + body(66)}), 1)

    def test_braces_in_strings_and_comments_do_not_count(self):
        text = 'fn f() {\n    let _s = "}}}";\n    // }\n    let _c = \'}\';\n' + "    let _x = 1;\n" * 58 + "}\n"
        self.assertEqual(run_sizes({"a.rs": text}), 1)

    def test_a_file_over_650_lines_fails(self):
        self.assertEqual(run_sizes({"a.rs": "// line\n" * 650}), 0)
        self.assertEqual(run_sizes({"a.rs": "// line\n" * 651}), 1)

    def test_errors_that_are_only_text_fail(self):
        self.assertEqual(run_sizes({"a.rs": "fn f() -> Result<(), String> { Ok(()) }\n"}), 1)
        self.assertEqual(run_sizes({"a.rs": "pub struct FooError(pub String);\n"}), 1)
        self.assertEqual(run_sizes({"a.rs": "pub struct FooError { message: String }\n"}), 1)
        self.assertEqual(run_sizes({"a.rs": "pub struct FooError { kid: String, message: String }\n"}), 0)
        self.assertEqual(run_sizes({"a.rs": "pub struct StageError { pub given: String }\n"}), 0)
        self.assertEqual(run_sizes({"a.rs": "fn f() -> Result<Vec<String>, FooError> { todo() }\n"}), 0)


class Architecture(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())
        shutil.copytree(ROOT / "src", self.tmp / "src")
        (self.tmp / "docs").mkdir()
        self.doc = self.tmp / "docs" / "architecture.md"
        self.text = (ROOT / "docs" / "architecture.md").read_text()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def check(self, text: str) -> list:
        self.doc.write_text(text)
        for path in architecture.PATH.findall(text):
            if (ROOT / path).exists() and not (self.tmp / path).exists():
                target = self.tmp / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("") if (ROOT / path).is_file() else target.mkdir(exist_ok=True)
        return architecture.problems(self.doc, self.tmp / "src")

    def test_the_page_is_true(self):
        self.assertEqual(self.check(self.text), [])

    def test_a_path_that_does_not_exist_fails(self):
        found = self.check(self.text.replace("`src/app/mod.rs`", "`src/app.rs`"))
        self.assertTrue(any("src/app.rs" in p for p in found), found)

    def test_an_error_type_missing_from_the_page_fails(self):
        (self.tmp / "src" / "extra.rs").write_text("pub enum NewError { A }\n")
        found = self.check(self.text)
        self.assertTrue(any("NewError" in p for p in found), found)

    def test_an_error_type_the_page_invents_fails(self):
        found = self.check(self.text + "\n`GhostError`\n")
        self.assertTrue(any("GhostError" in p for p in found), found)


if __name__ == "__main__":
    unittest.main()
