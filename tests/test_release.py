"""`gato release --smoke`: data, training, the release directory, evaluation and report, then
`gato eval` on the release from another directory with the training data and work files gone."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from datasets_gen.reader import open_dataset
from gato import checkpoint
from gato.release import MAX_CHECKPOINT_BYTES, SMOKE_TASKS, ReleaseConfig, check_config, main as release_main, prompt_timesteps
from report_checks import check_report_against_returns

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_smoke_release_end_to_end_and_evaluates_from_elsewhere(tmp_path, capsys):
    rel, work, data = tmp_path / "release", tmp_path / "work", tmp_path / "data"
    args = ["--smoke", "--out", str(rel), "--work", str(work), "--data", str(data)]
    assert release_main(args) == 0
    for name in ("model.safetensors", "config.json", "state.json", "train_config.json", "SHA256SUMS", "release.json",
                 "README.md", "report.json", "report.md", "report.png", "report.results.json"):
        assert (rel / name).is_file(), name
    assert not (rel / "optimizer.pt").exists()
    checkpoint.verify(rel)  # the release's SHA256SUMS holds
    info = json.loads((rel / "release.json").read_text())
    assert info["checkpoint_step"] == 6 and info["model_config"] == "gato-tiny"
    assert sorted(info["tasks"]) == sorted(SMOKE_TASKS) and info["skipped"] == {}
    assert (rel / "model.safetensors").stat().st_size == info["checkpoint_bytes"] <= MAX_CHECKPOINT_BYTES

    # each prompt dataset holds the first timesteps of its training dataset's best episode
    for task_id in SMOKE_TASKS:
        with open_dataset(str(rel / "prompts" / task_id)) as p, open_dataset(str(data / task_id)) as d:
            assert len(p) == 1 and p.task_id == task_id
            best = int(np.argmax(d.returns))
            k = p.episode_length(0)
            assert k == min(d.episode_length(best), prompt_timesteps("gato-tiny"))
            np.testing.assert_array_equal(p.episode(0).actions, d.window(best, 0, k).actions)

    report = json.loads((rel / "report.json").read_text())
    assert {r["task_id"] for r in report["tasks"]} == set(SMOKE_TASKS)
    assert all(r["policy"] == "gato:release" and r["episodes"] == 2 and math.isfinite(r["normalized"])
               for r in report["tasks"])
    check_report_against_returns(report, rel / "report.results.json")
    assert {d["domain"] for d in report["domains"]} == {"metaworld", "dmc", "all"}
    printed = capsys.readouterr().out
    assert "tasks at >= 50% of expert" in printed

    # a rerun finds the data, the finished training, the release and the cached evaluation
    assert release_main(args) == 0
    assert "eval: 2 of 2 tasks cached" in capsys.readouterr().err

    # without the training data and work files, from another directory, `gato eval` runs on the release
    shutil.rmtree(data)
    shutil.rmtree(work)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cmd = [sys.executable, "-m", "gato.cli", "eval", "--checkpoint", str(rel), "--tasks", "dmc-cartpole-balance",
           "--episodes", "1", "--max-steps", "5", "--no-progress", "--out", "eval/report.json"]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads((elsewhere / "eval" / "report.results.json").read_text())["results"]
    assert result["task_id"] == "dmc-cartpole-balance" and result["lengths"] == [5]
    assert result["metadata"]["prompt_dataset"] == str(rel / "prompts" / "dmc-cartpole-balance")


def test_release_tasks_are_the_tasks_with_experts(tmp_path):
    from eval.references import REFERENCES_PATH, reference

    cfg = ReleaseConfig(out=str(tmp_path / "out"), work=str(tmp_path / "work"), data=str(tmp_path / "data"))
    _, tasks, left_out = check_config(cfg)
    domains = {}
    for t in tasks:
        domains.setdefault(t.split("-")[0], []).append(t)
    assert len(domains["metaworld"]) == 50
    # the RAM-scripted games and the games whose measured search expert beats random
    with open(REFERENCES_PATH) as f:
        refs = json.load(f)["tasks"]
    searched = {t for t, e in refs.items() if t.startswith("atari-") and "search_expert" in e
                and e["search_expert"]["return"] > e["random"]["return"]}
    assert set(domains["atari"]) == {"atari-breakout", "atari-pong", "atari-freeway", "atari-boxing"} | searched
    assert "dmc-cartpole-balance" in domains["dmc"]
    assert all(reference(t).expert_success >= 0.5 for t in domains["babyai"])
    assert "babyai-key-in-box" in left_out and "babyai-key-in-box" not in tasks  # the bot never solves it
    assert len(tasks) == len(set(tasks))


def test_release_refuses_a_checkpoint_over_50_mb(tmp_path):
    with pytest.raises(Exception, match="over the release's 50 MB"):
        release_main(["--config", "gato-79m", "--out", str(tmp_path / "r"), "--work", str(tmp_path / "w"),
                      "--tasks", "metaworld-reach"])
    assert not (tmp_path / "r").exists() and not (tmp_path / "w").exists()


def test_a_resumed_release_keeps_the_tasks_it_started_with(tmp_path, capsys):
    import dataclasses
    import json

    from datasets_gen import suite

    cfg = ReleaseConfig(out=str(tmp_path / "out"), work=str(tmp_path / "work"), data=str(tmp_path / "data"))
    every, _ = suite.expert_tasks(cfg.babyai_min_success)
    started = [t for t in every if t != "atari-pong"]  # as if Pong's expert came after the first run
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "release_config.json").write_text(
        json.dumps({**dataclasses.asdict(cfg), "tasks_resolved": started}))
    _, tasks, _ = check_config(cfg)
    assert tasks == started
    assert "atari-pong" in capsys.readouterr().err
