"""A direct dm_control state env in our Dict convention, used only while `envs.make` is missing.

It follows the convention of TEAM.md exactly (``continuous`` = the dm_control observation dict
flattened in sorted key order, float32; actions Box(-1, 1); the suite's own 1000-step limit as a
truncation), so that a model trained on it acts on `envs.make`'s DMC envs.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs.convention import CONTINUOUS


def dmc_names(task_id: str) -> tuple[str, str]:
    """``dmc-point-mass-easy`` or ``dmc-point_mass-easy`` -> ``("point_mass", "easy")``."""
    from dm_control import suite

    rest = task_id.removeprefix("dmc-").replace("_", "-")
    for domain, task in suite.ALL_TASKS:
        if f"{domain}-{task}".replace("_", "-") == rest:
            return domain, task
    raise ValueError(f"{task_id!r} is no dm_control suite task; ids look like 'dmc-cartpole-swingup'")


def flatten_dmc(observation) -> np.ndarray:
    return np.concatenate([np.asarray(observation[k], np.float32).ravel() for k in sorted(observation)])


class DMCStateEnv(gym.Env):
    """dm_control suite task with a ``{"continuous": ...}`` observation."""

    def __init__(self, task_id: str):
        from dm_control import suite

        self.names = dmc_names(task_id)
        self._suite = suite
        self._env = suite.load(*self.names, task_kwargs={"random": 0})
        spec = self._env.action_spec()
        self._lo, self._hi = spec.minimum.astype(np.float64), spec.maximum.astype(np.float64)
        n = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
        self.observation_space = gym.spaces.Dict(
            {CONTINUOUS: gym.spaces.Box(-np.inf, np.inf, (n,), np.float32)})
        self.action_space = gym.spaces.Box(-1.0, 1.0, spec.shape, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._env = self._suite.load(*self.names, task_kwargs={"random": int(seed)})
        ts = self._env.reset()
        return {CONTINUOUS: flatten_dmc(ts.observation)}, {}

    def step(self, action):
        a = np.clip(np.asarray(action, np.float64), -1, 1)
        ts = self._env.step(self._lo + (a + 1.0) * 0.5 * (self._hi - self._lo))
        terminated = bool(ts.last() and ts.discount == 0.0)
        truncated = bool(ts.last() and not terminated)
        return {CONTINUOUS: flatten_dmc(ts.observation)}, float(ts.reward or 0.0), terminated, truncated, {}
