"""Timesteps, episodes and training sequences as slots (docs/spec.md "Sequence layout").

A *slot* is one position of the transformer's input: a token id or an image patch. One timestep
is laid out as::

    [text tokens][image patches, raster][continuous tokens][discrete tokens] | [action tokens]
    '---------------------- observation --------------------------------'  ^ separator 34048

(the tensors after the image go by key in lexicographic order, each flattened row-major).

* Local positions: a slot's index inside its timestep's observation (0..511); -1 for the
  separator, action and padding slots (actions get the model's learned action embedding).
* Loss: ``targets[i]`` is the token of slot ``i + 1``; ``loss_mask[i]`` is true only when that
  slot is a text or action token. Patches, observation tensors, separator and padding are
  inputs only.

Public API:

* `Slots` (alias `TimestepTokens`): the typed container of any run of slots.
* `ObservationSpec`, `ActionSpec`: built from the env's gymnasium spaces (``from_space``).
* `encode_observation(obs, spec=None, *, task_id=None, separator=True) -> Slots`: one
  (non-batched) observation, for a closed-loop policy; `action_slots(tokens)` for the sampled
  action tokens it appends afterwards.
* `encode_action`, `decode_action`, `action_token_ranges`: actions to tokens and back, and the
  legal id range of each action token (for constrained sampling).
* `episode_to_slots(episode, *, action_space=None) -> Slots`: a whole `Episode`, vectorized.
* `SamplerConfig`, `SequenceSampler`, `EpisodeList`: L-slot training sequences cut at timestep
  boundaries, with prompt conditioning, collated into a `TokenBatch`.
* `collate(sequences, length=None) -> TokenBatch`.
* `text_sequence`, `image_text_sequence`, `segments_to_slots`: text-only and image-caption
  sequences for vision-language training.

Example:
    >>> import numpy as np
    >>> from envs.convention import Episode
    >>> ep = Episode("dmc-toy", {"continuous": np.zeros((2, 1), np.float32)},
    ...              np.array([[1.0], [-1.0]], np.float32), np.zeros(2), np.zeros(2, bool), np.zeros(2, bool))
    >>> s = episode_to_slots(ep)
    >>> s.tokens.tolist()  # obs 0.0 -> 32512, separator, action 1.0 -> 33023; then step 2
    [32512, 34048, 33023, 32512, 34048, 32000]
    >>> s.local_positions.tolist()  # observation index; -1 at the separator; the action's dimension
    [0, -1, 0, 0, -1, 0]
    >>> b = collate([s], length=8)
    >>> b.targets[0].tolist()  # the next slot's token; PAD where there is none
    [34048, 33023, 32512, 34048, 32000, 34049, 34049, 34049]
    >>> b.loss_mask[0].int().tolist()  # only slots whose next slot is an action token
    [0, 1, 0, 0, 1, 0, 0, 0]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from envs import convention as conv
from envs import domain_of
from gato import tokenizer as tk

LOCAL_POSITIONS = 512  # size of the learned local position table
PATCH_DIM = tk.PATCH_SIZE * tk.PATCH_SIZE * 3  # 768 values per RGB patch


# ---------------------------------------------------------------------------------------------
# The container
# ---------------------------------------------------------------------------------------------


@dataclass
class Slots:
    """N consecutive slots (one observation, an episode, a training sequence).

    Attributes:
        tokens: (N,) int64 token ids; ``PAD`` at patch slots.
        is_patch: (N,) bool, true where the slot is an image patch.
        patches: (P, 768) uint8 raw patch pixels, P = ``is_patch.sum()``, in slot order, each
            flattened row-major over (16, 16, 3). Kept exact and 4x smaller than floats;
            `collate` scales them to [-1, 1] / 4 (``tokenizer.normalize_patches``) for the model.
        patch_positions: (N, 4) int64 ``(row_from, row_to, col_from, col_to)`` in [0, 128]
            (``to`` exclusive) at patch slots; zeros elsewhere.
        local_positions: (N,) int64, index inside the timestep's observation (0..511) at
            observation slots, the action dimension (0..A-1) at action slots; -1 for separator
            and padding slots.
        is_action: (N,) bool, true for action tokens.
        is_target: (N,) bool, true for text and action tokens: the slots that are learned when
            they are the next slot (``loss_mask[i] = is_target[i + 1]``).
        timestep_lengths: (T,) int64, slots in each whole timestep (or vision-language segment)
            held, in order; sums to N. Sequences are cut only at these boundaries.
        domain: the domain the slots come from (``"atari"``, ..., ``"vision-language"``), if known.
    """

    tokens: np.ndarray
    is_patch: np.ndarray
    patches: np.ndarray
    patch_positions: np.ndarray
    local_positions: np.ndarray
    is_action: np.ndarray
    is_target: np.ndarray
    timestep_lengths: np.ndarray
    domain: str | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def num_timesteps(self) -> int:
        return len(self.timestep_lengths)

    @staticmethod
    def empty(domain: str | None = None) -> "Slots":
        return Slots(
            np.zeros(0, np.int64), np.zeros(0, bool), np.zeros((0, PATCH_DIM), np.uint8),
            np.zeros((0, 4), np.int64), np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool),
            np.zeros(0, np.int64), domain,
        )

    @staticmethod
    def concat(parts: Sequence["Slots"]) -> "Slots":
        """The slots of ``parts`` one after the other (domain: the first one that is known)."""
        if not parts:
            return Slots.empty()
        domain = next((p.domain for p in parts if p.domain is not None), None)
        if len(parts) == 1:
            return parts[0]
        cat = np.concatenate
        return Slots(
            cat([p.tokens for p in parts]), cat([p.is_patch for p in parts]),
            cat([p.patches for p in parts]), cat([p.patch_positions for p in parts]),
            cat([p.local_positions for p in parts]), cat([p.is_action for p in parts]),
            cat([p.is_target for p in parts]), cat([p.timestep_lengths for p in parts]), domain,
        )

    def timesteps(self, start: int, stop: int | None = None) -> "Slots":
        """Whole timesteps ``[start, stop)`` (views where possible)."""
        t = self.num_timesteps
        stop = t if stop is None else stop
        if not 0 <= start <= stop <= t:
            raise IndexError(f"timesteps [{start}, {stop}) out of range for {t} timesteps")
        bounds = np.concatenate([[0], np.cumsum(self.timestep_lengths)])
        lo, hi = int(bounds[start]), int(bounds[stop])
        p_lo = int(np.count_nonzero(self.is_patch[:lo]))
        p_hi = p_lo + int(np.count_nonzero(self.is_patch[lo:hi]))
        return Slots(
            self.tokens[lo:hi], self.is_patch[lo:hi], self.patches[p_lo:p_hi],
            self.patch_positions[lo:hi], self.local_positions[lo:hi], self.is_action[lo:hi],
            self.is_target[lo:hi], self.timestep_lengths[start:stop], self.domain,
        )

    def fit(self, max_slots: int, *, from_end: bool = False) -> "Slots":
        """The longest run of whole timesteps from the start (or the end) with at most ``max_slots``.

        Example: a deployment prompt is ``episode_to_slots(demo).fit(1024)``.
        """
        return self.timesteps(*_fit_range(self.timestep_lengths, max_slots, from_end))


TimestepTokens = Slots  # an older name of the same container


def _fit_range(lengths: np.ndarray, max_slots: int, from_end: bool) -> tuple[int, int]:
    """Timestep range ``[a, b)`` of the longest prefix (suffix) of ``lengths`` summing to <= max_slots."""
    t = len(lengths)
    if from_end:
        k = int(np.searchsorted(np.cumsum(lengths[::-1]), max_slots, side="right"))
        return t - k, t
    return 0, int(np.searchsorted(np.cumsum(lengths), max_slots, side="right"))


# ---------------------------------------------------------------------------------------------
# Spaces
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Observations and episodes to slots (vectorized over timesteps)
# ---------------------------------------------------------------------------------------------


_KNOWN_KEYS = frozenset(conv.OBSERVATION_KEYS)


@functools.lru_cache(maxsize=64)
def _patch_positions(height: int, width: int) -> np.ndarray:
    pos = tk.patch_positions(height, width)
    pos.setflags(write=False)  # shared through the cache
    return pos


def _check_keys(keys: Any, task_id: str | None) -> None:
    unknown = sorted(set(keys) - _KNOWN_KEYS)
    if unknown:
        raise ValueError(
            f"unknown observation keys {unknown}{tk._where(task_id, None)}; the convention allows "
            f"{sorted(_KNOWN_KEYS)} (envs/convention.py)"
        )


def _encode_steps(
    obs: dict[str, Any],
    num_steps: int,
    action_tokens: np.ndarray | None,
    separator: bool,
    task_id: str | None,
    spec: ObservationSpec | None = None,
) -> Slots:
    """Tokenize T timesteps at once. ``obs`` values have a leading T axis (text: list of T str).

    ``action_tokens`` (T, A) are appended after the separator of each timestep when given.
    """
    t = num_steps
    _check_keys(obs.keys(), task_id)
    where = tk._where

    # --- text: variable length per timestep
    if conv.TEXT in obs:
        texts = obs[conv.TEXT]
        if isinstance(texts, str) or len(texts) != t:
            raise ValueError(f"text must be a list of {t} str, got {texts!r:.80}{where(task_id, 'text')}")
        first = texts[0]
        if all(s is first or s == first for s in texts):  # e.g. a BabyAI mission: tokenize once
            text_ids = [tk._encode_text_cached(first)] * t
        else:
            text_ids = [tk._encode_text_cached(s) for s in texts]
        n_text = np.fromiter((len(x) for x in text_ids), np.int64, t)
    else:
        text_ids, n_text = [], np.zeros(t, np.int64)

    # --- fixed-size part: patches, continuous, discrete, separator, actions
    blocks: list[np.ndarray] = []  # each (T, k) int64
    num_patches, patches_u8, pos = 0, None, None
    if conv.IMAGE in obs:
        img = obs[conv.IMAGE]
        tk._check_images(img, 4, "image", task_id, conv.IMAGE)
        if img.shape[-1] != 3:
            raise ValueError(f"image must be RGB (T, H, W, 3), got shape {img.shape}{where(task_id, 'image')}")
        if spec is not None and spec.image_shape is not None and tuple(img.shape[1:]) != spec.image_shape:
            raise ValueError(f"image shape {img.shape[1:]} != space shape {spec.image_shape}{where(task_id, 'image')}")
        patches_u8 = tk.patchify(img)  # (T, P, 768)
        num_patches = patches_u8.shape[1]
        pos = _patch_positions(img.shape[1], img.shape[2])  # (P, 4)
        blocks.append(np.full((t, num_patches), tk.PAD, np.int64))
    for key in sorted(k for k in obs if k not in (conv.TEXT, conv.IMAGE)):  # lexicographic
        x = np.asarray(obs[key])
        if x.ndim != 2 or x.shape[0] != t:
            raise ValueError(f"{key!r} must have shape (T={t}, n), got {x.shape}{where(task_id, key)}")
        if spec is not None and x.shape[1] != getattr(spec, f"{key}_size"):
            raise ValueError(
                f"{key!r} has {x.shape[1]} values, the space has {getattr(spec, f'{key}_size')}{where(task_id, key)}"
            )
        if key == conv.CONTINUOUS:
            blocks.append(tk.encode_continuous(x, mu_law=True, task_id=task_id, key=key))
        else:
            blocks.append(tk.encode_discrete(x, task_id=task_id, key=key))
    n_obs_fixed = sum(b.shape[1] for b in blocks)
    if separator:
        blocks.append(np.full((t, 1), tk.SEPARATOR, np.int64))
    n_act = 0
    if action_tokens is not None:
        n_act = action_tokens.shape[1]
        blocks.append(action_tokens)
    fixed = np.concatenate(blocks, axis=1) if blocks else np.zeros((t, 0), np.int64)  # (T, F)
    f = fixed.shape[1]

    n_obs = n_text + n_obs_fixed
    if t and int(n_obs.max()) > LOCAL_POSITIONS:
        raise ValueError(
            f"an observation of {int(n_obs.max())} slots exceeds the {LOCAL_POSITIONS} local positions"
            f"{where(task_id, None)}; use a smaller image or fewer values"
        )

    # --- scatter both parts into the flat slot arrays
    lengths = n_text + f  # (T,)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    n = int(lengths.sum())
    fixed_idx = (starts + n_text)[:, None] + np.arange(f)  # (T, F)
    within = np.arange(f)  # slot index inside the fixed part

    tokens = np.empty(n, np.int64)
    tokens[fixed_idx] = fixed
    local = np.full(n, -1, np.int64)
    local[fixed_idx[:, :n_obs_fixed]] = n_text[:, None] + within[:n_obs_fixed]
    is_patch = np.zeros(n, bool)
    is_patch[fixed_idx[:, :num_patches]] = True
    is_action = np.zeros(n, bool)
    if n_act:
        is_action[fixed_idx[:, f - n_act:]] = True
        local[fixed_idx[:, f - n_act:]] = np.arange(n_act)  # an action token's dimension
    is_target = is_action.copy()
    if n_text.any():
        tot = int(n_text.sum())
        text_starts = np.repeat(starts, n_text)
        k = np.arange(tot) - np.repeat(np.cumsum(n_text) - n_text, n_text)  # index inside the text
        text_idx = text_starts + k
        tokens[text_idx] = np.concatenate(text_ids)
        local[text_idx] = k
        is_target[text_idx] = True
    patch_positions = np.zeros((n, 4), np.int64)
    if num_patches:
        patch_positions[fixed_idx[:, :num_patches]] = pos[None]
        patches = patches_u8.reshape(t * num_patches, PATCH_DIM)  # (T*P, 768) uint8
    else:
        patches = np.zeros((0, PATCH_DIM), np.uint8)
    domain = domain_of(task_id) if task_id else None
    return Slots(tokens, is_patch, patches, patch_positions, local, is_action, is_target, lengths, domain)


def encode_observation(
    obs: dict[str, Any],
    spec: ObservationSpec | Any | None = None,
    *,
    task_id: str | None = None,
    separator: bool = True,
) -> Slots:
    """One (non-batched) observation to slots, followed by the separator (the same code as training).

    Args:
        obs: ``image`` (H, W, 3) uint8, ``continuous`` (n,) float, ``discrete`` (n,) int, ``text`` str.
        spec: an `ObservationSpec` or the env's Dict observation space, to check shapes against;
            None skips that check.
        task_id: names the task in errors and sets ``Slots.domain``.
        separator: append the separator slot (the policy then samples the action tokens).

    Example:
        >>> s = encode_observation({"continuous": np.array([0.0, 1.0]), "discrete": np.array([2])})
        >>> s.tokens.tolist(), s.local_positions.tolist()
        ([32512, 32744, 33026, 34048], [0, 1, 2, -1])
    """
    if spec is not None and not isinstance(spec, ObservationSpec):
        spec = ObservationSpec.from_space(spec)
    if spec is not None:
        expected = {k for k, on in [(conv.TEXT, spec.has_text), (conv.IMAGE, spec.image_shape),
                                    (conv.CONTINUOUS, spec.continuous_size), (conv.DISCRETE, spec.discrete_size)] if on}
        if set(obs) != expected:
            raise ValueError(f"observation keys {sorted(obs)} != space keys {sorted(expected)}{tk._where(task_id, None)}")
    batched: dict[str, Any] = {}
    for k, v in obs.items():
        if k == conv.TEXT:
            if not isinstance(v, str):
                raise TypeError(f"text must be a str, got {type(v).__name__}{tk._where(task_id, k)}")
            batched[k] = [v]
        elif k == conv.IMAGE:
            tk._check_images(v, 3, "image", task_id, k)
            batched[k] = v[None]
        else:
            v = np.asarray(v)
            if v.ndim != 1:
                raise ValueError(f"{k!r} must be a vector (n,), got shape {v.shape}{tk._where(task_id, k)}")
            batched[k] = v[None]
    return _encode_steps(batched, 1, None, separator, task_id, spec)


def action_slots(tokens: np.ndarray, first_dimension: int = 0) -> Slots:
    """Sampled action tokens ``(A,)`` as slots to append after `encode_observation`'s separator.

    ``first_dimension`` is the action dimension of ``tokens[0]`` (a policy that feeds one token
    at a time passes its index). Their ``timestep_lengths`` is empty: they complete the timestep
    the observation opened.

    Example:
        >>> action_slots(np.array([33000, 33001]), first_dimension=2).local_positions.tolist()
        [2, 3]
    """
    tokens = np.asarray(tokens, np.int64).reshape(-1)
    a = len(tokens)
    return Slots(
        tokens, np.zeros(a, bool), np.zeros((0, PATCH_DIM), np.uint8), np.zeros((a, 4), np.int64),
        first_dimension + np.arange(a, dtype=np.int64), np.ones(a, bool), np.ones(a, bool), np.zeros(0, np.int64),
    )


def episode_to_slots(episode: conv.Episode, *, action_space: Any = None) -> Slots:
    """A whole `Episode` to slots, vectorized over its T timesteps.

    Args:
        episode: observations with a leading T axis, actions (T,) int or (T, n) float.
        action_space: the env's action space; None infers it from the actions' dtype
            (integer: ``Discrete``, float: ``Box(-1, 1)``).

    Returns:
        T timesteps of ``observation | actions``; ``timestep_lengths`` has T entries.

    Raises:
        ValueError: NaN/inf observations or actions (naming the task and key), discrete values
            outside [0, 1024), images of the wrong size, observation arrays of the wrong length.
    """
    t = len(episode.actions)
    actions = np.asarray(episode.actions)
    if actions.dtype.kind == "f" and actions.ndim == 1:  # Box(1) stored as (T,)
        actions = actions[:, None]
    spec = _infer_action_spec(actions) if action_space is None else ActionSpec.from_space(action_space)
    if spec.kind == "discrete" and actions.ndim == 2 and actions.shape[1] == 1:
        actions = actions[:, 0]
    act = encode_action(actions, spec, task_id=episode.task_id).reshape(t, -1)  # (T, A)
    for k, v in episode.observations.items():
        if len(v) != t:
            raise ValueError(
                f"observation {k!r} has {len(v)} timesteps but there are {t} actions"
                f"{tk._where(episode.task_id, k)}"
            )
    return _encode_steps(episode.observations, t, act, True, episode.task_id)


# ---------------------------------------------------------------------------------------------
# Collation
# ---------------------------------------------------------------------------------------------


def collate(sequences: Sequence[Slots], length: int | None = None, domains: Sequence[str] | None = None):
    """Pad B runs of slots to ``length`` (default: the longest) and stack them into a `TokenBatch`.

    ``targets[b, i]`` is the token of slot ``i + 1`` and ``loss_mask[b, i]`` says whether that
    slot is a text or action token; the last slot of each run has no target (``PAD``, False).

    Raises:
        ValueError: if a run is longer than ``length``.
    """
    import torch

    from gato.batch import TokenBatch

    b = len(sequences)
    lens = [len(s) for s in sequences]
    length = max(lens, default=0) if length is None else length
    if lens and max(lens) > length:
        raise ValueError(f"a sequence of {max(lens)} slots does not fit in length {length}")
    tokens = np.full((b, length), tk.PAD, np.int64)
    is_patch = np.zeros((b, length), bool)
    patch_pos = np.zeros((b, length, 4), np.int64)
    local = np.full((b, length), -1, np.int64)
    is_action = np.zeros((b, length), bool)
    targets = np.full((b, length), tk.PAD, np.int64)
    loss_mask = np.zeros((b, length), bool)
    for i, (s, n) in enumerate(zip(sequences, lens)):
        tokens[i, :n] = s.tokens
        is_patch[i, :n] = s.is_patch
        patch_pos[i, :n] = s.patch_positions
        local[i, :n] = s.local_positions
        is_action[i, :n] = s.is_action
        if n > 1:
            targets[i, : n - 1] = s.tokens[1:]
            loss_mask[i, : n - 1] = s.is_target[1:]
    # tokenizer.normalize_patches, fused with the concatenation (torch, one sequence at a time
    # while it is in cache): the float conversion is most of the sampler's time on image domains
    patches = torch.empty(sum(len(s.patches) for s in sequences), PATCH_DIM)
    p0 = 0
    for s in sequences:
        out = patches[p0 : p0 + len(s.patches)]
        torch.mul(torch.from_numpy(s.patches), float(tk.PATCH_SCALE), out=out)
        out.sub_(float(tk.PATCH_SHIFT))
        p0 += len(s.patches)
    if domains is None:
        domains = [s.domain or "unknown" for s in sequences]
    return TokenBatch(
        tokens=torch.from_numpy(tokens), is_patch=torch.from_numpy(is_patch),
        patches=patches,
        patch_positions=torch.from_numpy(patch_pos), local_positions=torch.from_numpy(local),
        is_action=torch.from_numpy(is_action), targets=torch.from_numpy(targets),
        loss_mask=torch.from_numpy(loss_mask), domains=list(domains),
    )


# ---------------------------------------------------------------------------------------------
# Vision-language and text sequences
# ---------------------------------------------------------------------------------------------


def segments_to_slots(segments: Sequence[np.ndarray], *, domain: str = "vision-language") -> Slots:
    """Text and image segments, in order, to slots; each segment is one "timestep" for cutting.

    A 1-D integer array is text ids (targets, local position -1: text outside a control
    observation has no local position [project choice]); a uint8 ``(H, W, 3)`` array is an
    image (patches, local positions 0..P-1, not targets).

    Example:
        >>> s = segments_to_slots([np.zeros((16, 32, 3), np.uint8), np.array([5, 6])])
        >>> s.tokens.tolist(), s.is_target.tolist(), s.local_positions.tolist()
        ([34049, 34049, 5, 6], [False, False, True, True], [0, 1, -1, -1])
    """
    parts = []
    for seg in segments:
        seg = np.asarray(seg)
        if seg.ndim == 1 and seg.dtype.kind in "iu":
            ids = seg.astype(np.int64)
            if ((ids < 0) | (ids >= tk.TEXT_VOCAB)).any():
                raise ValueError(f"text ids must be in [0, {tk.TEXT_VOCAB}), got {ids[(ids < 0) | (ids >= tk.TEXT_VOCAB)][:5]}")
            k = len(ids)
            parts.append(Slots(
                ids, np.zeros(k, bool), np.zeros((0, PATCH_DIM), np.uint8), np.zeros((k, 4), np.int64),
                np.full(k, -1, np.int64), np.zeros(k, bool), np.ones(k, bool), np.array([k], np.int64), domain,
            ))
        elif seg.ndim == 3:
            s = _encode_steps({conv.IMAGE: seg[None]}, 1, None, False, None)
            s.domain = domain
            parts.append(s)
        else:
            raise ValueError(
                f"a segment must be 1-D integer text ids or a uint8 (H, W, 3) image, got "
                f"dtype {seg.dtype} shape {seg.shape}"
            )
    return Slots.concat(parts) if parts else Slots.empty(domain)


def text_sequence(ids: np.ndarray, length: int = 1024, *, domain: str = "text") -> Slots:
    """A text-only sequence: the first ``length`` ids, all targets.

    Example:
        >>> text_sequence(np.arange(10, 15), length=3).tokens.tolist()
        [10, 11, 12]
    """
    return segments_to_slots([np.asarray(ids)[:length]], domain=domain)


def image_text_sequence(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], length: int = 1024, *, domain: str = "vision-language"
) -> Slots:
    """(image, caption ids) pairs, each laid out as image patches then caption, while whole pairs fit.

    The paper uses up to 5 pairs per sequence. Append ``TEXT_EOS`` to captions
    (``encode_text(c, eos=True)``) so the model learns where a caption ends.

    Raises:
        ValueError: if not even the first pair fits in ``length``.
    """
    out, used = [], 0
    for image, caption in pairs:
        pair = segments_to_slots([image, caption], domain=domain)
        if used + len(pair) > length:
            break
        out.append(pair)
        used += len(pair)
    if pairs and not out:
        raise ValueError(f"the first (image, caption) pair needs {len(pair)} slots > length {length}")
    return Slots.concat(out) if out else Slots.empty(domain)


# ---------------------------------------------------------------------------------------------
# Training sequences
# ---------------------------------------------------------------------------------------------


class EpisodeSource(Protocol):
    """The episodes of one task; `datasets_gen.reader.EpisodeDataset` and `EpisodeList` fit it."""

    task_id: str

    def __len__(self) -> int: ...
    def episode_length(self, i: int) -> int: ...
    def window(self, i: int, start: int, stop: int) -> conv.Episode: ...


class EpisodeList:
    """In-memory episodes of one task as an `EpisodeSource`."""

    def __init__(self, episodes: Sequence[conv.Episode]):
        if not episodes:
            raise ValueError("EpisodeList needs at least one episode")
        tasks = {e.task_id for e in episodes}
        if len(tasks) != 1:
            raise ValueError(f"EpisodeList holds one task; got {sorted(tasks)} (make one list per task)")
        self.episodes = list(episodes)
        self.task_id = episodes[0].task_id

    def __len__(self) -> int:
        return len(self.episodes)

    def episode_length(self, i: int) -> int:
        return len(self.episodes[i])

    def window(self, i: int, start: int, stop: int) -> conv.Episode:
        return self.episodes[i].slice(start, stop)


@dataclass
class SamplerConfig:
    """How `SequenceSampler` cuts training sequences."""

    sequence_length: int = 1024
    """L, slots per training sequence (padded with PAD)."""
    prompt_prob: float = 0.25
    """Fraction of sequences prefixed with a prompt from another episode of the same task."""
    prompt_end_prob: float = 0.5
    """Of the prompts, the fraction taken from the end of their episode (the rest start at a uniformly drawn timestep)."""
    prompt_fraction: float = 0.5
    """At most this fraction of L goes to the prompt [project choice; the paper does not say]."""
    seed: int = 0
    """Seed of the sampler's random generator."""


class SequenceSampler:
    """Draws L-slot training sequences from episodes of several tasks and collates `TokenBatch`es.

    Each sequence: pick a task (by ``weights``, default uniform), an episode (proportional to its
    length, so every timestep is equally likely), and a start timestep uniformly; take whole
    timesteps from there until L is filled; if the episode ends first, extend the window back
    in time so that no slots are wasted when the episode is long enough [project choice]. With
    probability ``prompt_prob`` the sequence starts with a prompt: whole timesteps of another
    episode of the same task (the same one if the task has a single episode), from its end
    with probability ``prompt_end_prob``, else from a uniformly drawn timestep; the prompt takes
    at most ``prompt_fraction * L`` slots and the episode window fills the rest. Only the
    timesteps in a window are read and tokenized.

    Example:
        >>> import numpy as np
        >>> from envs.convention import Episode
        >>> ep = Episode("metaworld-reach", {"continuous": np.zeros((50, 39), np.float32)},
        ...              np.zeros((50, 4), np.float32), np.zeros(50), np.zeros(50, bool), np.zeros(50, bool))
        >>> sampler = SequenceSampler([[ep]], SamplerConfig(sequence_length=128, seed=0))
        >>> sampler.batch(2).tokens.shape
        torch.Size([2, 128])
    """

    def __init__(
        self,
        sources: Sequence[EpisodeSource | Sequence[conv.Episode]],
        config: SamplerConfig = SamplerConfig(),
        weights: Sequence[float] | None = None,
    ):
        if not sources:
            raise ValueError("SequenceSampler needs at least one source of episodes")
        self.config = config
        self.sources: list[EpisodeSource] = [
            s if hasattr(s, "window") else EpisodeList(s) for s in sources  # type: ignore[arg-type]
        ]
        self.rng = np.random.default_rng(config.seed)
        w = np.ones(len(self.sources)) if weights is None else np.asarray(weights, np.float64)
        if len(w) != len(self.sources) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be {len(self.sources)} non-negative numbers, not all 0; got {weights}")
        self.weights = w / w.sum()
        self._lengths = [np.array([s.episode_length(i) for i in range(len(s))], np.int64) for s in self.sources]
        for s, lens in zip(self.sources, self._lengths):
            if lens.sum() == 0:
                raise ValueError(f"source {s.task_id!r} has no timesteps")
        self._step_slots: dict[int, int] = {}  # per source: slots of a timestep, text excluded

    def _tokenize(self, si: int, ei: int, start: int, stop: int) -> Slots:
        slots = episode_to_slots(self.sources[si].window(ei, start, stop))
        if si not in self._step_slots and slots.num_timesteps:
            n_text = np.count_nonzero(slots.is_target & ~slots.is_action)
            self._step_slots[si] = max(1, (len(slots) - int(n_text)) // slots.num_timesteps)
        return slots

    def _window(
        self, si: int, ei: int, start: int, budget: int, *, from_end: bool = False, required: bool = True
    ) -> Slots:
        """Whole timesteps of episode ``ei`` filling at most ``budget`` slots.

        Forward from ``start``; extended backwards if the episode ends first. With ``from_end``,
        the last timesteps of the episode. If not even one timestep fits, a ``required`` window
        is an error and an optional one (a prompt) comes back empty.
        """
        t = int(self._lengths[si][ei])
        if si not in self._step_slots:  # learn the per-timestep size from one timestep
            self._tokenize(si, ei, 0, 1)
        k = max(1, budget // self._step_slots[si])  # upper bound on the timesteps that fit (text adds)
        if from_end:
            fwd = self._tokenize(si, ei, max(0, t - k), t).fit(budget, from_end=True)
        else:
            fwd = self._tokenize(si, ei, start, min(t, start + k)).fit(budget)
        if fwd.num_timesteps == 0:
            if not required:
                return fwd
            raise ValueError(
                f"one timestep of {self.sources[si].task_id!r} needs more than {budget} slots; "
                f"raise sequence_length"
            )
        left = budget - len(fwd)
        if not from_end and start > 0 and start + fwd.num_timesteps == t and left >= self._step_slots[si]:
            kb = min(start, left // self._step_slots[si])
            back = self._tokenize(si, ei, start - kb, start).fit(left, from_end=True)
            return Slots.concat([back, fwd])
        return fwd

    def sample(self) -> Slots:
        """One training sequence (at most L slots, unpadded; `collate` pads)."""
        cfg, rng = self.config, self.rng
        si = int(rng.choice(len(self.sources), p=self.weights))
        lens = self._lengths[si]
        ei = int(rng.choice(len(lens), p=lens / lens.sum()))
        parts = []
        budget = cfg.sequence_length
        if rng.random() < cfg.prompt_prob:
            others = np.flatnonzero(lens > 0)
            if len(others) > 1:
                others = others[others != ei]
            pi = int(rng.choice(others))
            prompt_budget = int(cfg.prompt_fraction * cfg.sequence_length)
            if rng.random() < cfg.prompt_end_prob:
                prompt = self._window(si, pi, 0, prompt_budget, from_end=True, required=False)
            else:
                start = int(rng.integers(lens[pi]))
                prompt = self._window(si, pi, start, prompt_budget, required=False)
            parts.append(prompt)
            budget -= len(prompt)
        parts.append(self._window(si, ei, int(rng.integers(lens[ei])), budget))
        out = Slots.concat(parts)
        out.domain = domain_of(self.sources[si].task_id)
        return out

    def batch(self, batch_size: int):
        """``batch_size`` sequences collated into a `TokenBatch` of shape (B, L)."""
        return collate([self.sample() for _ in range(batch_size)], self.config.sequence_length)
