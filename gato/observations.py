"""Observations and episodes to slots, vectorized over timesteps (docs/spec.md "Sequence layout").

One timestep is laid out as::

    [text tokens][image patches, raster][continuous tokens][discrete tokens] | [action tokens]
    '---------------------- observation --------------------------------'  ^ separator 34048

(the tensors after the image go by key in lexicographic order, each flattened row-major).
Local positions: a slot's index inside its timestep's observation (0..511); the action dimension
at action slots; -1 for the separator and padding.

`encode_observation` serves a closed-loop policy (one observation, then `action_slots` for the
sampled action tokens); `episode_to_slots` serves training (a whole `Episode` at once). Both run
the same code (`_encode_steps`).

Example:
    >>> s = encode_observation({"continuous": np.array([0.0, 1.0]), "discrete": np.array([2])})
    >>> s.tokens.tolist()
    [32512, 32744, 33026, 34048]
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from envs import convention as conv
from envs import domain_of
from gato import tokenizer as tk
from gato.slots import LOCAL_POSITIONS, PATCH_DIM, SlotArrays
from gato.spaces import ActionSpec, ObservationSpec, _check_keys, _infer_action_spec, encode_action


@functools.lru_cache(maxsize=64)
def _patch_positions(height: int, width: int) -> np.ndarray:
    pos = tk.patch_positions(height, width)
    pos.setflags(write=False)  # shared through the cache
    return pos


def _encode_steps(
    obs: dict[str, Any],
    num_steps: int,
    action_tokens: np.ndarray | None,
    separator: bool,
    task_id: str | None,
    spec: ObservationSpec | None = None,
) -> SlotArrays:
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
    return SlotArrays(tokens, is_patch, patches, patch_positions, local, is_action, is_target, lengths, domain)


def _checked_spec(obs: dict[str, Any], spec: ObservationSpec | Any | None,
                  task_id: str | None) -> ObservationSpec | None:
    """``spec`` as an `ObservationSpec` (or None); raises if ``obs`` holds other keys than it names."""
    if spec is not None and not isinstance(spec, ObservationSpec):
        spec = ObservationSpec.from_space(spec)
    if spec is not None:
        expected = {k for k, on in [(conv.TEXT, spec.has_text), (conv.IMAGE, spec.image_shape),
                                    (conv.CONTINUOUS, spec.continuous_size), (conv.DISCRETE, spec.discrete_size)] if on}
        if set(obs) != expected:
            raise ValueError(f"observation keys {sorted(obs)} != space keys {sorted(expected)}{tk._where(task_id, None)}")
    return spec


def encode_observation(
    obs: dict[str, Any],
    spec: ObservationSpec | Any | None = None,
    *,
    task_id: str | None = None,
    separator: bool = True,
) -> SlotArrays:
    """One (non-batched) observation to slots, followed by the separator (the same code as training).

    Args:
        obs: ``image`` (H, W, 3) uint8, ``continuous`` (n,) float, ``discrete`` (n,) int, ``text`` str.
        spec: an `ObservationSpec` or the env's Dict observation space, to check shapes against;
            None skips that check.
        task_id: names the task in errors and sets ``SlotArrays.domain``.
        separator: append the separator slot (the policy then samples the action tokens).

    Example:
        >>> s = encode_observation({"continuous": np.array([0.0, 1.0]), "discrete": np.array([2])})
        >>> s.tokens.tolist(), s.local_positions.tolist()
        ([32512, 32744, 33026, 34048], [0, 1, 2, -1])
    """
    spec = _checked_spec(obs, spec, task_id)
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


def encode_observation_batch(
    obs: dict[str, Any],
    spec: ObservationSpec | Any | None = None,
    *,
    task_id: str | None = None,
    separator: bool = True,
) -> list[SlotArrays]:
    """N observations at once (N envs): each run equals `encode_observation` of its observation.

    Args:
        obs: values with a leading N axis (``image`` (N, H, W, 3), ``continuous`` (N, n), ...);
            ``text`` a list of N str.
        spec, task_id, separator: as in `encode_observation`.

    Example:
        >>> runs = encode_observation_batch({"continuous": np.array([[0.0], [1.0]])})
        >>> [r.tokens.tolist() for r in runs]
        [[32512, 34048], [32744, 34048]]
    """
    spec = _checked_spec(obs, spec, task_id)
    n = None
    batched: dict[str, Any] = {}
    for k, v in obs.items():
        if k == conv.TEXT:
            if isinstance(v, str) or not all(isinstance(x, str) for x in v):
                raise TypeError(f"text must be a list of str (one per observation){tk._where(task_id, k)}")
            batched[k] = list(v)
        elif k == conv.IMAGE:
            batched[k] = v  # checked by `_encode_steps`
        else:
            v = np.asarray(v)
            if v.ndim != 2:
                raise ValueError(f"{k!r} must be a batch of vectors (N, n), got shape {v.shape}{tk._where(task_id, k)}")
            batched[k] = v
        if n is not None and len(batched[k]) != n:
            raise ValueError(f"{k!r} holds {len(batched[k])} observations, another key {n}{tk._where(task_id, k)}")
        n = len(batched[k])
    if not n:
        return []
    s = _encode_steps(batched, n, None, separator, task_id, spec)
    bounds = np.concatenate([[0], np.cumsum(s.timestep_lengths)])
    p_bounds = np.concatenate([[0], np.cumsum(s.is_patch)])[bounds]
    out = []
    for j in range(n):
        lo, hi, p_lo, p_hi = int(bounds[j]), int(bounds[j + 1]), int(p_bounds[j]), int(p_bounds[j + 1])
        out.append(SlotArrays(s.tokens[lo:hi], s.is_patch[lo:hi], s.patches[p_lo:p_hi], s.patch_positions[lo:hi],
                              s.local_positions[lo:hi], s.is_action[lo:hi], s.is_target[lo:hi],
                              s.timestep_lengths[j:j + 1], s.domain))
    return out


def action_slots(tokens: np.ndarray, first_dimension: int = 0) -> SlotArrays:
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
    return SlotArrays(
        tokens, np.zeros(a, bool), np.zeros((0, PATCH_DIM), np.uint8), np.zeros((a, 4), np.int64),
        first_dimension + np.arange(a, dtype=np.int64), np.ones(a, bool), np.ones(a, bool), np.zeros(0, np.int64),
    )


def episode_to_slots(episode: conv.Episode, *, action_space: Any = None) -> SlotArrays:
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
