"""Test fakes: a tiny deterministic env that follows the observation convention (rollout, policy tests).

Episode length is ``3 + seed % 5``; the reward of action ``a`` at step ``t`` is ``a + t/10``; the
last step reports ``info["success"] = return > 2 * length / 2``. So a test can compute any
episode's return by hand from its seed and actions.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class FakeEnv(gym.Env):
    """Discrete(3) actions; obs ``continuous`` = [t, seed], ``discrete`` = [t], ``text`` = "go"."""

    def __init__(self, continuous_actions: bool = False) -> None:
        self.observation_space = gym.spaces.Dict({
            "continuous": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
            "discrete": gym.spaces.Box(0, 1023, (1,), np.int64),
            "text": gym.spaces.Text(16),
        })
        self.action_space = gym.spaces.Box(-1, 1, (2,), np.float32) if continuous_actions else gym.spaces.Discrete(3)
        self._seed = 0
        self._t = 0
        self._return = 0.0

    def _obs(self) -> dict[str, Any]:
        return {"continuous": np.array([self._t, self._seed], np.float32),
                "discrete": np.array([self._t], np.int64), "text": "go"}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._seed = 0 if seed is None else int(seed)
        self._t, self._return = 0, 0.0
        return self._obs(), {}

    def step(self, action):
        a = float(np.sum(action)) if isinstance(self.action_space, gym.spaces.Box) else float(action)
        reward = a + self._t / 10
        self._return += reward
        self._t += 1
        length = 3 + self._seed % 5
        terminated = self._t >= length
        info = {"success": terminated and self._return > length}
        return self._obs(), reward, terminated, False, info


def make_fake_env(task_id: str = "fake-task", **options: Any) -> FakeEnv:
    """Env factory with the signature of ``envs.make`` (picklable: usable with ``workers > 1``)."""
    return FakeEnv(**options)
