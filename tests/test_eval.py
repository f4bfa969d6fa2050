"""Scoring: hand-computed normalized scores, failing references, rliable aggregates, report files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval.references import MissingReferenceError, Reference, load_references, reference
from policies.rollout import RolloutResult, save_results
from eval.scoring import InvertedReferenceError, aggregate, fraction_above, normalized_score


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
