"""Observation and action spaces in token terms, and the action codec (docs/spec.md "Values to tokens").

`ObservationSpec` and `ActionSpec` are built from the env's gymnasium spaces (``from_space``);
`encode_action` / `decode_action` turn actions into tokens and back, and `action_token_ranges`
gives the legal id range of each action token (for constrained sampling).

Example:
    >>> import gymnasium as gym
    >>> ActionSpec.from_space(gym.spaces.Box(-1, 1, (4,))).num_tokens
    4
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from envs import convention as conv
from gato import tokenizer as tk

_KNOWN_KEYS = frozenset(conv.OBSERVATION_KEYS)


def _check_keys(keys: Any, task_id: str | None) -> None:
    unknown = sorted(set(keys) - _KNOWN_KEYS)
    if unknown:
        raise ValueError(
            f"unknown observation keys {unknown}{tk._where(task_id, None)}; the convention allows "
            f"{sorted(_KNOWN_KEYS)} (envs/convention.py)"
        )


@dataclass(frozen=True)
class ObservationSpec:
    """Which observation keys a task has and their sizes (envs/convention.py).

    Attributes:
        image_shape: ``(H, W, 3)`` or None.
        continuous_size: length of the ``continuous`` vector, 0 if absent.
        discrete_size: length of the ``discrete`` vector, 0 if absent.
        has_text: whether there is a ``text`` key.
    """

    image_shape: tuple[int, int, int] | None = None
    continuous_size: int = 0
    discrete_size: int = 0
    has_text: bool = False

    @classmethod
    def from_space(cls, space: Any) -> "ObservationSpec":
        """From the env's ``gymnasium.spaces.Dict`` observation space."""
        import gymnasium.spaces as gs

        if not isinstance(space, gs.Dict):
            raise TypeError(f"expected a gymnasium.spaces.Dict observation space, got {space!r}")
        _check_keys(space.spaces.keys(), None)
        kw: dict[str, Any] = {}
        for k, s in space.spaces.items():
            if k == conv.TEXT:
                kw["has_text"] = True
            elif k == conv.IMAGE:
                if len(s.shape) != 3 or s.shape[0] % 16 or s.shape[1] % 16:
                    raise ValueError(f"image space shape must be (H, W, C) with H, W multiples of 16, got {s.shape}")
                kw["image_shape"] = tuple(int(d) for d in s.shape)
            else:
                if len(s.shape) != 1:
                    raise ValueError(f"{k!r} space must be a vector (n,), got shape {s.shape}")
                kw[f"{k}_size"] = int(s.shape[0])
        return cls(**kw)

    @property
    def num_patches(self) -> int:
        if self.image_shape is None:
            return 0
        return (self.image_shape[0] // tk.PATCH_SIZE) * (self.image_shape[1] // tk.PATCH_SIZE)

    def num_observation_slots(self, text_tokens: int = 0) -> int:
        """Slots of one observation (without separator), given the number of text tokens."""
        return text_tokens + self.num_patches + self.continuous_size + self.discrete_size


@dataclass(frozen=True, eq=False)
class ActionSpec:
    """An action space in token terms.

    Attributes:
        kind: ``"discrete"`` (``Discrete(n)``: one token ``33024 + a``) or ``"continuous"``
            (``Box(low, high, (n,))``: n tokens, rescaled to [-1, 1] and binned).
        size: n, the number of actions (discrete) or dimensions (continuous).
        low: (n,) float64 lower bounds of a continuous space (-1 after the env wrapper).
        high: (n,) float64 upper bounds (1 after the env wrapper).
    """

    kind: str
    size: int
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @classmethod
    def from_space(cls, space: Any) -> "ActionSpec":
        """From a gymnasium ``Discrete(n)`` (start 0, n <= 1024) or finite 1-D ``Box``."""
        import gymnasium.spaces as gs

        if isinstance(space, ActionSpec):
            return space
        if isinstance(space, gs.Discrete):
            if int(space.start) != 0 or not 0 < int(space.n) <= tk.NUM_BINS:
                raise ValueError(
                    f"Discrete action spaces must start at 0 and have 1..{tk.NUM_BINS} actions, got {space!r}"
                )
            return cls("discrete", int(space.n))
        if isinstance(space, gs.Box):
            low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
            if len(space.shape) != 1 or not (np.isfinite(low).all() and np.isfinite(high).all()) or (low >= high).any():
                raise ValueError(
                    f"Box action spaces must be 1-D with finite low < high, got {space!r}; "
                    f"the env wrapper rescales actions to Box(-1, 1, (n,))"
                )
            return cls("continuous", int(space.shape[0]), low, high)
        raise TypeError(f"action space must be Discrete(n) or Box(-1, 1, (n,)), got {space!r}")

    @property
    def num_tokens(self) -> int:
        return 1 if self.kind == "discrete" else self.size


def action_token_ranges(action_space: Any) -> list[tuple[int, int]]:
    """The legal token ids ``[lo, hi)`` of each action token, in order (for constrained sampling).

    Example:
        >>> import gymnasium as gym
        >>> action_token_ranges(gym.spaces.Discrete(7))
        [(33024, 33031)]
        >>> action_token_ranges(gym.spaces.Box(-1, 1, (2,)))
        [(32000, 33024), (32000, 33024)]
    """
    spec = ActionSpec.from_space(action_space)
    if spec.kind == "discrete":
        return [(tk.DISCRETE_OFFSET, tk.DISCRETE_OFFSET + spec.size)]
    return [(tk.CONTINUOUS_OFFSET, tk.CONTINUOUS_OFFSET + tk.NUM_BINS)] * spec.size


def encode_action(action: np.ndarray, action_space: Any = None, *, task_id: str | None = None) -> np.ndarray:
    """Actions to tokens ``(..., num_tokens)``, int64. Works on one action or a batch.

    ``Discrete``: ``a`` (shape ``(...)``) -> ``33024 + a`` (shape ``(..., 1)``); ``a`` must be in
    ``[0, n)``. ``Box``: ``(..., n)`` rescaled from ``[low, high]`` to ``[-1, 1]`` (the identity
    for the wrapped ``Box(-1, 1)``), clipped and binned directly (no mu-law).
    Without ``action_space`` the kind follows the dtype (integer: discrete, float: ``Box(-1, 1)``).

    Example:
        >>> import gymnasium as gym
        >>> encode_action(np.array([-1.0, 0.0, 1.0]), gym.spaces.Box(-1, 1, (3,))).tolist()
        [32000, 32512, 33023]
        >>> encode_action(np.array(3), gym.spaces.Discrete(7)).tolist()
        [33027]
    """
    a = np.asarray(action)
    spec = _infer_action_spec(a) if action_space is None else ActionSpec.from_space(action_space)
    if spec.kind == "discrete":
        if a.dtype.kind == "f":
            tk.check_finite(a, task_id=task_id, key="action")
        if ((a < 0) | (a >= spec.size)).any():
            bad = a[(a < 0) | (a >= spec.size)].flat[0]
            raise ValueError(f"action {bad!r} is outside Discrete({spec.size}){tk._where(task_id, 'action')}")
        return tk.encode_discrete(a, task_id=task_id, key="action")[..., None]
    if a.shape[-1:] != (spec.size,):
        raise ValueError(
            f"continuous actions must have shape (..., {spec.size}), got {a.shape}{tk._where(task_id, 'action')}"
        )
    if spec.low is not None and not (np.all(spec.low == -1.0) and np.all(spec.high == 1.0)):
        tk.check_finite(a, task_id=task_id, key="action")
        a = 2.0 * (a - spec.low) / (spec.high - spec.low) - 1.0
    return tk.encode_continuous(a, mu_law=False, task_id=task_id, key="action")


def decode_action(tokens: np.ndarray, action_space: Any) -> np.ndarray:
    """Action tokens ``(..., num_tokens)`` back to actions: bin centres, then the inverse rescaling.

    Returns:
        ``Discrete``: int64 of shape ``(...)``. ``Box``: float32 ``(..., n)`` inside ``[low, high]``.

    Raises:
        ValueError: a token outside its legal range (see `action_token_ranges`) or a wrong count.

    Example:
        >>> import gymnasium as gym
        >>> decode_action(np.array([33027]), gym.spaces.Discrete(7)).item()
        3
        >>> decode_action(np.array([32000, 33023]), gym.spaces.Box(-1, 1, (2,))).tolist()
        [-0.9990234375, 0.9990234375]
    """
    spec = ActionSpec.from_space(action_space)
    tokens = np.asarray(tokens)
    if tokens.shape[-1:] != (spec.num_tokens,):
        raise ValueError(f"{action_space!r} needs {spec.num_tokens} action tokens, got shape {tokens.shape}")
    if spec.kind == "discrete":
        a = tk.decode_discrete(tokens[..., 0])
        if (a >= spec.size).any():
            raise ValueError(
                f"token {int(a[a >= spec.size].flat[0]) + tk.DISCRETE_OFFSET} decodes to action "
                f"{int(a[a >= spec.size].flat[0])}, outside Discrete({spec.size}); sample within "
                f"action_token_ranges(action_space)"
            )
        return a
    y = tk.decode_continuous(tokens)  # bin centres in (-1, 1)
    if spec.low is None or (np.all(spec.low == -1.0) and np.all(spec.high == 1.0)):
        return y
    a = spec.low + (y.astype(np.float64) + 1.0) / 2.0 * (spec.high - spec.low)
    return np.clip(a, spec.low, spec.high).astype(np.float32)


def _infer_action_spec(actions: np.ndarray) -> ActionSpec:
    if actions.dtype.kind in "iub":
        return ActionSpec("discrete", tk.NUM_BINS)
    if actions.dtype.kind == "f":
        n = actions.shape[-1] if actions.ndim else 1
        return ActionSpec("continuous", n)
    raise TypeError(f"actions must be integers (Discrete) or floats (Box), got dtype {actions.dtype}")
