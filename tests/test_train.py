"""Trainer tests on gato-tiny with the synthetic source: schedule, resume, bad input, mixture."""

from __future__ import annotations

import csv
import math
import sys
import types

import numpy as np
import pytest
import torch

from gato import checkpoint, data
from gato.configs import get_config
from gato.model import GatoModel
from gato.train import NonFiniteLoss, learning_rate, learning_rate_at, make_optimizer, train
from tiny import killed_at_forward, tiny_train_config

def losses(run) -> list[tuple[int, str, str, str]]:
    with open(f"{run}/metrics.csv") as f:
        return [(int(r["step"]), r["loss"], r["loss/synthetic"], r["loss/synthetic_pixels"]) for r in csv.DictReader(f)]


def test_learning_rate_warms_up_then_decays_cosine_to_a_tenth():
    lr = [learning_rate(s, 1.0, warmup=4, total=14, min_ratio=0.1) for s in range(15)]
    assert lr[:4] == [0.25, 0.5, 0.75, 1.0]
    assert lr[4] == 1.0
    assert lr[9] == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the decay
    assert lr[14] == pytest.approx(0.1)


def test_time_budget_schedule_follows_the_clock():
    assert learning_rate_at(0.05, 1.0, warmup=0.1, min_ratio=0.1) == pytest.approx(0.5)
    assert learning_rate_at(0.1, 1.0, warmup=0.1, min_ratio=0.1) == pytest.approx(1.0)
    assert learning_rate_at(0.55, 1.0, warmup=0.1, min_ratio=0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert learning_rate_at(1.0, 1.0, warmup=0.1, min_ratio=0.1) == pytest.approx(0.1)


def test_time_budget_stops_training_and_records_the_seconds(tmp_path, monkeypatch):
    """A fake clock advancing 1 s per call: a 10 s budget ends long before the 1000-step cap,
    writes a last checkpoint with the seconds spent, and its schedule reached the end."""
    import gato.train as gt

    clock = {"t": 0.0}

    def fake_perf_counter():
        clock["t"] += 1.0
        return clock["t"]

    monkeypatch.setattr(gt.time, "perf_counter", fake_perf_counter)
    train(tiny_train_config(tmp_path / "timed", steps=1000, checkpoint_every=1000, time_budget=10.0))
    state = checkpoint.read_state(checkpoint.latest(tmp_path / "timed"))
    assert 1 <= state["step"] < 10
    assert state["train_seconds"] >= 10.0
    with open(tmp_path / "timed" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[-1] < 0.5 * max(lrs)  # the cosine went most of the way down
    assert int(rows[-1]["step"]) == state["step"]  # the last update is in the last checkpoint


def test_budget_spent_while_the_next_batch_is_built_still_checkpoints_the_last_update(tmp_path, monkeypatch):
    """The clock jumps past the budget between one step's end-of-step check and the next step's
    start (while its batch is built): the run stops there without training on, and the final
    checkpoint holds every update made (the demo once evaluated a checkpoint 67 steps old)."""
    import gato.train as gt

    clock = {"t": 0.0}
    monkeypatch.setattr(gt.time, "perf_counter", lambda: clock["t"])
    batches = gt.data.step_batches

    def slow_batches(*args, **kw):
        for i, batch in enumerate(batches(*args, **kw)):
            clock["t"] += 3.0 if i == 4 else 0.1  # building batch 4 takes the rest of the budget
            yield batch

    monkeypatch.setattr(gt.data, "step_batches", slow_batches)
    train(tiny_train_config(tmp_path / "run", steps=1000, checkpoint_every=1000, time_budget=2.0, log_every=1))
    state = checkpoint.read_state(checkpoint.latest(tmp_path / "run"))
    with open(tmp_path / "run" / "metrics.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps[-1] == state["step"] == 5  # steps 1-4 in budget; step 5's batch came late, it ran and was kept


def test_observation_text_is_a_target_only_when_asked():
    from gato.data import EpisodeDatasetSource
    from envs.convention import Episode

    ep = Episode("babyai-toy", {"discrete": np.zeros((3, 2), np.int64), "text": ["go to the ball"] * 3},
                 np.zeros(3, np.int64), np.zeros(3), np.zeros(3, bool), np.zeros(3, bool))
    rng = np.random.default_rng(0)
    off = EpisodeDatasetSource("babyai", [[ep]], 64).sample(1, rng)[0]
    on = EpisodeDatasetSource("babyai", [[ep]], 64, observation_text_targets=True).sample(1, rng)[0]
    assert (off.is_target == off.is_action).all()
    assert on.is_target.sum() > on.is_action.sum()


def test_weight_decay_only_on_linear_and_conv_weights():
    model = GatoModel(get_config("gato-tiny"))
    opt = make_optimizer(model, tiny_train_config("unused"), lr=1e-3)
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    names = {n for n, p in model.named_parameters() if id(p) in decayed}
    assert "blocks.0.attn.qkv.weight" in names and "patch_encoder.conv1.weight" in names
    assert "token_embedding.weight" not in names and "action_embedding.weight" not in names
    assert not any("norm" in n or n.endswith(".bias") or "position" in n for n in names)
    assert opt.param_groups[0]["weight_decay"] == 0.1 and opt.param_groups[1]["weight_decay"] == 0.0


def test_killed_run_resumes_to_the_same_loss_curve(tmp_path):
    train(tiny_train_config(tmp_path / "straight"))
    with killed_at_forward(5), pytest.raises(KeyboardInterrupt):
        train(tiny_train_config(tmp_path / "killed"))
    assert [r[0] for r in losses(tmp_path / "killed")] == [1, 2, 3, 4]
    train(tiny_train_config(tmp_path / "killed"))  # the same command again: resumes from step 4

    assert losses(tmp_path / "killed") == losses(tmp_path / "straight")
    a = checkpoint.load(tmp_path / "straight").model
    b = checkpoint.load(tmp_path / "killed")
    assert b.step == 6
    for (n, p), q in zip(a.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(p, q), n


def test_weight_average_folds_in_each_step_with_its_warm_up():
    """ema <- d ema + (1 - d) w with d = min(decay, (1 + t) / (10 + t)): 0.1 at step 0, 0.5 by step 8."""
    from gato.train import WeightAverage

    model = GatoModel(get_config("gato-tiny"))
    p = next(model.parameters())
    with torch.no_grad():
        p.fill_(1.0)
        average = WeightAverage(model, decay=0.5)
        p.fill_(3.0)
        average.update(model, step=0)  # d = 0.1: 0.1 * 1 + 0.9 * 3
        assert torch.allclose(average.params[0], torch.full_like(p, 2.8))
        p.fill_(0.0)
        average.update(model, step=8)  # d = min(0.5, 9 / 18) = 0.5
        assert torch.allclose(average.params[0], torch.full_like(p, 1.4))
    with average.applied(model):
        assert torch.allclose(p, torch.full_like(p, 1.4))
    assert torch.equal(p, torch.zeros_like(p))  # its own weights are back


def test_run_with_weight_average_saves_both_and_resumes_exactly(tmp_path):
    """--ema-decay: model.safetensors holds the average (what `load` gives the policy), the raw
    weights go beside it, and a run killed at step 5 resumes to the same average and weights."""
    train(tiny_train_config(tmp_path / "straight", ema_decay=0.9))
    with killed_at_forward(5), pytest.raises(KeyboardInterrupt):
        train(tiny_train_config(tmp_path / "killed", ema_decay=0.9))
    train(tiny_train_config(tmp_path / "killed", ema_decay=0.9))
    from safetensors.torch import load_file

    for name in (checkpoint.MODEL_WEIGHTS, checkpoint.TRAIN_WEIGHTS):
        a, b = (load_file(str(checkpoint.latest(tmp_path / r) / name)) for r in ("straight", "killed"))
        assert all(torch.equal(a[k], b[k]) for k in a), name
    ckpt = checkpoint.latest(tmp_path / "straight")
    average, raw = load_file(str(ckpt / checkpoint.MODEL_WEIGHTS)), load_file(str(ckpt / checkpoint.TRAIN_WEIGHTS))
    assert not torch.equal(average["blocks.0.attn.qkv.weight"], raw["blocks.0.attn.qkv.weight"])
    loaded = checkpoint.load(tmp_path / "straight").model.state_dict()
    assert torch.equal(loaded["blocks.0.attn.qkv.weight"], average["blocks.0.attn.qkv.weight"])


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    forward = GatoModel.forward

    def nan_at_step_3(self, batch, **kw):
        calls["n"] += 1
        loss, metrics = forward(self, batch, **kw)
        return (loss * float("nan") if calls["n"] == 3 else loss), metrics

    monkeypatch.setattr(GatoModel, "forward", nan_at_step_3)
    with pytest.raises(NonFiniteLoss, match=r"at step 3 .*synthetic"):
        train(tiny_train_config(tmp_path))
    assert checkpoint.latest(tmp_path).name == "step-00000002"
    assert (tmp_path / "nonfinite-batch-step3-rank0.pt").exists()


def test_resuming_with_another_config_names_the_mismatch(tmp_path):
    train(tiny_train_config(tmp_path, steps=1))
    with pytest.raises(ValueError, match="num_layers: checkpoint 2 != requested 4"):
        train(tiny_train_config(tmp_path, config="gato-small", steps=2))


def test_loading_weights_of_another_vocabulary_names_it(tmp_path):
    cfg = get_config("gato-tiny")
    checkpoint.save(tmp_path, GatoModel(cfg), cfg, step=0)
    import dataclasses

    other = GatoModel(dataclasses.replace(cfg, vocab_size=33000))
    with pytest.raises(ValueError, match="vocab_size: checkpoint 34178 != requested 33000"):
        checkpoint.load_weights(checkpoint.latest(tmp_path), other)


def test_load_returns_the_saved_model_in_eval_mode(tmp_path):
    cfg = get_config("gato-tiny")
    torch.manual_seed(3)
    model = GatoModel(cfg)
    checkpoint.save(tmp_path, model, cfg, step=7, train_config={"seed": 3})
    loaded = checkpoint.load(tmp_path)
    assert loaded.config == cfg and not loaded.model.training
    assert loaded.step == 7 and loaded.train_config == {"seed": 3} and loaded.state == {"step": 7}
    assert loaded.path == checkpoint.latest(tmp_path)
    assert torch.equal(loaded.model.token_embedding.weight, model.token_embedding.weight)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        checkpoint.load(tmp_path / "nothing")


def test_a_directory_that_is_no_dataset_is_named(tmp_path):
    (tmp_path / "not-a-dataset").mkdir()
    with pytest.raises(ValueError, match=r"not-a-dataset' is unreadable.*metadata\.json"):
        data.open_datasets([str(tmp_path / "not-a-dataset")])


def test_empty_or_unreadable_dataset_is_named(tmp_path, monkeypatch):
    class Empty:
        task_id = "dmc-x"

        def __len__(self):
            return 0

    def open_dataset(path, **kw):  # verify=, skip_bad_shards= (the shard checks)
        if "broken" in str(path):
            raise OSError("bad magic")
        return Empty()

    fake = types.ModuleType("datasets_gen.reader")
    fake.open_dataset = open_dataset
    if "datasets_gen.reader" not in sys.modules or not hasattr(sys.modules["datasets_gen.reader"], "open_dataset"):
        monkeypatch.setitem(sys.modules, "datasets_gen.reader", fake)
    else:
        monkeypatch.setattr(sys.modules["datasets_gen.reader"], "open_dataset", open_dataset)
    (tmp_path / "empty.h5").write_bytes(b"")
    (tmp_path / "broken.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.h5.*no timesteps"):
        data.open_datasets([str(tmp_path / "empty.h5")])
    with pytest.raises(ValueError, match=r"broken\.h5.*unreadable.*bad magic"):
        data.open_datasets([str(tmp_path / "broken.h5")])
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        data.open_datasets([str(tmp_path / "missing.h5")])


def test_mixture_draws_domains_by_weight():
    sources = data.synthetic_source(sequence_length=64)
    mix = data.Mixture(sources, 64, {"synthetic": 3.0}, seed=0)
    assert mix.probabilities.tolist() == [0.75, 0.25]
    only = data.Mixture(sources, 64, {"synthetic": 0.0}, seed=0)
    batch = only.batch(0, 4)
    assert batch.domains == ["synthetic_pixels"] * 4 and batch.tokens.shape == (4, 64)
    assert int(batch.is_patch.sum()) == batch.patches.shape[0] > 0
    with pytest.raises(ValueError, match="atari"):
        data.Mixture(sources, 64, {"atari": 1.0})


def test_the_batch_of_a_step_depends_on_seed_and_step_only():
    mix = data.Mixture(data.synthetic_source(64), 64, seed=(1, 0))
    a = mix.batch(5, 3)
    mix.batch(6, 3)
    b = mix.batch(5, 3)
    assert torch.equal(a.tokens, b.tokens) and a.domains == b.domains
    other_rank = data.Mixture(data.synthetic_source(64), 64, seed=(1, 1)).batch(5, 3)
    assert not torch.equal(a.tokens, other_rank.tokens)


def test_worker_processes_build_the_same_batches():
    mix = data.Mixture(data.synthetic_source(64), 64, seed=2)
    inline = list(data.step_batches(mix, 2, 3, 6))
    ahead = list(data.step_batches(mix, 2, 3, 6, workers=1))
    assert len(ahead) == 3
    for x, y in zip(inline, ahead):
        assert torch.equal(x.tokens, y.tokens) and torch.equal(x.patches, y.patches)


def test_training_learns_the_synthetic_tasks(tmp_path):
    row = train(tiny_train_config(tmp_path, steps=40, batch_size=4, log_every=10, checkpoint_every=40, lr=1e-2,
                         tensorboard=True, warmup_steps=4))
    rows = losses(tmp_path)
    assert [r[0] for r in rows] == [10, 20, 30, 40] and row["step"] == 40
    first, last = rows[0], rows[-1]
    assert float(first[1]) < math.log(34178) + 0.5  # starts near uniform over 34,178 ids
    assert float(last[1]) < float(first[1]) - 3.0, rows
    assert float(last[2]) < float(first[2]) and float(last[3]) < float(first[3])  # both domains
    assert any((tmp_path / "tb").iterdir())
    assert np.isfinite(row["tokens_per_s"]) and row["tokens_per_s"] > 0


def test_trains_on_a_recorded_episode_dataset(tmp_path, small_dataset):
    row = train(tiny_train_config(tmp_path / "run", data=(small_dataset("babyai-goto-red-ball"),), sequence_length=256,
                         steps=2, batch_size=2, log_every=2, prompt_prob=0.0))
    assert row["step"] == 2 and math.isfinite(row["loss/babyai"])


def test_stage_schedule_keeps_the_first_budget_and_knows_when_it_is_spent(tmp_path, monkeypatch):
    from gato.train import stage_schedule

    run, state = tmp_path / "model", tmp_path / "state.json"
    budget, opts = stage_schedule(run, state, 600.0, None, checkpoint_minutes=5, log_every=50)
    assert budget == 600.0
    assert opts[opts.index("--time-budget") + 1] == "600.0" and opts[opts.index("--checkpoint-minutes") + 1] == "5"
    # a rerun with another budget (a later start of `gato demo`) resumes the first one
    budget, opts = stage_schedule(run, state, 60.0, None, checkpoint_minutes=5, log_every=50)
    assert budget == 600.0 and opts[opts.index("--time-budget") + 1] == "600.0"
    _, opts = stage_schedule(run, state, 60.0, 24, checkpoint_minutes=5, log_every=50)
    assert opts == ["--steps", "24", "--checkpoint-every", "5", "--log-every", "1"]
    # a run whose last checkpoint spent the budget (or reached the steps) is done
    monkeypatch.setattr(checkpoint, "latest", lambda path: tmp_path / "ckpt")
    monkeypatch.setattr(checkpoint, "read_state", lambda path: {"step": 24, "train_seconds": 599.0})
    assert stage_schedule(run, state, 60.0, None, checkpoint_minutes=5, log_every=50)[1] is not None
    assert stage_schedule(run, state, 60.0, 24, checkpoint_minutes=5, log_every=50)[1] is None
    monkeypatch.setattr(checkpoint, "read_state", lambda path: {"step": 24, "train_seconds": 600.5})
    assert stage_schedule(run, state, 60.0, None, checkpoint_minutes=5, log_every=50)[1] is None
