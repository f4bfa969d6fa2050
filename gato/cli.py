"""The `gato` console script: one entry point, one subcommand per job, one style of errors.

Each subcommand lives in the module that owns the job and exposes ``main(argv)``; modules are
imported lazily so that `gato tasks` does not pay for importing torch. Every ``main`` parses its
typed config with `envs.commandline.parse` (a dataclass whose field docstrings are the ``--help`` text) and checks
its arguments, paths and task ids before it writes anything.

Conventions every subcommand follows (docs/cli.md):

- **Errors.** An expected failure prints one or two lines to stderr, ``gato <command>: error:
  <what was wrong, the value, the fix>``, and exits 1; a bad command line exits 2. ``--debug`` (or
  ``GATO_DEBUG=1``) shows the traceback instead. Raise `UsageError` or `CommandError`, or any
  exception whose message says what to do.
- **Outputs.** ``--out`` names where results go. An ``--out`` that holds another command's files is
  refused unless ``--force`` (`check_out_dir`, `check_out_files`); rerunning the same command
  resumes; options changed since are refused unless the command's ``--allow-changes``
  (`check_unchanged`).
- **Streams.** Logs and progress bars (`progress`, tqdm) go to stderr (`log`); results go to files
  and, where documented, to stdout.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable

# The subcommands' helpers live in the bottom layer (envs.commandline); the console script uses
# the two exception types, and re-exports the helpers for the top layer's convenience only.
from envs.commandline import (  # noqa: F401
    CommandError,
    UsageError,
    error_message,
    log,
    progress,
    field_docs,
    parse,
    at_least,
    in_range,
    check_task,
    check_file,
    check_dir,
    check_writable_parent,
    out_kind,
    check_out_dir,
    check_out_files,
    changed_options,
    check_unchanged,
    absolute_path,
)

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    # name: (module:function, one-line help)
    "tasks": ("envs.cli:main", "list registered task ids"),
    "check-env": ("envs.checks:main", "run the env checks on tasks"),
    "rollout": ("eval.rollout:main", "roll out a policy on a task and save returns"),
    "score": ("eval.report:main", "print the expert-normalized table of rollout results"),
    "measure-references": ("eval.measure_references:main", "measure random/expert reference returns"),
    "experts": ("eval.experts:main", "every task's best measured expert against the published return"),
    "train-expert": ("eval.train_expert:main", "train an RL expert with stable-baselines3"),
    "generate": ("datasets_gen.suite:main", "record expert episodes into a dataset (--suite experts: every task)"),
    "info": ("datasets_gen.info:main", "print a JSON summary of a dataset"),
    "train": ("gato.train:main", "train a Gato model on datasets"),
    "eval": ("eval.evaluate:main", "evaluate a Gato checkpoint closed-loop"),
    "eval-language": ("eval.language:main", "captioning, VQA, text, grounding, matching and few-shot metrics of a checkpoint"),
    "caption": ("gato.language:caption_main", "caption an image with a trained checkpoint"),
    "ask": ("gato.language:ask_main", "answer a question about an image"),
    "ground": ("gato.language:ground_main", "find the box a phrase describes in an image"),
    "complete": ("gato.language:complete_main", "complete a text prompt"),
    "configs": ("gato.model:configs_main", "print the model configs and their parameter counts"),
    "demo": ("gato.demo:main", "the end-to-end demo: data, training, evaluation, report"),
    "release": ("gato.release:main", "train, evaluate and release the CPU model on every task with an expert"),
}

DEBUG_ENV = "GATO_DEBUG"
"""``GATO_DEBUG=1`` shows tracebacks (as ``--debug`` does)."""


# Exceptions whose message is meant for the user: printed without their type.
EXPECTED = (CommandError, ValueError, LookupError, OSError, ImportError)


# ----------------------------------------------------------------------------- the console script


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("gato-stack")
    except PackageNotFoundError:  # running from a source tree that was not pip-installed
        return "unknown"


def _usage() -> str:
    lines = ["usage: gato [--version] [--debug] <command> [options]", "", "commands:"]
    lines += [f"  {name:<20}{help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "`gato <command> --help` shows each command's options. --debug (or GATO_DEBUG=1) shows",
              "tracebacks. Logs and progress go to stderr, results to files and stdout."]
    return "\n".join(lines)


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def run_command(name: str, func: Callable[[list[str]], Any], argv: list[str], debug: bool = False) -> int:
    """Run one subcommand's ``main(argv)``, turning exceptions into the one error style.

    Returns the exit status: the command's own, 2 for a `UsageError`, 1 for any other failure,
    130 on Ctrl-C. With ``debug`` the exception propagates (the traceback shows).
    """
    prog = f"gato {name}"
    try:
        return int(func(argv) or 0)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place that formats every failure
        if debug:
            raise
        print(f"{prog}: error: {error_message(e)}", file=sys.stderr)
        if isinstance(e, UsageError):
            print(f"(`{prog} --help` lists the options)", file=sys.stderr)
            return 2
        if not isinstance(e, EXPECTED):
            print(f"({type(e).__name__}; rerun with --debug or {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_enabled()
    while argv and argv[0] in ("--debug", "--version", "-V"):
        if argv.pop(0) == "--debug":
            debug = True
        else:
            print(f"gato {version()}")
            return 0
    if "--debug" in argv:  # also accepted after the subcommand
        argv.remove("--debug")
        debug = True
    if debug:
        os.environ[DEBUG_ENV] = "1"  # worker processes and subprocesses inherit it
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        import difflib

        close = difflib.get_close_matches(name, SUBCOMMANDS, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        print(f"gato: error: unknown command {name!r}.{hint}\n(`gato --help` lists the commands)", file=sys.stderr)
        return 2
    target, _ = SUBCOMMANDS[name]
    if name == "generate" and _names_gato_policy(rest):  # the top layer fills the policies registry
        import gato.policy  # noqa: F401  (imports torch, so only when needed)
    module_name, func_name = target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    return run_command(name, func, rest, debug)


def _names_gato_policy(argv: list[str]) -> bool:
    """Whether ``--policy`` is ``gato`` or a run directory (a Gato model)."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--policy=") else (
            argv[i + 1] if arg == "--policy" and i + 1 < len(argv) else None)
        if value is not None and (value == "gato" or os.path.isdir(value)):
            return True
    return False


# Third-party import banners (the legacy gym's, minigrid's "Sampling rejected", ALE's) are kept
# away by `import envs` (envs/ecosystem.py), which every subcommand goes through.


if __name__ == "__main__":
    sys.exit(main())
