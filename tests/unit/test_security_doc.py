"""docs/security.md: every test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef)
            }
    return names


def test_every_named_test_exists() -> None:
    doc = (ROOT / "docs" / "security.md").read_text()
    references = re.findall(r"`(tests/[\w/]+\.py)(?:::([\w:]+))?`", doc)
    assert len(references) > 40
    for path, name in references:
        file = ROOT / path
        assert file.exists(), path
        if name:
            assert name in defined_tests(file), f"{path}::{name}"
