"""What the benchmark scripts share: where their JSON results go and how they are written.

A script imports it as its sibling (``from _common import json_path, write_json``): benchmarks
run as ``python benchmarks/<name>.py``, which puts this folder first on ``sys.path``.

The write is `envs.atomic.atomic_write_json` (the project's one home of "write a temporary file,
then rename"), loaded from its file rather than imported as ``envs.atomic``: that import runs
``envs/__init__``, which imports gymnasium, and the ``--gpu`` benchmarks run on machines that
have only torch and numpy.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

_ATOMIC = Path(__file__).resolve().parent.parent / "envs" / "atomic.py"


def json_path(out: str | None, name: str) -> str | None:
    """Where a benchmark writes its JSON: ``out`` (its ``--out``) when given, else ``$OUT/name``
    when ``$OUT`` is set (the folder the device machine sends back), else nowhere (None)."""
    if out:
        return out
    return os.path.join(os.environ["OUT"], name) if os.environ.get("OUT") else None


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON (indent 1) to ``path`` atomically, creating its folder: a benchmark
    stopped mid-write leaves the previous file or none, never half of one. Returns ``path``."""
    spec = importlib.util.spec_from_file_location("_benchmarks_atomic", _ATOMIC)
    atomic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(atomic)
    return atomic.atomic_write_json(path, obj, indent=1)
