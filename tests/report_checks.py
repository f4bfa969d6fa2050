"""Checks of a written report against its rollout results, recomputed by hand from the references."""

from __future__ import annotations

import json

import pytest

from eval.references import load_references


def check_report_against_returns(report: dict, results_path) -> None:
    """Every task row of ``report`` (a parsed ``report.json``) against ``<stem>.results.json``.

    The normalized score is recomputed here from the per-episode returns and the random / expert
    returns of `eval/references.json` (mean over episodes of ``(R - random) / (expert - random)``),
    not through `eval.scoring`. The row's 95% interval must contain it and lie within the range of
    the per-episode normalized scores; the count of tasks at or above 50% must match the rows.
    """
    with open(results_path) as f:
        results = {(r["policy"], r["task_id"]): r for r in json.load(f)["results"]}
    refs = load_references()
    assert report["tasks"], "the report has no task rows"
    for row in report["tasks"]:
        returns = results[(row["policy"], row["task_id"])]["returns"]
        ref = refs[row["task_id"]]
        per_episode = [(r - ref.random) / (ref.expert - ref.random) for r in returns]
        expected = sum(per_episode) / len(per_episode)
        assert row["episodes"] == len(returns)
        assert row["mean_return"] == pytest.approx(sum(returns) / len(returns))
        assert (row["random_ref"], row["expert_ref"]) == (ref.random, ref.expert)
        assert row["normalized"] == pytest.approx(expected, rel=1e-9, abs=1e-12), row["task_id"]
        lo, hi = row["normalized_ci"]
        assert min(per_episode) - 1e-12 <= lo <= expected + 1e-12, (row["task_id"], lo, expected)
        assert expected - 1e-12 <= hi <= max(per_episode) + 1e-12, (row["task_id"], hi, expected)
    for policy, c in report["at_least_half"].items():
        rows = [t for t in report["tasks"] if t["policy"] == policy]
        assert c["n_tasks"] == len(rows)
        assert c["count"] == sum(t["normalized"] >= 0.5 for t in rows)
        assert 0 <= c["ci"][0] <= c["ci"][1] <= c["n_tasks"]
