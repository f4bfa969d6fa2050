"""The one observation convention shared by every domain, and the `Episode` container.

Every task in the registry returns a `gymnasium.spaces.Dict` observation whose keys are a
subset of the ones below. Tokenizer, datasets and policies all speak this convention.

| key          | dtype / space                 | meaning                                             |
| ------------ | ----------------------------- | --------------------------------------------------- |
| `image`      | uint8 `Box(0, 255, (H, W, 3))`| an RGB frame; H and W are multiples of 16            |
| `continuous` | float32 `Box(-inf, inf, (n,))`| proprioception / state vector, unnormalized         |
| `discrete`   | int64 `Box(0, 1023, (n,))`    | small integers (e.g. a BabyAI direction)            |
| `text`       | `Text`                        | a natural-language instruction (BabyAI mission)     |

Actions are `Discrete(n)` or `Box(-1, 1, (n,), float32)`; the env wrapper rescales the
underlying continuous action space to `[-1, 1]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

IMAGE = "image"
CONTINUOUS = "continuous"
DISCRETE = "discrete"
TEXT = "text"
OBSERVATION_KEYS = (TEXT, IMAGE, CONTINUOUS, DISCRETE)  # tokenization order: text, image, tensors by key
PATCH_SIZE = 16
DISCRETE_MAX = 1024  # discrete observation values live in [0, DISCRETE_MAX)


@dataclass
class Episode:
    """One recorded episode of T steps.

    Attributes:
        task_id: registry id, e.g. ``"babyai-goto-red-ball"``.
        observations: per key, an array with a leading time axis of length T
            (``image`` (T, H, W, 3) uint8, ``continuous`` (T, n) float32, ``discrete`` (T, n) int64);
            ``text`` is a list of T strings.
        actions: (T,) int64 for ``Discrete`` spaces, (T, n) float32 in [-1, 1] for ``Box``.
        rewards: (T,) float32, reward received after each action.
        terminations: (T,) bool, true only at a terminal step.
        truncations: (T,) bool, true only at a step cut by a time limit.
        metadata: free-form (seed, policy name, ...).
    """

    task_id: str
    observations: dict[str, Any]
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def episode_return(self) -> float:
        return float(np.sum(self.rewards, dtype=np.float64))

    def slice(self, start: int, stop: int) -> "Episode":
        """Timesteps ``[start, stop)`` as a new episode (views, no copies)."""
        obs = {k: v[start:stop] for k, v in self.observations.items()}
        return Episode(
            self.task_id, obs, self.actions[start:stop], self.rewards[start:stop],
            self.terminations[start:stop], self.truncations[start:stop], dict(self.metadata),
        )
