"""Atomic file writes: the one home of "write a temporary file, then ``os.replace``".

A reader never sees a half-written file: the bytes go to a temporary file in the same directory
(same filesystem, so the rename is atomic) and replace ``path`` only once complete. With
``durable=True`` the file and its directory are also fsynced, so the new file survives a power
loss (checkpoints, manifests); without it a crash may lose the write but never tears it.

It lives in `envs`, the bottom layer, because every layer writes files this way (datasets,
checkpoints, rollout results, reports) and a lower layer may not import a higher one.

Example:
    >>> import json, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = atomic_write_json(os.path.join(d, "a.json"), {"b": 1})
    >>> json.loads(p.read_text()), sorted(os.listdir(d))
    ({'b': 1}, ['a.json'])
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "fsync_dir"]


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a directory, so that a rename inside it is durable (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = False, suffix: str = "") -> Iterator[Path]:
    """A temporary path to write; it replaces ``path`` when the block ends without an exception.

    For writers that want a file name (``imageio``, ``savefig``, ``h5py``, ``model.save``). The
    parent directory is created. On an exception the temporary file is removed and ``path`` is
    left as it was.

    Args:
        path: the final path.
        durable: fsync the file and its directory after the rename.
        suffix: appended to the temporary name (writers that pick a format from the extension).

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> with atomic_path(os.path.join(d, "x.txt")) as tmp:
        ...     _ = tmp.write_text("hi")
        >>> open(os.path.join(d, "x.txt")).read()
        'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{suffix}")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path`` as a `Path`."""
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, durable: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path`` as a `Path`."""
    return atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 1, sort_keys: bool = False,
                      default: Callable[[Any], Any] | None = None, durable: bool = False) -> Path:
    """Write ``obj`` as JSON (with a final newline) to ``path`` atomically; returns ``path`` as a `Path`."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default) + "\n"
    return atomic_write_text(path, text, durable=durable)
