"""`gato generate --suite experts`: filtered datasets for every task with an expert, resumed after a
real kill, the refusals, and the Ray path (tiny settings: 1-2 short episodes on 2 cheap tasks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datasets_gen import filtering, suite
from datasets_gen.generate import KILL_HOOK_ENV
from datasets_gen.reader import open_dataset
from envs.commandline import CommandError, UsageError
from policies import trust

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST, SECOND = "metaworld-reach", "babyai-goto-red-ball"  # built in this order (the longer episodes first)
# 1 Meta-World episode (one shard), 2 BabyAI episodes in 2 shards of 1: a kill in the second shard of
# the second task leaves the first task finished and the second half done
ARGS = ["--suite", "experts", "--tasks", FIRST, SECOND, "procgen-coinrun", "--data-episodes", "babyai", "2",
        "metaworld", "1", "--shard-sizes", "babyai", "1", "--max-steps", "20", "--workers", "1"]


def files(root: Path) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime_ns)}`` of every file under ``root``."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def check_filtered(path: Path) -> dict:
    """The dataset at ``path`` is finished and filtered at 80% of its expert return; its metadata."""
    meta = json.loads((path / "metadata.json").read_text())
    f = meta["filter"]
    assert f["enabled"] and f["fraction"] == filtering.FRACTION == 0.8
    assert f["threshold"] == filtering.threshold(meta["expert_return"], 0.8)
    assert f["kept"] == [r["index"] for r in meta["episodes"] if r["return"] >= f["threshold"]]
    with open_dataset(str(path)) as ds:
        assert len(ds) == len(f["kept"]) >= 1
    return meta


def test_suite_builds_filtered_datasets_and_resumes_after_a_kill(tmp_path, capsys):
    out = tmp_path / "experts"
    args = ARGS + ["--out", str(out)]
    # a real kill: the process SIGKILLs itself in the tmp file of the second task's second shard
    env = {**os.environ, KILL_HOOK_ENV: "1,0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "gato.cli", "generate", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert (out / FIRST / "metadata.json").is_file() and not (out / SECOND / "metadata.json").exists()
    assert list(trust.read_sums(out / SECOND / "SHA256SUMS")) == ["shard-00000.h5"]
    stored = json.loads((out / "suite.json").read_text())
    assert stored["tasks"][FIRST]["status"] == "done" and stored["tasks"][SECOND]["status"] == "pending"
    assert stored["tasks"]["procgen-coinrun"] == {"status": "skipped", "why": suite.NO_EXPERT}
    first = files(out / FIRST)
    shard0 = (out / SECOND / "shard-00000.h5").stat().st_mtime_ns

    # the same command again resumes: the first dataset untouched, the second keeps its first shard
    assert suite.main(args) == 0
    err = capsys.readouterr().err
    assert "data: 1 of 2 datasets exist" in err and "1 of 2 shards exist, generating 1" in err
    assert "skip procgen-coinrun: no expert" in err
    assert files(out / FIRST) == first
    assert (out / SECOND / "shard-00000.h5").stat().st_mtime_ns == shard0
    assert not any(".tmp" in p.name for p in (out / SECOND).iterdir())

    info = json.loads((out / "suite.json").read_text())
    assert info["format"] == suite.FORMAT and info["options"]["max_steps"] == 20
    for task, episodes in ((FIRST, 1), (SECOND, 2)):
        meta = check_filtered(out / task)
        row = info["tasks"][task]
        assert row["status"] == "done" and row["path"] == str(out / task)
        assert row["episodes"] == meta["episodes_recorded"] == episodes
        assert row["steps"] == meta["steps_recorded"] and row["kept"] == len(meta["filter"]["kept"])
        assert row["bytes"] == suite.dir_bytes(out / task) > 0 and row["seconds"] >= 0
        assert meta["command"].startswith(f"gato generate --task {task} --policy expert --episodes {episodes}")
    assert info["totals"]["datasets"] == 2 and info["totals"]["skipped"] == 1 and info["totals"]["pending"] == 0
    assert info["totals"]["bytes"] == sum(info["tasks"][t]["bytes"] for t in (FIRST, SECOND))

    # a finished suite is reused as it is; other shaping options are refused before anything is written
    before = files(out)
    assert suite.main(args) == 0
    assert {k: v for k, v in files(out).items() if k != "suite.json"} == {
        k: v for k, v in before.items() if k != "suite.json"}
    with pytest.raises(CommandError, match="--episodes-scale was 1.0, now 2.0"):
        suite.main(args + ["--episodes-scale", "2"])


def test_task_and_suite_exclude_each_other_and_unknown_suites_are_listed(tmp_path, capsys, monkeypatch):
    from gato import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["generate", "--suite", "experts", "--task", FIRST, "--out", "s"]) == 2
    err = capsys.readouterr().err
    assert f"--task {FIRST} and --suite experts exclude each other" in err and f"--tasks {FIRST}" in err
    assert cli.main(["generate", "--suite", "everything", "--out", "s"]) == 2
    err = capsys.readouterr().err
    assert "--suite 'everything': unknown suite" in err and "experts (every task with an expert" in err
    with pytest.raises(UsageError, match="--tasks 'babyai-goto-red-bal'"):
        suite.run_suite(suite.SuiteConfig(out="s", tasks=("babyai-goto-red-bal",)))
    with pytest.raises(UsageError, match="not a task of --domain metaworld"):
        suite.run_suite(suite.SuiteConfig(out="s", tasks=(SECOND,), domain="metaworld"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not a suite")
    with pytest.raises(CommandError, match="not a `gato generate --suite` run"):
        suite.run_suite(suite.SuiteConfig(out="mine", tasks=(SECOND,)))
    assert sorted(os.listdir(tmp_path)) == ["mine"]  # nothing written


def test_ray_missing_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(CommandError, match=r"--ray: Ray cannot be imported .*pip install 'ray\[default\]"):
        suite.run_suite(suite.SuiteConfig(out=str(tmp_path / "s"), tasks=(SECOND,), ray=True))
    assert not (tmp_path / "s").exists()


def test_suite_resumes_a_release_data_directory(tmp_path, capsys):
    # `gato release --data` holds the same per-task datasets without a suite.json
    out = tmp_path / "release-data"
    args = ["--suite", "experts", "--tasks", SECOND, "--data-episodes", "babyai", "1", "--max-steps", "20",
            "--out", str(out)]
    assert suite.main(args) == 0
    (out / "suite.json").unlink()
    before = files(out / SECOND)
    assert suite.main(args) == 0
    assert "data: 1 of 1 datasets exist" in capsys.readouterr().err
    assert files(out / SECOND) == before
    (out / "suite.json").unlink()
    (out / "notes.txt").write_text("not a dataset")
    with pytest.raises(CommandError, match="not a `gato generate --suite` run"):
        suite.main(args)


def test_generate_ray_missing_names_the_fix(tmp_path, monkeypatch):
    from datasets_gen.generate import Config, generate

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(CommandError, match=r"--ray: Ray cannot be imported .*pip install 'ray\[default\]"):
        generate(Config(task=SECOND, policy="random", episodes=2, out=str(tmp_path / "d"), ray=True), "test")


def test_the_suite_follows_eval_references():
    from eval.references import MissingReferenceError, reference

    tasks, left_out = suite.expert_tasks(0.5)
    for t in [t for t in tasks if t.startswith("babyai-")] + list(left_out):
        try:
            success = reference(t).expert_success
        except MissingReferenceError:
            success = None
        assert (t in tasks) == (success is not None and success >= 0.5), t
    plan = dict((t, (n, s)) for t, n, s in suite.dataset_plan(["babyai-goto-obj", "dmc-cartpole-balance"], scale=0.1))
    assert plan == {"babyai-goto-obj": (20, 20), "dmc-cartpole-balance": (2, 2)}
    assert suite.expert_config("dmc-cartpole-balance", 2, 2, "x").action_noise == 0.3


def test_ray_path_builds_the_datasets(tmp_path, capsys):
    ray = pytest.importorskip("ray")
    out = tmp_path / "experts"
    tasks = ("babyai-goto-red-ball", "babyai-goto-obj-s4")
    assert suite.main(["--suite", "experts", "--tasks", *tasks, "--data-episodes", "babyai", "1", "--max-steps", "20",
                       "--workers", "2", "--ray", "--out", str(out)]) == 0
    assert not ray.is_initialized()  # the Ray it started is shut down
    info = json.loads((out / "suite.json").read_text())
    for t in tasks:
        assert info["tasks"][t]["status"] == "done" and info["tasks"][t]["episodes"] == 1
        check_filtered(out / t)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["datasets"] == 2
