"""Test fakes: envs with injected ``reset``/``step`` whose results a test can compute by hand.

`FakeEnv` already follows the observation convention (rollout and policy tests); `RawEnv` is an
unwrapped env for the wrapper tests (`envs.wrappers.ConventionWrapper`).

`FakeEnv`: Episode length is ``3 + seed % 5``; the reward of action ``a`` at step ``t`` is ``a + t/10``; the
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


class RawEnv(gym.Env):
    """Action space ``Box([0, -2], [10, 2])`` by default; records the raw actions; obs = step count."""

    metadata = {"render_modes": []}

    def __init__(self, action_space: gym.spaces.Space | None = None, terminate_at: int | None = None):
        self.action_space = action_space or gym.spaces.Box(np.array([0.0, -2.0]), np.array([10.0, 2.0]),
                                                           dtype=np.float64)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float64)
        self.terminate_at = terminate_at
        self.raw_actions: list = []
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0]), {}

    def step(self, action):
        self.raw_actions.append(action)
        self.t += 1
        return np.array([float(self.t)]), 1.0, self.t == self.terminate_at, False, {"t": self.t}
