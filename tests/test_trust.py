"""Verified checkpoints, verified datasets and trusted loading (docs/trust.md).

Each failure case has a test: a bit flip or a truncation in a checkpoint is refused with its path
and resume falls back to the previous checkpoint; a garbled, truncated or deleted shard makes
`gato info --verify` fail naming it; resume regenerates an unlisted or corrupt shard; an SB3 zip
that is not pinned is refused without ``--allow-pickle``. Hypothesis feeds random bytes as
checkpoint files and as shards: the answer is always a typed error, never a crash or a success.
"""

from __future__ import annotations

import ast
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gato import checkpoint
from gato.checkpoint import CorruptCheckpointError
from gato.configs import get_config
from gato.model import GatoModel
from gato.train import Config as TrainConfig
from gato.train import train
from policies import trust
from tiny import tiny_train_config

REPO = Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=int(os.environ.get("GATO_FUZZ_EXAMPLES", 25)), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
"""Examples per property; ``GATO_FUZZ_EXAMPLES=500`` for a longer search."""


@pytest.fixture(autouse=True)
def own_ledger(tmp_path, monkeypatch):
    """Each test has its own ledger of written pickles (never the user's)."""
    monkeypatch.setenv(trust.LEDGER_ENV, str(tmp_path / "ledger.sha256"))


def flip_bit(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x04
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# ============================================================================ checkpoints


def tiny_cfg(out, **kw) -> TrainConfig:
    """4 steps of batch 2 (checkpoints at steps 2 and 4)."""
    return tiny_train_config(out, **{"steps": 4, "batch_size": 2, **kw})


def losses(run) -> list[tuple[str, str]]:
    with open(Path(run) / "metrics.csv") as f:
        return [(r["step"], r["loss"]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def run4(tmp_path_factory):
    """A 4-step run with checkpoints at steps 2 and 4."""
    out = tmp_path_factory.mktemp("ckpt") / "run"
    train(tiny_cfg(out))
    return out


@pytest.fixture(scope="module")
def run6(tmp_path_factory):
    """The same run continued without interruption to step 6 (the reference for resumes)."""
    out = tmp_path_factory.mktemp("ckpt") / "run6"
    train(tiny_cfg(out, steps=6))
    return out


def copy_run(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def step_dir(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step-{step:08d}"


def test_checkpoint_lists_the_sha256_of_every_file(run4):
    ckpt = checkpoint.latest(run4)
    sums = trust.read_sums(ckpt / "SHA256SUMS")
    assert sorted(sums) == sorted(p.name for p in ckpt.iterdir() if p.name != "SHA256SUMS")
    assert {"model.safetensors", "optimizer.pt", "state.json", "config.json", "rng-rank0.json"} <= set(sums)
    assert all(trust.sha256_file(ckpt / name) == digest for name, digest in sums.items())
    if shutil.which("sha256sum"):  # the manifest is coreutils' format
        subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=ckpt, check=True)


@pytest.mark.parametrize("damage", [flip_bit, truncate], ids=["bit-flip", "truncated"])
def test_corrupt_latest_is_refused_with_its_path_and_resume_falls_back(run4, run6, tmp_path, damage, capsys):
    run = copy_run(run4, tmp_path)
    damage(step_dir(run, 4) / "model.safetensors")

    with pytest.raises(CorruptCheckpointError, match=r"step-00000004 is corrupt: model\.safetensors: sha256") as e:
        checkpoint.load(run)
    assert str(step_dir(run, 2)) in str(e.value)  # names the checkpoint that verifies

    capsys.readouterr()
    train(tiny_cfg(run, steps=6))
    err = capsys.readouterr().err
    assert "step-00000004 is corrupt" in err and f"resuming from {step_dir(run, 2)}" in err
    assert (run / "checkpoints" / "step-00000004.corrupt").is_dir()  # kept for inspection, out of the way
    assert losses(run) == losses(run6)  # resumed from step 2: the same run as an uninterrupted one
    a = checkpoint.load(run)
    b = checkpoint.load(run6).model
    assert a.step == 6
    for (name, p), q in zip(a.model.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_garbled_latest_pointer_falls_back_to_the_newest_checkpoint(run4, tmp_path, capsys):
    run = copy_run(run4, tmp_path)
    (run / "checkpoints" / "latest").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(CorruptCheckpointError, match="latest is garbled"):
        checkpoint.load(run)
    assert checkpoint.resume_point(run) == step_dir(run, 4)
    assert "latest: unreadable" in capsys.readouterr().err


def test_no_checkpoint_verifies_is_an_error_not_a_fresh_start(run4, tmp_path):
    run = copy_run(run4, tmp_path)
    for step in (2, 4):
        flip_bit(step_dir(run, step) / "optimizer.pt")
    with pytest.raises(CorruptCheckpointError, match=r"no checkpoint of .* verifies.*step-00000004.*step-00000002"):
        train(tiny_cfg(run, steps=6))
    assert checkpoint.checkpoint_dirs(run) == [step_dir(run, 4), step_dir(run, 2)]  # nothing moved or written


def test_a_deleted_file_is_named(run4, tmp_path):
    run = copy_run(run4, tmp_path)
    (step_dir(run, 4) / "optimizer.pt").unlink()
    with pytest.raises(CorruptCheckpointError, match="optimizer.pt: missing"):
        checkpoint.verify(step_dir(run, 4))


def test_checkpoint_without_checksums_loads_with_a_warning(run4, tmp_path, capsys):
    run = copy_run(run4, tmp_path)
    (step_dir(run, 4) / "SHA256SUMS").unlink()  # as written before checksums existed
    assert checkpoint.load(run).step == 4
    assert "has no SHA256SUMS" in capsys.readouterr().err


def test_replica_fingerprints_are_checked_on_resume(run4, tmp_path):
    import json

    run = copy_run(run4, tmp_path)
    ckpt = step_dir(run, 4)
    state = json.loads((ckpt / "state.json").read_text())
    state["replica_fingerprints"] = [x + 1.0 for x in state["replica_fingerprints"]]
    (ckpt / "state.json").write_text(json.dumps(state))
    checkpoint.seal(ckpt)  # files and manifest agree: only the fingerprint check can see it
    with pytest.raises(CorruptCheckpointError, match="loaded weights have fingerprints"):
        train(tiny_cfg(run, steps=6))
    state["replica_fingerprints"] = [1.0, 2.0]
    (ckpt / "state.json").write_text(json.dumps(state))
    checkpoint.seal(ckpt)
    with pytest.raises(CorruptCheckpointError, match="held different parameters"):
        train(tiny_cfg(run, steps=6))


def test_every_torch_load_passes_weights_only():
    """`torch.load` unpickles; with weights_only=True it admits tensors and containers only."""
    offenders = []
    for root in ("gato", "envs", "policies", "datasets_gen", "eval", "benchmarks"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
                    kw = {k.arg: k.value for k in node.keywords}
                    if not (isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True):
                        offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, f"torch.load without weights_only=True: {offenders}"


CKPT_FILES = ["model.safetensors", "config.json", "state.json", "optimizer.pt", "rng-rank0.json", "SHA256SUMS"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A bare checkpoint (model, optimizer, state) to damage."""
    out = tmp_path_factory.mktemp("fuzz") / "run"
    cfg = get_config("gato-tiny")
    model = GatoModel(cfg)
    opt = torch.optim.AdamW(model.parameters())
    checkpoint.save(out, model, cfg, step=3, optimizer=opt, state={"replica_fingerprints": [0.0]})
    from gato.train import rng_state

    checkpoint.write_json(checkpoint.latest(out) / "rng-rank0.json", rng_state())
    checkpoint.seal(checkpoint.latest(out))
    return checkpoint.latest(out)


def _load_everything(ckpt: Path) -> None:
    """Everything a resume reads."""
    model = checkpoint.load(ckpt).model
    checkpoint.load_optimizer(ckpt, torch.optim.AdamW(model.parameters()))
    checkpoint.read_rng(ckpt, 0)


@FUZZ
@given(name=st.sampled_from(CKPT_FILES), data=st.binary(max_size=4096), sealed=st.booleans())
def test_random_bytes_as_a_checkpoint_file_give_a_typed_error(saved, tmp_path_factory, name, data, sealed):
    """Any file of a checkpoint replaced by random bytes: CorruptCheckpointError naming it, never a success.

    ``sealed=False`` removes SHA256SUMS first (a checkpoint older than checksums), so the parsers
    themselves must refuse the bytes.
    """
    if not sealed and name == "SHA256SUMS":
        name = "model.safetensors"
    ckpt = tmp_path_factory.mktemp("case") / saved.name
    shutil.copytree(saved, ckpt)
    if not sealed:
        (ckpt / "SHA256SUMS").unlink()
    if name != "SHA256SUMS" and data == (ckpt / name).read_bytes():
        return  # unchanged: nothing to detect
    (ckpt / name).write_bytes(data)
    with pytest.raises(CorruptCheckpointError) as e:
        _load_everything(ckpt)
    assert str(ckpt) in str(e.value)


# ============================================================================ datasets

TASK = "babyai-goto-red-ball"  # episodes of a few steps


def gen_cfg(out, **kw):
    from datasets_gen.generate import Config

    return Config(**{**dict(task=TASK, policy="random", episodes=5, shard_size=2, seed=3, out=str(out)), **kw})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from datasets_gen.generate import generate

    out = tmp_path_factory.mktemp("ds") / "data"
    generate(gen_cfg(out), "test")
    return out


def copy_dataset(dataset: Path, dst: Path) -> Path:
    shutil.copytree(dataset, dst)
    return dst


def garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[: len(data) // 4] = os.urandom(len(data) // 4)
    path.write_bytes(bytes(data))


def delete(path: Path) -> None:
    path.unlink()


def episodes_of(path) -> list:
    from datasets_gen.reader import open_dataset

    ds = open_dataset(str(path), filtered=False)
    return [(e.actions.tolist(), e.rewards.tolist(), e.observations["discrete"].tolist()) for e in map(ds.episode, range(len(ds)))]


def test_dataset_manifest_lists_every_shard_and_the_metadata(dataset):
    sums = trust.read_sums(dataset / "SHA256SUMS")
    assert sorted(sums) == ["metadata.json", "shard-00000.h5", "shard-00001.h5", "shard-00002.h5"]
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=dataset, check=True)


def test_info_verify_passes_a_good_dataset(dataset, capsys):
    import json

    from datasets_gen.info import main as info_main

    assert info_main([str(dataset), "--verify"]) == 0
    assert json.loads(capsys.readouterr().out)["verified"] == {"shards": 3, "by": "sha256"}


@pytest.mark.parametrize("damage", [garble, truncate, flip_bit, delete], ids=["garbled", "truncated", "bit-flip", "deleted"])
def test_info_verify_names_each_bad_shard(dataset, tmp_path, damage, capsys):
    from datasets_gen.info import main as info_main
    from datasets_gen.reader import CorruptShardError

    out = copy_dataset(dataset, tmp_path / "d")
    damage(out / "shard-00001.h5")
    damage(out / "shard-00002.h5")
    with pytest.raises(CorruptShardError, match=r"2 bad file\(s\) in .*: shard-00001\.h5, shard-00002\.h5"):
        info_main([str(out), "--verify"])
    err = capsys.readouterr().err
    assert f"{out / 'shard-00001.h5'}: " in err and f"{out / 'shard-00002.h5'}: " in err
    assert "shard-00000" not in err


def test_gato_info_verify_exits_non_zero_without_a_traceback(dataset, tmp_path):
    out = copy_dataset(dataset, tmp_path / "d")
    garble(out / "shard-00001.h5")
    gato = Path(sys.executable).with_name("gato")
    proc = subprocess.run([str(gato), "info", str(out), "--verify"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "shard-00001.h5" in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("damage", ["unlisted", "bit-flip", "deleted"])
def test_resume_regenerates_an_unlisted_or_corrupt_shard(dataset, tmp_path, damage, capsys):
    from datasets_gen.generate import generate

    out = copy_dataset(dataset, tmp_path / "d")
    shard = out / "shard-00001.h5"
    if damage == "unlisted":  # as left by a run killed between the rename and the record
        sums = trust.read_sums(out / "SHA256SUMS")
        del sums["shard-00001.h5"]
        trust.write_sums(out / "SHA256SUMS", sums)
    elif damage == "bit-flip":
        flip_bit(shard)
    else:
        shard.unlink()
    capsys.readouterr()
    generate(gen_cfg(out), "test")
    err = capsys.readouterr().err
    why = {"unlisted": "not listed in SHA256SUMS", "bit-flip": "sha256", "deleted": "listed in SHA256SUMS but missing"}
    assert f"{shard}: {why[damage]}" in err and "regenerating it" in err
    assert "shard-00000.h5" not in err and "shard-00002.h5" not in err  # the good ones are kept
    assert episodes_of(out) == episodes_of(dataset)
    from datasets_gen.checksums import verify_dataset

    assert verify_dataset(str(out)).ok


def test_dataset_without_checksums_is_adopted_after_a_full_read(dataset, tmp_path, capsys):
    from datasets_gen.generate import generate
    from datasets_gen.info import main as info_main
    from datasets_gen.reader import CorruptShardError

    out = copy_dataset(dataset, tmp_path / "d")
    (out / "SHA256SUMS").unlink()  # as written before checksums existed
    assert info_main([str(out), "--verify"]) == 0
    assert "has no SHA256SUMS" in capsys.readouterr().err
    truncate(out / "shard-00002.h5")
    with pytest.raises(CorruptShardError, match=r"shard-00002\.h5"):
        info_main([str(out), "--verify"])
    generate(gen_cfg(out), "test")
    err = capsys.readouterr().err
    assert "2 shard(s) read whole and recorded" in err and "shard-00002.h5: does not open" in err
    assert sorted(trust.read_sums(out / "SHA256SUMS")) == ["metadata.json", "shard-00000.h5", "shard-00001.h5",
                                                          "shard-00002.h5"]
    assert episodes_of(out) == episodes_of(dataset)


def test_train_refuses_a_bad_shard_unless_told_to_skip_it(dataset, tmp_path, capsys):
    out = copy_dataset(dataset, tmp_path / "d")
    truncate(out / "shard-00001.h5")
    cfg = tiny_cfg(tmp_path / "run", data=(str(out),), sequence_length=256, steps=1, checkpoint_every=1)
    with pytest.raises(ValueError, match=r"shard-00001\.h5: does not open.*--skip-bad-shards"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()
    garble(out / "shard-00002.h5")  # same size, header intact or not: full finds any change
    flip_bit(out / "shard-00000.h5")
    with pytest.raises(ValueError, match=r"shard-00000\.h5: sha256"):
        train(tiny_cfg(tmp_path / "run", data=(str(out),), sequence_length=256, steps=1, checkpoint_every=1, verify_data="full"))
    (out / "shard-00000.h5").write_bytes((dataset / "shard-00000.h5").read_bytes())
    capsys.readouterr()
    train(tiny_cfg(tmp_path / "run", data=(str(out),), sequence_length=256, steps=1, checkpoint_every=1, skip_bad_shards=True))
    err = capsys.readouterr().err
    assert "skipping" in err and "shard-00001.h5" in err and "shard-00002.h5" in err and "shard-00000" not in err
    assert checkpoint.load(tmp_path / "run").step == 1


def test_gato_train_refuses_a_bad_shard_before_writing_anything(dataset, tmp_path):
    out = copy_dataset(dataset, tmp_path / "d")
    garble(out / "shard-00001.h5")
    gato = Path(sys.executable).with_name("gato")
    proc = subprocess.run([str(gato), "train", "--data", str(out), "--out", str(tmp_path / "run"), "--steps", "1"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "shard-00001.h5" in proc.stderr and "--skip-bad-shards" in proc.stderr
    assert not (tmp_path / "run").exists()


SHARD = "shard-00001.h5"


@FUZZ
@given(data=st.binary(max_size=4096), checksummed=st.booleans())
def test_random_bytes_as_a_shard_give_a_typed_error(dataset, tmp_path_factory, data, checksummed):
    """A shard replaced by random bytes: never a crash, never read as data; skipping it leaves the rest."""
    from datasets_gen.checksums import verify_dataset
    from datasets_gen.reader import CorruptShardError, open_dataset

    out = copy_dataset(dataset, tmp_path_factory.mktemp("case") / "d")
    if not checksummed:
        (out / "SHA256SUMS").unlink()
    (out / SHARD).write_bytes(data)
    full = verify_dataset(str(out), "full")
    assert list(full.problems) == [SHARD]
    with pytest.raises(CorruptShardError, match=SHARD):
        open_dataset(str(out))
    ds = open_dataset(str(out), skip_bad_shards=True)
    assert list(ds.skipped_shards) == [SHARD] and set(ds.indices) == {0, 1, 4} & set(ds.indices)
    for i in range(len(ds)):
        ds.episode(i)


@FUZZ
@given(offset=st.integers(min_value=0), patch=st.binary(min_size=1, max_size=64))
def test_random_bytes_inside_a_shard_are_found_by_the_full_check(dataset, tmp_path_factory, offset, patch):
    """Random bytes written over part of a valid shard: the sha256 check finds them, and reading
    without any check raises only `CorruptShardError` (or reads whatever the bytes decode to)."""
    from datasets_gen.checksums import verify_dataset
    from datasets_gen.reader import CorruptShardError, open_dataset

    out = copy_dataset(dataset, tmp_path_factory.mktemp("case") / "d")
    original = (out / SHARD).read_bytes()
    offset %= len(original)
    damaged = original[:offset] + patch + original[offset + len(patch):]
    if damaged == original:
        return
    (out / SHARD).write_bytes(damaged)
    assert list(verify_dataset(str(out), "full").problems) == [SHARD]
    ds = open_dataset(str(out), filtered=False, verify="none")
    for i in (2, 3):
        try:
            ds.episode(i)
        except CorruptShardError as e:
            assert SHARD in str(e)


# ============================================================================ pickles (SB3 zips, replay buffers)

ZOO_TASK = "dmc-cartpole-balance"


def evil_zip(path: Path, marker: Path) -> Path:
    """An SB3-shaped zip whose ``data`` holds a pickle that creates ``marker`` when it is loaded."""
    import base64
    import json
    import pickle
    import zipfile

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload = base64.b64encode(pickle.dumps(Evil())).decode()
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data", json.dumps({"policy_class": {":type:": "<class 'type'>", ":serialized:": payload}}))
    return path


def test_the_zoo_manifest_pins_every_zoo_model():
    from policies.sb3 import ZOO_DIR, ZOO_SUMS, zoo_tasks

    sums = trust.read_sums(ZOO_SUMS)
    assert sorted(sums) == [f"{t}/model.zip" for t in zoo_tasks()]
    for name, digest in sums.items():
        assert trust.sha256_file(ZOO_DIR / name) == digest, f"{name} differs from policies/zoo/SHA256SUMS"


def test_a_pinned_zoo_model_loads_without_the_flag():
    from policies.sb3 import zoo_expert

    assert zoo_expert(ZOO_TASK).name == f"zoo:{ZOO_TASK}"


def test_a_zip_not_in_the_manifest_is_refused_without_the_flag(tmp_path, capsys):
    from policies import make_policy
    from policies.sb3 import ZOO_DIR

    copy = tmp_path / "model.zip"  # the same bytes as a zoo model, but not the pinned file
    shutil.copyfile(ZOO_DIR / ZOO_TASK / "model.zip", copy)
    with pytest.raises(trust.UntrustedPickleError, match=r"refusing to load SB3 checkpoint .*model\.zip.*--allow-pickle"):
        make_policy(str(copy), ZOO_TASK)
    pi = make_policy(str(copy), ZOO_TASK, allow_pickle=True)
    assert pi.checkpoint == str(copy)
    assert "runs any code" in capsys.readouterr().err


def test_a_modified_zoo_model_is_refused(tmp_path, monkeypatch):
    from policies import sb3

    zoo = tmp_path / "zoo"
    shutil.copytree(sb3.ZOO_DIR / ZOO_TASK, zoo / ZOO_TASK)
    shutil.copyfile(sb3.ZOO_SUMS, zoo / "SHA256SUMS")
    with open(zoo / ZOO_TASK / "model.zip", "ab") as f:
        f.write(b"\0")
    monkeypatch.setattr(sb3, "ZOO_DIR", zoo)
    monkeypatch.setattr(sb3, "ZOO_SUMS", zoo / "SHA256SUMS")
    with pytest.raises(trust.UntrustedPickleError, match=r"not the .* pinned for it .*modified or is corrupt"):
        sb3.zoo_expert(ZOO_TASK)


def test_a_crafted_zip_runs_no_code_unless_allowed(tmp_path):
    from policies import make_policy

    marker = tmp_path / "pwned"
    zip_path = evil_zip(tmp_path / "evil.zip", marker)
    with pytest.raises(trust.UntrustedPickleError):
        make_policy(str(zip_path), ZOO_TASK)
    assert not marker.exists()
    with pytest.raises(ValueError, match="could not load SB3 checkpoint"):
        make_policy(str(zip_path), ZOO_TASK, allow_pickle=True)
    assert marker.exists()  # what --allow-pickle says it does: the file's code ran


@pytest.mark.parametrize("command", ["rollout", "generate"])
def test_cli_refuses_a_crafted_zip_without_running_it(tmp_path, command):
    marker = tmp_path / "pwned"
    zip_path = evil_zip(tmp_path / "evil.zip", marker)
    gato = Path(sys.executable).with_name("gato")
    out = tmp_path / ("r.json" if command == "rollout" else "data")
    proc = subprocess.run([str(gato), command, "--task", ZOO_TASK, "--policy", str(zip_path), "--episodes", "1",
                           "--out", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "--allow-pickle" in proc.stderr and str(zip_path) in proc.stderr
    assert not marker.exists() and not out.exists()


def test_ledger_admits_only_what_gato_wrote(tmp_path):
    f = tmp_path / "buffer.pkl"
    f.write_bytes(b"not really a pickle")
    with pytest.raises(trust.UntrustedPickleError):
        trust.check_pickle(f)
    trust.remember(f)
    assert trust.check_pickle(f) == b"not really a pickle"
    f.write_bytes(b"changed afterwards")
    with pytest.raises(trust.UntrustedPickleError):
        trust.check_pickle(f)
    Path(os.environ[trust.LEDGER_ENV]).write_bytes(b"\xff garbage line\n\n")
    assert not trust.remembered(trust.sha256_bytes(b"changed afterwards"))


def test_train_expert_resumes_its_own_pickles_and_refuses_foreign_ones(tmp_path, monkeypatch):
    from datasets_gen.train_expert import Config, train as train_expert

    out = tmp_path / "run"
    cfg = Config(task=ZOO_TASK, env_steps=120, out=str(out), checkpoint_every=100, eval_episodes=1, eval_max_steps=5,
                 hp='{"learning_starts": 100, "batch_size": 16}', update_references=False, progress=False)
    train_expert(cfg, "test")
    assert trust.remembered(trust.sha256_file(out / "ckpt" / "replay_buffer.pkl"))
    more = Config(**{**cfg.__dict__, "env_steps": 140})
    monkeypatch.setenv(trust.LEDGER_ENV, str(tmp_path / "another-account.sha256"))  # as if copied from elsewhere
    with pytest.raises(trust.UntrustedPickleError, match=r"ckpt/model\.zip.*--allow-pickle"):
        train_expert(more, "test")
    done = train_expert(Config(**{**more.__dict__, "allow_pickle": True}), "test")
    assert done["steps"] == 140


def test_plain_info_fails_on_a_truncated_shard(dataset, tmp_path, capsys):
    from datasets_gen.info import main as info_main
    from datasets_gen.reader import CorruptShardError

    out = copy_dataset(dataset, tmp_path / "d")
    truncate(out / "shard-00002.h5")
    with pytest.raises(CorruptShardError, match=r"1 bad file\(s\) in .*: shard-00002\.h5"):
        info_main([str(out)])
    assert capsys.readouterr().out == ""
