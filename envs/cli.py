"""`gato tasks [--domain D] [--tag TAG]`: print registered task ids, one per line."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import envs


@dataclass
class TasksConfig:
    """`gato tasks`: list registered task ids, one per line."""

    domain: str | None = None
    """Only this domain: atari, dmc, babyai, metaworld or procgen."""
    tag: str | None = None
    """Only tasks with this tag (e.g. pixels, state, atari57, mt1)."""
    counts: bool = False
    """Print the number of tasks per domain instead of the ids."""


def main(argv: list[str] | None = None) -> int:
    from envs.commandline import UsageError, parse

    cfg = parse(TasksConfig, argv, "gato tasks")
    try:
        ids = envs.task_ids(cfg.domain, tag=cfg.tag)
    except ValueError as e:
        raise UsageError(f"--domain {cfg.domain}: {e}") from None
    if not ids:
        raise UsageError(f"no task has --tag {cfg.tag!r}" + (f" in --domain {cfg.domain}" if cfg.domain else "")
                         + "; tags are e.g. pixels, state, atari57, mt1")
    if cfg.counts:
        for domain in envs.DOMAINS:
            print(f"{domain}\t{sum(envs.task_spec(t).domain == domain for t in ids)}")
        print(f"total\t{len(ids)}")
    else:
        try:
            print("\n".join(ids))
        except BrokenPipeError:  # `gato tasks | head`
            sys.stderr.close()
    return 0
