"""`SlotArrays`: the numpy container of a run of slots (docs/spec.md "Sequence layout").

A *slot* is one position of the transformer's input: a token id or an image patch. A run of
slots is an observation, an episode, a vision-language example or a training sequence; it is cut
only at whole timesteps (``timestep_lengths``). `gato.collate.collate` pads runs into a
`gato.batch.TokenBatch` (torch); the model's own per-position tensors are `gato.model.Slots`.

Example:
    >>> s = SlotArrays.empty("dmc")
    >>> len(s), s.num_timesteps, s.patches.shape
    (0, 0, (0, 768))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gato import tokenizer as tk

LOCAL_POSITIONS = 512  # size of the learned local position table
PATCH_DIM = tk.PATCH_SIZE * tk.PATCH_SIZE * 3  # 768 values per RGB patch


@dataclass
class SlotArrays:
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
    def empty(domain: str | None = None) -> "SlotArrays":
        return SlotArrays(
            np.zeros(0, np.int64), np.zeros(0, bool), np.zeros((0, PATCH_DIM), np.uint8),
            np.zeros((0, 4), np.int64), np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool),
            np.zeros(0, np.int64), domain,
        )

    @staticmethod
    def concat(parts: Sequence["SlotArrays"]) -> "SlotArrays":
        """The slots of ``parts`` one after the other (domain: the first one that is known)."""
        if not parts:
            return SlotArrays.empty()
        domain = next((p.domain for p in parts if p.domain is not None), None)
        if len(parts) == 1:
            return parts[0]
        cat = np.concatenate
        return SlotArrays(
            cat([p.tokens for p in parts]), cat([p.is_patch for p in parts]),
            cat([p.patches for p in parts]), cat([p.patch_positions for p in parts]),
            cat([p.local_positions for p in parts]), cat([p.is_action for p in parts]),
            cat([p.is_target for p in parts]), cat([p.timestep_lengths for p in parts]), domain,
        )

    def timesteps(self, start: int, stop: int | None = None) -> "SlotArrays":
        """Whole timesteps ``[start, stop)`` (views where possible)."""
        t = self.num_timesteps
        stop = t if stop is None else stop
        if not 0 <= start <= stop <= t:
            raise IndexError(f"timesteps [{start}, {stop}) out of range for {t} timesteps")
        bounds = np.concatenate([[0], np.cumsum(self.timestep_lengths)])
        lo, hi = int(bounds[start]), int(bounds[stop])
        p_lo = int(np.count_nonzero(self.is_patch[:lo]))
        p_hi = p_lo + int(np.count_nonzero(self.is_patch[lo:hi]))
        return SlotArrays(
            self.tokens[lo:hi], self.is_patch[lo:hi], self.patches[p_lo:p_hi],
            self.patch_positions[lo:hi], self.local_positions[lo:hi], self.is_action[lo:hi],
            self.is_target[lo:hi], self.timestep_lengths[start:stop], self.domain,
        )

    def fit(self, max_slots: int, *, from_end: bool = False) -> "SlotArrays":
        """The longest run of whole timesteps from the start (or the end) with at most ``max_slots``.

        Example: a deployment prompt is ``episode_to_slots(demo).fit(1024)``.
        """
        return self.timesteps(*fit_range(self.timestep_lengths, max_slots, from_end))


def fit_range(lengths: np.ndarray, max_slots: int, from_end: bool) -> tuple[int, int]:
    """Timestep range ``[a, b)`` of the longest prefix (suffix) of ``lengths`` summing to <= max_slots."""
    t = len(lengths)
    if from_end:
        k = int(np.searchsorted(np.cumsum(lengths[::-1]), max_slots, side="right"))
        return t - k, t
    return 0, int(np.searchsorted(np.cumsum(lengths), max_slots, side="right"))
