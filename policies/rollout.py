"""Roll out any policy on any task: N episodes, seeds ``seed + i``, batched over envs and processes.

The loop steps a plain list of wrapped envs itself (no vector-env autoreset): when env ``j``
finishes an episode it is reset with the next pending episode's seed, and the policy's per-env
state restarts through ``episode_start`` (and `Policy.reseed` for stochastic policies). So episode
``i`` is the same whatever ``num_envs`` and ``workers`` are: the results are a function of
(policy, task, seed) only.

It lives in `policies` so that data generation (`datasets_gen.generate`) and evaluation
(`eval`) both use it; the command line (`gato rollout`) is `eval.rollout`.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from envs.atomic import atomic_write_json
from envs.convention import TEXT, Episode
from envs.registry import domain_of
from policies import Policy, import_policy_modules, make_policy, registered_policy_modules

EnvFactory = Callable[..., Any]  # (task_id, **options) -> gymnasium.Env; must be picklable for workers


def perturb_action(action: Any, space: Any, noise: float, rng: np.random.Generator) -> Any:
    """The action the env executes under DART noise injection (Laskey et al. 2017).

    Box: ``action + N(0, (noise * (high - low) / 2)^2)`` per dimension, clipped to the box.
    Discrete: a uniform random action with probability ``noise``, else ``action``.
    The caller records the policy's own ``action`` as the label: the data then covers the states
    a slightly wrong imitator drifts into, each labelled with the expert's correction.
    """
    import gymnasium as gym

    if isinstance(space, gym.spaces.Box):
        a = np.asarray(action, dtype=space.dtype)
        scale = noise * (space.high - space.low) / 2.0
        return np.clip(a + rng.normal(0.0, 1.0, a.shape) * scale, space.low, space.high).astype(space.dtype)
    if isinstance(space, gym.spaces.Discrete):
        if rng.random() < noise:
            return np.int64(space.start + rng.integers(space.n))
        return action
    raise ValueError(f"action_noise supports Box and Discrete action spaces, not {space}; use action_noise=0")


@dataclass
class RolloutResult:
    """Per-episode outcomes of one policy on one task, in episode order.

    Attributes:
        task_id: registry id.
        policy: policy name (``"random"``, ``"expert"``, a checkpoint path, ...).
        seeds: (E,) reset seed of each episode (``seed + i``).
        returns: (E,) undiscounted episode returns.
        lengths: (E,) steps per episode.
        successes: (E,) per episode, whether it succeeded (Meta-World ``info["success"]`` at any
            step; BabyAI: terminated with positive reward); None where the task has no notion of it.
        metadata: num_envs, workers, wall_s, steps_per_s, ...
        episodes: the recorded `Episode`s when ``record=True`` (never written to JSON).
    """

    task_id: str
    policy: str
    seeds: list[int]
    returns: list[float]
    lengths: list[int]
    successes: list[bool] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    episodes: list[Episode] | None = None

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def success_rate(self) -> float | None:
        return None if self.successes is None else float(np.mean(self.successes))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("episodes")
        d["mean_return"] = self.mean_return
        d["success_rate"] = self.success_rate
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RolloutResult":
        return cls(
            task_id=d["task_id"], policy=d["policy"], seeds=[int(s) for s in d["seeds"]],
            returns=[float(r) for r in d["returns"]], lengths=[int(n) for n in d["lengths"]],
            successes=None if d.get("successes") is None else [bool(s) for s in d["successes"]],
            metadata=dict(d.get("metadata", {})),
        )


def save_results(path: str, results: Sequence[RolloutResult], config: dict[str, Any] | None = None) -> None:
    """Write ``{"config": ..., "results": [...]}`` atomically."""
    atomic_write_json(path, {"config": config or {}, "results": [r.to_dict() for r in results]})


def load_results(path: str) -> list[RolloutResult]:
    """Read a file written by `save_results` (or a bare list / single result dict)."""
    with open(path) as f:
        payload = json.load(f)
    if isinstance(payload, dict) and "results" in payload:
        payload = payload["results"]
    if isinstance(payload, dict):
        payload = [payload]
    return [RolloutResult.from_dict(d) for d in payload]


def _default_make_env(task_id: str, **options: Any):
    import envs

    return envs.make(task_id, **options)


def _batch(obs_list: list[dict[str, Any]]) -> dict[str, Any]:
    """N single-env observations -> one batched dict (text stays a list of str)."""
    out: dict[str, Any] = {}
    for k in obs_list[0]:
        vals = [o[k] for o in obs_list]
        if k == TEXT:
            out[k] = list(vals)
        else:  # (N, ...); one env: a view, no copy
            out[k] = np.asarray(vals[0])[None] if len(vals) == 1 else np.stack(vals)
    return out


class _Recorder:
    """Appends one env's steps; `finish` stacks them into an `Episode` (one copy per key)."""

    def __init__(self) -> None:
        self.obs: list[dict[str, Any]] = []
        self.actions: list[Any] = []
        self.rewards: list[float] = []
        self.terms: list[bool] = []
        self.truncs: list[bool] = []

    def add(self, obs: dict[str, Any], action: Any, reward: float, term: bool, trunc: bool) -> None:
        self.obs.append(obs)
        self.actions.append(action)
        self.rewards.append(reward)
        self.terms.append(term)
        self.truncs.append(trunc)

    def finish(self, task_id: str, metadata: dict[str, Any]) -> Episode:
        observations = {
            k: [o[k] for o in self.obs] if k == TEXT else np.stack([o[k] for o in self.obs])  # (T, ...)
            for k in self.obs[0]
        }
        return Episode(
            task_id, observations, np.stack(self.actions), np.asarray(self.rewards, np.float32),
            np.asarray(self.terms, bool), np.asarray(self.truncs, bool), metadata,
        )


def rollout_episodes(
    policy: Policy | str,
    task_id: str,
    episode_indices: Sequence[int],
    seed: int,
    num_envs: int = 1,
    record: bool = False,
    deterministic: bool = True,
    env_options: dict[str, Any] | None = None,
    make_env: EnvFactory | None = None,
    max_steps: int | None = None,
    envs: Sequence[Any] | None = None,
    policy_modules: Sequence[str] = (),
    on_episode: Callable[[dict[str, Any]], None] | None = None,
    policy_kwargs: dict[str, Any] | None = None,
    action_noise: float = 0.0,
) -> list[dict[str, Any]]:
    """The rollout loop in one process: the given episodes on ``num_envs`` envs.

    ``action_noise`` > 0: the env executes `perturb_action` of the policy's action (seeded per
    episode), the recorder keeps the policy's action, and the return is the executed one's.

    ``policy_modules`` are imported first (a worker process refills the `policies` registry).
    ``on_episode(row)`` is called as each episode ends (a progress bar's hook).
    ``policy_kwargs`` go to `make_policy` when ``policy`` is a name (e.g. ``allow_pickle=True``).
    Returns one dict per episode (index, seed, return, length, success, episode), in index order.
    """
    import_policy_modules(policy_modules)
    make_env = make_env or _default_make_env
    n = min(num_envs, len(episode_indices))
    if n == 0:
        return []
    own_envs = envs is None
    env_list = list(envs) if envs is not None else [make_env(task_id, **(env_options or {})) for _ in range(n)]
    n = len(env_list)
    is_babyai = domain_of(task_id) == "babyai"
    pi = make_policy(policy, task_id, envs=env_list, **(policy_kwargs or {})) if isinstance(policy, str) else policy
    policy_name = policy if isinstance(policy, str) else getattr(pi, "name", type(pi).__name__)

    pending = deque(int(i) for i in episode_indices)
    slot_episode: list[int | None] = [None] * n
    obs: list[dict[str, Any] | None] = [None] * n
    ep_return = [0.0] * n
    ep_len = [0] * n
    ep_success: list[bool | None] = [None] * n
    recorders: list[_Recorder | None] = [None] * n
    noise_rngs: list[np.random.Generator | None] = [None] * n
    episode_start = np.zeros(n, dtype=bool)
    state = pi.initial_state(n, seed)
    out: list[dict[str, Any]] = []

    def start(j: int) -> None:
        nonlocal active
        i = pending.popleft()
        obs[j], _ = env_list[j].reset(seed=seed + i)
        slot_episode[j], ep_return[j], ep_len[j], ep_success[j] = i, 0.0, 0, None
        recorders[j] = _Recorder() if record else None
        noise_rngs[j] = np.random.default_rng([seed + i, 0xDA27]) if action_noise > 0 else None
        episode_start[j] = True
        active += 1

    try:
        active = 0
        for j in range(n):
            start(j)
        state = pi.reseed(state, list(range(n)), [seed + slot_episode[j] for j in range(n)])
        while active:
            # Idle envs (nothing left to run) still get their last observation: the batch keeps N rows.
            actions, state = pi.act(_batch(obs), state, episode_start.copy(), deterministic=deterministic)
            episode_start[:] = False
            restarted: list[int] = []
            for j in range(n):
                i = slot_episode[j]
                if i is None:
                    continue
                a = actions[j]
                executed = a if noise_rngs[j] is None else perturb_action(
                    a, env_list[j].action_space, action_noise, noise_rngs[j])
                next_obs, reward, term, trunc, info = env_list[j].step(executed)
                reward = float(reward)
                ep_return[j] += reward
                ep_len[j] += 1
                if max_steps is not None and ep_len[j] >= max_steps:
                    trunc = True
                if "success" in info:
                    ep_success[j] = bool(ep_success[j]) or bool(info["success"])
                elif is_babyai and term:
                    ep_success[j] = reward > 0
                if recorders[j] is not None:
                    recorders[j].add(obs[j], a, reward, bool(term), bool(trunc))
                obs[j] = next_obs
                if term or trunc:
                    if is_babyai and ep_success[j] is None:
                        ep_success[j] = False
                    episode = None
                    if recorders[j] is not None:
                        episode = recorders[j].finish(task_id, {"seed": seed + i, "policy": policy_name, "episode": i})
                    out.append({"index": i, "seed": seed + i, "return": ep_return[j], "length": ep_len[j],
                                "success": ep_success[j], "episode": episode})
                    if on_episode is not None:
                        on_episode(out[-1])
                    slot_episode[j] = None
                    active -= 1
                    if pending:
                        start(j)
                        restarted.append(j)
            if restarted:
                state = pi.reseed(state, restarted, [seed + slot_episode[j] for j in restarted])
    finally:
        if own_envs:
            for env in env_list:
                env.close()
    return sorted(out, key=lambda d: d["index"])


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def rollout(
    policy: Policy | str,
    task_id: str,
    episodes: int,
    seed: int = 0,
    num_envs: int = 1,
    workers: int = 1,
    record: bool = False,
    deterministic: bool = True,
    env_options: dict[str, Any] | None = None,
    make_env: EnvFactory | None = None,
    max_steps: int | None = None,
    envs: Sequence[Any] | None = None,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
    policy_kwargs: dict[str, Any] | None = None,
    action_noise: float = 0.0,
) -> RolloutResult:
    """Roll out ``policy`` on ``task_id`` for ``episodes`` episodes; episode ``i`` resets with ``seed + i``.

    Args:
        policy: a `Policy`, or a name for `policies.make_policy` (``"random"``, ``"expert"``, a
            checkpoint path). Privileged experts (BabyAI bot) must be given by name, so that each
            process builds them on its own envs (or pass ``envs=`` with the envs they were built on).
        task_id: registry id.
        episodes: number of episodes E.
        seed: episode ``i`` resets its env with ``seed + i``.
        num_envs: envs stepped together (one policy batch) in each process.
        workers: processes (``forkserver``); episodes are split into contiguous chunks.
        record: also return the `Episode`s (observations, actions, rewards, ...).
        deterministic: passed to `Policy.act`.
        env_options: keyword options for ``envs.make``.
        make_env: env factory (default ``envs.make``); a module-level function when ``workers > 1``.
        max_steps: optional cap on episode length (counted as truncation).
        envs: already-built envs to use (one process only; they are not closed).
        on_episode: called with each finished episode's row (index, seed, return, length, ...) in
            the calling process, e.g. to advance a progress bar (with workers: as chunks finish).
        policy_kwargs: keyword options for `make_policy` when ``policy`` is a name, in every process
            (e.g. ``{"allow_pickle": True}`` for an SB3 zip the user vouches for).
        action_noise: DART noise injection (`perturb_action`): the env executes a perturbed action,
            recorded episodes keep the policy's; 0 (default) executes the policy's action.

    Returns:
        A `RolloutResult` in episode order.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}.")
    if num_envs < 1 or workers < 1:
        raise ValueError(f"num_envs and workers must be >= 1, got num_envs={num_envs}, workers={workers}.")
    t0 = time.perf_counter()
    indices = list(range(episodes))
    common = dict(task_id=task_id, seed=seed, num_envs=num_envs, record=record, deterministic=deterministic,
                  env_options=env_options, make_env=make_env, max_steps=max_steps, policy_kwargs=policy_kwargs,
                  action_noise=action_noise)
    workers = min(workers, episodes)
    if workers == 1:
        rows = rollout_episodes(policy, episode_indices=indices, envs=envs, on_episode=on_episode, **common)
    else:
        if envs is not None:
            raise ValueError("envs= cannot be shared with worker processes; use workers=1 or pass no envs.")
        chunks = [c.tolist() for c in np.array_split(np.array(indices), workers)]
        ctx = mp.get_context("forkserver")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
            futures = [pool.submit(rollout_episodes, policy, episode_indices=c,
                                   policy_modules=registered_policy_modules(), **common) for c in chunks]
            rows = []
            for f in as_completed(futures):
                for r in f.result():
                    rows.append(r)
                    if on_episode is not None:
                        on_episode(r)
            rows.sort(key=lambda d: d["index"])
    wall = time.perf_counter() - t0
    successes = [r["success"] for r in rows]
    steps = int(sum(r["length"] for r in rows))
    return RolloutResult(
        task_id=task_id,
        policy=policy if isinstance(policy, str) else getattr(policy, "name", type(policy).__name__),
        seeds=[r["seed"] for r in rows],
        returns=[r["return"] for r in rows],
        lengths=[r["length"] for r in rows],
        successes=None if any(s is None for s in successes) else [bool(s) for s in successes],
        metadata={"num_envs": num_envs, "workers": workers, "deterministic": deterministic, "steps": steps,
                  "wall_s": round(wall, 3), "steps_per_s": round(steps / max(wall, 1e-9), 1)},
        episodes=[r["episode"] for r in rows] if record else None,
    )
