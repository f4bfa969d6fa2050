"""Expert-normalized scores and their per-domain aggregates (mean, median, IQM with rliable CIs).

The expert-normalized score of a return R on task t is ``(R - random_t) / (expert_t - random_t)``
(Gato, Reed et al. 2022, Section 4.1): 0 is the random policy, 1 the expert (Atari: human).
Aggregates follow Agarwal et al. 2021 and are computed by `rliable`, never by hand: the score
matrix is (episodes, tasks), and 95% confidence intervals come from the stratified bootstrap over
episodes within each task (``rliable.library.get_interval_estimates``).

Per-task intervals and the count of tasks at or above 50% of expert come from the same resamples
(`bootstrap_means`): each task's episodes are resampled with replacement ``reps`` times, from a
generator seeded by ``(seed, crc32(task_id))``, so a task's resamples do not depend on which other
tasks are in the report or on their order.

- A task's 95% interval is the percentile bootstrap of its mean normalized score: the 2.5th and
  97.5th percentiles (linear interpolation) of the ``reps`` resampled means. The normalized score
  is a linear function of the return (never a success rate), so no binomial (Wilson) interval
  applies. All-equal scores give the zero-width interval at that score. With few episodes the
  percentile bootstrap is too narrow (it cannot see outcomes that did not happen): with 5
  episodes the interval covers noticeably less than 95%.
- The count's 95% interval is a stratified bootstrap: each replication resamples the episodes
  within every task, recomputes every task mean and recounts the tasks at or above the threshold;
  the bounds are the 2.5th percentile (rounded down to an observed count) and the 97.5th
  (rounded up) of those counts.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from eval.references import Reference, reference

HALF_EXPERT = 0.5  # the paper's headline threshold: tasks at >= 50% of expert
CI_LEVEL = 0.95  # every interval of the report


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
        n_at_least_half_ci: (low, high) 95% stratified-bootstrap interval of ``n_at_least_half``
            (`count_at_least`, over all episodes of every task).
    """

    n_tasks: int
    n_runs: int
    mean: float
    median: float
    iqm: float
    ci: dict[str, tuple[float, float]]
    n_at_least_half: int
    task_means: dict[str, float] = field(default_factory=dict)
    n_at_least_half_ci: tuple[int, int] = (0, 0)


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
        n_at_least_half_ci=count_at_least(scores, HALF_EXPERT, reps=reps, seed=seed).ci,
    )


def fraction_above(task_means: Sequence[float], thresholds: Sequence[float]) -> np.ndarray:
    """Per threshold, the fraction of tasks whose mean normalized score is >= it (Gato Figure 5)."""
    x = np.asarray(task_means, dtype=np.float64)[None, :]  # (1, tasks)
    return np.mean(x >= np.asarray(thresholds, dtype=np.float64)[:, None], axis=1)  # (thresholds,)


def bootstrap_means(scores: Sequence[float], reps: int = 2000, seed: int = 0, key: str = "") -> np.ndarray:
    """(reps,) means of ``scores`` resampled with replacement (same size), reproducibly.

    Args:
        scores: one task's per-episode normalized scores.
        reps: bootstrap replications.
        seed: bootstrap seed.
        key: the task id; the generator is seeded by ``(seed, crc32(key))``.

    All-equal scores give ``reps`` copies of their mean (no rounding from resampling).
    """
    x = np.asarray(scores, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError(f"no episodes to bootstrap for {key!r}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    if np.all(x == x[0]):
        return np.full(reps, x.mean())
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    out = np.empty(reps)
    chunk = max(1, 2_000_000 // x.size)  # bounds the (chunk, episodes) index array
    for start in range(0, reps, chunk):
        n = min(chunk, reps - start)
        out[start:start + n] = x[rng.integers(0, x.size, size=(n, x.size))].mean(axis=1)
    return out


def mean_interval(scores: Sequence[float], reps: int = 2000, seed: int = 0, key: str = "",
                  level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile-bootstrap ``level`` interval of the mean of one task's per-episode scores.

    Example:
        >>> mean_interval([0.3, 0.3, 0.3])  # all equal: zero width
        (0.3, 0.3)
        >>> mean_interval([0.0, 1.0], reps=4000)  # resampled means 0, 0.5, 1 w.p. 1/4, 1/2, 1/4
        (0.0, 1.0)
    """
    means = bootstrap_means(scores, reps=reps, seed=seed, key=key)
    alpha = 1.0 - level
    lo, hi = np.quantile(means, [alpha / 2, 1.0 - alpha / 2])
    return float(lo), float(hi)


@dataclass
class CountInterval:
    """How many tasks have a mean normalized score at or above ``threshold``, with its interval.

    Attributes:
        count: tasks whose mean over all their episodes is >= ``threshold``.
        n_tasks: tasks counted.
        ci: (low, high) stratified-bootstrap interval of ``count`` at ``level``.
        threshold: the normalized-score threshold (0.5 = half of expert).
        level: the interval's coverage.
        reps: bootstrap replications.
    """

    count: int
    n_tasks: int
    ci: tuple[int, int]
    threshold: float = HALF_EXPERT
    level: float = CI_LEVEL
    reps: int = 2000


def count_at_least(scores: Mapping[str, Sequence[float]], threshold: float = HALF_EXPERT, reps: int = 2000,
                   seed: int = 0, level: float = CI_LEVEL) -> CountInterval:
    """The count of tasks at or above ``threshold`` and its stratified-bootstrap interval.

    Each replication resamples the episodes within every task (`bootstrap_means`, the same
    resamples as the per-task intervals), recomputes the task means and recounts. The interval is
    the ``(1 - level) / 2`` percentile of the counts, rounded down to an observed count, and the
    ``(1 + level) / 2`` percentile, rounded up.

    Args:
        scores: task id -> per-episode normalized scores (every episode is used).
        threshold: normalized-score threshold.
        reps: bootstrap replications.
        seed: bootstrap seed.
        level: interval coverage.

    Example:
        >>> c = count_at_least({"far-above": [0.9, 1.1], "far-below": [0.0, 0.1], "straddles": [0.0, 1.0]})
        >>> c.count, c.n_tasks, c.ci  # "straddles" counts unless both resampled episodes are 0
        (2, 3, (1, 2))
    """
    if not scores:
        raise ValueError("count_at_least() needs at least one task's scores.")
    counts = np.zeros(reps, dtype=np.int64)
    count = 0
    for task, s in scores.items():
        counts += bootstrap_means(s, reps=reps, seed=seed, key=task) >= threshold
        count += int(np.mean(np.asarray(s, dtype=np.float64)) >= threshold)
    alpha = 1.0 - level
    lo = int(np.quantile(counts, alpha / 2, method="lower"))
    hi = int(np.quantile(counts, 1.0 - alpha / 2, method="higher"))
    return CountInterval(count=count, n_tasks=len(scores), ci=(lo, hi), threshold=threshold, level=level, reps=reps)
