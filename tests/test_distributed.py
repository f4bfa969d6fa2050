"""DDP on CPU: two gloo processes train gato-tiny and stay in sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from gato import checkpoint


def test_two_cpu_processes_keep_identical_parameters(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "gato.train", "--data", "gato.data:synthetic_source", "--config", "gato-tiny", "--sequence-length", "64",
           "--steps", "3", "--batch-size", "2", "--checkpoint-every", "2", "--log-every", "1",
           "--threads", "1", "--no-tensorboard", "--no-progress", "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    state = json.loads((checkpoint.latest(out) / "state.json").read_text())
    assert state["step"] == 3 and state["world_size"] == 2
    a, b = state["replica_fingerprints"]
    assert a == b  # the trainer also raises if they differ
    assert {p.name for p in checkpoint.latest(out).glob("rng-rank*.json")} == {"rng-rank0.json", "rng-rank1.json"}
    # both processes' data reached the logged loss: 2 processes x 2 sequences per step
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4  # header + 3 steps
