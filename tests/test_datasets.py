"""Expert datasets: write/read round trip, resume after a kill, corrupt shards, spec checks, filtering, info."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import h5py
import numpy as np
import pytest

from datasets_gen import filtering
from datasets_gen.generate import Config, KILL_HOOK_ENV, finalize, generate
from datasets_gen.info import main as info_main
from datasets_gen.reader import CorruptShardError, DatasetError, DatasetSpecError, open_dataset
from policies import trust

TASK = "babyai-goto-red-ball"  # episodes of ~6 steps: the whole file runs in seconds
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_same_episode(a, b):
    assert a.task_id == b.task_id
    assert sorted(a.observations) == sorted(b.observations)
    for k in a.observations:
        if k == "text":
            assert list(a.observations[k]) == list(b.observations[k])
        else:
            np.testing.assert_array_equal(a.observations[k], b.observations[k])
            assert np.asarray(a.observations[k]).dtype == np.asarray(b.observations[k]).dtype
    for name in ("actions", "rewards", "terminations", "truncations"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "expert"
    return Config(task=TASK, policy="random", episodes=5, shard_size=2, seed=3, out=str(out))


@pytest.fixture(scope="module")
def dataset(cfg):
    generate(cfg, "test")
    return cfg.out


def test_round_trip_equals_rollout(cfg, dataset):
    from policies.rollout import rollout

    ref = rollout("random", TASK, cfg.episodes, seed=cfg.seed, record=True)
    ds = open_dataset(dataset)
    assert len(ds) == 5 and ds.task_id == TASK and ds.domain == "babyai"
    assert ds.metadata["seeds"] == [3, 4, 5, 6, 7]
    np.testing.assert_allclose(ds.returns, ref.returns)
    for i in range(5):
        assert_same_episode(ds.episode(i), ref.episodes[i])
        assert ds.episode_length(i) == ref.lengths[i]
    # a window is the same slice of the episode
    n = ds.episode_length(0)
    assert_same_episode(ds.window(0, 1, n), ref.episodes[0].slice(1, n))


def test_readable_with_h5py_alone(dataset):
    with h5py.File(os.path.join(dataset, "shard-00001.h5"), "r") as f:
        assert sorted(f) == ["episode_000002", "episode_000003"]
        g = f["episode_000002"]
        assert g.attrs["seed"] == 5 and f.attrs["task_id"] == TASK and f.attrs["policy"] == "random"
        t = len(g["actions"])
        assert g["observations/discrete"].shape == (t, 148)
        assert g["observations/text"].asstr()[0] == "go to the red ball"
        assert g["rewards"].dtype == np.float32 and g["terminations"].dtype == bool
        assert np.isclose(g.attrs["return"], g["rewards"][()].sum())


def test_resume_after_kill_equals_uninterrupted(cfg, dataset, tmp_path):
    out = tmp_path / "killed"
    code = (f"from datasets_gen.generate import main; main(['--task', '{TASK}', '--policy', 'random', "
            f"'--episodes', '5', '--shard-size', '2', '--seed', '3', '--out', '{out}'])")
    env = {**os.environ, KILL_HOOK_ENV: "1,0"}  # SIGKILL after episode 2 is in shard 1's tmp file
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert sorted(os.listdir(out))[:3] == ["SHA256SUMS", "config.json", "shard-00000.h5"]
    assert list(trust.read_sums(out / "SHA256SUMS")) == ["shard-00000.h5"]  # recorded as it was written
    assert any(".tmp" in n for n in os.listdir(out)) and not (out / "metadata.json").exists()
    with pytest.raises(DatasetError, match="rerun"):
        open_dataset(str(out))
    meta = generate(replace(cfg, out=str(out)), "test")  # same options: resumes
    assert [r["index"] for r in meta["episodes"]] == [0, 1, 2, 3, 4]
    assert not any(".tmp" in n for n in os.listdir(out))
    a, b = open_dataset(str(out)), open_dataset(dataset)
    assert len(a) == len(b) == 5
    for i in range(5):
        assert_same_episode(a.episode(i), b.episode(i))


def test_rerun_with_other_options_is_refused(cfg, dataset):
    with pytest.raises(ValueError, match="seed: existing 3 vs now 4"):
        generate(replace(cfg, seed=4), "test")


def test_corrupt_shard_names_file_and_episode(cfg, dataset, tmp_path):
    import shutil

    out = tmp_path / "corrupt"
    shutil.copytree(dataset, out)
    shard = out / "shard-00001.h5"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 3])  # truncated
    with pytest.raises(CorruptShardError, match=r"shard-00001\.h5: does not open as HDF5, truncated"):
        open_dataset(str(out))  # the quick check at open
    ds = open_dataset(str(out), verify="none")  # a shard damaged after opening: the read names it
    with pytest.raises(CorruptShardError, match=r"shard-00001\.h5: cannot read episode 3"):
        ds.episode(3)
    assert_same_episode(ds.episode(0), open_dataset(dataset).episode(0))  # other shards still readable
    assert_same_episode(ds.episode(4), open_dataset(dataset).episode(4))


def test_spec_mismatch_is_refused_showing_both(dataset, tmp_path):
    import shutil

    out = tmp_path / "spec"
    shutil.copytree(dataset, out)
    meta = json.loads((out / "metadata.json").read_text())
    meta["action_space"] = {"type": "Discrete", "n": 3}
    (out / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetSpecError) as e:
        open_dataset(str(out))
    msg = str(e.value)
    assert '"n": 3' in msg and '"n": 7' in msg  # recorded and registered action spaces both shown


def test_windowed_expert_return_by_hand():
    # windows of 2: (1+2)/2, (2+3)/2, (3+10)/2, (10+0)/2 -> best 6.5
    assert filtering.windowed_expert_return([1.0, 2.0, 3.0, 10.0, 0.0], window=2) == 6.5
    assert filtering.windowed_expert_return([4.0, 2.0], window=10) == 3.0  # fewer than a window: the mean
    assert filtering.windowed_expert_return([-3.0, -1.0, -2.0], window=1) == -1.0
    np.testing.assert_array_equal(filtering.keep_mask([1.0, 5.2, 5.19, 10.0], 6.5), [False, True, False, True])
    # negative expert return (Pong): threshold -10 - 0.2 * 10 = -12, below the expert
    np.testing.assert_array_equal(filtering.keep_mask([-12.0, -12.5, -3.0], -10.0), [True, False, True])


def test_filtering_by_hand_computed_returns(cfg, dataset):
    returns = open_dataset(dataset, filtered=False).returns
    expert = float(np.max(returns))
    meta = finalize(replace(cfg, expert_return=expert), dataset, "test", [])
    want = [i for i, r in enumerate(returns) if r >= 0.8 * expert]
    assert meta["filter"]["kept"] == want and meta["expert_return"] == expert
    ds = open_dataset(dataset)
    assert list(ds.indices) == want and len(open_dataset(dataset, filtered=False)) == 5
    meta = finalize(replace(cfg, expert_return=expert, filter=False), dataset, "test", [])
    assert meta["filter"]["kept"] == [0, 1, 2, 3, 4]
    # the random policy has no expert return of its own: nothing is filtered without one
    meta = finalize(cfg, dataset, "test", [])
    assert meta["expert_return"] is None and meta["filter"]["kept"] == [0, 1, 2, 3, 4]


def test_expert_policy_expert_return_is_windowed_max(tmp_path):
    meta = generate(Config(task=TASK, policy="expert", episodes=3, shard_size=3, out=str(tmp_path / "e"), window=2), "t")
    r = meta["returns"]
    assert meta["expert_return"] == pytest.approx(max((r[0] + r[1]) / 2, (r[1] + r[2]) / 2))
    assert meta["filter"]["kept"] == [i for i in range(3) if r[i] >= 0.8 * meta["expert_return"]]


def test_info_json_fields(dataset, capsys):
    info_main([dataset])
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    meta = json.loads(open(os.path.join(dataset, "metadata.json")).read())
    kept = [e for e in meta["episodes"] if e["index"] in set(meta["filter"]["kept"])]
    r = np.array([e["return"] for e in kept])
    assert info["episodes"] == len(kept)
    assert info["steps"] == sum(e["length"] for e in kept)
    assert info["return_mean"] == pytest.approx(r.mean()) and info["return_std"] == pytest.approx(r.std())
    assert info["task"] == TASK and info["policy"] == "random"


def test_two_workers_equal_one(cfg, dataset, tmp_path):
    meta = generate(replace(cfg, out=str(tmp_path / "w2"), workers=2), "test")
    a, b = open_dataset(meta_path := str(tmp_path / "w2")), open_dataset(dataset)
    assert meta_path and len(a) == len(b)
    for i in range(len(a)):
        assert_same_episode(a.episode(i), b.episode(i))


def test_reader_pickles_without_open_files(dataset):
    import pickle

    ds = open_dataset(dataset)
    first = ds.episode(1)  # opens a shard
    clone = pickle.loads(pickle.dumps(ds))  # e.g. sent to a DataLoader worker
    assert_same_episode(clone.episode(1), first)
    with pytest.raises(IndexError, match="window \\[0, 99\\)"):
        ds.window(0, 0, 99)
