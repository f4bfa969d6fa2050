"""`gato demo --smoke`: the whole pipeline (data, training, closed-loop eval, report) in seconds."""

from __future__ import annotations

import json
import math

from gato.demo import main as demo_main
from report_checks import check_report_against_returns


def test_smoke_demo_end_to_end_and_rerun_resumes(tmp_path, capsys):
    out, data = tmp_path / "run", tmp_path / "data"
    args = ["--smoke", "--tasks", "metaworld-reach", "--out", str(out), "--data", str(data)]
    assert demo_main(args) == 0
    for name in ("report.json", "report.md", "report.png", "report.results.json", "demo_config.json",
                 "demo_state.json"):
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text())
    (row,) = report["tasks"]
    assert row["task_id"] == "metaworld-reach" and row["policy"] == "gato:model" and row["episodes"] == 2
    assert math.isfinite(row["normalized"]) and math.isfinite(row["mean_return"])
    check_report_against_returns(report, out / "report.results.json")
    assert {d["domain"] for d in report["domains"]} == {"metaworld", "all"}
    assert all(math.isfinite(d["mean"]) for d in report["domains"])
    assert report["extra"]["evaluation"]["checkpoint_step"] == 8
    printed = capsys.readouterr().out
    assert "tasks at >= 50% of expert" in printed and "% interval " in printed
    # a rerun finds the data, the finished training and the cached evaluation
    assert demo_main(args) == 0
    printed = capsys.readouterr()
    assert "(cached)" in printed.err and "data metaworld-reach" not in printed.err  # stage logs: stderr
    assert "tasks at >= 50% of expert" in printed.out and "(cached)" not in printed.out  # results: stdout


def test_a_reused_dataset_must_match_the_plan(tmp_path):
    """A finished dataset is reused only with the planned episode count and action noise."""
    import pytest

    from gato.demo import DemoConfig, check_reused_dataset, dataset_plan

    plan = {t: (n, noise) for t, n, _, noise in dataset_plan(DemoConfig())}
    assert plan["dmc-cartpole-balance"] == (20, 0.3) and plan["metaworld-reach"] == (100, 0.0)
    (tmp_path / "config.json").write_text(json.dumps({"episodes": 20}))  # written before --action-noise
    check_reused_dataset(str(tmp_path), 20, 0.0)
    with pytest.raises(ValueError, match="holds 20 episodes with action noise 0, the demo now builds 20 with noise 0.3"):
        check_reused_dataset(str(tmp_path), 20, 0.3)
