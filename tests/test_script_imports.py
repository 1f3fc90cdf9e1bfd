"""The scripts and benchmarks import the project's names inside their functions (so that `--help` is quick): a
renamed or moved name breaks them only when they run (`make run`'s scripted call did, unseen by the suite). Every
`from voiceclone... import name` / `from testkit... import name` in them must resolve."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted([*ROOT.glob("scripts/*.py"), *ROOT.glob("benchmarks/*.py")])
OURS = ("voiceclone", "testkit")


def project_imports(path: Path) -> list[tuple[str, str, int]]:
    """(module, name, line) of every `from <ours> import name` anywhere in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in OURS:
            found += [(node.module, alias.name, node.lineno) for alias in node.names]
    return found


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_every_project_name_a_script_imports_exists(path):
    missing = []
    for module, name, line in project_imports(path):
        loaded = importlib.import_module(module)
        if not hasattr(loaded, name):
            try:
                importlib.import_module(f"{module}.{name}")  # a submodule
            except ImportError:
                missing.append(f"line {line}: {name} from {module}")
    assert not missing, f"{path.name}: " + "; ".join(missing)
