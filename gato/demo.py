"""`gato demo` (first version): scripted experts and the random policy on a small suite, then the table.

Rolls out ``random`` and ``expert`` on `DEFAULT_SUITE` and prints the expert-normalized table
(`eval.report`); writes report.json / report.md / report.png into ``--out-dir``. Tasks whose
expert does not exist yet (no Atari RAM expert or SB3 checkpoint) are skipped with a note. A later
stage replaces this with the full pipeline (data, training, Gato evaluation); `run_suite` and the
report code are meant to be reused by it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass

from eval.rollout import RolloutResult, rollout, save_results

# Small and fast on 2 CPU cores: two BabyAI levels, two Meta-World tasks, and tasks whose expert
# comes from other parts of the stack (skipped when that expert is not available).
DEFAULT_SUITE: tuple[str, ...] = (
    "babyai-goto-red-ball",
    "babyai-pickup-loc",
    "metaworld-reach",
    "metaworld-button-press",
    "atari-pong",
    "dmc-cartpole-swingup",
)


def run_suite(
    tasks: tuple[str, ...] = DEFAULT_SUITE,
    policies: tuple[str, ...] = ("random", "expert"),
    episodes: int = 5,
    seed: int = 1000,
    num_envs: int = 1,
    workers: int = 1,
    max_steps: int | None = None,
    log=print,
) -> list[RolloutResult]:
    """Roll out each policy on each task; skip (and log) a policy that does not exist for a task."""
    from policies import NoExpertError

    results = []
    for task_id in tasks:
        for policy in policies:
            t0 = time.perf_counter()
            try:
                r = rollout(policy, task_id, episodes, seed, num_envs=num_envs, workers=workers, max_steps=max_steps)
            except NoExpertError as e:
                log(f"skip {task_id} {policy}: {str(e).split(':')[0]}")
                continue
            sr = "" if r.success_rate is None else f", success {100 * r.success_rate:.0f}%"
            log(f"{task_id:28s} {policy:7s} mean return {r.mean_return:9.3f}{sr} ({time.perf_counter() - t0:.1f}s)")
            results.append(r)
    return results


@dataclass
class DemoConfig:
    """`gato demo`: scripted experts and random on a small suite, then the expert-normalized table."""

    tasks: tuple[str, ...] = DEFAULT_SUITE
    """Task ids of the suite."""
    episodes: int = 5
    """Episodes per task and policy."""
    seed: int = 1000
    """Seed of episode 0 (distinct from the seeds that measured the references: 0..19)."""
    num_envs: int = 1
    """Envs per process."""
    max_steps: int | None = None
    """Optional cap on episode length."""
    out_dir: str = "runs/demo"
    """Where results.json and the report files go."""


def main(argv: list[str] | None = None) -> int:
    import tyro

    from eval.report import build_report, format_domain_table, format_task_table, write_report

    cfg = tyro.cli(DemoConfig, args=list(argv or []))
    print(cfg)
    os.makedirs(cfg.out_dir, exist_ok=True)
    with open(os.path.join(cfg.out_dir, "config.json"), "w") as f:
        json.dump(asdict(cfg), f, indent=1)
    t0 = time.perf_counter()
    results = run_suite(cfg.tasks, episodes=cfg.episodes, seed=cfg.seed, num_envs=cfg.num_envs, max_steps=cfg.max_steps)
    save_results(os.path.join(cfg.out_dir, "results.json"), results, config=asdict(cfg))
    report = build_report(results)
    print()
    print(format_domain_table(report))
    print()
    print(format_task_table(report))
    paths = write_report(report, cfg.out_dir)
    print(f"\nwrote {', '.join(paths.values())} in {time.perf_counter() - t0:.0f}s")
    return 0
