"""`gato eval` on a gato-tiny checkpoint: report files and fields, unseen domains flagged, bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch

from datasets_gen.generate import Config as GenConfig, generate
from eval.evaluate import main as eval_main
from gato import checkpoint
from gato.configs import get_config
from gato.model import GatoModel
from gato.policy import GatoPolicy, MissingPromptError
from policies import make_policy
from report_checks import check_report_against_returns


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A gato-tiny checkpoint whose train config names one Meta-World dataset (2 episodes of 6 steps)."""
    root = tmp_path_factory.mktemp("eval")
    reach = str(root / "metaworld-reach")
    generate(GenConfig(task="metaworld-reach", policy="expert", episodes=2, out=reach, shard_size=2, max_steps=6))
    torch.manual_seed(0)
    cfg = get_config("gato-tiny")
    run_dir = root / "run"
    checkpoint.save(run_dir, GatoModel(cfg), cfg, step=3, train_config={"data": [reach], "config": cfg.name})
    return root, run_dir, reach


def test_eval_writes_report_and_flags_unseen_domains(run):
    root, run_dir, _ = run
    babyai = str(root / "babyai-goto-red-ball")
    generate(GenConfig(task="babyai-goto-red-ball", policy="expert", episodes=1, out=babyai, shard_size=1))
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
