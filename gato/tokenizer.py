"""Values to tokens: the Gato vocabulary, mu-law, binning, discrete ids, text and image patches.

This module is the only place that knows how a value becomes a token id (docs/spec.md "Token ids",
"Values to tokens", "Images"). Everything takes and returns numpy arrays.

Vocabulary (34,178 ids):

| ids              | meaning                                                            |
| ---------------- | ------------------------------------------------------------------ |
| `[0, 32000)`     | text, SentencePiece (`mistral_common/data/tokenizer.model.v1`)     |
| `[32000, 33024)` | continuous values, 1024 uniform bins over `[-1, 1]`                |
| `[33024, 34048)` | discrete values `0..1023` [project choice: no collision with text] |
| `34048`          | the separator between a timestep's observation and its action     |
| `34049`          | padding, never a target [project choice]                           |
| `[34050, 34178)` | locations: an image coordinate as a fraction of the side, 128 bins |
|                  | [project choice: appended after padding, so no earlier id moved]   |

Example:
    >>> int(encode_continuous(np.array(1.0), mu_law=True))
    32744
    >>> int(encode_continuous(np.array(1.0), mu_law=False))
    33023
    >>> encode_discrete(np.array([0, 5])).tolist()
    [33024, 33029]
    >>> encode_box((0, 16, 32, 64), width=64, height=64).tolist()  # (x0, y0, x1, y1) in pixels
    [34050, 34082, 34114, 34177]
"""

from __future__ import annotations

import functools
import importlib.resources

import numpy as np

TEXT_VOCAB = 32000
NUM_BINS = 1024
CONTINUOUS_OFFSET = 32000
DISCRETE_OFFSET = 33024
SEPARATOR = 34048
PAD = 34049
LOCATION_OFFSET = 34050
NUM_LOCATION_BINS = 128  # an image coordinate, as a fraction of the side, in 128 bins
VOCAB_SIZE = LOCATION_OFFSET + NUM_LOCATION_BINS  # 34178: every id the model can embed or predict

MU = 100.0  # mu-law mu
M = 256.0  # mu-law M: |x| >= M maps to +-1
PATCH_SIZE = 16
POSITION_BINS = 128  # patch row/column intervals are quantized into this many bins

# Patch pixels: (p / 255 * 2 - 1) / 4 == p * PATCH_SCALE - PATCH_SHIFT, in float32.
PATCH_SCALE = np.float32(2.0 / 255.0 / 4.0)
PATCH_SHIFT = np.float32(0.25)

TEXT_BOS = 1  # SentencePiece <s> of tokenizer.model.v1
TEXT_EOS = 2  # SentencePiece </s> of tokenizer.model.v1

_TEXT_MODEL = ("mistral_common", "data/tokenizer.model.v1")


def _where(task_id: str | None, key: str | None) -> str:
    """`' (task 'x', key 'y')'` for error messages; empty when no context was given."""
    parts = []
    if task_id is not None:
        parts.append(f"task {task_id!r}")
    if key is not None:
        parts.append(f"key {key!r}")
    return f" ({', '.join(parts)})" if parts else ""


def check_finite(x: np.ndarray, *, task_id: str | None = None, key: str | None = None) -> None:
    """Raise if ``x`` holds NaN or +-inf: such a value has no token and must never be binned silently.

    Raises:
        ValueError: naming the task, the key, the first bad value and its index.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "fc":
        return
    finite = np.isfinite(x)
    if not finite.all():
        idx = np.argwhere(~finite)[0]
        idx_s = tuple(int(i) for i in idx) if x.ndim else ()
        raise ValueError(
            f"non-finite value {x[tuple(idx)]!r} at index {idx_s}{_where(task_id, key)}: NaN and inf "
            f"have no token. Fix the env wrapper or drop the episode when recording the dataset."
        )


# ---------------------------------------------------------------------------------------------
# Continuous values
# ---------------------------------------------------------------------------------------------


def mu_law(x: np.ndarray) -> np.ndarray:
    """mu-law companding ``F(x) = sgn(x) * log(|x| * mu + 1) / log(M * mu + 1)``, mu=100, M=256.

    Maps ``[-M, M]`` onto ``[-1, 1]``, stretching values near zero. Computed in float64.

    Example:
        >>> round(float(mu_law(np.array(1.0))), 6)  # log(101) / log(25601)
        0.454674
    """
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.log1p(np.abs(x) * MU) / np.log1p(M * MU)


_mu_law = mu_law  # `encode_continuous` has a keyword argument of the same name


def inverse_mu_law(y: np.ndarray) -> np.ndarray:
    """The inverse of `mu_law` on ``[-1, 1]``: ``sgn(y) * ((M * mu + 1) ** |y| - 1) / mu``."""
    y = np.asarray(y, dtype=np.float64)
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(M * MU)) / MU


def encode_continuous(
    x: np.ndarray, *, mu_law: bool, task_id: str | None = None, key: str | None = None
) -> np.ndarray:
    """Continuous values to token ids in ``[32000, 33024)``.

    With ``mu_law=True`` (observations) the values are mu-law companded first; with
    ``mu_law=False`` (actions, already in ``[-1, 1]``) they are binned directly. Binning clips
    to ``[-1, 1]`` and takes ``bin = min(floor((y + 1) / 2 * 1024), 1023)``.

    Args:
        x: any shape, float.
        mu_law: apply mu-law before binning (observations) or not (actions).
        task_id: only used in error messages.
        key: only used in error messages (observation key, or ``"action"``).

    Returns:
        int64 array of the same shape.

    Raises:
        ValueError: if ``x`` holds NaN or +-inf.

    Example:
        >>> encode_continuous(np.array([0.0, 1.0, -1.0]), mu_law=True).tolist()
        [32512, 32744, 32279]
        >>> encode_continuous(np.array([-1.0, 0.0, 1.0]), mu_law=False).tolist()
        [32000, 32512, 33023]
    """
    x = np.asarray(x)
    check_finite(x, task_id=task_id, key=key)
    y = _mu_law(x) if mu_law else x.astype(np.float64, copy=False)
    y = np.clip(y, -1.0, 1.0)
    bins = np.floor((y + 1.0) * (NUM_BINS / 2)).astype(np.int64)  # (y + 1) / 2 * 1024
    # y + 1 can round up onto a bin edge (y = -1e-19 gives 1.0, bin 512 instead of 511); the
    # edges bin / 512 - 1 are exact in floating point, so compare against them to bin exactly.
    bins -= y < bins / (NUM_BINS / 2) - 1.0
    return np.asarray(np.minimum(bins, NUM_BINS - 1) + CONTINUOUS_OFFSET)


def _check_range(tokens: np.ndarray, lo: int, hi: int, what: str) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.dtype.kind not in "iu":
        raise TypeError(f"{what} tokens must be integers, got dtype {tokens.dtype}")
    bad = (tokens < lo) | (tokens >= hi)
    if bad.any():
        raise ValueError(
            f"token {int(tokens[bad].flat[0])} is not a {what} token: {what} ids are in [{lo}, {hi}). "
            f"Was the token sampled without restricting it to the legal range "
            f"(gato.sequence.action_token_ranges)?"
        )
    return tokens.astype(np.int64, copy=False)


def decode_continuous(tokens: np.ndarray) -> np.ndarray:
    """Continuous token ids to bin centres ``(bin + 0.5) / 1024 * 2 - 1`` in ``(-1, 1)``, float32.

    Bin centres are exact in float32. For observations, apply `inverse_mu_law` afterwards.

    Raises:
        ValueError: if a token is outside ``[32000, 33024)``.

    Example:
        >>> decode_continuous(np.array([32000, 32512, 33023])).tolist()
        [-0.9990234375, 0.0009765625, 0.9990234375]
    """
    tokens = _check_range(tokens, CONTINUOUS_OFFSET, CONTINUOUS_OFFSET + NUM_BINS, "continuous")
    return np.asarray((tokens - CONTINUOUS_OFFSET + 0.5) / (NUM_BINS / 2) - 1.0, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Discrete values
# ---------------------------------------------------------------------------------------------


def encode_discrete(x: np.ndarray, *, task_id: str | None = None, key: str | None = None) -> np.ndarray:
    """Integers ``v`` in ``[0, 1024)`` to token ids ``33024 + v``; out-of-range values are errors.

    Args:
        x: any shape; integer dtype, or float/bool holding whole numbers.
        task_id: only used in error messages.
        key: only used in error messages.

    Returns:
        int64 array of the same shape.

    Raises:
        ValueError: for a value below 0, of 1024 or more, NaN or not a whole number (never wrapped).

    Example:
        >>> encode_discrete(np.array([0, 1023])).tolist()
        [33024, 34047]
    """
    x = np.asarray(x)
    if x.dtype.kind == "f":
        check_finite(x, task_id=task_id, key=key)
        if (x != np.round(x)).any():
            bad = x[x != np.round(x)].flat[0]
            raise ValueError(f"discrete value {bad!r} is not a whole number{_where(task_id, key)}")
    elif x.dtype.kind not in "iub":
        raise TypeError(f"discrete values must be integers, got dtype {x.dtype}{_where(task_id, key)}")
    v = x.astype(np.int64, copy=False)
    bad = (v < 0) | (v >= NUM_BINS)
    if bad.any():
        raise ValueError(
            f"discrete value {int(v[bad].flat[0])} is outside [0, {NUM_BINS}){_where(task_id, key)}: "
            f"discrete observations and actions must be small non-negative integers "
            f"(envs/convention.py); recode the value in the env wrapper."
        )
    return np.asarray(v + DISCRETE_OFFSET)


def decode_discrete(tokens: np.ndarray) -> np.ndarray:
    """Discrete token ids to their int64 values ``token - 33024``.

    Raises:
        ValueError: if a token is outside ``[33024, 34048)``.
    """
    tokens = _check_range(tokens, DISCRETE_OFFSET, DISCRETE_OFFSET + NUM_BINS, "discrete")
    return np.asarray(tokens - DISCRETE_OFFSET)


# ---------------------------------------------------------------------------------------------
# Locations (grounding answers)
# ---------------------------------------------------------------------------------------------


def encode_location(fractions: np.ndarray) -> np.ndarray:
    """Coordinates as fractions of the image side, in ``[0, 1]``, to ids in ``[34050, 34178)``.

    ``bin = min(floor(f * 128), 127)``; the token is ``34050 + bin``. Decoding gives the bin
    centre, so a coordinate comes back within half a bin (``0.5 / 128`` of the side).

    Raises:
        ValueError: for NaN, inf or a fraction outside ``[0, 1]`` (a point outside the image).

    Example:
        >>> encode_location(np.array([0.0, 0.5, 1.0])).tolist()
        [34050, 34114, 34177]
    """
    f = np.asarray(fractions, dtype=np.float64)
    check_finite(f, key="location")
    if ((f < 0.0) | (f > 1.0)).any():
        bad = f[(f < 0.0) | (f > 1.0)].flat[0]
        raise ValueError(f"location {bad!r} is outside [0, 1]: a coordinate is a fraction of the image "
                         f"side, and a box must lie inside the image")
    bins = np.minimum(np.floor(f * NUM_LOCATION_BINS).astype(np.int64), NUM_LOCATION_BINS - 1)
    return np.asarray(bins + LOCATION_OFFSET)


def decode_location(tokens: np.ndarray) -> np.ndarray:
    """Location ids to the centres of their bins, fractions ``(bin + 0.5) / 128`` in ``(0, 1)``.

    Raises:
        ValueError: if a token is outside ``[34050, 34178)``.
    """
    tokens = _check_range(tokens, LOCATION_OFFSET, LOCATION_OFFSET + NUM_LOCATION_BINS, "location")
    return np.asarray((tokens - LOCATION_OFFSET + 0.5) / NUM_LOCATION_BINS)


def encode_box(box, *, width: int, height: int) -> np.ndarray:
    """A pixel box ``(x0, y0, x1, y1)`` of a ``width x height`` image to its 4 location ids.

    x is divided by the width and y by the height, then each is binned by `encode_location`.
    """
    box = np.asarray(box, dtype=np.float64).reshape(4)
    return encode_location(box / np.array([width, height, width, height], np.float64))


def decode_box(tokens: np.ndarray, *, width: int, height: int) -> np.ndarray:
    """4 location ids to a pixel box ``(x0, y0, x1, y1)``, float64, with ``x0 <= x1`` and ``y0 <= y1``.

    Each coordinate is its bin centre times the side; the two x (and the two y) are put in order,
    so a generated box with its corners swapped is still a box.

    Example:
        >>> decode_box(np.array([34050, 34082, 34114, 34177]), width=64, height=64).tolist()
        [0.25, 16.25, 32.25, 63.75]
    """
    tokens = np.asarray(tokens).reshape(-1)
    if tokens.shape != (4,):
        raise ValueError(f"a box is 4 location tokens (x0, y0, x1, y1), got {tokens.shape[0]}")
    f = decode_location(tokens) * np.array([width, height, width, height], np.float64)
    return np.array([min(f[0], f[2]), min(f[1], f[3]), max(f[0], f[2]), max(f[1], f[3])])


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _text_model():
    """The SentencePiece processor, loaded once from the installed `mistral-common` package."""
    import sentencepiece

    package, name = _TEXT_MODEL
    try:
        resource = importlib.resources.files(package).joinpath(name)
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"the text tokenizer needs the `{package}` package (it ships {name}); "
            f"install the project with `pip install -e .`"
        ) from e
    with importlib.resources.as_file(resource) as path:
        sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
    if sp.vocab_size() != TEXT_VOCAB:
        raise RuntimeError(f"{package}/{name} has {sp.vocab_size()} pieces, expected {TEXT_VOCAB}")
    return sp


@functools.lru_cache(maxsize=65536)
def _encode_text_cached(s: str) -> np.ndarray:
    ids = np.asarray(_text_model().encode(s, out_type=int), dtype=np.int64)
    ids.setflags(write=False)  # shared between callers through the cache
    return ids


def encode_text(s: str, *, bos: bool = False, eos: bool = False) -> np.ndarray:
    """Text to SentencePiece ids in ``[0, 32000)``, int64 (cached per distinct string).

    Args:
        s: the text.
        bos: prepend ``<s>`` (id 1).
        eos: append ``</s>`` (id 2), e.g. to end a caption so that generation can stop.

    Example:
        >>> encode_text("go to the red ball").tolist()
        [576, 298, 272, 2760, 4374]
    """
    if not isinstance(s, str):
        raise TypeError(f"encode_text expects a str, got {type(s).__name__}: {s!r}")
    ids = _encode_text_cached(s)
    parts = [np.array([TEXT_BOS])] * bos + [ids] + [np.array([TEXT_EOS])] * eos
    return np.concatenate(parts).astype(np.int64)  # always a fresh, writable array


def decode_text(ids: np.ndarray) -> str:
    """SentencePiece ids to text (``<s>``/``</s>`` are dropped).

    Raises:
        ValueError: if an id is not a text id (outside ``[0, 32000)``).

    Example:
        >>> decode_text(np.array([576, 298, 272, 2760, 4374]))
        'go to the red ball'
    """
    ids = _check_range(np.asarray(ids).reshape(-1), 0, TEXT_VOCAB, "text")
    return _text_model().decode(ids.tolist())


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def _check_images(img: np.ndarray, rank: int, what: str, task_id: str | None, key: str | None) -> None:
    where = _where(task_id, key)
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{what} must be a numpy uint8 array, got {type(img).__name__}{where}")
    if img.dtype != np.uint8:
        raise TypeError(
            f"{what} must be uint8 (pixels 0..255), got dtype {img.dtype}{where}; "
            f"convert with `(img * 255).astype(np.uint8)` if it holds floats in [0, 1]"
        )
    if img.ndim != rank:
        shape_s = "(H, W, C)" if rank == 3 else "(T, H, W, C)"
        raise ValueError(f"{what} must have shape {shape_s}, got shape {img.shape}{where}")
    h, w = img.shape[-3:-1]
    if h % PATCH_SIZE or w % PATCH_SIZE or h == 0 or w == 0:
        raise ValueError(
            f"{what} height and width must be positive multiples of {PATCH_SIZE}, got {h}x{w}{where}; "
            f"the env wrapper resizes or pads frames (envs/convention.py)"
        )


def patchify(images: np.ndarray) -> np.ndarray:
    """uint8 ``(..., H, W, C)`` to raw uint8 patches ``(..., num_patches, 16*16*C)``, raster order.

    Each patch is flattened row-major over ``(16, 16, C)``. No validation, no scaling: this is
    the vectorized core of `image_to_patches` (use `normalize_patches` on the result).
    """
    *lead, h, w, c = images.shape
    p = PATCH_SIZE
    x = images.reshape(*lead, h // p, p, w // p, p, c)  # (..., rows, 16, cols, 16, C)
    x = np.moveaxis(x, -4, -3)  # (..., rows, cols, 16, 16, C)
    return x.reshape(*lead, (h // p) * (w // p), p * p * c)


def normalize_patches(patches: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 ``(pixel / 255 * 2 - 1) / 4``: scaled to ``[-1, 1]``, then / sqrt(16)."""
    out = patches.astype(np.float32)
    out *= PATCH_SCALE
    out -= PATCH_SHIFT
    return out


def image_to_patches(img: np.ndarray, *, task_id: str | None = None, key: str | None = None) -> np.ndarray:
    """One uint8 ``(H, W, C)`` image to float32 patches ``(num_patches, 16*16*C)``.

    Non-overlapping 16x16 patches in raster order (row by row), each flattened row-major over
    ``(16, 16, C)``; pixels scaled to ``[-1, 1]`` and divided by 4.

    Raises:
        TypeError: if ``img`` is not a uint8 numpy array.
        ValueError: if it is not rank 3 or its sides are not positive multiples of 16.

    Example:
        >>> image_to_patches(np.full((32, 48, 3), 255, np.uint8)).shape
        (6, 768)
        >>> float(image_to_patches(np.zeros((16, 16, 3), np.uint8)).min())
        -0.25
    """
    _check_images(img, 3, "image", task_id, key)
    return normalize_patches(patchify(img))


def patch_positions(height: int, width: int) -> np.ndarray:
    """Row and column intervals of each 16x16 patch of an ``height x width`` image, int64 ``(P, 4)``.

    Columns are ``(row_from, row_to, col_from, col_to)``: the patch's pixel interval divided by
    the image side, quantized to 128 bins with ``floor(fraction * 128)``; ``to`` is exclusive,
    so ``0 <= from < to <= 128`` and the intervals of one row (or column) tile ``[0, 128)``.
    Raster order, like `image_to_patches`.

    Example:
        >>> patch_positions(32, 64).tolist()[:2]  # 2 rows x 4 columns
        [[0, 64, 0, 32], [0, 64, 32, 64]]
    """
    if height % PATCH_SIZE or width % PATCH_SIZE or height <= 0 or width <= 0:
        raise ValueError(f"image sides must be positive multiples of {PATCH_SIZE}, got {height}x{width}")

    def intervals(side: int) -> np.ndarray:
        edges = np.arange(0, side + 1, PATCH_SIZE, dtype=np.int64) * POSITION_BINS // side  # floor
        lo, hi = edges[:-1], np.maximum(edges[1:], edges[:-1] + 1)
        return np.stack([lo, hi], axis=1)  # (n, 2)

    rows, cols = intervals(height), intervals(width)
    nr, nc = len(rows), len(cols)
    return np.concatenate([np.repeat(rows, nc, axis=0), np.tile(cols, (nr, 1))], axis=1)
