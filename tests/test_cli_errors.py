"""Bad input through the real `gato` command line: each case runs in a subprocess and must exit
non-zero, print no traceback, name the bad value, and leave every file as it was (nothing written,
nothing changed, nothing left behind).

The cases are the ones a demanding new user tried (issue 11, "Where it stands"); checkpoint and
dataset corruption and pickle trust are covered in tests/test_trust.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Quiet and single-threaded: these are start-up checks, not workloads.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "GATO_DEBUG": "0", "PYTHONWARNINGS": "ignore"}


def gato(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gato.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env or ENV)


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory under ``root`` with a hash of its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    """A real one-episode BabyAI dataset (it passes `gato train`'s up-front dataset checks)."""
    from datasets_gen.generate import Config, generate

    out = tmp_path_factory.mktemp("data") / "goto"
    generate(Config(task="babyai-goto-red-ball", policy="expert", episodes=1, shard_size=1, out=str(out)))
    return out


def dataset(root: Path, source: Path, name: str = "ds", kept: list[int] | None = None) -> Path:
    """A copy of ``source`` under ``root`` (with the return filter's kept episodes replaced if given)."""
    d = root / name
    shutil.copytree(source, d)
    if kept is not None:
        meta = json.loads((d / "metadata.json").read_text())
        meta["filter"]["kept"] = kept
        (d / "metadata.json").write_text(json.dumps(meta))
    return d


def check_refused(tmp_path: Path, args: list[str], names: list[str], code: int | None = None) -> str:
    """Run ``gato *args`` in ``tmp_path``: non-zero exit, no traceback, every string of ``names`` in
    the message, at most two message lines (+ the usage hint), and no file changed or left behind."""
    before = snapshot(tmp_path)
    r = gato(*args, cwd=tmp_path)
    assert r.returncode != 0, (r.stdout, r.stderr)
    if code is not None:
        assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    for name in names:
        assert name in r.stderr, (name, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("(`gato")]
    assert 1 <= len(lines) <= 2, r.stderr
    assert lines[0].startswith(f"gato {args[0]}: error: ") or lines[0].startswith("gato: error: "), r.stderr
    assert snapshot(tmp_path) == before, "files changed"
    return r.stderr


# ----------------------------------------------------------------------------- "Errors are tracebacks"


def test_unknown_task_in_rollout(tmp_path):
    err = check_refused(tmp_path, ["rollout", "--task", "babyai-goto-red-bal"], ["'babyai-goto-red-bal'"], code=2)
    assert "babyai-goto-red-ball" in err  # the closest id is suggested


def test_bad_model_config_in_train(tmp_path, tiny_dataset):
    ds = dataset(tmp_path, tiny_dataset)
    check_refused(tmp_path, ["train", "--data", str(ds), "--out", "run", "--config", "gato-huge"],
                  ["--config gato-huge", "gato-tiny"], code=2)


@pytest.mark.parametrize("command", [
    ["rollout", "--task", "babyai-goto-red-ball", "--episodes", "0"],
    ["generate", "--task", "babyai-goto-red-ball", "--episodes", "0", "--out", "data"],
])
def test_zero_episodes(tmp_path, command):
    check_refused(tmp_path, command, ["--episodes 0"], code=2)


def test_empty_data_in_train(tmp_path, tiny_dataset):
    (tmp_path / "empty").mkdir()
    check_refused(tmp_path, ["train", "--data", "empty", "--out", "run", "--steps", "1"],
                  ["--data empty", "gato generate"], code=1)
    dataset(tmp_path, tiny_dataset, "filtered", kept=[])
    check_refused(tmp_path, ["train", "--data", "filtered", "--out", "run", "--steps", "1"],
                  ["--data filtered", "keeps no episode"], code=1)
    check_refused(tmp_path, ["train", "--data", "missing", "--out", "run"], ["--data missing", "no such directory"])


def test_train_and_eval_name_what_a_wrong_directory_holds(tmp_path, tiny_dataset):
    dataset(tmp_path / "many", tiny_dataset, "a")
    dataset(tmp_path / "many", tiny_dataset, "b")
    check_refused(tmp_path, ["train", "--data", "many", "--out", "run", "--steps", "1"],
                  ["--data many", "a directory of 2 datasets", "--data many/*"], code=1)
    (tmp_path / "old-run").mkdir()
    (tmp_path / "old-run" / "train_config.json").write_text("{}")
    check_refused(tmp_path, ["train", "--data", "old-run", "--out", "run", "--steps", "1"],
                  ["--data old-run", "a `gato train` run, not a dataset"], code=1)
    check_refused(tmp_path, ["eval", "--checkpoint", "many/a", "--tasks", "babyai-goto-red-ball"],
                  ["many/a", "no checkpoint", "it holds a dataset"], code=1)


def test_non_image_to_caption(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "run").mkdir()
    check_refused(tmp_path, ["caption", "notes.png", "--checkpoint", "run"], ["notes.png", "PNG or JPEG"], code=1)
    check_refused(tmp_path, ["caption", "missing.png", "--checkpoint", "run"], ["missing.png"], code=1)


# ----------------------------------------------------------------------------- "Bad state is left behind"


def test_generate_checks_the_task_and_the_expert_before_writing(tmp_path):
    check_refused(tmp_path, ["generate", "--task", "babyai-nope", "--out", "data"], ["'babyai-nope'"], code=2)
    check_refused(tmp_path, ["generate", "--task", "procgen-coinrun", "--policy", "expert", "--out", "data"],
                  ["--policy expert", "procgen-coinrun", "gato train-expert"], code=1)
    check_refused(tmp_path, ["generate", "--task", "babyai-goto-red-ball", "--policy", "missing.zip", "--out", "data"],
                  ["missing.zip"], code=1)


@pytest.mark.parametrize("flag,value", [("--steps", "0"), ("--batch-size", "0"), ("--prompt-prob", "2")])
def test_train_rejects_values_before_making_the_run_directory(tmp_path, tiny_dataset, flag, value):
    ds = dataset(tmp_path, tiny_dataset)
    check_refused(tmp_path, ["train", "--data", str(ds), "--out", "run", flag, value], [f"{flag} {value}"], code=2)


def test_train_expert_checks_before_writing(tmp_path):
    check_refused(tmp_path, ["train-expert", "--task", "dmc-cartpole-balance", "--hp", "{bad", "--out", "x"],
                  ["--hp {bad"], code=2)
    check_refused(tmp_path, ["train-expert", "--task", "babyai-goto", "--algo", "sac", "--out", "x"],
                  ["--algo sac", "babyai-goto"], code=2)


# ----------------------------------------------------------------------------- "Outputs are overwritten"


def test_rollout_refuses_another_runs_results(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"config": {"task": "metaworld-reach"}, "results": []}))
    check_refused(tmp_path, ["rollout", "--task", "babyai-goto-red-ball", "--episodes", "1"],
                  ["results.json", "--force"], code=1)


def test_train_refuses_another_commands_directory(tmp_path, tiny_dataset):
    ds = dataset(tmp_path, tiny_dataset)
    check_refused(tmp_path, ["train", "--data", str(ds), "--out", str(ds), "--steps", "1"],
                  [f"--out {ds}", "dataset", "--force"], code=1)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    check_refused(tmp_path, ["train", "--data", str(ds), "--out", "notes", "--steps", "1"],
                  ["--out notes", "no gato command wrote"], code=1)


def test_train_resume_with_changed_options_is_refused(tmp_path, tiny_dataset):
    ds = dataset(tmp_path, tiny_dataset)
    run = tmp_path / "run"
    run.mkdir()
    stored = {"data": [str(ds)], "out": "run", "config": "gato-tiny", "steps": 10, "seed": 0, "batch_size": 8}
    (run / "train_config.json").write_text(json.dumps(stored))
    err = check_refused(tmp_path, ["train", "--data", str(ds), "--out", "run", "--seed", "1", "--batch-size", "4"],
                        ["--seed was 0, now 1", "--batch-size was 8, now 4", "--allow-changes"], code=1)
    assert "--steps" not in err  # more steps is a plain resume


def test_eval_refuses_another_evaluations_report_before_loading(tmp_path):
    (tmp_path / "run").mkdir()  # never opened: the report check comes first
    (tmp_path / "report.json").write_text(json.dumps({"extra": {"evaluation": {"config": {"episodes": 3}}}}))
    check_refused(tmp_path, ["eval", "--checkpoint", "run", "--tasks", "babyai-goto-red-ball"],
                  ["report.json", "--force"], code=1)
    check_refused(tmp_path, ["eval", "--checkpoint", "missing-run"], ["--checkpoint missing-run"], code=1)


def test_score_and_info_name_the_bad_file(tmp_path):
    (tmp_path / "broken.json").write_text("{")
    check_refused(tmp_path, ["score", "broken.json"], ["broken.json"], code=1)
    check_refused(tmp_path, ["info", "nowhere"], ["nowhere"], code=1)


# ----------------------------------------------------------------------------- "The CLI is uneven"


def test_usage_errors_and_unknown_commands(tmp_path):
    check_refused(tmp_path, ["rollout", "--task", "babyai-goto-red-ball", "--episodes", "many"], ["'many'"], code=2)
    check_refused(tmp_path, ["rollout"], ["--task"], code=2)
    check_refused(tmp_path, ["trian"], ["'trian'", "train"], code=2)
    check_refused(tmp_path, ["tasks", "--domain", "mujoco"], ["--domain mujoco"], code=2)


def test_debug_shows_the_traceback(tmp_path):
    r = gato("--debug", "rollout", "--task", "nope", cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" in r.stderr and "unknown task id 'nope'" in r.stderr
    r = gato("rollout", "--task", "nope", cwd=tmp_path, env={**ENV, "GATO_DEBUG": "1"})
    assert "Traceback" in r.stderr


def test_version_help_and_no_leftovers(tmp_path):
    r = gato("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("gato ")
    r = gato("--help", cwd=tmp_path)
    assert r.returncode == 0 and "usage: gato" in r.stdout and "eval-language" in r.stdout
    for command in ("rollout", "train", "generate"):
        r = gato(command, "--help", cwd=tmp_path)
        assert r.returncode == 0
        assert r.stdout.startswith(f"usage: gato {command} ")
        assert "{None}" not in r.stdout and "(default: None)" not in r.stdout
        for line in r.stdout.splitlines():
            assert line.count("default") <= 1, line
    assert snapshot(tmp_path) == {}


def test_a_run_prints_results_not_configs_or_banners(tmp_path):
    r = gato("rollout", "--task", "babyai-goto-obj-s4", "--episodes", "2", "--policy", "expert", "--out", "r.json",
             "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Config(" not in r.stdout and "mean return" in r.stdout
    for banner in ("unmaintained", "Sampling rejected", "A.L.E:"):
        assert banner not in r.stdout + r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["results"][0]["task_id"] == "babyai-goto-obj-s4"
    # the same command again replaces its own file; another one needs --force
    assert gato("rollout", "--task", "babyai-goto-obj-s4", "--episodes", "2", "--policy", "expert", "--out", "r.json",
                "--no-progress", cwd=tmp_path).returncode == 0
    assert gato("rollout", "--task", "babyai-goto-obj-s4", "--episodes", "1", "--out", "r.json", "--force",
                "--no-progress", cwd=tmp_path).returncode == 0


def test_train_stores_dataset_paths_absolute(tmp_path, tiny_dataset, monkeypatch):
    # `gato eval --checkpoint RUN` reads the datasets from train_config.json, from any directory.
    from gato.train import Config, check_config

    monkeypatch.chdir(tiny_dataset.parent)
    cfg = check_config(Config(data=(tiny_dataset.name, "gato.multimodal:vl_text_sources"), out=str(tmp_path / "run")))
    assert cfg.data == (str(tiny_dataset), "gato.multimodal:vl_text_sources")
    assert not (tmp_path / "run").exists()  # checking writes nothing
