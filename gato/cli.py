"""The `gato` console script: one entry point, one subcommand per job.

Each subcommand lives in the module that owns the job and exposes ``main(argv)``; modules are
imported lazily so that `gato tasks` does not pay for importing torch.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    # name: (module:function, one-line help)
    "tasks": ("envs.cli:main", "list registered task ids"),
    "check-env": ("envs.checks:main", "run the env checks on tasks"),
    "rollout": ("eval.rollout:main", "roll out a policy on a task and save returns"),
    "score": ("eval.report:main", "print the expert-normalized table of rollout results"),
    "train-expert": ("datasets_gen.train_expert:main", "train an RL expert with stable-baselines3"),
    "generate": ("datasets_gen.generate:main", "record expert episodes into a dataset"),
    "info": ("datasets_gen.info:main", "print a JSON summary of a dataset"),
    "train": ("gato.train:main", "train a Gato model on datasets"),
    "eval": ("eval.evaluate:main", "evaluate a Gato checkpoint closed-loop"),
    "demo": ("gato.demo:main", "the end-to-end demo: data, training, evaluation, report"),
    "caption": ("gato.language:caption_main", "caption an image with a trained checkpoint"),
    "ask": ("gato.language:ask_main", "answer a question about an image"),
    "complete": ("gato.language:complete_main", "complete a text prompt"),
}


def _usage() -> str:
    lines = ["usage: gato <command> [options]", "", "commands:"]
    lines += [f"  {name:<14}{help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "`gato <command> --help` shows each command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        import difflib

        close = difflib.get_close_matches(name, SUBCOMMANDS, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        print(f"gato: unknown command {name!r}.{hint}\n\n{_usage()}", file=sys.stderr)
        return 2
    target, _ = SUBCOMMANDS[name]
    if name == "generate":  # `--policy gato` / a run directory: the top layer fills the policies registry
        import gato.policy  # noqa: F401
    module_name, func_name = target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    result = func(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
