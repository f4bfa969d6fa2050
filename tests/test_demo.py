"""`gato demo --smoke`: the whole pipeline (data, training, closed-loop eval, report) in seconds."""

from __future__ import annotations

import json
import math
import os

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


def test_idle_cores_counts_the_free_share_of_cpu_time(tmp_path, monkeypatch):
    """Between two reads of /proc/stat: 4 cores, 300 of 400 ticks idle -> 3; nice time counts as
    free (niced work yields); a machine with every core busy still gets 1 thread."""
    import gato.demo as demo

    stat = tmp_path / "stat"
    monkeypatch.setattr(demo.os, "cpu_count", lambda: 4)

    def cores(before: str, after: str) -> int:
        stat.write_text(f"cpu  {before} 0 0\ncpu0 1 2 3\n")
        monkeypatch.setattr(demo.time, "sleep", lambda s: stat.write_text(f"cpu  {after} 0 0\n"))
        return demo.idle_cores(stat=str(stat))

    # user nice system idle iowait irq softirq steal
    assert cores("10 0 10 100 0 0 0 0", "110 0 10 400 0 0 0 0") == 3
    assert cores("10 0 10 100 0 0 0 0", "110 200 10 200 0 0 0 0") == 3  # 200 nice + 100 idle free
    assert cores("0 0 0 0 0 0 0 0", "400 0 0 0 0 0 0 0") == 1
    assert cores("0 0 0 0 0 0 0 0", "200 0 0 150 50 0 0 0") == 2  # idle + iowait: 200 of 400


def test_a_reused_dataset_must_match_the_plan(tmp_path):
    """A finished dataset is reused only with the planned episode count and action noise."""
    import pytest

    import dataclasses

    from datasets_gen.generate import _check_identity
    from gato.demo import DemoConfig, dataset_plan, generate_config

    cfg = DemoConfig(data=str(tmp_path))
    plan = {t: (n, s, noise) for t, n, s, noise in dataset_plan(cfg)}
    assert plan["dmc-cartpole-balance"] == (20, 5, 0.3) and plan["metaworld-reach"] == (100, 10, 0.0)
    noisy = generate_config(cfg, "dmc-cartpole-balance", *plan["dmc-cartpole-balance"])
    assert noisy.out == str(tmp_path / "dmc-cartpole-balance") and noisy.action_noise == 0.3
    made = dataclasses.asdict(dataclasses.replace(noisy, action_noise=0.0))
    del made["action_noise"]  # a dataset written before --action-noise
    os.makedirs(noisy.out)
    (tmp_path / "dmc-cartpole-balance" / "config.json").write_text(json.dumps(made))
    _check_identity(noisy.out, dataclasses.replace(noisy, action_noise=0.0))
    with pytest.raises(ValueError, match="action_noise: existing 0.0 vs now 0.3"):
        _check_identity(noisy.out, noisy)
