"""`gato rollout`: roll out any policy on a task and save per-episode returns as JSON.

The loop itself is `policies.rollout` (data generation uses it too); this is its command line,
in the top layer so that it can build every policy by name, the Gato model included.

CLI::

    gato rollout --task babyai-goto-red-ball --policy expert --episodes 20 --seed 0 --out results.json
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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
    """Output JSON (`gato score` reads it); the config is saved inside it."""


def main(argv: list[str] | None = None) -> int:
    import tyro

    import gato.policy  # noqa: F401  (the top layer registers the "gato" policy by name)

    cfg = tyro.cli(RolloutConfig, args=argv)
    print(cfg)
    result = rollout(cfg.policy, cfg.task, cfg.episodes, cfg.seed, num_envs=cfg.num_envs, workers=cfg.workers,
                     deterministic=cfg.deterministic, max_steps=cfg.max_steps)
    save_results(cfg.out, [result], config=asdict(cfg))
    sr = "" if result.success_rate is None else f", success {100 * result.success_rate:.0f}%"
    print(f"{cfg.task} {cfg.policy}: mean return {result.mean_return:.3f} over {cfg.episodes} episodes{sr} "
          f"({result.metadata['steps_per_s']:.0f} steps/s) -> {cfg.out}")
    return 0
