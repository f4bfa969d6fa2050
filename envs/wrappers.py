"""The one wrapper that puts every library env on the observation convention (`envs.convention`).

`ConventionWrapper` is the only place that touches the raw env's step/reset: it validates actions
(raising errors that name the task and the space), rescales ``Box(-1, 1)`` actions to the library's
bounds, builds the Dict observation with a per-domain function, and applies the time limit.
Domain modules only supply the raw env, the observation builder and the spaces.
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec

from envs.convention import CONTINUOUS, DISCRETE, DISCRETE_MAX, IMAGE, PATCH_SIZE, TEXT

ObsFn = Callable[[Any], dict[str, Any]]

# Actions up to this far outside [-1, 1] are clipped instead of rejected (float32 round-off).
ACTION_TOLERANCE = 1e-5

# Characters of BabyAI missions (measured over all levels: ' ,abcdefghijklnoprtuwxy'), widened
# to all lowercase letters and digits so that a level added later is still covered.
TEXT_CHARSET = " ,'abcdefghijklmnopqrstuvwxyz0123456789"
TEXT_MAX_LENGTH = 512


def image_space(height: int, width: int) -> spaces.Box:
    """``Box(0, 255, (H, W, 3), uint8)``; H and W must tile into 16x16 patches."""
    if height % PATCH_SIZE or width % PATCH_SIZE or height <= 0 or width <= 0:
        raise ValueError(
            f"image size {height}x{width} does not tile into {PATCH_SIZE}x{PATCH_SIZE} patches; "
            f"use a positive multiple of {PATCH_SIZE} (e.g. 64 or 80)"
        )
    return spaces.Box(0, 255, (height, width, 3), np.uint8)


def continuous_space(n: int) -> spaces.Box:
    """``Box(-inf, inf, (n,), float32)``: unnormalized state/proprioception."""
    return spaces.Box(-np.inf, np.inf, (n,), np.float32)


def discrete_space(n: int) -> spaces.Box:
    """``Box(0, DISCRETE_MAX - 1, (n,), int64)``: small integers."""
    return spaces.Box(0, DISCRETE_MAX - 1, (n,), np.int64)


def text_space() -> spaces.Text:
    """A `Text` space whose charset covers every BabyAI mission."""
    return spaces.Text(max_length=TEXT_MAX_LENGTH, min_length=1, charset=TEXT_CHARSET)


def check_image_size(image_size: Any, task_id: str) -> tuple[int, int]:
    """Normalize an ``image_size`` option (int or (H, W)) and check it tiles into patches."""
    h, w = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    try:
        image_space(int(h), int(w))
    except ValueError as e:
        raise ValueError(f"task {task_id!r}: option image_size={image_size!r}: {e}") from None
    return int(h), int(w)


def unit_box(n: int) -> spaces.Box:
    """The agent-facing continuous action space ``Box(-1, 1, (n,), float32)``."""
    return spaces.Box(-1.0, 1.0, (n,), np.float32)


def rescale_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map ``action`` in [-1, 1] linearly onto [low, high]: -1 -> low, 0 -> midpoint, 1 -> high.

    Example:
        >>> rescale_action(np.array([-1.0, 0.0, 1.0]), np.array([0.0, 0.0, 0.0]), np.array([2.0, 4.0, 6.0]))
        array([0., 2., 6.])
    """
    a = np.asarray(action, dtype=np.float64)
    return low + (a + 1.0) * 0.5 * (high - low)


class ConventionWrapper(gym.Wrapper):
    """Wraps a library env to the project's observation and action convention.

    Args:
        env: the raw library env (a `gymnasium.Env`; ``wrapper.unwrapped`` is its unwrapped env).
        task_id: registry id, used in error messages and in ``spec``.
        observation_space: the Dict observation space of the convention.
        obs_fn: builds the Dict observation from the raw observation (must return fresh arrays).
        max_episode_steps: truncate when this many steps have been taken since reset.
        options: the options given to `envs.make` (recorded in ``spec`` so ``spec.make()`` rebuilds).
        seed_fn: called as ``seed_fn(seed)`` before a seeded reset, for libraries whose ``reset``
            ignores ``seed`` (Meta-World).
    """

    def __init__(
        self,
        env: gym.Env,
        task_id: str,
        observation_space: spaces.Dict,
        obs_fn: ObsFn,
        max_episode_steps: int,
        options: dict[str, Any] | None = None,
        seed_fn: Callable[[int], None] | None = None,
    ):
        super().__init__(env)
        if max_episode_steps <= 0:
            raise ValueError(f"task {task_id!r}: max_episode_steps must be positive, got {max_episode_steps}")
        self.task_id = task_id
        self.observation_space = observation_space
        self._obs_fn = obs_fn
        self.max_episode_steps = int(max_episode_steps)
        self._seed_fn = seed_fn
        self._elapsed: int | None = None  # None until the first reset

        raw = env.action_space
        if isinstance(raw, spaces.Discrete):
            if int(raw.start) != 0:
                raise ValueError(f"task {task_id!r}: Discrete action space must start at 0, got {raw}")
            self.action_space = spaces.Discrete(int(raw.n))
            self._n: int | None = int(raw.n)
            self._low = self._high = None
        elif isinstance(raw, spaces.Box) and len(raw.shape) == 1:
            if not (np.all(np.isfinite(raw.low)) and np.all(np.isfinite(raw.high))):
                raise ValueError(f"task {task_id!r}: cannot rescale an unbounded action space {raw}")
            self.action_space = unit_box(raw.shape[0])
            self._n = None
            self._shape = tuple(raw.shape)
            self._low = raw.low.astype(np.float64)
            self._high = raw.high.astype(np.float64)
            self._identity = bool(np.all(self._low == -1.0) and np.all(self._high == 1.0))
            self._raw_dtype = raw.dtype
        else:
            raise TypeError(f"task {task_id!r}: unsupported raw action space {raw}")

        self.metadata = {"render_modes": ["rgb_array"], "render_fps": env.metadata.get("render_fps", 30)}
        # `spec.make()` (used by gymnasium's check_env) rebuilds this task through `envs.make`.
        self._cached_spec = EnvSpec(
            id=f"gato/{task_id}",
            entry_point="envs.registry:make",
            kwargs={"task_id": task_id, **(options or {})},
            nondeterministic=False,
            max_episode_steps=None,  # the wrapper applies its own limit
            order_enforce=False,
            disable_env_checker=True,
        )

    # ---- actions ---------------------------------------------------------------------------
    def validate_action(self, action: Any) -> Any:
        """Check ``action`` against the agent-facing space and return the raw library action.

        Scalar checks first (an int / numpy integer for ``Discrete``; a float ndarray of the right
        shape with every value in [-1, 1] for ``Box``); anything else takes the general numpy path,
        which gives the same result or the same error.

        Raises:
            ValueError: the action is outside the space (message names the task and the space).
        """
        if self._n is not None:  # Discrete(n)
            # Fast path: Python int (not bool) or numpy integer scalar.
            if (type(action) is int or isinstance(action, np.integer)) and 0 <= action < self._n:
                return int(action)
            return self._validate_discrete(action)
        # Box(-1, 1): fast path for a float ndarray of the right shape inside [-1, 1] (no clip needed).
        if type(action) is np.ndarray and action.shape == self._shape and action.dtype.kind == "f" and action.size:
            values = action.tolist() if action.ndim == 1 else action.ravel().tolist()
            if all(-1.0 <= v <= 1.0 for v in values):  # False for NaN and inf
                if self._identity:  # raw bounds are [-1, 1]: only the dtype changes (always a copy)
                    return action.astype(self._raw_dtype)
                raw = rescale_action(action, self._low, self._high)
                return np.clip(raw, self._low, self._high, out=raw).astype(self._raw_dtype)
        return self._validate_box(action)

    def _validate_discrete(self, action: Any) -> int:
        space = self.action_space
        a = np.asarray(action)
        if a.shape != () or not (np.issubdtype(a.dtype, np.integer)) or not (0 <= int(a) < space.n):
            raise ValueError(
                f"task {self.task_id!r}: action {action!r} is outside the action space {space}; "
                f"expected one integer in [0, {space.n})"
            )
        return int(a)

    def _validate_box(self, action: Any) -> np.ndarray:
        space = self.action_space
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            a = None
        if a is None or a.shape != space.shape or not np.all(np.isfinite(a)) or np.any(np.abs(a) > 1 + ACTION_TOLERANCE):
            raise ValueError(
                f"task {self.task_id!r}: action {action!r} is outside the action space {space}; "
                f"expected a finite float vector of shape {space.shape} with values in [-1, 1] "
                "(the wrapper rescales it to the library's bounds)"
            )
        a = np.clip(a, -1.0, 1.0)
        raw = a if self._identity else rescale_action(a, self._low, self._high)
        return np.clip(raw, self._low, self._high).astype(self._raw_dtype)

    # ---- gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None and self._seed_fn is not None:
            self._seed_fn(seed)
        raw_obs, info = self.env.reset(seed=seed, options=options)
        self._elapsed = 0
        return self._obs_fn(raw_obs), dict(info)

    def step(self, action: Any):
        if self._elapsed is None:
            raise RuntimeError(f"task {self.task_id!r}: call env.reset() before env.step()")
        raw_action = self.validate_action(action)
        raw_obs, reward, terminated, truncated, info = self.env.step(raw_action)
        self._elapsed += 1
        if self._elapsed >= self.max_episode_steps:
            truncated = True
        return self._obs_fn(raw_obs), float(reward), bool(terminated), bool(truncated), dict(info)

    @property
    def elapsed_steps(self) -> int:
        """Steps taken since the last reset (0 before the first reset)."""
        return self._elapsed or 0


__all__ = [
    "ConventionWrapper", "image_space", "continuous_space", "discrete_space", "text_space", "unit_box",
    "rescale_action", "check_image_size", "IMAGE", "CONTINUOUS", "DISCRETE", "TEXT",
]
