"""The docstring examples of every module of the five packages run and print what they show.

An example that cannot run in a test (it needs a trained checkpoint or a dataset on disk) is
marked ``# doctest: +SKIP`` where it is written, so that skipping is visible to the reader.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("envs", "policies", "datasets_gen", "gato", "eval")
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def modules() -> list[str]:
    names = []
    for pkg in PACKAGES:
        names.append(pkg)
        names += [m.name for m in pkgutil.walk_packages(importlib.import_module(pkg).__path__, pkg + ".")]
    return names


MODULES = modules()


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed (output above)"


def test_the_examples_are_found():
    """The finder sees the examples (a broken collection would pass every module with zero)."""
    finder = doctest.DocTestFinder()
    total = sum(len(t.examples) for name in ("gato.tokenizer", "gato.sequence", "envs.registry")
                for t in finder.find(importlib.import_module(name)))
    assert total >= 20
