"""Expert-normalized scores and their per-domain aggregates (mean, median, IQM with rliable CIs).

The expert-normalized score of a return R on task t is ``(R - random_t) / (expert_t - random_t)``
(Gato, Reed et al. 2022, Section 4.1): 0 is the random policy, 1 the expert (Atari: human).
Aggregates follow Agarwal et al. 2021 and are computed by `rliable`, never by hand: the score
matrix is (episodes, tasks), and 95% confidence intervals come from the stratified bootstrap over
episodes within each task (``rliable.library.get_interval_estimates``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from eval.references import Reference, reference

HALF_EXPERT = 0.5  # the paper's headline threshold: tasks at >= 50% of expert


class InvertedReferenceError(ValueError):
    """A reference whose expert return is not above its random return."""


def check_reference(ref: Reference) -> Reference:
    """Raise `InvertedReferenceError` unless ``ref.expert > ref.random``."""
    if not ref.expert > ref.random:
        raise InvertedReferenceError(
            f"Reference of {ref.task_id!r} is inverted or empty: expert {ref.expert} is not above random "
            f"{ref.random} (expert source: {ref.expert_source}). A normalized score would be meaningless; "
            "fix the entry in eval/references.json (measure a better expert or report the task separately)."
        )
    return ref


def normalized_score(task_id: str, score: float | np.ndarray, ref: Reference | None = None) -> float | np.ndarray:
    """``(score - random) / (expert - random)`` for ``task_id``.

    Args:
        task_id: registry id.
        score: a return, or an array of returns.
        ref: the reference to use (default: `eval.references.reference(task_id)`).

    Raises:
        MissingReferenceError: no reference for the task.
        InvertedReferenceError: expert return not above random.

    Example:
        >>> round(normalized_score("atari-pong", -3.05), 6)  # halfway between -20.7 and 14.6
        0.5
    """
    ref = check_reference(ref if ref is not None else reference(task_id))
    out = (np.asarray(score, dtype=np.float64) - ref.random) / (ref.expert - ref.random)
    return float(out) if np.ndim(out) == 0 else out


@dataclass
class Aggregate:
    """Aggregates of one group of tasks (typically one policy on one domain).

    Attributes:
        n_tasks: tasks in the group.
        n_runs: episodes per task used (the rliable "runs" axis; tasks are cut to the smallest count).
        mean, median, iqm: point estimates over the (runs, tasks) normalized-score matrix.
        ci: per metric, the (low, high) 95% stratified-bootstrap interval.
        n_at_least_half: tasks whose mean normalized score is >= 0.5.
        task_means: per task, the mean normalized score over all its episodes.
    """

    n_tasks: int
    n_runs: int
    mean: float
    median: float
    iqm: float
    ci: dict[str, tuple[float, float]]
    n_at_least_half: int
    task_means: dict[str, float] = field(default_factory=dict)


METRICS = ("mean", "median", "iqm")


def aggregate(scores: Mapping[str, Sequence[float]], reps: int = 2000, seed: int = 0) -> Aggregate:
    """Mean, median and IQM of per-episode normalized scores, with rliable 95% CIs.

    Args:
        scores: task id -> per-episode normalized scores.
        reps: bootstrap replications.
        seed: bootstrap seed (the CIs are reproducible).
    """
    from rliable import library as rly
    from rliable import metrics

    if not scores:
        raise ValueError("aggregate() needs at least one task's scores.")
    tasks = list(scores)
    n_runs = min(len(scores[t]) for t in tasks)
    if n_runs == 0:
        raise ValueError(f"a task has no episodes: {[t for t in tasks if len(scores[t]) == 0]}")
    matrix = np.stack([np.asarray(scores[t], dtype=np.float64)[:n_runs] for t in tasks], axis=1)  # (runs, tasks)

    def all_metrics(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_mean(x), metrics.aggregate_median(x), metrics.aggregate_iqm(x)])

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # arch's random_state deprecation inside rliable
        points, intervals = rly.get_interval_estimates(
            {"x": matrix}, all_metrics, reps=reps, random_state=np.random.RandomState(seed)
        )
    point, ci = points["x"], intervals["x"]  # (3,), (2, 3)
    task_means = {t: float(np.mean(scores[t])) for t in tasks}
    return Aggregate(
        n_tasks=len(tasks), n_runs=n_runs, mean=float(point[0]), median=float(point[1]), iqm=float(point[2]),
        ci={m: (float(ci[0, k]), float(ci[1, k])) for k, m in enumerate(METRICS)},
        n_at_least_half=int(sum(v >= HALF_EXPERT for v in task_means.values())),
        task_means=task_means,
    )


def fraction_above(task_means: Sequence[float], thresholds: Sequence[float]) -> np.ndarray:
    """Per threshold, the fraction of tasks whose mean normalized score is >= it (Gato Figure 5)."""
    x = np.asarray(task_means, dtype=np.float64)[None, :]  # (1, tasks)
    return np.mean(x >= np.asarray(thresholds, dtype=np.float64)[:, None], axis=1)  # (thresholds,)
