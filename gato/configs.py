"""Model configurations: the three published Gato sizes and small CPU sizes.

The paper's table (docs/spec.md "Model sizes") gives blocks, heads, width, a feed-forward size of 4x width
and the key/value size. Counting parameters of that table literally does not reproduce the
paper's totals; the totals (79M / 364M / 1.18B) are reproduced, for all three sizes at once, by
``vocab * width`` (one shared embedding) plus about ``11 * width**2`` per block: attention is
``4 * width**2`` (Q, K, V, output), so the feed-forward holds ``7 * width**2``. A GEGLU
feed-forward has three matrices (value, gate, output) of ``width x hidden``, so
**[project choice]** ``ffw_hidden = 7/3 * width`` (rounded to a multiple of 128). The literal
alternatives are off by more than 5%: a GEGLU with ``hidden = 4 * width`` gives 1.68B for the
largest size, one that splits ``4 * width`` into value and gate halves gives 1.08B.

Run ``gato configs`` to print every config's parameter count next to the paper's.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

VOCAB_SIZE = 34_178  # docs/spec.md "Token ids"; gato.tokenizer.VOCAB_SIZE (location ids end it)


@dataclass(frozen=True)
class GatoConfig:
    """Shape of a Gato transformer. Saved as JSON beside every checkpoint."""

    name: str
    """Registry name, e.g. ``gato-79m``."""
    num_layers: int
    """Number of transformer blocks."""
    num_heads: int
    """Attention heads per block."""
    width: int
    """Model width (embedding size) D."""
    head_dim: int
    """Key/value size per head; ``num_heads * head_dim`` need not equal ``width``."""
    ffw_hidden: int
    """GEGLU inner width: value and gate are each ``width -> ffw_hidden``, then ``ffw_hidden -> width``."""
    vocab_size: int = VOCAB_SIZE
    """Shared input/output embedding rows (34,178: text, continuous, discrete, separator, pad, locations)."""
    max_len: int = 1024
    """Context length L in slots (training sequences and the KV cache capacity)."""
    local_positions: int = 512
    """Rows of the learned local (within-observation) position table."""
    patch_position_bins: int = 128
    """Rows of each learned patch row / column position table."""
    action_positions: int = 64
    """Rows of the learned action-dimension table: action token k of a timestep adds row k
    (tokens past the last row share it). 1 gives every action token the same embedding."""
    absolute_positions: bool = True
    """Add a learned embedding of the slot's index in the context (``max_len`` rows)
    **[project choice]**: the paper names only the local and patch positions; without it the
    trunk sees order through the causal mask alone."""
    action_token_inputs: bool = True
    """Action slots feed their token's embedding to the trunk, as in the paper. False
    **[project choice]**: an action slot feeds only its position rows (its dimension and its
    index), so the trunk knows where the actions were but never what they were, in training and in
    the closed loop alike. Behaviour cloning with the action history in context learns to repeat
    the last action ("copycat", causal confusion: de Haan et al. 2019; Wen et al. 2020): expert
    actions are smooth in time, so copying lowers the training loss while the policy ignores the
    observation. Targets are unchanged: every action token is still predicted."""
    value_embedding_init: str = "normal"
    """Initial rows of the 1,024 continuous-value tokens. ``"normal"``: N(0, 0.02) like every
    other row, so bin i and bin i + 1 start unrelated and the model must learn from data that
    they are neighbours. ``"fourier"`` **[project choice]**: row i is sines and cosines of the bin
    centre (mu-law space, [-1, 1]) at log-spaced frequencies, scaled to the same norm, so that
    neighbouring bins start alike and a value is linearly readable from its row from step 0 (and,
    through the shared output embedding, the predicted distribution over bins starts smooth).
    ``"zero"`` **[project choice]**, with ``value_features``: the free rows of the 1,024 values
    start at zero, so each row starts as the shared features alone and the free rows learn only
    what those features miss. Either way the rows are trained."""
    value_features: int = 0
    """**[project choice]** 0: off. Otherwise the 1,024 continuous-value rows of the shared
    embedding table (inputs and output logits alike) are each bin's free row plus a learned
    linear map, shared by all bins, of ``value_features`` fixed features of the bin centre y
    (``sin(w y), cos(w y)`` at log-spaced frequencies, `gato.model.fourier_value_rows`). A
    gradient through any bin then moves every bin's row, so nearby values are alike from the first
    step and stay alike, and a value is linearly readable from its row. The free rows keep the
    table as expressive as before. Unlike ``value_embedding_init="fourier"``, which only starts
    the rows smooth, the structure holds throughout training (an input embedding of continuous
    values, as JAT's linear encoders give, within Gato's tokenization)."""
    patch_size: int = 16
    """Image patch side; a patch slot carries ``patch_size**2 * 3`` pixels."""
    patch_channels: int = 64
    """Channels of the per-patch ResNet-v2 block (a multiple of 32 for GroupNorm's 32 groups)."""
    paper_params: int | None = None
    """The paper's parameter count for this size, if it is a published one."""
    suggested_lr: float = 1e-4
    """Peak learning rate the trainer uses unless told otherwise (paper: 1e-4)."""
    modality_experts: bool = False
    """Multiway blocks (BEiT-3): every block keeps one shared self-attention but holds one
    LayerNorm + GEGLU feed-forward expert per modality (text, image patches, control), and each
    slot goes through its own modality's expert. The modality is read from the slot itself
    (``gato.model.modality``), not learned. Off: the plain block."""

    def __post_init__(self) -> None:
        if self.value_embedding_init not in ("normal", "fourier", "zero"):
            raise ValueError(f"value_embedding_init={self.value_embedding_init!r}; choose 'normal', 'fourier' or 'zero'")
        if self.value_embedding_init == "zero" and not self.value_features:
            raise ValueError("value_embedding_init='zero' needs value_features > 0 (zero rows alone carry no value)")
        if self.value_features < 0 or self.value_features % 2:
            raise ValueError(f"value_features={self.value_features} must be 0 (off) or an even count "
                             "(a sine and a cosine per frequency)")
        if self.patch_channels % 32:
            raise ValueError(f"patch_channels={self.patch_channels} must be a multiple of 32 "
                             "(GroupNorm with 32 groups)")
        if self.patch_size % 4:
            raise ValueError(f"patch_size={self.patch_size} must be a multiple of 4")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "GatoConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown GatoConfig fields {unknown}; known: {sorted(known)}")
        return cls(**d)


def _paper(name: str, layers: int, heads: int, width: int, head_dim: int, params: int) -> GatoConfig:
    hidden = round(7 * width / 3 / 128) * 128  # see the module docstring
    return GatoConfig(name, layers, heads, width, head_dim, hidden, paper_params=params)


CONFIGS: dict[str, GatoConfig] = {
    # published sizes (docs/spec.md "Model sizes")
    "gato-79m": _paper("gato-79m", 8, 24, 768, 32, 79_000_000),
    "gato-364m": _paper("gato-364m", 12, 12, 1536, 128, 364_000_000),
    "gato-1.18b": _paper("gato-1.18b", 24, 16, 2048, 128, 1_180_000_000),
    # CPU sizes: tests (seconds) and the demo (a 30-minute CPU run)
    "gato-tiny": GatoConfig("gato-tiny", 2, 2, 32, 16, 64, max_len=256, patch_channels=32,
                            suggested_lr=1e-3),
    "gato-small": GatoConfig("gato-small", 4, 4, 128, 32, 320, max_len=512, patch_channels=32,
                             suggested_lr=1e-3),
    # gato-small with modality experts (BEiT-3 Multiway blocks): the same compute per slot,
    # three feed-forward experts per block (docs/design.md "Modality experts")
    "gato-small-multiway": GatoConfig("gato-small-multiway", 4, 4, 128, 32, 320, max_len=512,
                                      patch_channels=32, suggested_lr=1e-3, modality_experts=True),
    # gato-small whose action slots feed only their position rows (action_token_inputs=False): the
    # trunk cannot continue the last action (docs/results.md "Meta-World reach alone")
    "gato-small-blind": GatoConfig("gato-small-blind", 4, 4, 128, 32, 320, max_len=512, patch_channels=32,
                                   suggested_lr=1e-3, action_token_inputs=False),
    "gato-demo": GatoConfig("gato-demo", 6, 6, 192, 32, 448, max_len=1024, patch_channels=32,
                            suggested_lr=6e-4),
}


def get_config(name: str) -> GatoConfig:
    """The registered config ``name``; an unknown name raises listing the known ones."""
    if name not in CONFIGS:
        import difflib

        close = difflib.get_close_matches(name, CONFIGS, n=3)
        raise KeyError(f"unknown model config {name!r}; known: {sorted(CONFIGS)}"
                       + (f" (did you mean {', '.join(close)}?)" if close else ""))
    return CONFIGS[name]
