"""Scoring: hand-computed normalized scores, failing references, rliable aggregates, intervals, report files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval.references import MissingReferenceError, Reference, load_references, reference
from policies.rollout import RolloutResult, save_results
from eval.scoring import (InvertedReferenceError, aggregate, bootstrap_means, count_at_least, fraction_above,
                          mean_interval, normalized_score)
from report_checks import check_report_against_returns


def _ref(random, expert, task_id="t-x"):
    return Reference(task_id, random, expert, "test", "hand", "hand")


def test_normalized_score_by_hand():
    assert normalized_score("atari-pong", -20.7) == pytest.approx(0.0)
    assert normalized_score("atari-pong", 14.6) == pytest.approx(1.0)
    assert normalized_score("atari-pong", -3.05) == pytest.approx(0.5)  # midpoint of -20.7 and 14.6
    assert normalized_score("atari-breakout", 30.5 + 28.8) == pytest.approx(2.0)  # (59.3 - 1.7) / 28.8
    assert normalized_score("procgen-coinrun", 7.5) == pytest.approx(0.5)  # R_min 5, R_max 10
    assert normalized_score("dmc-cheetah-run", 250.0) == pytest.approx(0.25)
    np.testing.assert_allclose(normalized_score("t-x", np.array([1.0, 3.0]), _ref(1.0, 5.0)), [0.0, 0.5])


@pytest.mark.parametrize("random, expert", [(1.0, 1.0), (2.0, 1.0)])
def test_inverted_reference_raises(random, expert):
    with pytest.raises(InvertedReferenceError, match="not above random"):
        normalized_score("t-x", 1.5, _ref(random, expert))


def test_missing_reference_raises_with_closest():
    with pytest.raises(MissingReferenceError, match="atari-pong"):
        reference("atari-png")


def test_reference_file_provenance_and_static_tables():
    refs = load_references()
    atari = [t for t in refs if t.startswith("atari-")]
    procgen = [t for t in refs if t.startswith("procgen-")]
    assert len(atari) == 57 and len(procgen) == 16
    assert (refs["atari-breakout"].random, refs["atari-breakout"].expert) == (1.7, 30.5)
    assert (refs["procgen-bigfish"].random, refs["procgen-bigfish"].expert) == (1.0, 40.0)
    for t, r in refs.items():
        assert r.random_source and r.expert_source, t
        if t.startswith(("atari-", "procgen-", "dmc-")):
            assert r.expert > r.random, t
        if t.startswith(("babyai-", "metaworld-")):
            assert "measured" in r.expert_source and "--episodes" in r.expert_source, t


def test_references_cover_the_registry():
    import envs

    refs = load_references()
    for domain in ("atari", "dmc", "procgen"):
        missing = [t for t in envs.task_ids(domain) if t not in refs]
        assert not missing, missing


def test_aggregate_by_hand():
    # 2 episodes x 4 tasks; the 8 scores sorted: 0, .1, .2, .3, 1, 1, 2, 2.
    scores = {"a": [0.0, 0.1], "b": [0.2, 0.3], "c": [1.0, 1.0], "d": [2.0, 2.0]}
    agg = aggregate(scores, reps=300)
    assert agg.mean == pytest.approx((0.05 + 0.25 + 1 + 2) / 4)  # mean of task means
    assert agg.median == pytest.approx((0.25 + 1.0) / 2)  # median of task means
    assert agg.iqm == pytest.approx((0.2 + 0.3 + 1 + 1) / 4)  # middle half of all 8 scores
    assert agg.n_at_least_half == 2 and agg.n_tasks == 4 and agg.n_runs == 2
    # a, b never reach 0.5 and c, d never leave it, whatever the resampling
    assert agg.n_at_least_half_ci == (2, 2)
    for m in ("mean", "median", "iqm"):
        lo, hi = agg.ci[m]
        assert lo <= getattr(agg, m) <= hi


def test_fraction_above_by_hand():
    np.testing.assert_allclose(fraction_above([0.0, 0.4, 0.5, 1.2], [0.0, 0.5, 1.0, 2.0]), [1.0, 0.5, 0.25, 0.0])


def _results():
    return [
        RolloutResult("atari-pong", "random", [0, 1], [-20.7, -20.7], [10, 12]),
        RolloutResult("atari-breakout", "random", [0, 1], [1.7, 30.5], [10, 12]),
        RolloutResult("procgen-coinrun", "expert", [0, 1], [10.0, 7.5], [5, 5], [True, False]),
    ]


def _saved(tmp_path):
    path = tmp_path / "results.json"
    save_results(str(path), _results())
    return path


def test_write_report_files_parse(tmp_path):
    from eval.report import write_report

    paths = write_report(_results(), str(tmp_path), extra_sections=[("Vision-language", "BLEU 0.1")], extra={"k": 1}, reps=200)
    report = json.loads(open(paths["json"]).read())
    rows = {(t["policy"], t["task_id"]): t for t in report["tasks"]}
    assert rows[("random", "atari-breakout")]["normalized"] == pytest.approx(0.5)
    assert rows[("expert", "procgen-coinrun")]["normalized"] == pytest.approx(0.75)
    assert rows[("expert", "procgen-coinrun")]["success_rate"] == pytest.approx(0.5)
    doms = {(d["policy"], d["domain"]): d for d in report["domains"]}
    assert doms[("random", "atari")]["mean"] == pytest.approx(0.25) and doms[("random", "atari")]["n_at_least_half"] == 1
    assert report["extra"] == {"k": 1}
    md = open(paths["markdown"]).read()
    assert "| random | atari | 2 |" in md and "## Vision-language" in md
    # coinrun's episodes score 1.0 and 0.5: resampled means 0.5, 0.75, 1 w.p. 1/4, 1/2, 1/4
    assert rows[("expert", "procgen-coinrun")]["normalized_ci"] == [0.5, 1.0]
    assert "| expert | procgen-coinrun | 2 | 8.750 | 75.0 [50.0, 100.0] |" in md
    # random: pong always 0; breakout's episodes score 0 and 1, so it counts unless both resampled are 0
    assert report["at_least_half"]["random"]["count"] == 1 and report["at_least_half"]["random"]["ci"] == [0, 1]
    assert report["at_least_half"]["expert"]["ci"] == [1, 1]
    assert "- random: 1 of 2 scored tasks at >= 50% of expert (50%; 95% interval 0-1)" in md
    assert "| 1/2 [0-1] |" in md and "percentile bootstrap" in md
    check_report_against_returns(report, _saved(tmp_path))
    assert open(paths["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_score_cli_prints_table(tmp_path, capsys):
    from eval.report import main

    path = tmp_path / "r.json"
    save_results(str(path), _results())
    assert main([str(path), "--reps", "200"]) == 0
    out = capsys.readouterr().out
    assert "| expert | procgen | 1 | 75.0" in out


def test_report_skips_unscorable_only_when_asked():
    from eval.report import build_report

    results = _results() + [RolloutResult("atari-nonexistent", "random", [0], [1.0], [3])]
    with pytest.raises(MissingReferenceError):
        build_report(results, reps=50)
    report = build_report(results, reps=50, skip_unscorable=True)
    assert [u[1] for u in report.unscored] == ["atari-nonexistent"] and len(report.tasks) == 3


def _pong(normalized):
    """Pong returns whose normalized scores are ``normalized`` (random -20.7, human 14.6)."""
    return [-20.7 + x * (14.6 + 20.7) for x in normalized]


def test_task_interval_all_equal_is_zero_width_at_the_normalized_value():
    from eval.report import build_report

    returns = [-3.05] * 7  # halfway between random and human
    (row,) = build_report([RolloutResult("atari-pong", "p", list(range(7)), returns, [1] * 7)], reps=200).tasks
    assert row.normalized == pytest.approx(0.5)
    assert row.normalized_ci == (row.normalized, row.normalized)
    assert mean_interval([0.25] * 3) == (0.25, 0.25) and mean_interval([-1.5]) == (-1.5, -1.5)


def test_task_interval_of_two_valued_returns_by_hand():
    from eval.report import build_report

    # 2 episodes at 0 and 1: the resampled mean is 0, 0.5 or 1 w.p. 1/4, 1/2, 1/4, so the 2.5th and
    # 97.5th percentiles are 0 and 1.
    (row,) = build_report([RolloutResult("atari-pong", "p", [0, 1], _pong([0, 1]), [1, 1])], reps=2000).tasks
    assert row.normalized == pytest.approx(0.5) and row.normalized_ci == pytest.approx((0.0, 1.0), abs=1e-12)
    # 19 episodes at 0 and 1 at 1: the resampled mean is Binomial(20, 0.05) / 20. P(0) = 0.358 > 0.025,
    # so the low bound is 0; P(<= 2) = 0.925 < 0.975 < P(<= 3) = 0.984, so the high bound is 3/20.
    scores = [0.0] * 19 + [1.0]
    (row,) = build_report([RolloutResult("atari-pong", "p", list(range(20)), _pong(scores), [1] * 20)]).tasks
    assert row.normalized == pytest.approx(0.05)
    assert row.normalized_ci == pytest.approx((0.0, 0.15), abs=1e-12)
    # reproducible, and independent of the other tasks of the report and of their order
    assert mean_interval(scores, key="atari-pong") == row.normalized_ci
    other = RolloutResult("atari-breakout", "p", [0, 1], [1.7, 30.5], [1, 1])
    this = RolloutResult("atari-pong", "p", list(range(20)), _pong(scores), [1] * 20)
    rows = {t.task_id: t for t in build_report([other, this]).tasks}
    assert rows["atari-pong"].normalized_ci == row.normalized_ci
    np.testing.assert_array_equal(bootstrap_means(scores, key="x"), bootstrap_means(scores, key="x"))


def test_count_interval_by_hand():
    above, below, straddles = [0.9, 1.0, 1.1, 0.95], [0.0, 0.1, -0.2], [0.0, 1.0]
    c = count_at_least({"a": above})
    assert (c.count, c.n_tasks, c.ci) == (1, 1, (1, 1))  # every resampled mean >= 0.9
    assert count_at_least({"b": below}).ci == (0, 0)  # every resampled mean <= 0.1
    # the straddling task counts unless both resampled episodes are 0 (probability 1/4)
    c = count_at_least({"a": above, "b": below, "s": straddles})
    assert (c.count, c.n_tasks, c.ci) == (2, 3, (1, 2))
    # two straddling tasks, resampled independently: 0, 1, 2 counted w.p. 1/16, 6/16, 9/16
    c = count_at_least({"a": above, "s": straddles, "t": straddles, "b": below}, reps=4000)
    assert (c.count, c.ci) == (3, (1, 3))
    # a task just below 50% with one high episode in 4: counts when >= 2 of 4 resampled are high
    # (probability 1 - 0.75^4 - 4 * 0.25 * 0.75^3 = 0.26), so the interval is 0-1 around a count of 0
    c = count_at_least({"n": [0.4, 0.4, 0.4, 0.7]})
    assert (c.count, c.ci) == (0, (0, 1))
