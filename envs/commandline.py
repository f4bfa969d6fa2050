"""Typed command lines and their checks: the conventions every `gato` subcommand follows.

Every subcommand's ``main(argv)`` parses its typed config with `parse` (a dataclass whose field
docstrings are the ``--help`` text) and checks its arguments, paths and task ids before it writes
anything; `gato.cli` (the console script) turns `UsageError`, `CommandError` and other expected
exceptions into the one error style. This module lives in `envs`, the bottom layer, because the
subcommands of every layer use it (a lower layer may not import `gato`).

Example:
    >>> at_least(3, 1, "--episodes")
    >>> try:
    ...     at_least(0, 1, "--episodes")
    ... except UsageError as e:
    ...     print(e)
    --episodes 0: must be at least 1
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import os
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence


class UsageError(Exception):
    """A bad command line (a value out of range, flags that conflict): exit status 2."""


class CommandError(Exception):
    """An expected failure at run time (a missing file, a refused ``--out``): exit status 1."""


def error_message(e: BaseException) -> str:
    """The user-facing text of an exception (a KeyError's message unquoted)."""
    if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str):
        text = e.args[0]
    else:
        text = str(e)
    if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in text:
        text = f"{text}: {e.filename}"
    return text.strip() or type(e).__name__


# ----------------------------------------------------------------------------- logging and progress


def log(*parts: Any) -> None:
    """A log line on stderr (results go to stdout or files)."""
    print(*parts, file=sys.stderr, flush=True)


def progress(total: int | None, desc: str, enabled: bool = True, unit: str = "it", initial: int = 0):
    """A tqdm progress bar on stderr (a no-op bar when ``enabled`` is false)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, disable=not enabled,
                dynamic_ncols=True)


# ----------------------------------------------------------------------------- typed configs -> argparse


def field_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` from the string literal under each field of a dataclass (and its bases)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(inspect.cleandoc(nxt.value.value).split())
    return docs


def _clean(text: str) -> str:
    return text.replace("``", "`").replace("%", "%%")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


_METAVAR = {int: "INT", float: "FLOAT"}


def _metavar(tp: Any, name: str) -> str:
    return _METAVAR.get(tp, name.upper())


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # two lines, not the whole usage block
        self.exit(2, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists the options)\n")


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=min(100, max(60, _terminal_width())))


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value)) if value else "none"
    if isinstance(value, dict):
        return " ".join(f"{k} {v}" for k, v in value.items()) if value else "none"
    return str(value)


def parse(cls: type, argv: Sequence[str] | None, prog: str, positional: Sequence[str] = ()) -> Any:
    """Parse ``argv`` into the dataclass ``cls``; its field docstrings are the help text.

    Types: ``bool`` (``--x`` / ``--no-x``), ``int``, ``float``, ``str``, ``X | None``, ``Literal``,
    ``tuple[X, ...]`` (one or more values), fixed tuples, and ``dict[K, V]`` (``--x key value ...``).
    Fields named in ``positional`` may also be given as leading positional arguments
    (``gato info DATASET``), in that order; the last one may take several values if it is a tuple.

    Usage errors print two lines and raise ``SystemExit(2)``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    doc = inspect.cleandoc(cls.__doc__ or "")
    parser = _Parser(prog=prog, description=_clean(doc), formatter_class=_Formatter, allow_abbrev=False)
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    converters: dict[str, Callable[[Any], Any]] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        flag = "--" + f.name.replace("_", "-")
        tp, _ = _unwrap_optional(hints[f.name])
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        help_ = _clean(docs.get(f.name, ""))
        shown = has_default and default not in (None, "", False) and "default" not in help_.lower()
        if shown:  # once, and only when it says something (not None, an empty string or an off switch)
            help_ += f" (default: {_default_text(default)})"
        kw: dict[str, Any] = {"dest": f.name, "help": help_ or None}
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if tp is bool and default is True:
            kw["action"] = argparse.BooleanOptionalAction  # --x / --no-x
        elif tp is bool:  # an off-by-default switch: --x (--no-x is accepted but not shown)
            kw["action"] = "store_true"
            parser.add_argument("--no-" + flag[2:], dest=f.name, action="store_false", default=False,
                                help=argparse.SUPPRESS)
        elif origin is Literal:
            kw.update(choices=list(args), type=type(args[0]), metavar="{" + ",".join(map(str, args)) + "}")
        elif origin in (tuple, list) and (len(args) == 2 and args[1] is Ellipsis or origin is list):
            kw.update(nargs="+", type=args[0], metavar=_metavar(args[0], f.name))
            converters[f.name] = tuple if origin is tuple else list
        elif origin is tuple:
            kw.update(nargs=len(args), type=args[0], metavar=tuple(_metavar(a, "value") for a in args))
            converters[f.name] = tuple
        elif origin is dict:
            key_t, val_t = args
            kw.update(nargs="+", metavar="KEY VALUE")
            converters[f.name] = _pairs(flag, key_t, val_t, parser)
        elif tp in (int, float, str):
            kw.update(type=tp, metavar=_metavar(tp, f.name))
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: type {tp} has no command-line form")
        if not has_default:
            if f.name in positional:
                required.append(f.name)
            else:
                kw["required"] = True
        parser.add_argument(flag, **kw)
    pos_names = [p for p in positional]
    for i, name in enumerate(pos_names):
        f = next(x for x in dataclasses.fields(cls) if x.name == name)
        tp, _ = _unwrap_optional(hints[name])
        many = typing.get_origin(tp) in (tuple, list) and i == len(pos_names) - 1
        parser.add_argument(f"_pos_{name}", nargs="*" if many else "?", metavar=name.upper(),
                            help=f"same as --{name.replace('_', '-')}", default=None)
    ns = vars(parser.parse_args(argv))
    for name in pos_names:
        given = ns.pop(f"_pos_{name}")
        if given in (None, []):
            continue
        if ns.get(name) is not None:
            parser.error(f"{name.upper()} given twice (as an argument and as --{name.replace('_', '-')})")
        ns[name] = given
    missing = [n for n in required if ns.get(n) is None]
    if missing:
        parser.error("the following arguments are required: "
                     + ", ".join(f"{n.upper()} (or --{n.replace('_', '-')})" for n in missing))
    values = {}
    for name, value in ns.items():
        if value is None:
            f = next(x for x in dataclasses.fields(cls) if x.name == name)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue  # the dataclass default
        if name in converters and value is not None:
            value = converters[name](value)
        values[name] = value
    try:
        return cls(**values)
    except (ValueError, TypeError) as e:  # the config's own __post_init__ checks
        parser.error(str(e))


def _pairs(flag: str, key_t: type, val_t: type, parser: argparse.ArgumentParser) -> Callable[[list[str]], dict]:
    def convert(items: list[str]) -> dict:
        if len(items) % 2:
            parser.error(f"argument {flag}: expected KEY VALUE pairs, got {len(items)} words: {' '.join(items)}")
        out = {}
        for k, v in zip(items[::2], items[1::2]):
            try:
                out[key_t(k)] = val_t(v)
            except ValueError:
                parser.error(f"argument {flag}: invalid {val_t.__name__} value {v!r} for key {k!r}")
        return out

    return convert


# ----------------------------------------------------------------------------- validation helpers


def at_least(value: float | None, minimum: float, flag: str) -> None:
    """Raise `UsageError` naming ``flag`` when ``value < minimum`` (None passes)."""
    if value is not None and value < minimum:
        raise UsageError(f"{flag} {value}: must be at least {minimum}")


def in_range(value: float | None, low: float, high: float, flag: str) -> None:
    """Raise `UsageError` naming ``flag`` when ``value`` is outside [low, high] (None passes)."""
    if value is not None and not (low <= value <= high):
        raise UsageError(f"{flag} {value}: must be between {low} and {high}")


def check_task(task_id: str, flag: str = "--task") -> str:
    """The registered id ``task_id``, or `UsageError` listing the closest ids."""
    import envs

    try:
        envs.task_spec(task_id)
    except KeyError as e:
        raise UsageError(f"{flag} {task_id!r}: {error_message(e)}") from None
    return task_id


def check_file(path: str, flag: str, what: str = "file") -> Path:
    """An existing regular file, or `CommandError` naming ``flag`` and the path."""
    p = Path(path)
    if not p.exists():
        raise CommandError(f"{flag} {path}: no such {what}")
    if not p.is_file():
        raise CommandError(f"{flag} {path}: not a {what} (it is a directory)")
    return p


def check_dir(path: str, flag: str, what: str = "directory") -> Path:
    """An existing directory, or `CommandError` naming ``flag`` and the path."""
    p = Path(path)
    if not p.exists():
        raise CommandError(f"{flag} {path}: no such {what}")
    if not p.is_dir():
        raise CommandError(f"{flag} {path}: not a {what} (it is a file)")
    return p


def check_writable_parent(path: str, flag: str = "--out") -> None:
    """Fail early when the directory that would hold ``path`` cannot be created or written."""
    p = Path(path).absolute()
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise CommandError(f"{flag} {path}: {parent} is a file, so no directory can be made there")
    if not os.access(parent, os.W_OK):
        raise CommandError(f"{flag} {path}: {parent} is not writable")


# ----------------------------------------------------------------------------- outputs: no silent overwrite

# What each command leaves in its --out directory, to tell whose a directory is.
_KIND_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("demo", ("demo_config.json", "demo_state.json")),
    ("release", ("release.json", "release_config.json", "release_state.json")),
    ("generate --suite", ("suite.json",)),
    ("generate", ("metadata.json", "shard-00000.h5", "SHA256SUMS")),
    ("train", ("train_config.json", "checkpoints")),
    ("train-expert", ("expert.json", "ckpt")),
    ("score", ("report.json",)),
)
_KIND_TEXT = {"demo": "a `gato demo` run", "train": "a `gato train` run", "train-expert": "a `gato train-expert` run",
              "release": "a `gato release` release or its work files",
              "generate": "a dataset (`gato generate`)", "generate --suite": "datasets of `gato generate --suite`",
              "score": "a report (`gato score` / `gato eval`)"}


def out_kind(path: str | os.PathLike) -> str | None:
    """Which command wrote the directory ``path`` (``"train"``, ``"generate"``, ...), or None."""
    p = Path(path)
    for kind, markers in _KIND_MARKERS:
        if any((p / m).exists() for m in markers):
            return kind
    config = p / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text())
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict) and "algo" in data:
            return "train-expert"
        if isinstance(data, dict) and "shard_size" in data:
            return "generate"
    if any(p.glob("shard-*.h5")):
        return "generate"
    return None


def datasets_inside(path: str | os.PathLike) -> int:
    """How many finished datasets (``*/metadata.json``) the directory ``path`` holds one level down."""
    return sum(1 for _ in Path(path).glob("*/metadata.json"))


def what_is(path: str | os.PathLike) -> str | None:
    """What the directory ``path`` holds, in words ("a `gato train` run", "a dataset (`gato generate`)", ...),
    "a directory of N datasets" for one that holds datasets one level down, or None when it is none of these."""
    kind = out_kind(path)
    if kind in (None, "generate --suite"):
        n = datasets_inside(path)
        if n:
            return f"a directory of {n} datasets"
    return None if kind is None else _KIND_TEXT.get(kind, f"files of `gato {kind}`")


def check_out_dir(out: str, kind: str, force: bool = False, flag: str = "--out") -> bool:
    """Check that ``out`` may receive the files of a ``gato <kind>`` run, before anything is written.

    Returns True when ``out`` already holds a run of the same command (the caller resumes it),
    False when it is new or empty (or ``force`` allows writing over another command's files).

    Raises:
        CommandError: ``out`` is a file, or holds another command's (or unknown) files and not ``force``.
    """
    p = Path(out)
    if not p.exists():
        check_writable_parent(out, flag)
        return False
    if not p.is_dir():
        raise CommandError(f"{flag} {out} is a file; give a directory (new, or one written by `gato {kind}`)")
    found = out_kind(p)
    if found == kind:
        return True
    if not any(p.iterdir()):
        return False
    if force:
        log(f"gato {kind}: --force: writing into {out}, which holds "
            + (_KIND_TEXT.get(found, found) if found else "files gato did not write"))
        return False
    holds = _KIND_TEXT.get(found, found) if found else "files that no gato command wrote"
    raise CommandError(f"{flag} {out} holds {holds}, not a `gato {kind}` run; "
                       f"give another {flag} (or pass --force to write into it anyway)")


def check_out_files(paths: Iterable[str | os.PathLike], force: bool = False, same: Callable[[Path], bool] | None = None,
                    flag: str = "--out") -> None:
    """Refuse to replace existing files unless ``force`` or ``same(path)`` says they hold this very run.

    ``same`` lets an identical rerun (same command, same options) replace its own results.
    """
    for path in paths:
        p = Path(path)
        if p.is_dir():
            raise CommandError(f"{flag}: {p} is a directory, not a file")
        if p.exists() and not force and not (same is not None and same(p)):
            raise CommandError(f"{flag}: {p} exists (from another run); give another {flag}, "
                               "or pass --force to replace it")
    for path in paths:
        check_writable_parent(str(path), flag)


def changed_options(before: dict[str, Any], now: dict[str, Any], ignore: Iterable[str] = ()) -> dict[str, tuple]:
    """``{option: (stored, now)}`` for the options of ``now`` whose JSON value differs from ``before``."""
    skip = set(ignore)
    norm = lambda v: json.loads(json.dumps(v))  # noqa: E731 - tuples vs lists
    return {k: (before.get(k), v) for k, v in now.items()
            if k not in skip and k in before and norm(before.get(k)) != norm(v)}


def check_unchanged(out: str, before: dict[str, Any], now: dict[str, Any], ignore: Iterable[str] = (),
                    allow: bool = False, allow_flag: str = "--allow-changes", command: str = "") -> dict[str, tuple]:
    """Refuse to resume ``out`` with options that differ from the stored ones, unless ``allow``.

    Returns the changes (empty when none), so the caller can log them when they are allowed.
    """
    diffs = changed_options(before, now, ignore)
    if diffs and not allow:
        shown = "; ".join(f"--{k.replace('_', '-')} was {a!r}, now {b!r}" for k, (a, b) in diffs.items())
        raise CommandError(f"{out} was started with other options ({shown}). Rerun with the stored options to "
                           f"resume, pass {allow_flag} to resume with the new ones, or give another --out")
    if diffs:
        log(f"{command or 'gato'}: {allow_flag}: resuming {out} with changed options "
            + ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diffs.items()))
    return diffs


def absolute_path(path: str) -> str:
    """``path`` made absolute (stored paths must not depend on the directory a command ran from)."""
    return os.path.abspath(os.path.expanduser(path))


if __name__ == "__main__":
    sys.exit(main())
