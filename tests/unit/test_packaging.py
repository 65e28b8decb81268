"""Our top-level packages must be ours, whatever the libp2p wheel drops into site-packages."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Top-level names the libp2p 0.8.1 wheel installs besides `libp2p`.
FOREIGN_TOP_LEVEL = {"docs", "examples", "interop", "stubs", "newsfragments"}


@pytest.mark.parametrize("name", ["chat", "ui", "storage"])
def test_package_resolves_to_this_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == REPO / name


def test_no_source_or_test_imports_a_foreign_top_level_package() -> None:
    offenders = []
    for folder in ("chat", "ui", "storage", "tests"):
        for path in (REPO / folder).rglob("*.py"):
            if "node_modules" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in FOREIGN_TOP_LEVEL]
    assert offenders == []
