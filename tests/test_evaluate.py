"""`gato eval` on a gato-tiny checkpoint: report files and fields, unseen domains flagged, bad input."""

from __future__ import annotations

import json
import math

import pytest

from eval.evaluate import main as eval_main
from gato import checkpoint
from gato.configs import get_config
from gato.policy import GatoPolicy, MissingPromptError
from policies import make_policy
from report_checks import check_report_against_returns
from tiny import tiny_model


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_dataset):
    """A gato-tiny checkpoint whose train config names one Meta-World dataset (2 episodes of 6 steps)."""
    root = tmp_path_factory.mktemp("eval")
    reach = small_dataset("metaworld-reach", episodes=2, max_steps=6)
    model = tiny_model()
    run_dir = root / "run"
    checkpoint.save(run_dir, model, model.config, step=3, train_config={"data": [reach], "config": model.config.name})
    return root, run_dir, reach


def test_eval_writes_report_and_flags_unseen_domains(run, small_dataset):
    root, run_dir, _ = run
    babyai = small_dataset("babyai-goto-red-ball")
    out = root / "out" / "tiny.json"
    rc = eval_main(["--checkpoint", str(run_dir), "--tasks", "metaworld-reach", "babyai-goto-red-ball",
                    "--episodes", "2", "--max-steps", "4", "--prompt-data", babyai, "--out", str(out),
                    "--reps", "50", "--video", str(root / "videos")])
    assert rc == 0
    for suffix in (".json", ".md", ".png", ".results.json"):
        assert (root / "out" / f"tiny{suffix}").exists(), suffix
    report = json.loads(out.read_text())
    rows = {t["task_id"]: t for t in report["tasks"]}
    assert set(rows) == {"metaworld-reach", "babyai-goto-red-ball"}
    assert all(r["episodes"] == 2 and math.isfinite(r["normalized"]) for r in rows.values())
    check_report_against_returns(report, root / "out" / "tiny.results.json")
    assert {d["domain"] for d in report["domains"]} == {"metaworld", "babyai", "all"}
    info = report["extra"]["evaluation"]
    assert info["trained_domains"] == ["metaworld"]
    assert info["unseen_domain_tasks"] == ["babyai-goto-red-ball"]
    assert "never saw" in (root / "out" / "tiny.md").read_text()
    assert (root / "videos" / "metaworld-reach.gif").stat().st_size > 0


def test_missing_prompt_dataset_names_the_command(run):
    _, run_dir, _ = run
    with pytest.raises(MissingPromptError, match="gato generate --task dmc-cartpole-balance"):
        eval_main(["--checkpoint", str(run_dir), "--tasks", "dmc-cartpole-balance", "--episodes", "1",
                   "--out", str(run_dir / "r.json")])


def test_make_policy_from_a_run_directory(run):
    _, run_dir, _ = run
    for pi in (make_policy(str(run_dir), "metaworld-reach"),
               make_policy("gato", "metaworld-reach", checkpoint=str(run_dir))):
        assert isinstance(pi, GatoPolicy) and pi.num_action_tokens == 4
        assert len(pi.prompt) > 0 and len(pi.prompt) <= get_config("gato-tiny").max_len // 2
