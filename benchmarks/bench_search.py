"""Search experts: env steps/s and return against the planning budget, with the raw env step in the same run.

For each domain one task and a few budgets. Every row plays the same episode (seed ``--seed``) for
``--steps`` recorded steps and prints the recorded steps per second, milliseconds per step and the
return over those steps; the ``raw`` row steps the same wrapped env with random actions and no
planning (the cost the planner multiplies). A budget's ``sim steps/step`` is the simulator steps it
spends per recorded step: DMC ``samples * iterations * horizon * n_sub_steps`` MuJoCo steps, Atari
and Procgen ``(n_actions * rollouts + 1) * depth`` game steps.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/bench_search.py [--domains dmc atari procgen] [--steps 200]

Returns over a short prefix of an episode are a budget *curve*, not the task's score (that is
`eval.measure_search`, 10 full episodes, in eval/references.json and docs/experts.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from _common import write_json

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BUDGETS = {
    "dmc": ("dmc-cheetah-run", ["search:samples=16,horizon=15", "search:samples=32,horizon=30",
                                "search:samples=64,horizon=30", "search:samples=128,horizon=30",
                                "search:samples=64,horizon=30,iterations=2"]),
    "atari": ("atari-boxing", ["search:depth=2", "search:depth=5", "search:depth=10", "search:depth=20"]),
    "procgen": ("procgen-bigfish", ["search:depth=5", "search:depth=10", "search:depth=20",
                                    "search:depth=20,rollouts=2"]),
}


def sim_steps_per_step(policy: object, env: object) -> int:
    """Simulator steps the policy spends per recorded step (from its config)."""
    cfg = policy.cfg
    if hasattr(cfg, "samples"):
        return cfg.samples * cfg.iterations * cfg.horizon * max(1, policy.n_sub_steps // cfg.coarse)
    n = env.action_space.n
    return (n * cfg.rollouts + 1) * cfg.depth


def run(task: str, name: str, steps: int, seed: int) -> dict:
    import envs
    from policies import make_policy

    env = envs.make(task)
    pi = make_policy(name, task, [env])
    obs, _ = env.reset(seed=seed)
    state = pi.reseed(pi.initial_state(1, seed), [0], [seed])
    start, total, n = np.ones(1, bool), 0.0, 0
    t0 = time.perf_counter()
    for n in range(1, steps + 1):
        a, state = pi.act({k: np.asarray(v)[None] for k, v in obs.items()}, state, start)
        start[:] = False
        obs, r, term, trunc, _ = env.step(a[0])
        total += float(r)
        if term or trunc:
            break
    wall = time.perf_counter() - t0
    row = {"task": task, "policy": name, "steps": n, "return": round(total, 2), "steps_per_s": round(n / wall, 2),
           "ms_per_step": round(1000 * wall / n, 2), "sim_steps_per_step": int(sim_steps_per_step(pi, env))}
    env.close()
    return row


def run_raw(task: str, steps: int, seed: int) -> dict:
    import envs

    env = envs.make(task)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    total, n = 0.0, 0
    t0 = time.perf_counter()
    for n, a in enumerate(actions, 1):
        _, r, term, trunc, _ = env.step(a)
        total += float(r)
        if term or trunc:
            env.reset()
    wall = time.perf_counter() - t0
    env.close()
    return {"task": task, "policy": "raw (random actions, no planning)", "steps": n, "return": round(total, 2),
            "steps_per_s": round(n / wall, 1), "ms_per_step": round(1000 * wall / n, 4), "sim_steps_per_step": 1}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--domains", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    p.add_argument("--steps", type=int, default=200, help="recorded steps per row")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="", help="also write the rows here")
    a = p.parse_args(argv)
    rows = []
    print(f"| task | policy | steps | return | steps/s | ms/step | sim steps/step |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for d in a.domains:
        task, names = BUDGETS[d]
        for row in [run_raw(task, max(a.steps, 1000), a.seed)] + [run(task, n, a.steps, a.seed) for n in names]:
            rows.append(row)
            print(f"| {row['task']} | {row['policy']} | {row['steps']} | {row['return']} | {row['steps_per_s']} | "
                  f"{row['ms_per_step']} | {row['sim_steps_per_step']} |", flush=True)
    if a.json:
        write_json(a.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
