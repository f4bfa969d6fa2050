"""Return filtering as in the Gato paper (Reed et al. 2022, section 3.3 / appendix F).

"Expert return" is the highest windowed average of the expert's episode returns: with returns
r_0..r_{N-1} in episode order and window W = min(EXPERT_WINDOW, N),

    expert_return = max_j mean(r_j, ..., r_{j+W-1}),   j = 0..N-W

and an episode is kept if its return >= FRACTION * expert_return (for a negative expert return,
expert_return - (1 - FRACTION) * |expert_return|, see `threshold`). For a trained expert the paper
takes the windows over its training curve; our experts are fixed, so the windows run over the
generated episodes in index order (the result is then a little above their mean).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

EXPERT_WINDOW = 10
"""episodes per window of the expert-return average."""
FRACTION = 0.8
"""keep episodes with return >= FRACTION * expert return."""


def windowed_expert_return(returns: Sequence[float], window: int = EXPERT_WINDOW) -> float:
    """Highest average over ``window`` consecutive returns (the whole mean if fewer returns).

    Example:
        >>> windowed_expert_return([1.0, 2.0, 3.0, 10.0, 0.0], window=2)
        6.5
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no returns to compute an expert return from")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    w = min(window, r.size)
    c = np.concatenate([[0.0], np.cumsum(r)])
    return float(np.max((c[w:] - c[:-w]) / w))


def threshold(expert_return: float, fraction: float = FRACTION) -> float:
    """The lowest kept return: ``fraction * expert_return`` for a positive expert return.

    Written as ``expert - (1 - fraction) * |expert|`` so that a negative expert return (Atari Pong)
    gets a threshold *below* it, as for positive returns (``0.8 * -10`` would demand -8 > -10).

    Example:
        >>> threshold(10.0), threshold(-10.0)
        (8.0, -12.0)
    """
    return float(expert_return - (1.0 - fraction) * abs(expert_return))


def keep_mask(returns: Sequence[float], expert_return: float, fraction: float = FRACTION) -> np.ndarray:
    """(N,) bool: return >= `threshold` (expert_return, fraction)."""
    r = np.asarray(returns, dtype=np.float64)
    return r >= threshold(expert_return, fraction)
