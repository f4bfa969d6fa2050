"""Rollout steps/s per domain: our envs + policy interface + rollout loop vs raw library stepping.

All three sides play the same episodes: episode ``i`` is reset with seed ``seed + i`` and steps with
the random policy's action stream for that episode (``policies.random._episode_rng(seed + i)``), up
to the same per-episode step cap, so raw and ours play identical trajectories (same levels, same
step counts, printed as a check). Each side is measured ``repeats`` times, interleaved, and the
best time is kept (the machine is shared). ``overhead = raw steps/s / ours steps/s`` (target
<= 1.2). A middle column steps the wrapped env alone (``envs.make`` + the same actions), which
splits the overhead into the env wrapper's part and the policy + rollout loop's part.

Ours: `envs.make(task)` (observation convention, action checks, rescaling, time limit) stepped by
`policies.rollout.rollout` with the `random` policy. Raw: the library's own env object, built by the
library's constructor with the settings `envs` uses and stepped directly (no gymnasium checker
wrappers, which `envs` drops too), seeded the library's way for the same episodes:

- atari: ``gym.make("ALE/Pong-v5", frameskip=4, repeat_action_probability=0.25,
  full_action_space=False, max_num_frames_per_episode=0).unwrapped``, ``reset(seed=s)``; returns the
  210x160 frame (no resize).
- babyai: ``gym.make("BabyAI-GoToRedBall-v0").unwrapped``, ``reset(seed=s)``; returns minigrid's dict.
- metaworld: the configured ``SawyerXYZEnv`` (``envs.make(...).unwrapped``), ``seed(s)`` + ``reset``.
- dmc: ``dm_control.suite.load("cheetah", "run")``, ``task._random = RandomState(s)`` + ``reset()``;
  returns the ``TimeStep`` with the observation dict (no flattening).
- procgen: ``procgen.ProcgenGym3Env(num=1, env_name="coinrun", distribution_mode="easy",
  num_threads=0, rand_seed=r)`` built for each episode (gym3's only way to choose the levels), with
  the ``rand_seed`` that ``envs`` derives from ``s``; ``act`` + ``observe`` per step.

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


def _actions(episode_seed: int, n: int | None = None, shape: tuple[int, ...] | None = None):
    """The random policy's action stream for one episode: ints in [0, n), or float32 in [-1, 1]^shape."""
    from policies.random import _episode_rng

    rng = _episode_rng(episode_seed)
    while True:
        if n is not None:
            yield int(rng.integers(n))
        else:
            yield rng.uniform(-1.0, 1.0, shape).astype(np.float32)


def _space_args(space) -> dict:
    return {"n": int(space.n)} if hasattr(space, "n") else {"shape": tuple(space.shape)}


def raw_runner(domain: str):
    """A function (episodes, cap, seed) -> steps that steps the raw library env (see module docstring)."""
    import gymnasium as gym

    if domain == "atari":
        import ale_py

        gym.register_envs(ale_py)
        env = gym.make("ALE/Pong-v5", frameskip=4, repeat_action_probability=0.25, full_action_space=False,
                       max_num_frames_per_episode=0).unwrapped
        return _gym_loop(env)
    if domain == "babyai":
        import minigrid  # noqa: F401  (registers BabyAI-*)

        return _gym_loop(gym.make("BabyAI-GoToRedBall-v0").unwrapped)
    if domain == "metaworld":
        import envs

        env = envs.make("metaworld-reach").unwrapped  # the Meta-World env itself, as envs configures it
        return _gym_loop(env, seed_fn=env.seed)  # Meta-World's reset ignores seed
    if domain == "dmc":
        from dm_control import suite

        dm = suite.load("cheetah", "run")
        shape = dm.action_spec().shape  # bounds are [-1, 1]: no rescaling

        def run_dmc(episodes, cap, seed):
            steps = 0
            for i in range(episodes):
                dm.task._random = np.random.RandomState(seed + i)
                ts, n, acts = dm.reset(), 0, _actions(seed + i, shape=shape)
                while not ts.last() and n < cap:
                    ts = dm.step(next(acts))
                    n += 1
                steps += n
            return steps

        return run_dmc
    if domain == "procgen":
        import contextlib
        import io

        with contextlib.redirect_stderr(io.StringIO()):  # gym 0.26's import banner
            from procgen import ProcgenGym3Env

        def run_procgen(episodes, cap, seed):
            steps = 0
            for i in range(episodes):
                rand_seed = int(np.random.default_rng(seed + i).integers(0, 2**31 - 1))  # as envs.procgen derives it
                pg = ProcgenGym3Env(num=1, env_name="coinrun", distribution_mode="easy", num_threads=0,
                                    rand_seed=rand_seed)
                n, acts = 0, _actions(seed + i, n=15)
                while n < cap:
                    pg.act(np.array([next(acts)]))
                    _, _, first = pg.observe()
                    n += 1
                    if first[0]:
                        break
                pg.close()
                steps += n
            return steps

        return run_procgen
    raise ValueError(f"unknown domain {domain!r}; choose from {list(CASES)}")


def _gym_loop(env, seed_fn=None):
    kw = _space_args(env.action_space)

    def run(episodes, cap, seed):
        steps = 0
        for i in range(episodes):
            if seed_fn is not None:
                seed_fn(seed + i)
            env.reset(seed=seed + i)
            acts = _actions(seed + i, **kw)
            for n in range(1, cap + 1):
                _, _, term, trunc, _ = env.step(next(acts))
                if term or trunc:
                    break
            steps += n
        return steps

    return run


def ours_runner(task_id: str):
    import envs
    from policies.rollout import rollout
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
        steps = {side: 0 for side in runners}
        for _ in range(cfg.repeats):
            for side, run in runners.items():
                t0 = time.perf_counter()
                steps[side] = run(episodes, cap, 0)
                best[side] = max(best[side], steps[side] / (time.perf_counter() - t0))
        rows.append((domain, task_id, steps["raw"], best["raw"], best["wrapped"], best["ours"]))
        print(f"{domain}: " + ", ".join(f"{k} {v:.0f} steps/s ({steps[k]} steps)" for k, v in best.items()), flush=True)
        if len(set(steps.values())) != 1:
            print(f"  warning: the sides took different step counts {steps}: not the same trajectories", flush=True)
    print("\n| domain | task | steps | raw steps/s | wrapped env steps/s | ours steps/s | overhead (raw/ours) | of which wrapper (raw/wrapped) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for domain, task_id, n, raw, wrapped, ours in rows:
        print(f"| {domain} | {task_id} | {n:,} | {raw:,.0f} | {wrapped:,.0f} | {ours:,.0f} | {raw / ours:.2f}x | {raw / wrapped:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
