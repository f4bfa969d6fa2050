"""The demo datasets in one command: scripted BabyAI and Meta-World experts, the DMC zoo, RAM-scripted Atari.

    python -m datasets_gen.build_demo [--out data/demo-datasets] [--scale 1.0] [--workers 1]
    gato generate --suite demo          # the same

Each entry is one `gato generate` run into ``<out>/<task>``; rerunning resumes/skips finished ones.
DMC entries are the tasks that have a committed zoo expert (`policies.sb3.zoo_tasks`).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass

from datasets_gen.generate import Config as GenerateConfig
from datasets_gen.generate import generate
from datasets_gen.info import summary

# (task, episodes at scale 1, shard size). Episode lengths: BabyAI ~10 steps, Meta-World 500,
# DMC 1000, Breakout ~1,000 and Pong ~4,000 (80x80 frames).
DEMO: tuple[tuple[str, int, int], ...] = (
    ("babyai-goto-red-ball", 128, 32),
    ("babyai-goto-local", 64, 32),
    ("babyai-pickup-loc", 64, 32),
    ("metaworld-reach", 8, 4),
    ("metaworld-push", 8, 4),
    ("metaworld-button-press", 8, 4),
    ("atari-breakout", 4, 2),
    ("atari-pong", 2, 1),
)
DMC_EPISODES = 4


@dataclass
class Config:
    """Build the demo datasets."""

    suite: str = "demo"
    """only ``demo`` exists."""
    out: str = "data/demo-datasets"
    """parent directory: one dataset per task in ``<out>/<task>`` (``<out>-x<scale>`` when scale != 1)."""
    scale: float = 1.0
    """multiplies every episode count (at least 1 episode each)."""
    workers: int = 1
    """processes per dataset."""


def entries(scale: float = 1.0) -> list[tuple[str, int, int]]:
    """The demo's (task, episodes, shard_size), with the zoo's DMC tasks."""
    from policies.sb3 import zoo_tasks

    rows = list(DEMO) + [(t, DMC_EPISODES, 2) for t in zoo_tasks() if t.startswith("dmc-")]
    return [(t, max(1, round(n * scale)), s) for t, n, s in rows]


def main(argv: list[str] | None = None) -> int:
    import tyro

    cfg = tyro.cli(Config, args=list(sys.argv[1:] if argv is None else argv))
    if cfg.suite != "demo":
        raise ValueError(f"unknown suite {cfg.suite!r}; the only suite is 'demo'")
    print(cfg)
    out = cfg.out if cfg.scale == 1.0 else f"{cfg.out}-x{cfg.scale:g}"
    t0 = time.time()
    for task, episodes, shard in entries(cfg.scale):
        gen = GenerateConfig(task=task, policy="expert", episodes=episodes, shard_size=shard,
                             out=f"{out}/{task}", workers=cfg.workers)
        command = (f"gato generate --task {task} --policy expert --episodes {episodes} --shard-size {shard} "
                   f"--out {gen.out} --workers {cfg.workers}")
        t = time.time()
        meta = generate(gen, command)
        print(json.dumps({**summary(gen.out, meta), "seconds": round(time.time() - t, 1)}), flush=True)
    print(f"demo datasets in {out}: {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
