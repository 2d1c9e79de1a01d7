#!/usr/bin/env python3
"""Tests of .ci/check_external_ids.py: the repository passes, and each kind of wrong identifier
that it can see offline fails, the attest pin of release 0.1.0's first attempt among them.

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
SPEC = importlib.util.spec_from_file_location("check_external_ids", ROOT / ".ci" / "check_external_ids.py")
check = importlib.util.module_from_spec(SPEC)
sys.modules[SPEC.name] = check  # dataclasses look their module up
SPEC.loader.exec_module(check)

GOOD_ATTEST = "actions/attest-build-provenance@a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32 # v4.1.0"
# The pin release.yml had: v4.1.0 in the comment, v3.0.0's first 18 characters, then invented.
OLD_ATTEST = "actions/attest-build-provenance@977bb373ede98d70efbf0b7b13af9c3d6651dc60 # v4.1.0"


class Repo:
    """A copy of the table and the files the check reads, in a temporary directory."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="external-ids-"))
        for rel in [".ci/external-ids.toml", "Dockerfile", ".github/workflows", "infra/azure"]:
            src, dst = ROOT / rel, self.dir / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.dir / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new))

    def write(self, rel: str, text: str) -> None:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def problems(self) -> list[str]:
        problems, _ = check.run(self.dir)
        # The copy holds only some of the files that use the table's rows.
        return [p for p in problems if "is used nowhere" not in p]

    def close(self) -> None:
        shutil.rmtree(self.dir)


class ExternalIds(unittest.TestCase):
    def setUp(self) -> None:
        self.repo = Repo()
        self.addCleanup(self.repo.close)

    def assert_one_problem(self, *needles: str) -> str:
        problems = self.repo.problems()
        self.assertEqual(len(problems), 1, "\n".join(problems))
        for needle in needles:
            self.assertIn(needle, problems[0])
        return problems[0]

    def test_the_repository_passes(self) -> None:
        problems, table = check.run(ROOT)
        self.assertEqual(problems, [])
        self.assertGreaterEqual(len(table.actions), 4)

    def test_the_copy_passes(self) -> None:
        self.assertEqual(self.repo.problems(), [])

    def test_the_old_attest_pin_fails_and_names_the_tags_commit(self) -> None:
        self.repo.edit(".github/workflows/release.yml", GOOD_ATTEST, OLD_ATTEST)
        problems = self.repo.problems()
        self.assertEqual(len(problems), 2, "\n".join(problems))  # the binaries and the image job
        for problem in problems:
            self.assertIn("release.yml:", problem)
            self.assertIn("is not v4.1.0", problem)
            self.assertIn("a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32", problem)

    def test_a_sha_of_another_listed_tag_is_named(self) -> None:
        table = self.repo.dir / ".ci/external-ids.toml"
        table.write_text(table.read_text() + '\n[[action]]\nrepo = "actions/attest-build-provenance"\n'
                         'tag = "v3.0.0"\nsha = "977bb373ede98d70efdf65b84cb5f73e068dcc2a"\nchecked = "test"\n')
        self.repo.edit(".github/workflows/release.yml", GOOD_ATTEST,
                       "actions/attest-build-provenance@977bb373ede98d70efdf65b84cb5f73e068dcc2a # v4.1.0")
        problems = self.repo.problems()
        self.assertTrue(problems and all("is v3.0.0" in p for p in problems), "\n".join(problems))

    def test_pins_that_are_not_a_full_sha_and_tag_fail(self) -> None:
        for bad in ["actions/attest-build-provenance@v4.1.0",
                    "actions/attest-build-provenance@a2bbfa25 # v4.1.0",
                    "actions/attest-build-provenance@a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32",
                    "actions/attest-build-provenance@a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32 # v4"]:
            with self.subTest(bad=bad):
                repo = Repo()
                self.addCleanup(repo.close)
                repo.edit(".github/workflows/release.yml", GOOD_ATTEST, bad)
                problems = repo.problems()
                self.assertEqual(len(problems), 2, "\n".join(problems))
                self.assertTrue(all("@<40-hex sha> # vX.Y.Z" in p for p in problems))

    def test_an_action_tag_nobody_checked_fails(self) -> None:
        self.repo.edit(".github/workflows/ci.yml",
                       "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0",
                       "actions/checkout@93cb6efe18208431cddfb8368fd83d5badbf9bfd # v5.0.1")
        problems = self.repo.problems()
        self.assertTrue(problems and all("actions/checkout v5.0.1 is not in" in p for p in problems))

    def test_an_unchecked_base_image_fails(self) -> None:
        self.repo.edit("Dockerfile", "FROM rust:1-trixie AS build", "FROM rust:1.95-bookworm AS build")
        self.assert_one_problem("Dockerfile:", "rust:1.95-bookworm")

    def test_an_unknown_api_version_fails(self) -> None:
        self.repo.edit("infra/azure/main.bicep", "'Microsoft.App/jobs@2024-03-01'", "'Microsoft.App/jobs@2024-13-01'")
        self.assert_one_problem("main.bicep:", "Microsoft.App/jobs@2024-13-01")

    def test_an_unknown_role_id_fails(self) -> None:
        self.repo.edit("infra/azure/main.bicep", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
                       "b86a8fe4-44ce-4948-aee5-eccb2c155cd8")
        self.assert_one_problem("main.bicep:", "b86a8fe4-44ce-4948-aee5-eccb2c155cd8")

    def test_a_role_id_under_another_roles_name_fails(self) -> None:
        self.repo.write("docs/roles.md", 'the job gets "Key Vault Secrets Officer"\n'
                        "(`7f951dda-4ed3-4680-a7ca-43fe172d538d`) on the vault\n")
        self.assert_one_problem("docs/roles.md:2", "is AcrPull, not Key Vault Secrets Officer")

    def test_an_unchecked_url_fails_and_example_hosts_pass(self) -> None:
        self.repo.write("docs/links.md", "See https://docs.digdir.no/docs/Maskinporten/maskinporten_guide_x.\n"
                        "Vault https://kv-mine.vault.azure.net/, hook https://prod-00.norwayeast.logic.azure.com/x,\n"
                        "and http://localhost:8080/ or https://... or https://maskinporten.no/ are fine.\n")
        self.assert_one_problem("docs/links.md:1", "maskinporten_guide_x")

    def test_a_row_without_its_source_fails(self) -> None:
        self.repo.edit(".ci/external-ids.toml", 'checked = "azure-rest-api-specs app/.../Microsoft.App/stable/2024-03-01/Jobs.json',
                       'note = "azure-rest-api-specs app/.../Microsoft.App/stable/2024-03-01/Jobs.json')
        self.assert_one_problem("Microsoft.App/jobs", "checked = ...")

    def test_a_row_nothing_uses_fails(self) -> None:
        problems, _ = check.run(self.repo.dir)
        self.assertTrue(any("url https://insta.rs is used nowhere" in p for p in problems), "\n".join(problems))


if __name__ == "__main__":
    unittest.main()
