"""The uniform random policy: the ``random`` reference of expert-normalized scores.

Each env has its own `numpy.random.Generator` in the policy state. `Policy.reseed` restarts one
env's generator from its episode seed, so that episode ``i`` of a rollout draws the same actions
whatever the number of envs or worker processes it was batched with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from policies.base import Policy


@dataclass
class RandomState:
    """Per-env random generators (explicit state: the policy object holds none).

    Attributes:
        rngs: one generator per env, length N.
    """

    rngs: list[np.random.Generator]


def _episode_rng(seed: int | None) -> np.random.Generator:
    # A dedicated stream: the policy must not draw the same numbers as an env seeded with `seed`.
    return np.random.default_rng(None if seed is None else [int(seed), 0x5EED])


class RandomPolicy(Policy):
    """Uniform actions over a ``Discrete(n)`` or ``Box(-1, 1, (n,))`` action space.

    Args:
        action_space: the wrapped env's action space.

    Example:
        >>> import gymnasium as gym, numpy as np
        >>> pi = RandomPolicy(gym.spaces.Discrete(3))
        >>> state = pi.initial_state(2, seed=0)
        >>> actions, state = pi.act({}, state, np.ones(2, bool))
        >>> actions.shape, actions.dtype
        ((2,), dtype('int64'))
    """

    name = "random"

    def __init__(self, action_space: gym.spaces.Space):
        if isinstance(action_space, gym.spaces.Discrete):
            self.n = int(action_space.n)
            self.start = int(action_space.start)
            self.shape: tuple[int, ...] | None = None
        elif isinstance(action_space, gym.spaces.Box):
            if not (np.all(action_space.low == -1.0) and np.all(action_space.high == 1.0)):
                raise ValueError(
                    f"RandomPolicy expects the wrapped Box(-1, 1) action space, got {action_space}; "
                    "build envs with envs.make(task_id), which rescales actions to [-1, 1]."
                )
            self.shape = tuple(action_space.shape)
        else:
            raise TypeError(f"RandomPolicy supports Discrete and Box action spaces, got {action_space}.")

    def initial_state(self, num_envs: int, seed: int | None = None) -> RandomState:
        if seed is None:
            return RandomState([_episode_rng(None) for _ in range(num_envs)])
        return RandomState([_episode_rng(int(seed) + i) for i in range(num_envs)])

    def reseed(self, state: RandomState, env_indices, seeds) -> RandomState:
        for i, s in zip(env_indices, seeds):
            state.rngs[int(i)] = _episode_rng(s)
        return state

    def act(
        self, obs: dict[str, Any], state: RandomState, episode_start: np.ndarray, *, deterministic: bool = True
    ) -> tuple[np.ndarray, RandomState]:
        # `deterministic` does not apply: the random policy is random by definition.
        n_envs = len(state.rngs)
        if self.shape is None:
            actions = np.fromiter((rng.integers(self.n) for rng in state.rngs), np.int64, n_envs)  # (N,)
            return actions + self.start if self.start else actions, state
        actions = np.empty((n_envs, *self.shape), dtype=np.float32)  # (N, n)
        for j, rng in enumerate(state.rngs):
            actions[j] = rng.uniform(-1.0, 1.0, self.shape)
        return actions, state
