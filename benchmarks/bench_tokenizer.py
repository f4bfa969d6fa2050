"""Tokenizer throughput: timesteps and slots tokenized per second, one task per domain.

Synthetic episodes with the real observation shapes (envs/convention.py, docs/envs.md):

| domain    | task                 | observation                          | action      |
| --------- | -------------------- | ------------------------------------ | ----------- |
| atari     | atari-pong           | image 80x80x3                        | Discrete(6) |
| dmc       | dmc-cheetah-run      | continuous 17                        | Box(6)      |
| babyai    | babyai-goto-red-ball | discrete 148 + text mission          | Discrete(7) |
| metaworld | metaworld-pick-place | continuous 39                        | Box(4)      |
| procgen   | procgen-coinrun      | image 64x64x3                        | Discrete(15)|

Columns:
- ``episode ts/s``: `episode_to_slots` on whole episodes (vectorized over timesteps).
- ``step ts/s``: `encode_observation` + `action_slots` one timestep at a time (what a
  closed-loop policy does); ``vec/step`` is the ratio of the two, measured in the same run.
All rates are per CPU-second of one thread (`time.process_time`).

- ``sampler slots/s``: `SequenceSampler.batch` (window cut, prompt conditioning, tokenization,
  collate into a `TokenBatch`), in padded slots per second, with ``L = 1024``.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_tokenizer.py`` (``--quick`` for a
short run).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from envs.convention import Episode
from gato import sequence as sq


@dataclass
class Task:
    task_id: str
    image: tuple[int, int, int] | None = None
    continuous: int = 0
    discrete: int = 0
    text: bool = False
    discrete_actions: int = 0  # n of Discrete(n); 0 for Box
    box_actions: int = 0


TASKS = [
    Task("atari-pong", image=(80, 80, 3), discrete_actions=6),
    Task("dmc-cheetah-run", continuous=17, box_actions=6),
    Task("babyai-goto-red-ball", discrete=148, text=True, discrete_actions=7),
    Task("metaworld-pick-place", continuous=39, box_actions=4),
    Task("procgen-coinrun", image=(64, 64, 3), discrete_actions=15),
]


def synthetic_episode(task: Task, length: int, rng: np.random.Generator) -> Episode:
    obs: dict = {}
    if task.image:
        obs["image"] = rng.integers(0, 256, (length, *task.image), dtype=np.uint8)
    if task.continuous:
        obs["continuous"] = rng.normal(0, 3, (length, task.continuous)).astype(np.float32)
    if task.discrete:
        obs["discrete"] = rng.integers(0, 11, (length, task.discrete))
    if task.text:
        obs["text"] = ["go to the red ball"] * length
    if task.discrete_actions:
        actions = rng.integers(0, task.discrete_actions, length)
    else:
        actions = rng.uniform(-1, 1, (length, task.box_actions)).astype(np.float32)
    z = np.zeros(length)
    return Episode(task.task_id, obs, actions, z.astype(np.float32), z.astype(bool), z.astype(bool))


def timed(fn, min_seconds: float) -> tuple[float, int]:
    """(CPU seconds per call, calls) over at least ``min_seconds``, after one warm-up call.

    CPU time of this process (single-threaded), not wall time, so that a machine shared with
    other jobs still gives comparable numbers.
    """
    fn()
    n, start = 0, time.process_time()
    while True:
        fn()
        n += 1
        elapsed = time.process_time() - start
        if elapsed >= min_seconds:
            return elapsed / n, n


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    seconds = 0.3 if quick else 1.5
    length, batch = 200, 16 if quick else 32
    rows = []
    for task in TASKS:
        eps = [synthetic_episode(task, length, rng) for _ in range(4)]
        slots = sq.episode_to_slots(eps[0])
        per_ep, _ = timed(lambda: sq.episode_to_slots(eps[0]), seconds)
        ep_ts, ep_slots = length / per_ep, len(slots) / per_ep

        steps = 50
        obs_keys = list(eps[0].observations)

        def stepwise():
            for t in range(steps):
                obs = {k: eps[0].observations[k][t] for k in obs_keys}
                sq.encode_observation(obs, task_id=task.task_id)
                sq.action_slots(sq.encode_action(eps[0].actions[t]))

        per_steps, _ = timed(stepwise, seconds)
        step_ts = steps / per_steps

        sampler = sq.SequenceSampler([eps], sq.SamplerConfig(sequence_length=1024, seed=0))
        per_batch, _ = timed(lambda: sampler.batch(batch), seconds)
        sampler_slots = batch * 1024 / per_batch
        rows.append((task.task_id, len(slots) // length, ep_ts, ep_slots, step_ts, ep_ts / step_ts, sampler_slots))

    print(f"tokenizer throughput ({'quick' if quick else 'full'}; episodes of {length} steps; "
          f"sampler batches of {batch} x 1024 slots; per CPU-second, 1 thread)")
    head = ("task", "slots/ts", "episode ts/s", "episode slots/s", "step ts/s", "vec/step", "sampler slots/s")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:,.0f} | {r[3]:,.0f} | {r[4]:,.0f} | {r[5]:.0f}x | {r[6]:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
