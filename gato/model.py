"""The Gato transformer: slot embedding, a pre-norm decoder trunk, shared-embedding logits.

Layout of one forward pass (docs/spec.md "Model sizes", "Images", "Sequence layout"):

- ``embed(slots)``: a token slot is a row of the shared embedding table (34,178 x D; with
  ``value_features`` a continuous-value row is its free row plus a map shared by all 1,024 bins
  of fixed features of the bin's value, `token_rows`, in inputs and logits alike); a patch
  slot is one ResNet-v2 block over its 16x16x3 pixels projected to D, plus learned patch row and
  column embeddings (128 bins each; the bin is drawn uniformly from the patch's interval in
  training mode and is the interval's rounded mean in eval mode). Observation slots add the
  learned local position table (512 rows); action slots add a row of the learned
  action-dimension table (``action_positions`` rows: the k-th token of an action vector adds
  row k); with ``action_token_inputs=False`` an action slot feeds only these position rows, not
  its token (a remedy for copycat behaviour cloning). Every slot adds a learned embedding of its index in the context (``max_len`` rows;
  ``absolute_positions``) **[project choice]**: the paper names only the local and patch
  encodings, and without one the trunk sees order through the causal mask alone. The closed-loop
  policy re-encodes a sliding window from index 0 (``slide="reprefill"``), so the indices it
  sees are the ones training saw.
- ``trunk(x)``: pre-norm blocks (LayerNorm -> causal SDPA attention; LayerNorm -> GEGLU), then
  the final LayerNorm.
- ``logits(hidden)``: ``hidden @ token_rows().T`` (input and output embeddings shared).
- ``forward(batch) -> (loss, metrics)``: the hidden states at ``loss_mask`` slots are gathered
  first, so the 34k-way output layer runs only where there is a target. The loss is the mean over
  sequences of each sequence's mean target loss (``reduction="sequence"``), so a domain's share of
  the gradient is its share of the batch, i.e. its sampling weight, however many targets its
  sequences hold; ``reduction="token"`` averages over all targets of the batch.

Incremental decoding (for the closed-loop policy)::

    model.eval()
    cache = model.new_cache(batch_size=B)                 # KVCache, capacity config.max_len
    with torch.inference_mode():
        hidden, cache = model.decode(slots, cache)        # slots: Slots or TokenBatch, (B, T)
        logits = model.logits(hidden[:, -1], vocab_range=(lo, hi))   # (B, hi - lo)

``decode`` appends the T new slots of every row (or of the rows named by ``rows=``) after that
row's ``cache.lengths[b]`` cached slots and returns their final-norm hidden states ``(B, T, D)``;
rows may hold different lengths. It equals a full forward over the concatenated slots (tested to
1e-5 in fp32). When a row would overflow ``cache.capacity``, ``decode`` raises; the caller frees
room first, either

- cheaply: ``cache.drop(n, start=s)`` removes slots ``[s, s + n)`` of each row and shifts the
  rest left (e.g. ``s`` = prompt length, ``n`` = the oldest timestep's slot count). The kept keys
  and values were computed while the dropped slots were visible (like Transformer-XL memory), so
  this is an approximation of re-encoding, not an equal; or
- exactly: ``cache.reset(rows)`` and ``decode`` the kept slots again (costs one prefill).

``cache.reset(rows)`` also starts a new episode for those rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from gato.batch import TokenBatch
from gato.configs import GatoConfig
from gato.tokenizer import CONTINUOUS_OFFSET, NUM_BINS, TEXT_VOCAB


class SlotsLike(Protocol):
    """What ``embed`` reads: the input fields shared by ``Slots`` and ``TokenBatch``."""

    tokens: torch.Tensor
    is_patch: torch.Tensor
    patches: torch.Tensor
    patch_positions: torch.Tensor
    local_positions: torch.Tensor
    is_action: torch.Tensor


@dataclass
class Slots:
    """Model inputs for B rows of T new slots (a ``TokenBatch`` without targets); see ``TokenBatch``.

    Attributes:
        tokens: (B, T) int64 ids; ``PAD`` at patch slots.
        is_patch: (B, T) bool.
        patches: (P, 16*16*3) float32 pixels of the patch slots in ``is_patch.nonzero()`` order.
        patch_positions: (B, T, 4) int64 ``(row_from, row_to, col_from, col_to)`` in [0, 128].
        local_positions: (B, T) int64 position inside the observation, -1 if not an observation slot.
        is_action: (B, T) bool.
    """

    tokens: torch.Tensor
    is_patch: torch.Tensor
    patches: torch.Tensor
    patch_positions: torch.Tensor
    local_positions: torch.Tensor
    is_action: torch.Tensor

    def to(self, device: torch.device | str) -> "Slots":
        return Slots(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


@dataclass
class KVCache:
    """Preallocated keys and values of every layer for B rows of up to ``capacity`` slots.

    Attributes:
        keys: per layer, (B, H, S, head_dim).
        values: per layer, (B, H, S, head_dim).
        lengths: (B,) int64, the number of slots cached per row.
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    lengths: torch.Tensor

    @classmethod
    def allocate(cls, config: GatoConfig, batch_size: int, capacity: int | None = None,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> "KVCache":
        shape = (batch_size, config.num_heads, capacity or config.max_len, config.head_dim)
        return cls([torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.num_layers)],
                   [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.num_layers)],
                   torch.zeros(batch_size, dtype=torch.long, device=device))

    @property
    def batch_size(self) -> int:
        return self.lengths.shape[0]

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[2]

    def reset(self, rows: torch.Tensor | list[int] | None = None) -> None:
        """Empty the given rows (all if None); their old keys are masked out, not zeroed."""
        if rows is None:
            self.lengths.zero_()
        else:
            self.lengths[torch.as_tensor(rows, device=self.lengths.device)] = 0

    def drop(self, n: int | torch.Tensor, start: int = 0) -> None:
        """Remove slots ``[start, start + n)`` of each row and shift the later slots left.

        Args:
            n: slots to drop, an int or a (B,) tensor (per row); rows with fewer slots after
                ``start`` lose only what they have.
            start: first dropped slot, e.g. the prompt length to keep the prompt.
        """
        dev = self.lengths.device
        n = torch.as_tensor(n, device=dev).expand(self.batch_size)
        n = torch.minimum(n, (self.lengths - start).clamp(min=0))  # (B,)
        j = torch.arange(self.capacity, device=dev)[None, :]  # (1, S)
        src = torch.where(j < start, j, j + n[:, None]).clamp(max=self.capacity - 1)  # (B, S)
        for store in (self.keys, self.values):
            for t in store:
                idx = src[:, None, :, None].expand_as(t)  # (B, H, S, hd)
                t.copy_(torch.gather(t, 2, idx))
        self.lengths -= n


class PatchEncoder(nn.Module):
    """One ResNet-v2 (pre-activation) block per patch, GroupNorm(32) and GELU, projected to D.

    A 4x4-stride convolution first maps the 16x16x3 pixels to C channels on a 4x4 grid (GroupNorm
    with 32 groups needs at least 32 channels); then ``x + conv(gelu(gn(conv(gelu(gn(x))))))``;
    then GroupNorm, GELU and a linear map of the flattened (C, 4, 4) grid to the model width.
    """

    def __init__(self, config: GatoConfig):
        super().__init__()
        c, p = config.patch_channels, config.patch_size
        self.patch_size = p
        self.stem = nn.Conv2d(3, c, kernel_size=4, stride=4)
        self.norm1 = nn.GroupNorm(32, c)
        self.conv1 = nn.Conv2d(c, c, kernel_size=3, padding=1)
        self.norm2 = nn.GroupNorm(32, c)
        self.conv2 = nn.Conv2d(c, c, kernel_size=3, padding=1)
        self.norm_out = nn.GroupNorm(32, c)
        self.proj = nn.Linear(c * (p // 4) ** 2, config.width)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        x = patches.view(-1, p, p, 3).permute(0, 3, 1, 2)  # (P, 3, p, p); pixels are row-major HWC
        x = self.stem(x)  # (P, C, p/4, p/4)
        h = self.conv1(F.gelu(self.norm1(x)))
        x = x + self.conv2(F.gelu(self.norm2(h)))
        x = F.gelu(self.norm_out(x))
        return self.proj(x.flatten(1))  # (P, D)


class Attention(nn.Module):
    """Multi-head causal self-attention through ``F.scaled_dot_product_attention``."""

    def __init__(self, config: GatoConfig):
        super().__init__()
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        inner = config.num_heads * config.head_dim
        self.qkv = nn.Linear(config.width, 3 * inner, bias=False)
        self.out = nn.Linear(inner, config.width, bias=False)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v  # each (B, H, T, hd)

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, -1))  # (B, T, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)
        return self._merge(F.scaled_dot_product_attention(q, k, v, is_causal=True))

    def decode(self, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
               rows: torch.Tensor | None, positions: torch.Tensor | int, mask: torch.Tensor | None,
               num_keys: int | None = None) -> torch.Tensor:
        """Write this step's keys/values at ``positions`` (B', T) of cache ``rows`` (B',; None: all), attend.

        ``positions`` may be an int: every row writes slots ``[positions, positions + T)`` (then
        ``rows`` is None). ``mask`` (B', 1, T, S'), or (T, S') shared by every row, says which of
        the first S' cached slots each new slot sees; None means all of the first ``num_keys``.
        """
        q, k, v = self._qkv(x)
        if isinstance(positions, int):  # the same slots in every row: a slice, not a scatter
            t = x.shape[1]
            k_cache[:, :, positions:positions + t] = k.to(k_cache.dtype)
            v_cache[:, :, positions:positions + t] = v.to(v_cache.dtype)
        else:
            every = torch.arange(positions.shape[0], device=positions.device) if rows is None else rows
            b = every[:, None].expand_as(positions)  # (B', T)
            k_cache[b, :, positions] = k.transpose(1, 2).to(k_cache.dtype)  # indexed view is (B', T, H, hd)
            v_cache[b, :, positions] = v.transpose(1, 2).to(v_cache.dtype)
        s = mask.shape[-1] if num_keys is None else num_keys
        if rows is None:  # a view, no copy of the cache
            keys, values = k_cache[:, :, :s], v_cache[:, :, :s]  # (B, H, S', hd)
        else:
            keys, values = k_cache[rows, :, :s], v_cache[rows, :, :s]  # (B', H, S', hd)
        y = F.scaled_dot_product_attention(q.to(keys.dtype), keys, values, attn_mask=mask)
        return self._merge(y.to(x.dtype))


class GEGLU(nn.Module):
    """Feed-forward ``W_out (value * gelu(gate))`` with ``[value, gate] = W_in x``."""

    def __init__(self, config: GatoConfig):
        super().__init__()
        self.inp = nn.Linear(config.width, 2 * config.ffw_hidden, bias=False)
        self.out = nn.Linear(config.ffw_hidden, config.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.inp(x).chunk(2, dim=-1)
        return self.out(value * F.gelu(gate))


MODALITIES = ("text", "image", "control")
"""The modalities of ``modality``, in the order of its codes 0, 1, 2."""


def modality(slots: SlotsLike) -> torch.Tensor:
    """(B, T) int64 modality code per slot, the index into ``MODALITIES``.

    Image patch slots (``is_patch``) are 1 (image); token slots with a text id (below
    ``TEXT_VOCAB``) are 0 (text); every other slot (continuous and discrete values, the
    separator, actions, padding) is 2 (control).
    """
    text = (slots.tokens < TEXT_VOCAB) & ~slots.is_patch
    return torch.where(slots.is_patch, 1, torch.where(text, 0, 2))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, config: GatoConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.width)
        self.attn = Attention(config)
        self.norm2 = nn.LayerNorm(config.width)
        self.ffw = GEGLU(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffw(self.norm2(x))

    def decode(self, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
               rows: torch.Tensor | None, positions: torch.Tensor | int, mask: torch.Tensor | None,
               num_keys: int | None = None) -> torch.Tensor:
        x = x + self.attn.decode(self.norm1(x), k_cache, v_cache, rows, positions, mask, num_keys)
        return x + self.ffw(self.norm2(x))


class MultiwayBlock(nn.Module):
    """Pre-norm block with one shared attention and a LayerNorm + GEGLU expert per modality (BEiT-3).

    ``norm2[m]`` and ``ffw[m]`` are modality ``m``'s expert (``MODALITIES``); a slot of modality
    code ``i`` goes through expert ``MODALITIES[i]`` only, so each slot costs what it costs in
    ``Block``.
    """

    def __init__(self, config: GatoConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.width)
        self.attn = Attention(config)
        self.norm2 = nn.ModuleDict({m: nn.LayerNorm(config.width) for m in MODALITIES})
        self.ffw = nn.ModuleDict({m: GEGLU(config) for m in MODALITIES})

    def experts(self, x: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """Each slot of (B, T, D) ``x`` through its modality's expert; ``modality`` (B, T) codes."""
        codes = modality.reshape(-1)
        flat = x.reshape(-1, x.shape[-1])  # (B*T, D)
        # In training every expert runs, on no slot if need be, so that every parameter takes
        # part in every step (DDP needs that).
        every = self.training and torch.is_grad_enabled()
        out = torch.zeros_like(flat)
        for i, m in enumerate(MODALITIES):
            where = (codes == i).nonzero().squeeze(1)  # (N_m,)
            if len(where) == len(codes) and not every:  # a single modality: no gather or scatter
                return self.ffw[m](self.norm2[m](x))
            if len(where) or every:
                out.index_copy_(0, where, self.ffw[m](self.norm2[m](flat.index_select(0, where))))
        return out.view_as(x)

    def forward(self, x: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.experts(x, modality)

    def decode(self, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
               rows: torch.Tensor | None, positions: torch.Tensor | int, mask: torch.Tensor | None,
               num_keys: int | None = None, *, modality: torch.Tensor) -> torch.Tensor:
        x = x + self.attn.decode(self.norm1(x), k_cache, v_cache, rows, positions, mask, num_keys)
        return x + self.experts(x, modality)


def fourier_value_rows(num_bins: int, width: int, std: float = 0.02) -> torch.Tensor:
    """(num_bins, width) embedding rows of the bin centres y in [-1, 1]: ``sin(w y), cos(w y)``
    at ``width // 2`` frequencies w log-spaced from pi / 2 (half a period over the whole range)
    to pi * num_bins / 8 (a period of 16 bins), scaled so that a row's norm equals that of an
    N(0, std) row (``std * sqrt(width)``). Neighbouring bins get nearly equal rows, distant ones
    nearly orthogonal rows (``value_embedding_init="fourier"``)."""
    y = -1.0 + (torch.arange(num_bins, dtype=torch.float64) + 0.5) * 2.0 / num_bins
    w = math.pi * torch.logspace(math.log10(0.5), math.log10(num_bins / 8), width // 2, dtype=torch.float64)
    rows = torch.cat([torch.sin(y[:, None] * w), torch.cos(y[:, None] * w)], dim=1)
    if width % 2:
        rows = torch.cat([rows, torch.zeros(num_bins, 1, dtype=torch.float64)], dim=1)
    return (rows * std * math.sqrt(width) / rows.norm(dim=1, keepdim=True)).float()


class GatoModel(nn.Module):
    """The Gato decoder; see the module docstring for the methods and the decoding API."""

    def __init__(self, config: GatoConfig):
        super().__init__()
        self.config = config
        d = config.width
        self.token_embedding = nn.Embedding(config.vocab_size, d)
        self.patch_encoder = PatchEncoder(config)
        self.patch_row_embedding = nn.Embedding(config.patch_position_bins, d)
        self.patch_col_embedding = nn.Embedding(config.patch_position_bins, d)
        self.local_position_embedding = nn.Embedding(config.local_positions, d)
        self.action_embedding = nn.Embedding(config.action_positions, d)
        self.position_embedding = nn.Embedding(config.max_len, d) if config.absolute_positions else None
        # value_features: the continuous-value rows are free rows + value_projection(features of y)
        self.value_projection = nn.Linear(config.value_features, d, bias=False) if config.value_features else None
        self.register_buffer("value_bin_features", fourier_value_rows(NUM_BINS, config.value_features, std=math.sqrt(0.5))
                             if config.value_features else None, persistent=False)
        block = MultiwayBlock if config.modality_experts else Block
        self.blocks = nn.ModuleList(block(config) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(d)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 style: N(0, 0.02) for matrices and tables, residual outputs scaled by depth.

        The patch encoder keeps PyTorch's defaults; every block starts with a LayerNorm, so the
        different scale of patch and token embeddings does not reach the attention unnormalized.
        """
        residual_std = 0.02 / math.sqrt(2 * self.config.num_layers)
        for name, p in self.named_parameters():
            if name.startswith("patch_encoder."):
                continue  # the ResNet block and its projection keep PyTorch's fan-in init
            if p.ndim >= 2:  # residual outputs: attn.out, ffw.out and the experts' ffw.<modality>.out
                residual = name.endswith("attn.out.weight") or (".ffw." in name and name.endswith(".out.weight"))
                std = residual_std if residual else 0.02
                nn.init.normal_(p, 0.0, std)
        if self.config.value_embedding_init == "fourier":
            with torch.no_grad():
                rows = fourier_value_rows(NUM_BINS, self.config.width, std=0.02)
                self.token_embedding.weight[CONTINUOUS_OFFSET:CONTINUOUS_OFFSET + NUM_BINS] = rows
        elif self.config.value_embedding_init == "zero":  # the rows start as the shared features alone
            with torch.no_grad():
                self.token_embedding.weight[CONTINUOUS_OFFSET:CONTINUOUS_OFFSET + NUM_BINS] = 0.0
        if self.value_projection is not None:  # the shared part of a row as large as a free row
            nn.init.normal_(self.value_projection.weight, 0.0, 0.02 / math.sqrt(self.config.value_features / 2))

    def value_rows(self) -> torch.Tensor | None:
        """(NUM_BINS, D) shared part of the continuous-value rows (``config.value_features``), or None."""
        if self.value_projection is None:
            return None
        return self.value_projection(self.value_bin_features.to(self.value_projection.weight.dtype))

    def token_rows(self, lo: int = 0, hi: int | None = None) -> torch.Tensor:
        """Rows ``[lo, hi)`` of the shared embedding table as the model uses them (inputs and logits):
        the free rows, plus `value_rows` on the continuous-value ids."""
        hi = self.config.vocab_size if hi is None else hi
        w = self.token_embedding.weight[lo:hi]
        a, b = max(lo, CONTINUOUS_OFFSET), min(hi, CONTINUOUS_OFFSET + NUM_BINS)
        if self.value_projection is None or a >= b:
            return w
        shared = self.value_rows()
        return torch.cat([w[:a - lo], w[a - lo:b - lo] + shared[a - CONTINUOUS_OFFSET:b - CONTINUOUS_OFFSET], w[b - lo:]])

    # ---- embedding -----------------------------------------------------------------------------
    def patch_position_bins(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Row and column bins (P,) of patches with intervals (P, 4) ``(r0, r1, c0, c1)``.

        Training mode draws a bin uniformly from ``[from, to)``; eval mode takes the rounded
        mean of the interval's bins, ``floor((from + to) / 2)``.
        """
        lo, hi = positions[:, 0::2], positions[:, 1::2]  # (P, 2) rows, cols
        if self.training:
            u = torch.rand(lo.shape, device=lo.device)
            bins = lo + (u * (hi - lo)).long()
        else:
            bins = (lo + hi) // 2
        bins = bins.clamp(max=self.config.patch_position_bins - 1)
        return bins[:, 0], bins[:, 1]

    def embed(self, slots: SlotsLike, positions: torch.Tensor | None = None,
              patch_features: torch.Tensor | None = None) -> torch.Tensor:
        """Embed (B, T) slots to (B, T, D); ``positions`` (B, T) are their context indices (default 0..T-1).

        ``patch_features`` (P, D): ``patch_encoder`` of ``slots.patches`` computed beforehand
        (e.g. kept for patches seen before); the patch positions are added here either way.
        """
        b, t = slots.tokens.shape
        x = self.token_embedding(slots.tokens)  # (B, T, D); patch slots hold PAD, replaced below
        shared = self.value_rows()
        if shared is not None:
            value = slots.tokens - CONTINUOUS_OFFSET
            is_value = (value >= 0) & (value < NUM_BINS)
            x = x + shared[value.clamp(0, NUM_BINS - 1)] * is_value[..., None].to(x.dtype)
        if not self.config.action_token_inputs:  # the trunk sees where actions are, not their values
            x = x.masked_fill(slots.is_action[..., None], 0.0)
        # In training it runs even when P = 0 so that every parameter takes part in every step
        # (DDP needs that); without gradients a step with no patch skips it.
        where = slots.is_patch.reshape(-1).nonzero().squeeze(1)  # (P,) row-major, as patches are
        if len(where) or (self.training and torch.is_grad_enabled()):
            rows, cols = self.patch_position_bins(slots.patch_positions.reshape(b * t, 4)[where])
            pe = self.patch_encoder(slots.patches.to(x.dtype)) if patch_features is None else patch_features
            pe = pe + self.patch_row_embedding(rows) + self.patch_col_embedding(cols)  # (P, D)
            x = x.reshape(b * t, -1).index_copy(0, where, pe.to(x.dtype)).view(b, t, -1)
        local = slots.local_positions.clamp(min=0)
        is_obs = (slots.local_positions >= 0) & ~slots.is_action
        x = x + self.local_position_embedding(local) * is_obs[..., None]
        action_dim = local.clamp(max=self.config.action_positions - 1)
        x = x + self.action_embedding(action_dim) * slots.is_action[..., None]
        if self.position_embedding is not None:
            if positions is None:
                positions = torch.arange(t, device=x.device)[None].expand(b, t)
            x = x + self.position_embedding(positions)
        return x

    # ---- trunk and head ------------------------------------------------------------------------
    def trunk(self, x: torch.Tensor, modality: torch.Tensor | None = None) -> torch.Tensor:
        """Causal transformer over (B, T, D) embeddings; returns final-norm hidden states.

        ``modality``: (B, T) codes of ``gato.model.modality(slots)``, needed with
        ``config.modality_experts`` (``hidden(slots)`` computes both); the plain block ignores it.
        """
        if self.config.modality_experts:
            if modality is None:
                raise ValueError("a model with modality_experts needs the slots' modality: "
                                 "trunk(embed(slots), modality(slots)), or hidden(slots)")
            for block in self.blocks:
                x = block(x, modality)
        else:
            for block in self.blocks:
                x = block(x)
        return self.final_norm(x)

    def hidden(self, slots: SlotsLike) -> torch.Tensor:
        """Final-norm hidden states (B, T, D) of (B, T) slots: ``trunk(embed(slots), modality(slots))``."""
        return self.trunk(self.embed(slots), modality(slots) if self.config.modality_experts else None)

    def logits(self, hidden: torch.Tensor, vocab_range: tuple[int, int] | None = None) -> torch.Tensor:
        """(..., D) hidden states -> (..., V) logits, or (..., hi - lo) for ``vocab_range=(lo, hi)``."""
        return F.linear(hidden, self.token_rows(*(vocab_range or (0, None))))

    def forward(self, batch: TokenBatch, reduction: str = "sequence") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Masked next-token cross-entropy over a batch.

        Args:
            batch: the sequences, their targets and ``loss_mask``.
            reduction: ``"sequence"``: the mean over sequences (those with a target) of each one's
                mean target loss; ``"token"``: the mean over every target of the batch.

        Returns:
            loss: the reduced cross-entropy over the ``loss_mask`` slots.
            metrics: detached tensors: ``loss``, ``targets`` (count) and per domain
                ``loss_sum/<domain>`` and ``targets/<domain>``.
        """
        hidden = self.hidden(batch)  # (B, L, D)
        mask = batch.loss_mask
        logits = self.logits(hidden[mask])  # (N, V): only at target slots
        targets = batch.targets[mask]  # (N,)
        per_target = F.cross_entropy(logits.float(), targets, reduction="none")  # (N,)
        count = mask.sum()
        row_of_target = mask.nonzero()[:, 0]  # (N,)
        row_count = mask.sum(1)  # (B,)
        if reduction == "sequence":
            weight = 1.0 / (row_count.clamp(min=1) * (row_count > 0).sum().clamp(min=1))  # (B,)
            loss = (per_target * weight[row_of_target]).sum()
        elif reduction == "token":
            loss = per_target.sum() / count.clamp(min=1)
        else:
            raise ValueError(f"reduction must be 'sequence' or 'token', got {reduction!r}")
        metrics = {"loss": loss.detach(), "targets": count}
        row_loss = torch.zeros(mask.shape[0], device=loss.device).index_add_(
            0, row_of_target, per_target.detach())  # (B,)
        for domain in sorted(set(batch.domains)):
            sel = torch.tensor([d == domain for d in batch.domains], device=loss.device)
            metrics[f"loss_sum/{domain}"] = row_loss[sel].sum()
            metrics[f"targets/{domain}"] = row_count[sel].sum()
        return loss, metrics

    # ---- incremental decoding ------------------------------------------------------------------
    def new_cache(self, batch_size: int, capacity: int | None = None) -> KVCache:
        """An empty KV cache on this model's device and dtype (capacity defaults to ``max_len``)."""
        p = self.token_embedding.weight
        return KVCache.allocate(self.config, batch_size, capacity, p.device, p.dtype)

    def decode(self, slots: SlotsLike, cache: KVCache, rows: torch.Tensor | list[int] | None = None,
               patch_features: torch.Tensor | None = None) -> tuple[torch.Tensor, KVCache]:
        """Append (B', T) new slots to cache rows ``rows`` (all B rows if None).

        ``patch_features``: see ``embed``.

        Returns:
            hidden: (B', T, D) final-norm hidden states of the new slots (feed to ``logits``).
            cache: the same cache, updated in place (lengths advanced by T).

        Raises:
            ValueError: a row would exceed ``cache.capacity``; free room with ``cache.drop``.
        """
        dev = cache.lengths.device
        rows_t = None if rows is None else torch.as_tensor(rows, device=dev, dtype=torch.long)
        b, t = slots.tokens.shape
        n_rows = cache.batch_size if rows_t is None else rows_t.shape[0]
        if b != n_rows or not b:
            raise ValueError(f"decode got {b} rows of slots for {n_rows} cache rows")
        start = cache.lengths.clone() if rows_t is None else cache.lengths[rows_t]  # (B',)
        shortest, longest = (int(v) for v in torch.aminmax(start))
        if longest + t > cache.capacity:
            every = torch.arange(cache.batch_size, device=dev) if rows_t is None else rows_t
            raise ValueError(
                f"KV cache full: rows {every[start + t > cache.capacity].tolist()} would hold "
                f"{longest + t} slots > capacity {cache.capacity}; free room with "
                "cache.drop(n, start) or cache.reset(rows) and re-decode the kept slots")
        positions = start[:, None] + torch.arange(t, device=dev)  # (B', T) slots being written
        x = self.embed(slots, positions, patch_features)  # (B', T, D)
        s_max = longest + t
        # a run of consecutive rows is a view of the cache (no gather of its rows per layer)
        first = 0 if rows_t is None else int(rows_t[0])
        run = rows_t is None or bool((rows_t == first + torch.arange(b, device=dev)).all())
        write: torch.Tensor | int = positions
        if shortest == longest:  # every row writes the same slots
            mask = None if t == 1 else torch.arange(s_max, device=dev) <= positions[0, :, None]  # (T, S') causal
            write = shortest if run else positions
        else:
            keys = torch.arange(s_max, device=dev)  # (S',)
            mask = (keys[None, None, :] <= positions[:, :, None])[:, None]  # (B', 1, T, S') causal
        kw = {"modality": modality(slots)} if self.config.modality_experts else {}
        for i, block in enumerate(self.blocks):
            if run:
                k, v = cache.keys[i][first:first + b], cache.values[i][first:first + b]
                x = block.decode(x, k, v, None, write, mask, s_max, **kw)
            else:
                x = block.decode(x, cache.keys[i], cache.values[i], rows_t, write, mask, s_max, **kw)
        if rows_t is None:
            cache.lengths += t
        else:
            cache.lengths[rows_t] = start + t
        return self.final_norm(x), cache



def count_parameters(config: GatoConfig) -> int:
    """Parameters of ``GatoModel(config)``, counted on the meta device (allocates nothing)."""
    with torch.device("meta"):
        model = GatoModel(config)
    return sum(p.numel() for p in model.parameters())


def configs_main(argv: list[str] | None = None) -> int:
    """`gato configs`: each config's parameter count (built on the meta device, no memory) vs the paper's."""
    import argparse

    from gato.configs import CONFIGS

    argparse.ArgumentParser(prog="gato configs", description="Print each model config's parameter count "
                            "(built on the meta device, no memory) next to the paper's.").parse_args(argv or [])
    print(f"{'config':<20}{'layers':>7}{'heads':>6}{'width':>6}{'ffw':>6}{'experts':>8}{'params':>15}"
          f"{'paper':>15}{'ratio':>7}")
    for name, cfg in CONFIGS.items():
        n = count_parameters(cfg)
        paper = f"{cfg.paper_params:,}" if cfg.paper_params else "-"
        ratio = f"{n / cfg.paper_params:.3f}" if cfg.paper_params else "-"
        experts = len(MODALITIES) if cfg.modality_experts else 1
        print(f"{name:<20}{cfg.num_layers:>7}{cfg.num_heads:>6}{cfg.width:>6}{cfg.ffw_hidden:>6}{experts:>8}"
              f"{n:>15,}{paper:>15}{ratio:>7}")
    return 0
