"""Generation and reader throughput (prints a Markdown table; ratios are measured in the same run).

    python benchmarks/bench_generate.py [--episodes-scale 1.0] [--out /tmp/bench_generate]

Per task, steps/s of
  raw env      `env.step` with uniform random actions, nothing else (the env's own speed),
  expert       the scripted expert acting through `policies.rollout` without recording,
  generate     `gato generate` with that expert: acting + recording + HDF5 shards (1 worker),
and ratios generate/expert (the cost of recording and writing; target >= 0.8) and generate/raw.
Then generate with 2 workers vs 1 (the scaling), and reader windows/s (random episode, random
32-step window, `EpisodeDataset.window`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Config:
    """Generation benchmark."""

    out: str = "/tmp/bench_generate"
    """scratch directory (deleted first)."""
    episodes_scale: float = 1.0
    """multiplies the episode counts."""
    window: int = 32
    """timesteps per reader window."""
    reads: int = 2000
    """windows read per reader measurement."""


TASKS = (("babyai-goto-red-ball", 256), ("metaworld-reach", 8), ("atari-breakout", 2))


def raw_env_speed(task: str, steps: int) -> float:
    import envs

    env = envs.make(task)
    env.reset(seed=0)
    env.action_space.seed(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    dt = time.perf_counter() - t0
    env.close()
    return steps / dt


def expert_speed(task: str, episodes: int) -> float:
    from policies.rollout import rollout

    r = rollout("expert", task, episodes, seed=0)
    return r.metadata["steps"] / r.metadata["wall_s"]


def generate_speed(task: str, episodes: int, out: str, workers: int) -> tuple[float, str]:
    from datasets_gen.generate import Config as G, generate

    shutil.rmtree(out, ignore_errors=True)
    shard = max(1, episodes // 4)
    t0 = time.perf_counter()
    meta = generate(G(task=task, policy="expert", episodes=episodes, shard_size=shard, out=out, workers=workers), "bench")
    return meta["steps_recorded"] / (time.perf_counter() - t0), out


def reader_speed(path: str, window: int, reads: int) -> float:
    from datasets_gen.reader import open_dataset

    ds = open_dataset(path, filtered=False)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(reads):
        i = int(rng.integers(len(ds)))
        n = ds.episode_length(i)
        w = min(window, n)
        s = int(rng.integers(0, n - w + 1))
        ds.window(i, s, s + w)
    return reads / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    import tyro

    cfg = tyro.cli(Config, args=argv)
    shutil.rmtree(cfg.out, ignore_errors=True)
    os.makedirs(cfg.out)
    rows, results = [], {}
    for task, episodes in TASKS:
        n = max(1, round(episodes * cfg.episodes_scale))
        exp = expert_speed(task, n)  # first: it also pays the imports, which generate then reuses
        gen, path = generate_speed(task, n, os.path.join(cfg.out, task), 1)
        raw = raw_env_speed(task, 2000)
        rd = reader_speed(path, cfg.window, cfg.reads)
        results[task] = dict(raw=raw, expert=exp, generate=gen, reader_windows_per_s=rd)
        rows.append(f"| {task} | {n} | {raw:,.0f} | {exp:,.0f} | {gen:,.0f} | {gen / exp:.2f} | {gen / raw:.2f} | {rd:,.0f} |")
    print("| task | episodes | raw env steps/s | expert steps/s | generate steps/s | generate/expert | generate/raw | reader windows/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))

    task, episodes = "babyai-goto-red-ball", max(8, round(512 * cfg.episodes_scale))
    one, _ = generate_speed(task, episodes, os.path.join(cfg.out, "w1"), 1)
    two, _ = generate_speed(task, episodes, os.path.join(cfg.out, "w2"), 2)
    results["scaling"] = dict(task=task, episodes=episodes, workers1=one, workers2=two)
    print(f"\n| workers | generate steps/s ({task}, {episodes} episodes) | speed-up |\n| --- | --- | --- |")
    print(f"| 1 | {one:,.0f} | 1.00 |\n| 2 | {two:,.0f} | {two / one:.2f} |")
    print("\n" + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
