"""Rollout steps/s per domain: our envs + policy interface + rollout loop vs raw library stepping.

Both sides take uniformly random actions for the same episodes (same count, same per-episode step
cap), in the same process and run; each side is measured ``repeats`` times, interleaved, and the
best time is kept (the machine is shared). ``overhead = raw steps/s / ours steps/s`` (target <= 1.2).
A middle column steps the wrapped env alone (``envs.make`` + ``action_space.sample()``), which splits
the overhead into the env wrapper's part and the policy + rollout loop's part.

Ours: `envs.make(task)` (observation convention, action checks, rescaling, time limit) stepped by
`eval.rollout.rollout` with the `random` policy. Raw: the library env as users of that library
would step it (``gym.make("ALE/Pong-v5")``, ``gym.make("BabyAI-GoToRedBall-v0")``, the Meta-World
env, ``dm_control.suite.load``, ``procgen.ProcgenGym3Env``).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_rollout.py [--domains babyai metaworld]
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# domain: (our task id, episodes, per-episode step cap)
CASES = {
    "atari": ("atari-pong", 2, 500),
    "babyai": ("babyai-goto-red-ball", 40, 64),
    "metaworld": ("metaworld-reach", 4, 500),
    "dmc": ("dmc-cheetah-run", 2, 1000),
    "procgen": ("procgen-coinrun", 5, 400),
}


def raw_runner(domain: str):
    """A function (episodes, cap, seed) -> steps that steps the raw library env with random actions."""
    if domain in ("atari", "babyai"):
        import gymnasium as gym

        if domain == "atari":
            import ale_py

            gym.register_envs(ale_py)
            env = gym.make("ALE/Pong-v5")
        else:
            import minigrid  # noqa: F401  (registers BabyAI-*)

            env = gym.make("BabyAI-GoToRedBall-v0")
        return _gym_loop(env)
    if domain == "metaworld":
        import envs

        return _gym_loop(envs.make("metaworld-reach").unwrapped)  # the Meta-World env itself, as envs builds it
    if domain == "dmc":
        from dm_control import suite

        dm = suite.load("cheetah", "run", task_kwargs={"random": 0})
        spec = dm.action_spec()

        def run_dmc(episodes, cap, seed):
            rng, steps = np.random.default_rng(seed), 0
            for _ in range(episodes):
                ts, n = dm.reset(), 0
                while not ts.last() and n < cap:
                    ts = dm.step(rng.uniform(spec.minimum, spec.maximum))
                    n += 1
                steps += n
            return steps

        return run_dmc
    if domain == "procgen":
        from procgen import ProcgenGym3Env

        pg = ProcgenGym3Env(num=1, env_name="coinrun", distribution_mode="easy", num_threads=0)  # stepping in act(), as envs does

        def run_procgen(episodes, cap, seed):
            rng, steps = np.random.default_rng(seed), 0
            for _ in range(episodes):
                n = 0
                while n < cap:
                    pg.act(rng.integers(15, size=1))
                    _, _, first = pg.observe()
                    n += 1
                    if first[0]:
                        break
                steps += n
            return steps

        return run_procgen
    raise ValueError(f"unknown domain {domain!r}; choose from {list(CASES)}")


def _gym_loop(env):
    def run(episodes, cap, seed):
        env.action_space.seed(seed)
        steps = 0
        for i in range(episodes):
            env.reset(seed=seed + i)
            for n in range(1, cap + 1):
                _, _, term, trunc, _ = env.step(env.action_space.sample())
                if term or trunc:
                    break
            steps += n
        return steps

    return run


def ours_runner(task_id: str):
    import envs
    from eval.rollout import rollout
    from policies import make_policy

    env = envs.make(task_id)
    policy = make_policy("random", task_id, envs=[env])

    def run(episodes, cap, seed):
        r = rollout(policy, task_id, episodes, seed, envs=[env], max_steps=cap)
        return int(sum(r.lengths))

    return run


@dataclass
class BenchConfig:
    """Rollout steps/s, ours vs raw library env, per domain."""

    domains: tuple[str, ...] = tuple(CASES)
    """Domains to measure."""
    repeats: int = 2
    """Interleaved repeats per side; the best is kept."""
    scale: float = 1.0
    """Multiply the episode counts (longer, steadier measurements)."""


def main(argv: list[str] | None = None) -> int:
    import tyro

    cfg = tyro.cli(BenchConfig, args=sys.argv[1:] if argv is None else argv)
    print(cfg)
    rows = []
    for domain in cfg.domains:
        task_id, episodes, cap = CASES[domain]
        episodes = max(1, int(round(episodes * cfg.scale)))
        import envs

        runners = {"raw": raw_runner(domain), "wrapped": _gym_loop(envs.make(task_id)), "ours": ours_runner(task_id)}
        for run in runners.values():
            run(1, 20, 0)  # warm up (first reset, lazy imports)
        best = {side: 0.0 for side in runners}
        for _ in range(cfg.repeats):
            for side, run in runners.items():
                t0 = time.perf_counter()
                steps = run(episodes, cap, 0)
                best[side] = max(best[side], steps / (time.perf_counter() - t0))
        rows.append((domain, task_id, best["raw"], best["wrapped"], best["ours"]))
        print(f"{domain}: " + ", ".join(f"{k} {v:.0f} steps/s" for k, v in best.items()), flush=True)
    print("\n| domain | task | raw steps/s | wrapped env steps/s | ours steps/s | overhead (raw/ours) | of which wrapper (raw/wrapped) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for domain, task_id, raw, wrapped, ours in rows:
        print(f"| {domain} | {task_id} | {raw:,.0f} | {wrapped:,.0f} | {ours:,.0f} | {raw / ours:.2f}x | {raw / wrapped:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
