"""An offline English text corpus with a deterministic train / held-out split.

Sources (``load_corpus(source)``):

- ``"stdlib"`` (default): the docstrings of the Python standard library that runs the project
  (modules, classes and functions; read with `ast`, nothing is imported or executed). It is
  installed by the project's own set-up because it *is* the interpreter's library: ~6,000
  documents, ~1.6 MB of English on Python 3.11. Tests, docs and private (``_``) modules are left out.
- ``"python-doc"``: Debian's ``python3.11-doc`` reStructuredText sources
  (``/usr/share/doc/python3.11/html/_sources``), when that package is installed
  (``apt-get install python3.11-doc``); one document per file.
- a directory path: every ``*.txt``/``*.rst``/``*.md`` file under it, one document per file (for
  users' own text).

The split is by *unit* (a stdlib module, or a file): ``sha1(unit name)`` decides, so the held-out
part holds whole modules never seen in training, and the split does not depend on the Python hash
seed, the file system order or how many documents are loaded.

Example:
    >>> corpus = load_corpus("stdlib", max_units=40)
    >>> len(corpus.train) > 0 and len(corpus.held_out) > 0
    True
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

PYTHON_DOC_SOURCES = Path(f"/usr/share/doc/python{sys.version_info.major}.{sys.version_info.minor}"
                          "/html/_sources")
# Parts of the standard library that are not prose about Python's API (tests, demos, vendored code).
_EXCLUDED_PARTS = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages", "idlelib",
                             "lib2to3", "turtledemo", "__pycache__", "ensurepip", "pydoc_data",
                             "config-3.11-x86_64-linux-gnu"})
MIN_CHARS = 40  # shorter docstrings ("Return self.") carry no language


@dataclass(frozen=True)
class TextDocument:
    """One document.

    Attributes:
        name: a stable id (``"json.decoder.JSONDecoder.decode"`` or a relative file path).
        unit: the split unit it belongs to (its module, or its file).
        text: the document text.
    """

    name: str
    unit: str
    text: str


@dataclass
class TextCorpus:
    """A corpus split into training and held-out documents.

    Attributes:
        source: where it came from (``"stdlib"``, ``"python-doc"`` or a directory).
        train: documents for training.
        held_out: documents for perplexity evaluation (units disjoint from ``train``).
        metadata: python version, counts, held-out fraction.
    """

    source: str
    train: list[TextDocument]
    held_out: list[TextDocument]
    metadata: dict = field(default_factory=dict)

    def split(self, name: str) -> list[TextDocument]:
        """``"train"`` or ``"held_out"``."""
        if name not in ("train", "held_out"):
            raise ValueError(f"unknown split {name!r}; expected 'train' or 'held_out'")
        return self.train if name == "train" else self.held_out


def is_held_out(unit: str, held_out_fraction: float) -> bool:
    """Whether a unit belongs to the held-out split: sha1 of its name, as a fraction of 2**32."""
    h = int.from_bytes(hashlib.sha1(unit.encode("utf-8")).digest()[:4], "big")
    return h / 2**32 < held_out_fraction


def _stdlib_files() -> list[tuple[str, Path]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        # prune excluded and private folders instead of walking site-packages and the tests
        dirnames[:] = [d for d in dirnames if d not in _EXCLUDED_PARTS and not d.startswith((".", "_"))]
        files += [Path(dirpath) / f for f in filenames if f.endswith(".py")]
    out = []
    for p in sorted(files):
        rel = p.relative_to(root)
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not parts or any(part.startswith("_") for part in parts):
            continue
        out.append((".".join(parts), p))
    return out


def _docstrings(module: str, source: str) -> list[TextDocument]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    docs = []

    def visit(node, prefix: str):
        text = ast.get_docstring(node)
        if text and len(text) >= MIN_CHARS:
            docs.append(TextDocument(prefix, module, text))
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"{prefix}.{child.name}")

    visit(tree, module)
    return docs


@functools.lru_cache(maxsize=4)
def stdlib_docstrings(max_units: int | None = None) -> tuple[TextDocument, ...]:
    """The standard library's docstrings, module by module in sorted order.

    Args:
        max_units: read only the first this many modules (sorted by name); None reads all (~4 s).
    """
    docs: list[TextDocument] = []
    for module, path in _stdlib_files()[:max_units]:
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        docs.extend(_docstrings(module, source))
    return tuple(docs)


def directory_documents(root: str | Path, suffixes=(".txt", ".rst", ".md"),
                        max_units: int | None = None) -> list[TextDocument]:
    """Every text file under ``root`` (sorted by relative path) as one document."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"text corpus directory {str(root)!r} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and
                   any(p.name.endswith(s) for s in suffixes))[:max_units]
    docs = []
    for p in files:
        text = p.read_text(encoding="utf-8", errors="replace").strip()
        if len(text) >= MIN_CHARS:
            rel = str(p.relative_to(root))
            docs.append(TextDocument(rel, rel, text))
    return docs


def load_corpus(source: str = "stdlib", held_out_fraction: float = 0.1,
                max_units: int | None = None) -> TextCorpus:
    """Load a corpus and split it by unit (see the module docstring).

    Args:
        source: ``"stdlib"``, ``"python-doc"`` or a directory of text files.
        held_out_fraction: expected fraction of units held out (by sha1 of the unit name).
        max_units: read only the first this many modules/files (small corpora for tests).

    Raises:
        FileNotFoundError: ``"python-doc"`` without Debian's python3.11-doc, or a missing directory.
        ValueError: a bad fraction, or a split that came out empty.
    """
    if not 0.0 < held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction={held_out_fraction} must be in (0, 1)")
    if source == "stdlib":
        docs = list(stdlib_docstrings(max_units))
    elif source == "python-doc":
        if not PYTHON_DOC_SOURCES.is_dir():
            raise FileNotFoundError(
                f"{PYTHON_DOC_SOURCES} does not exist: install Debian's python3.11-doc "
                f"(`apt-get install python3.11-doc`) or use source='stdlib'")
        docs = directory_documents(PYTHON_DOC_SOURCES, suffixes=(".rst.txt", ".txt"),
                                   max_units=max_units)
    else:
        docs = directory_documents(source, max_units=max_units)
    train = [d for d in docs if not is_held_out(d.unit, held_out_fraction)]
    held = [d for d in docs if is_held_out(d.unit, held_out_fraction)]
    if not train or not held:
        raise ValueError(
            f"text corpus {source!r} split into {len(train)} train / {len(held)} held-out documents "
            f"({len(docs)} in all): need both; give more text (max_units={max_units}) or another "
            f"held_out_fraction")
    meta = {"source": source, "python": sys.version.split()[0], "documents": len(docs),
            "train_documents": len(train), "held_out_documents": len(held),
            "train_chars": sum(len(d.text) for d in train),
            "held_out_chars": sum(len(d.text) for d in held),
            "held_out_fraction": held_out_fraction, "max_units": max_units}
    return TextCorpus(source, train, held, meta)
