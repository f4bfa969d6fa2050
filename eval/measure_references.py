"""Measure the project's own reference returns: random policy and scripted expert per task.

Writes each task's ``random`` and ``expert`` entries into `eval/references.json` as soon as they
are measured (so an interrupted run resumes where it stopped), with mean return, success rate,
episode count, seeds and the exact command. Used for BabyAI (bot) and Meta-World (scripted
policies); works on any task with an expert.

    nice -n 10 gato measure-references --domain babyai --episodes 20 --workers 2
"""

from __future__ import annotations

import datetime
import shlex
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from eval.references import REFERENCES_PATH, _read, update_references
from policies.rollout import rollout

EXPERT_KIND = {"babyai": "scripted: minigrid.utils.baby_ai_bot.BabyAIBot",
               "metaworld": "scripted: metaworld.policies Sawyer<Task>V3Policy"}


@dataclass
class MeasureConfig:
    """Measure random and expert reference returns and write them into eval/references.json."""

    domain: str | None = None
    """Measure every task of this domain (babyai, metaworld, ...)."""
    tasks: tuple[str, ...] = ()
    """Or these task ids."""
    episodes: int = 20
    """Episodes per task and policy; episode i resets with seed + i."""
    seed: int = 0
    """Seed of episode 0."""
    num_envs: int = 4
    """Envs per process (one policy batch)."""
    workers: int = 1
    """Processes."""
    policies: tuple[str, ...] = ("random", "expert")
    """Which references to measure."""
    reverse: bool = False
    """Go through the tasks in reverse order: a second process with --reverse splits the work (both skip
    tasks the other already wrote)."""
    resume: bool = True
    """Skip a (task, policy) already measured with the same episodes and seed."""
    references: str = REFERENCES_PATH
    """The reference file to update."""


def _already(cfg: MeasureConfig, task_id: str, policy: str) -> bool:
    entry = _read(cfg.references).get("tasks", {}).get(task_id, {}).get(policy, {})
    return entry.get("episodes") == cfg.episodes and entry.get("seed") == cfg.seed and "measured" in entry.get("source", "")


def main(argv: list[str] | None = None) -> int:
    import envs
    from envs import domain_of
    from envs.commandline import UsageError, at_least, check_file, check_task, parse

    argv = sys.argv[1:] if argv is None else argv
    cfg = parse(MeasureConfig, argv, "gato measure-references")
    if bool(cfg.tasks) == (cfg.domain is not None):
        raise UsageError("give either --domain or --tasks")
    for task_id in cfg.tasks:
        check_task(task_id, "--tasks")
    if cfg.domain is not None and cfg.domain not in envs.DOMAINS:
        raise UsageError(f"--domain {cfg.domain}: unknown; the domains are {', '.join(envs.DOMAINS)}")
    for flag, value in (("--episodes", cfg.episodes), ("--num-envs", cfg.num_envs), ("--workers", cfg.workers)):
        at_least(value, 1, flag)
    check_file(cfg.references, "--references", "reference file")
    tasks = list(cfg.tasks) or envs.task_ids(cfg.domain)
    if cfg.reverse:
        tasks = tasks[::-1]
    command = "gato measure-references " + " ".join(shlex.quote(a) for a in argv)
    date = datetime.date.today().isoformat()
    for task_id in tasks:
        domain = domain_of(task_id)
        for policy in cfg.policies:
            if cfg.resume and _already(cfg, task_id, policy):
                continue
            t0 = time.perf_counter()
            r = rollout(policy, task_id, cfg.episodes, cfg.seed, num_envs=cfg.num_envs, workers=cfg.workers)
            entry = {
                "return": round(r.mean_return, 4), "std": round(float(np.std(r.returns)), 4),
                "success_rate": r.success_rate, "mean_length": round(float(np.mean(r.lengths)), 1),
                "episodes": cfg.episodes, "seed": cfg.seed,
                "kind": "uniform random" if policy == "random" else EXPERT_KIND.get(domain, policy),
                "source": f"measured {date}: {command} (seeds {cfg.seed}..{cfg.seed + cfg.episodes - 1})",
            }
            update_references({task_id: {policy: entry}}, cfg.references)
            sr = "-" if r.success_rate is None else f"{100 * r.success_rate:.0f}%"
            print(f"{task_id:40s} {policy:7s} return {r.mean_return:9.3f} success {sr:>5s} "
                  f"({time.perf_counter() - t0:.1f}s, {r.metadata['steps_per_s']:.0f} steps/s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
