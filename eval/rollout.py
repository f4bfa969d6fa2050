"""`gato rollout`: roll out any policy on a task and save per-episode returns as JSON.

The loop itself is `policies.rollout` (data generation uses it too); this is its command line,
in the top layer so that it can build every policy by name, the Gato model included.

CLI::

    gato rollout --task babyai-goto-red-ball --policy expert --episodes 20 --seed 0 --out results.json
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from envs.commandline import at_least, changed_options, check_out_files, check_task, parse, progress
from policies.rollout import rollout, save_results

__all__ = ["RolloutConfig", "main"]


@dataclass
class RolloutConfig:
    """`gato rollout`: roll out a policy on a task and save per-episode returns as JSON."""

    task: str
    """Task id, e.g. babyai-goto-red-ball (`gato tasks` lists them)."""
    policy: str = "random"
    """`random`, `expert`, `gato` / a Gato run directory, or a path to a stable-baselines3 .zip checkpoint."""
    episodes: int = 10
    """Number of episodes; episode i resets with seed + i."""
    seed: int = 0
    """Seed of episode 0."""
    num_envs: int = 1
    """Envs stepped together in one process (one policy batch)."""
    workers: int = 1
    """Worker processes."""
    deterministic: bool = True
    """Greedy actions for stochastic policies."""
    max_steps: int | None = None
    """Optional cap on episode length (counted as truncation)."""
    out: str = "results.json"
    """Output JSON (`gato score` reads it); the config is saved inside it. An existing file from
    another rollout is refused unless --force; an identical rerun replaces its own file."""
    force: bool = False
    """Replace an existing --out file written with other options."""
    progress: bool = True
    """Show a progress bar (episodes) on stderr."""
    allow_pickle: bool = False
    """Load a --policy .zip that is neither pinned in the zoo nor written by gato on this account; SB3
    zips are pickles, so this executes code from the file."""


def _same_run(cfg: RolloutConfig) -> Callable[[Path], bool]:
    """Whether an existing results file was written by this very command (then rerunning may replace it)."""
    def same(path: Path) -> bool:
        try:
            stored = json.loads(path.read_text()).get("config", {})
        except (OSError, ValueError, AttributeError):
            return False
        return not changed_options(stored, asdict(cfg), ignore=("force", "progress", "workers", "num_envs", "allow_pickle"))
    return same


def main(argv: list[str] | None = None) -> int:
    cfg = parse(RolloutConfig, argv, "gato rollout")
    if cfg.policy == "gato" or Path(cfg.policy).is_dir():
        import gato.policy  # noqa: F401  (the top layer registers the "gato" policy by name; imports torch)
    check_task(cfg.task)
    for flag, value in (("--episodes", cfg.episodes), ("--num-envs", cfg.num_envs), ("--workers", cfg.workers),
                        ("--max-steps", cfg.max_steps)):
        at_least(value, 1, flag)
    check_out_files([cfg.out], force=cfg.force, same=_same_run(cfg))
    with progress(cfg.episodes, f"rollout {cfg.task}", cfg.progress, unit="episode") as bar:
        result = rollout(cfg.policy, cfg.task, cfg.episodes, cfg.seed, num_envs=cfg.num_envs, workers=cfg.workers,
                         deterministic=cfg.deterministic, max_steps=cfg.max_steps, on_episode=lambda _: bar.update(),
                         policy_kwargs={"allow_pickle": True} if cfg.allow_pickle else None)
    save_results(cfg.out, [result], config=asdict(cfg))
    sr = "" if result.success_rate is None else f", success {100 * result.success_rate:.0f}%"
    print(f"{cfg.task} {cfg.policy}: mean return {result.mean_return:.3f} over {cfg.episodes} episodes{sr} "
          f"({result.metadata['steps_per_s']:.0f} steps/s) -> {cfg.out}")
    return 0
