"""`TokenBatch`: the typed container between the tokenizer and the model."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class TokenBatch:
    """B sequences of L slots. A slot holds either a token id or an image patch.

    Attributes:
        tokens: (B, L) int64 token ids; patch and padding slots hold ``PAD``.
        is_patch: (B, L) bool, true where the slot is an image patch.
        patches: (P, 16*16*3) float32, the patch pixels (scaled to [-1, 1] / 4) of every patch
            slot, in the order of ``is_patch.nonzero()`` (row-major over B then L).
        patch_positions: (B, L, 4) int64, ``(row_from, row_to, col_from, col_to)`` of each patch,
            quantized to [0, 128) with ``to`` exclusive (``to > from``); zeros elsewhere.
        local_positions: (B, L) int64, a token's index inside its timestep's observation
            (0..511) at observation slots, its action dimension (0..A-1) at action slots; -1 for
            separator and padding slots.
        is_action: (B, L) bool, true for action tokens (they add their dimension's row of the action table).
        targets: (B, L) int64, the next slot's token id (the id to predict at this slot); ``PAD``
            where there is none.
        loss_mask: (B, L) bool, true where ``targets`` is a text or action token to be learned.
        domains: (B,) list of domain names (for per-domain losses).
    """

    tokens: torch.Tensor
    is_patch: torch.Tensor
    patches: torch.Tensor
    patch_positions: torch.Tensor
    local_positions: torch.Tensor
    is_action: torch.Tensor
    targets: torch.Tensor
    loss_mask: torch.Tensor
    domains: list[str]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.tokens.shape)  # type: ignore[return-value]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "TokenBatch":
        moved = {
            f.name: (getattr(self, f.name).to(device, non_blocking=non_blocking)
                     if isinstance(getattr(self, f.name), torch.Tensor) else getattr(self, f.name))
            for f in fields(self)
        }
        return TokenBatch(**moved)
