"""The import contracts of pyproject.toml hold, and an upward import breaks them.

`make test` runs ``lint-imports`` on the repository; these tests run it on a copy of the five
packages with one import added, so that a contract that would let a violation through fails here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("envs", "policies", "datasets_gen", "gato", "eval")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e '.[test]')")


def lint(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with ``root``'s pyproject.toml, importing the packages from ``root``."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", str(root / "pyproject.toml")], cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=120)


def test_the_repository_keeps_its_contracts():
    r = lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


# (file, text appended to it, what lint-imports must report)
VIOLATIONS = [
    # a lower layer imports a higher one (inside a function counts too)
    ("policies/random.py", "def _x():\n    import gato.model\n", "policies is not allowed to import gato"),
    ("envs/registry.py", "import eval.scoring\n", "envs is not allowed to import eval"),
    ("datasets_gen/reader.py", "from eval import report\n", "datasets_gen is not allowed to import eval"),
    # a library module of gato imports the top (the console script)
    ("gato/model.py", "def _x():\n    from gato import cli\n", "gato.model is not allowed to import gato.cli"),
    # a cycle between two modules of one package
    ("gato/configs.py", "def _x():\n    import gato.model\n", "No cycles are allowed in gato"),
]


def test_upward_imports_break_the_contracts(tmp_path):
    """Each added import is reported (one lint run over a copy holding all of them)."""
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.zip",
                                                                                   "*.json", "*.h5", "*.pkl"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for module, line, _ in VIOLATIONS:
        path = tmp_path / module
        path.write_text(path.read_text() + "\n\n" + line)
    r = lint(tmp_path)
    assert r.returncode != 0, r.stdout
    missed = [(module, line.strip()) for module, line, broken in VIOLATIONS if broken not in r.stdout]
    assert not missed, f"lint-imports let these through: {missed}\n{r.stdout}"
