"""Runs of slots to model batches, and vision-language / text runs (docs/spec.md "Sequence layout").

`collate` pads B runs into a `TokenBatch`: ``targets[b, i]`` is the token of slot ``i + 1`` and
``loss_mask[b, i]`` is true only when that slot is a text or action token (patches, observation
tensors, separator and padding are inputs only). `segments_to_slots`, `text_sequence` and
`image_text_sequence` lay out text-only and image-caption examples for vision-language training.

Example:
    >>> b = collate([text_sequence(np.array([5, 6, 7]))], length=4)
    >>> b.targets[0].tolist(), b.loss_mask[0].tolist()
    ([6, 7, 34049, 34049], [True, True, False, False])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from envs import convention as conv
from gato import tokenizer as tk
from gato.observations import _encode_steps
from gato.slots import PATCH_DIM, SlotArrays


def collate(sequences: Sequence[SlotArrays], length: int | None = None, domains: Sequence[str] | None = None):
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


def segments_to_slots(segments: Sequence[np.ndarray], *, domain: str = "vision-language") -> SlotArrays:
    """Text and image segments, in order, to slots; each segment is one "timestep" for cutting.

    A 1-D integer array is text ids (targets, local position -1: text outside a control
    observation has no local position [project choice]), which may also hold location ids (a
    grounding answer's box, `gato.tokenizer.encode_box`); a uint8 ``(H, W, 3)`` array is an
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
            bad = ((ids < 0) | (ids >= tk.TEXT_VOCAB)) & ((ids < tk.LOCATION_OFFSET) | (ids >= tk.VOCAB_SIZE))
            if bad.any():
                raise ValueError(f"text ids must be in [0, {tk.TEXT_VOCAB}) (or location ids in "
                                 f"[{tk.LOCATION_OFFSET}, {tk.VOCAB_SIZE})), got {ids[bad][:5]}")
            k = len(ids)
            parts.append(SlotArrays(
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
    return SlotArrays.concat(parts) if parts else SlotArrays.empty(domain)


def text_sequence(ids: np.ndarray, length: int = 1024, *, domain: str = "text") -> SlotArrays:
    """A text-only sequence: the first ``length`` ids, all targets.

    Example:
        >>> text_sequence(np.arange(10, 15), length=3).tokens.tolist()
        [10, 11, 12]
    """
    return segments_to_slots([np.asarray(ids)[:length]], domain=domain)


def image_text_sequence(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], length: int = 1024, *, domain: str = "vision-language"
) -> SlotArrays:
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
    return SlotArrays.concat(out) if out else SlotArrays.empty(domain)
