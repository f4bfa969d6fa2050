"""The normalized-score report: per-task rows, per-domain aggregates, JSON + Markdown + PNG.

`build_report` turns `RolloutResult`s (any policies, any tasks) into a `Report`;
`write_report` writes ``report.json``, ``report.md`` and ``report.png`` (the fraction of tasks at
or above each expert-normalized threshold, like Gato's Figure 5). Later stages add their own
material without a new report: more `RolloutResult`s (e.g. policy ``"gato-79m"``) become more
rows, and ``extra_sections`` / ``Report.extra`` carry anything else (vision-language metrics, ...).

Intervals (all 95%, reproducible from ``seed``; see `eval.scoring`): each task row carries the
percentile bootstrap of its mean normalized score over its episodes (``TaskRow.normalized_ci``),
and each policy the count of tasks at or above 50% of expert with its stratified-bootstrap
interval (``Report.at_least_half``; `at_least_half_line` prints it).

CLI::

    gato score results.json [more.json ...] [--out reports/]
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from envs import domain_of
from envs.atomic import atomic_path, atomic_write_json, atomic_write_text
from eval.references import reference
from policies.rollout import RolloutResult, load_results
from eval.scoring import (CI_LEVEL, HALF_EXPERT, Aggregate, aggregate, count_at_least, fraction_above,
                          mean_interval, normalized_score)

THRESHOLDS = tuple(np.round(np.linspace(0.0, 1.0, 21), 2).tolist())  # 0%, 5%, ..., 100% of expert
ALL = "all"


@dataclass
class TaskRow:
    """One policy on one task.

    Attributes:
        normalized: mean expert-normalized score over the task's episodes.
        normalized_ci: (low, high) 95% percentile-bootstrap interval of ``normalized`` over the
            episodes (`eval.scoring.mean_interval`; zero width when all episodes score the same).
    """

    policy: str
    task_id: str
    domain: str
    episodes: int
    mean_return: float
    std_return: float
    normalized: float
    normalized_ci: tuple[float, float]
    success_rate: float | None
    random_ref: float
    expert_ref: float
    expert_kind: str


@dataclass
class DomainRow(Aggregate):
    """One policy on one domain (or ``"all"`` tasks): the `Aggregate` of its normalized scores, labelled.

    Attributes:
        policy, domain: the row's labels.
        success_rate: mean success rate over the tasks that report success (None if none does).
    """

    policy: str = ""
    domain: str = ""
    success_rate: float | None = None


@dataclass
class Report:
    """Everything `write_report` writes.

    Attributes:
        tasks: per (policy, task) rows, in input order.
        domains: per (policy, domain) aggregates, plus (policy, ``"all"``).
        thresholds: normalized-score thresholds of the Figure-5 curve.
        fraction_above: ``{policy: {domain: [fraction of tasks >= threshold, ...]}}``.
        extra_sections: (title, Markdown body) appended to ``report.md`` by later stages.
        extra: free JSON-able payload stored under ``"extra"`` in ``report.json``.
        unscored: (policy, task, reason) of results left out with ``skip_unscorable=True``.
        at_least_half: per policy, the count of its tasks at or above 50% of expert with its 95%
            stratified-bootstrap interval: ``{"count", "n_tasks", "ci": [low, high], "threshold",
            "level", "reps"}`` (`eval.scoring.CountInterval`).
        intervals: how every interval of the report was computed (method, level, reps, seed).
    """

    tasks: list[TaskRow]
    domains: list[DomainRow]
    thresholds: list[float]
    fraction_above: dict[str, dict[str, list[float]]]
    extra_sections: list[tuple[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    unscored: list[tuple[str, str, str]] = field(default_factory=list)
    at_least_half: dict[str, dict[str, Any]] = field(default_factory=dict)
    intervals: dict[str, Any] = field(default_factory=dict)



def build_report(
    results: Sequence[RolloutResult], reps: int = 2000, seed: int = 0, skip_unscorable: bool = False
) -> Report:
    """Normalize every result and aggregate per (policy, domain) with rliable.

    Args:
        results: any policies on any tasks.
        reps: bootstrap replications for the CIs.
        seed: bootstrap seed.
        skip_unscorable: leave out (and list in ``Report.unscored``) results whose task has a
            missing or inverted reference, instead of raising.

    Raises:
        MissingReferenceError / InvertedReferenceError: a task without a usable reference.
    """
    from eval.references import MissingReferenceError
    from eval.scoring import InvertedReferenceError, check_reference

    if not results:
        raise ValueError("build_report() got no rollout results.")
    task_rows: list[TaskRow] = []
    per_episode: dict[tuple[str, str], dict[str, np.ndarray]] = {}  # (policy, domain) -> task -> scores
    successes: dict[tuple[str, str], list[float]] = {}
    unscored: list[tuple[str, str, str]] = []
    for r in results:
        try:
            ref = check_reference(reference(r.task_id))
        except (MissingReferenceError, InvertedReferenceError) as e:
            if not skip_unscorable:
                raise
            unscored.append((r.policy, r.task_id, str(e).split(". ")[0]))
            continue
        norm = np.atleast_1d(normalized_score(r.task_id, np.asarray(r.returns), ref))  # (E,)
        domain = domain_of(r.task_id)
        task_rows.append(TaskRow(
            policy=r.policy, task_id=r.task_id, domain=domain, episodes=len(r.returns), mean_return=r.mean_return,
            std_return=float(np.std(r.returns)), normalized=float(norm.mean()),
            normalized_ci=mean_interval(norm, reps=reps, seed=seed, key=r.task_id), success_rate=r.success_rate,
            random_ref=ref.random, expert_ref=ref.expert, expert_kind=ref.expert_kind,
        ))
        for key in ((r.policy, domain), (r.policy, ALL)):
            per_episode.setdefault(key, {})[r.task_id] = norm
            if r.success_rate is not None:
                successes.setdefault(key, []).append(r.success_rate)
    domain_rows: list[DomainRow] = []
    fractions: dict[str, dict[str, list[float]]] = {}
    for (policy, domain), scores in per_episode.items():
        agg: Aggregate = aggregate(scores, reps=reps, seed=seed)
        sr = successes.get((policy, domain))
        domain_rows.append(DomainRow(**vars(agg), policy=policy, domain=domain,
                                     success_rate=None if not sr else float(np.mean(sr))))
        fractions.setdefault(policy, {})[domain] = fraction_above(list(agg.task_means.values()), THRESHOLDS).tolist()
    domain_rows.sort(key=lambda d: (d.policy, d.domain == ALL, d.domain))
    if not task_rows:
        raise ValueError(f"no result could be scored: {unscored}")
    at_least_half = {policy: asdict(count_at_least(scores, HALF_EXPERT, reps=reps, seed=seed))
                     for (policy, domain), scores in per_episode.items() if domain == ALL}
    intervals = {"level": CI_LEVEL, "reps": reps, "seed": seed,
                 "task": "percentile bootstrap of the mean normalized score over the task's episodes",
                 "at_least_half": "stratified bootstrap (episodes resampled within each task), percentiles of the count",
                 "domain": "rliable stratified bootstrap"}
    return Report(task_rows, domain_rows, list(THRESHOLDS), fractions, unscored=unscored,
                  at_least_half=at_least_half, intervals=intervals)


def at_least_half_line(report: Report, policy: str) -> str:
    """``"4 of 5 scored tasks at >= 50% of expert (80%; 95% interval 3-5)"`` for ``policy``."""
    c = report.at_least_half.get(policy)
    if not c or not c["n_tasks"]:
        return "0 of 0 scored tasks at >= 50% of expert"
    lo, hi = c["ci"]
    return (f"{c['count']} of {c['n_tasks']} scored tasks at >= 50% of expert "
            f"({100 * c['count'] / c['n_tasks']:.0f}%; {100 * c['level']:.0f}% interval {lo}-{hi})")


def _fmt(x: float | None, pct: bool = True) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}" if pct else f"{x:.2f}"


def format_domain_table(report: Report) -> str:
    """Markdown: per (policy, domain) mean / median / IQM in % of expert, tasks >= 50%, with 95% CIs."""
    lines = ["| policy | domain | tasks | mean % [95% CI] | median % [95% CI] | IQM % [95% CI] | tasks >= 50% [95% CI] | success % |",
             "| --- | --- | ---: | --- | --- | --- | ---: | ---: |"]
    for d in report.domains:
        cells = [f"{_fmt(getattr(d, m))} [{_fmt(d.ci[m][0])}, {_fmt(d.ci[m][1])}]" for m in ("mean", "median", "iqm")]
        lines.append(f"| {d.policy} | {d.domain} | {d.n_tasks} | " + " | ".join(cells)
                     + f" | {d.n_at_least_half}/{d.n_tasks} [{d.n_at_least_half_ci[0]}-{d.n_at_least_half_ci[1]}]"
                     + f" | {_fmt(d.success_rate)} |")
    return "\n".join(lines)


def format_task_table(report: Report) -> str:
    """Markdown: per (policy, task) mean return, normalized score ``52.1 [31.0, 70.2]`` (95% CI), success rate."""
    lines = ["| policy | task | episodes | mean return | normalized % [95% CI] | success % | random ref | expert ref |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for t in report.tasks:
        lines.append(f"| {t.policy} | {t.task_id} | {t.episodes} | {t.mean_return:.3f} | {_fmt(t.normalized)} "
                     f"[{_fmt(t.normalized_ci[0])}, {_fmt(t.normalized_ci[1])}] | "
                     f"{_fmt(t.success_rate)} | {t.random_ref:g} | {t.expert_ref:g} ({t.expert_kind}) |")
    return "\n".join(lines)


def to_markdown(report: Report) -> str:
    parts = ["# Expert-normalized scores", "",
             "Normalized score = (return - random) / (expert - random); aggregates by rliable over "
             "(episodes, tasks), 95% stratified-bootstrap CIs. Per task: 95% percentile bootstrap of the "
             "mean over the task's episodes. Tasks >= 50%: 95% stratified bootstrap (episodes resampled "
             "within each task, tasks recounted).", ""]
    parts += [f"- {policy}: {at_least_half_line(report, policy)}" for policy in report.at_least_half]
    parts += ["", "## Per domain", "",
             format_domain_table(report), "", "## Per task", "", format_task_table(report)]
    if report.unscored:
        parts += ["", "## Not scored (no usable reference)", ""]
        parts += [f"- {policy} on {task}: {why}" for policy, task, why in report.unscored]
    for title, body in report.extra_sections:
        parts += ["", f"## {title}", "", body]
    return "\n".join(parts) + "\n"


def plot_fraction_above(report: Report, path: str) -> None:
    """PNG: fraction of tasks at or above each normalized threshold, one panel per policy (Gato Fig. 5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(report.fraction_above)
    fig, axes = plt.subplots(1, len(policies), figsize=(4.5 * len(policies), 3.6), squeeze=False)
    x = 100 * np.asarray(report.thresholds)
    for ax, policy in zip(axes[0], policies):
        for domain, frac in report.fraction_above[policy].items():
            style = dict(color="k", lw=2.5) if domain == ALL else dict(lw=1.5)
            ax.plot(x, 100 * np.asarray(frac), label=domain, drawstyle="steps-post", **style)
        ax.axvline(100 * HALF_EXPERT, color="grey", ls=":", lw=1)
        ax.set(title=policy, xlabel="score threshold (% of expert)", ylabel="tasks at or above (%)",
               xlim=(0, 100), ylim=(0, 102))
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(
    results: Sequence[RolloutResult] | Report,
    out_dir: str,
    extra_sections: Sequence[tuple[str, str]] = (),
    extra: dict[str, Any] | None = None,
    reps: int = 2000,
) -> dict[str, str]:
    """Write ``report.json``, ``report.md`` and ``report.png`` into ``out_dir``.

    Args:
        results: rollout results (normalized and aggregated here) or an already built `Report`.
        out_dir: created if missing.
        extra_sections: (title, Markdown) sections appended to the Markdown report.
        extra: JSON-able payload merged into ``report.extra``.
        reps: bootstrap replications when ``results`` are rollout results.

    Returns:
        ``{"json": path, "markdown": path, "png": path}``.
    """
    report = results if isinstance(results, Report) else build_report(results, reps=reps)
    report.extra_sections = list(report.extra_sections) + list(extra_sections)
    report.extra.update(extra or {})
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: os.path.join(out_dir, f"report.{ext}") for k, ext in (("json", "json"), ("markdown", "md"), ("png", "png"))}
    atomic_write_json(paths["json"], asdict(report))
    atomic_write_text(paths["markdown"], to_markdown(report))
    with atomic_path(paths["png"], suffix=".png") as tmp_png:
        plot_fraction_above(report, str(tmp_png))
    return paths


@dataclass
class ScoreConfig:
    """`gato score`: print the expert-normalized table of rollout result files."""

    results: tuple[str, ...]
    """Result JSON files written by `gato rollout` (or `policies.rollout.save_results`)."""
    out: str | None = None
    """If set, also write report.json, report.md and report.png into this directory (existing report
    files of other results are refused unless --force)."""
    per_task: bool = True
    """Also print the per-task table."""
    reps: int = 2000
    """Bootstrap replications for the 95% CIs."""
    skip_unscorable: bool = False
    """List tasks with a missing or inverted reference instead of failing."""
    force: bool = False
    """Replace report files in --out that were made from other results."""


def main(argv: list[str] | None = None) -> int:
    from envs.commandline import CommandError, at_least, changed_options, check_file, check_out_files, parse

    cfg = parse(ScoreConfig, argv, "gato score", positional=("results",))
    at_least(cfg.reps, 1, "--reps")
    results = []
    for path in cfg.results:
        check_file(path, "results")
        try:
            results += load_results(path)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CommandError(f"{path}: not a results file of `gato rollout` or `gato eval` ({e})") from None
    config = {"results": [os.path.abspath(p) for p in cfg.results], "reps": cfg.reps,
              "skip_unscorable": cfg.skip_unscorable}
    if cfg.out:
        def same(path) -> bool:  # an identical rerun may replace its own report
            try:
                with open(os.path.join(cfg.out, "report.json")) as f:
                    stored = json.load(f)["extra"]["score_config"]
            except (OSError, ValueError, KeyError, TypeError):
                return False
            return not changed_options(stored, config)

        check_out_files([os.path.join(cfg.out, f"report.{ext}") for ext in ("json", "md", "png")],
                        force=cfg.force, same=same)
    report = build_report(results, reps=cfg.reps, skip_unscorable=cfg.skip_unscorable)
    print(format_domain_table(report))
    if cfg.per_task:
        print()
        print(format_task_table(report))
    for policy, task, why in report.unscored:
        print(f"not scored: {policy} on {task}: {why}")
    if cfg.out:
        paths = write_report(report, cfg.out, extra={"score_config": config})
        print(f"\nwrote {', '.join(paths.values())}")
    return 0
