"""Modality experts (``GatoConfig.modality_experts``, BEiT-3 Multiway blocks): routing by modality,
cached decoding, the closed-loop policy, checkpoints and resumed training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakes import FakeEnv
from gato import checkpoint
from gato.configs import CONFIGS, get_config
from gato.model import MODALITIES, Block, GatoModel, MultiwayBlock, Slots, count_parameters, modality
from gato.policy import GatoPolicy
from gato.train import train
from test_gato_policy import TASK, observations, prompt_for, record_logits, run
from test_model import _slots, random_batch
from tiny import killed_at_forward, tiny_model, tiny_train_config

TEXT, IMAGE, CONTROL = range(3)


def mixed_batch(b: int = 2, length: int = 24, seed: int = 0):
    """``random_batch`` (patches at 1..4, values, a separator, 3 actions) with text ids at slots 5..9."""
    batch = random_batch(b, length, seed=seed)
    batch.tokens[:, 5:10] = torch.randint(0, 32000, (b, 5), generator=torch.Generator().manual_seed(seed))
    return batch


def multiway_model(seed: int = 0) -> GatoModel:
    """gato-tiny with modality experts and large random weights (outputs depend on every weight), eval mode."""
    return tiny_model(seed, weight_std=0.3, modality_experts=True).eval()


def test_modality_of_each_slot_comes_from_its_fields():
    batch = mixed_batch(b=1)
    codes = modality(batch)[0]
    assert codes[1:5].tolist() == [IMAGE] * 4  # patch slots hold PAD but are image
    assert codes[5:10].tolist() == [TEXT] * 5
    assert codes[0].item() == CONTROL and codes[10:].tolist() == [CONTROL] * 14  # values, separator, actions
    batch.tokens[0, 0] = 31999  # the last text id
    batch.tokens[0, 10] = 32000  # the first continuous id
    assert modality(batch)[0, 0] == TEXT and modality(batch)[0, 10] == CONTROL


def test_plain_blocks_keep_their_parameter_names_and_experts_add_two_per_modality():
    plain, multi = tiny_model(), tiny_model(modality_experts=True)
    assert all(isinstance(b, Block) for b in plain.blocks)
    assert all(isinstance(b, MultiwayBlock) for b in multi.blocks)
    names = set(plain.state_dict())
    assert {"blocks.0.norm2.weight", "blocks.0.ffw.inp.weight", "blocks.0.ffw.out.weight"} <= names
    extra = set(multi.state_dict()) - names
    assert {f"blocks.1.ffw.{m}.out.weight" for m in MODALITIES} <= extra
    cfg = get_config("gato-tiny")
    d, h = cfg.width, cfg.ffw_hidden
    per_expert = 2 * d + 3 * d * h  # LayerNorm, GEGLU
    assert count_parameters(multi.config) - count_parameters(cfg) == cfg.num_layers * 2 * per_expert
    small = get_config("gato-small-multiway")
    assert small.modality_experts and count_parameters(small) > count_parameters(get_config("gato-small"))


def test_experts_start_like_the_plain_feed_forward():
    """The experts' output matrices take the depth-scaled init, as the plain block's do."""
    model = tiny_model(modality_experts=True)
    residual_std = 0.02 / (2 * model.config.num_layers) ** 0.5
    for m in MODALITIES:
        assert abs(model.blocks[0].ffw[m].out.weight.std() / residual_std - 1) < 0.2
        assert abs(model.blocks[0].ffw[m].inp.weight.std() / 0.02 - 1) < 0.2


@pytest.mark.parametrize("expert", MODALITIES)
def test_a_slot_changes_only_through_its_own_experts_weights(expert):
    """Perturbing one expert of the first block changes that block's output at that modality's slots
    only; perturbing the shared attention changes every slot."""
    model, batch = multiway_model(), mixed_batch()
    codes = modality(batch)
    block = model.blocks[0]
    with torch.no_grad():
        x = model.embed(batch)
        before = block(x, codes)
        for p in (*block.ffw[expert].parameters(), *block.norm2[expert].parameters()):
            p.add_(0.5 * torch.randn_like(p))
        after = block(x, codes)
        changed = (after - before).abs().amax(-1) > 1e-6  # (B, T)
        assert torch.equal(changed, codes == MODALITIES.index(expert))
        block.attn.out.weight.add_(0.5)
        assert ((block(x, codes) - after).abs().amax(-1) > 1e-6).all()


def test_experts_route_the_same_in_training_and_on_single_modality_inputs():
    """The gather/scatter path (training: every expert runs) equals each expert applied on its own."""
    model = multiway_model()
    block = model.blocks[0]
    x = torch.randn(2, 24, model.config.width)
    codes = modality(mixed_batch())
    with torch.no_grad():
        expected = torch.stack([block.ffw[m](block.norm2[m](x)) for m in MODALITIES])  # (3, B, T, D)
        expected = expected.gather(0, codes[None, ..., None].expand(1, *x.shape))[0]
        block.train()
        assert torch.allclose(block.experts(x, codes), expected, atol=1e-6)
        block.eval()
        assert torch.allclose(block.experts(x, codes), expected, atol=1e-6)
        only_text = torch.zeros_like(codes)
        assert torch.equal(block.experts(x, only_text), block.ffw["text"](block.norm2["text"](x)))


def test_every_expert_gets_a_gradient_even_without_its_modality():
    model = tiny_model(modality_experts=True).train()
    batch = random_batch(patches_per_row=0)  # no image, no text: control only
    loss, _ = model(batch)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
    assert model.blocks[0].ffw["image"].inp.weight.grad.abs().sum() == 0
    assert model.blocks[0].ffw["control"].inp.weight.grad.abs().sum() > 0


def test_trunk_without_the_modality_names_it():
    model, batch = multiway_model(), mixed_batch()
    with pytest.raises(ValueError, match="modality"):
        model.trunk(model.embed(batch))


def test_incremental_decode_equals_full_forward_with_experts():
    model, batch = multiway_model(), mixed_batch(b=3, length=24)
    with torch.no_grad():
        full = model.logits(model.hidden(batch))  # (B, L, V)
        cache = model.new_cache(3, capacity=32)
        outs = []
        for lo, hi in [(0, 3), (3, 6), (6, 7), (7, 8), (8, 20), (20, 21), (21, 24)]:
            hidden, cache = model.decode(_slots(batch, lo, hi), cache)
            outs.append(model.logits(hidden))
    assert torch.allclose(torch.cat(outs, 1), full, atol=1e-4)


def test_decode_rows_of_different_lengths_with_experts():
    """Rows at different positions decode slots of different modalities in one call."""
    model, batch = multiway_model(), mixed_batch(b=2, length=20)
    with torch.no_grad():
        full = model.logits(model.hidden(batch))
        cache = model.new_cache(2, capacity=20)
        head = _slots(batch, 0, 7)
        model.decode(Slots(head.tokens[:1], head.is_patch[:1], head.patches[:4], head.patch_positions[:1],
                           head.local_positions[:1], head.is_action[:1]), cache, rows=[0])  # row 0: 7 slots
        outs = {0: [], 1: []}
        for t in range(13):  # row 0 decodes slots 7.., row 1 slots 0..: text next to image and control
            for row, pos in ((0, 7 + t), (1, t)):
                one = _slots(batch, pos, pos + 1)
                sel = slice(row, row + 1)
                patches = one.patches[int(one.is_patch[:row].sum()):][:int(one.is_patch[sel].sum())]
                hidden, _ = model.decode(Slots(one.tokens[sel], one.is_patch[sel], patches, one.patch_positions[sel],
                                               one.local_positions[sel], one.is_action[sel]), cache, rows=[row])
                outs[row].append(model.logits(hidden))
    assert torch.allclose(torch.cat(outs[0], 1), full[:1, 7:20], atol=1e-4)
    assert torch.allclose(torch.cat(outs[1], 1), full[1:, 0:13], atol=1e-4)


@pytest.mark.parametrize("continuous", [False, True])
def test_policy_cached_equals_uncached_with_experts(continuous):
    model = multiway_model()
    env = FakeEnv(continuous_actions=continuous)
    obs = observations(3, 10)
    out = {}
    for use_cache in (True, False):
        pi = GatoPolicy(model, TASK, env.observation_space, env.action_space, prompt_for(env), context=48,
                        use_cache=use_cache)
        logits = record_logits(pi)
        actions, _ = run(pi, obs, starts={5: [1]})
        out[use_cache] = (actions, np.concatenate(logits))
    np.testing.assert_array_equal(out[True][0], out[False][0])
    np.testing.assert_allclose(out[True][1], out[False][1], atol=1e-4)


def test_checkpoint_round_trips_with_experts(tmp_path):
    model, batch = multiway_model(seed=4), mixed_batch()
    checkpoint.save(tmp_path, model, model.config, step=3)
    ck = checkpoint.load(tmp_path)
    loaded, cfg = ck.model, ck.config
    assert cfg.modality_experts and cfg == model.config and ck.step == 3
    assert all(isinstance(b, MultiwayBlock) for b in loaded.blocks)
    for (n, p), q in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(p, q), n
    with torch.no_grad():
        assert torch.equal(loaded.hidden(batch), model.hidden(batch))


@pytest.fixture
def tiny_multiway(monkeypatch):
    import dataclasses

    monkeypatch.setitem(CONFIGS, "gato-tiny-multiway",
                        dataclasses.replace(get_config("gato-tiny"), name="gato-tiny-multiway", modality_experts=True))
    return "gato-tiny-multiway"


def test_killed_multiway_run_resumes_to_the_same_weights(tmp_path, tiny_multiway):
    train(tiny_train_config(tmp_path / "straight", config=tiny_multiway))
    with killed_at_forward(5), pytest.raises(KeyboardInterrupt):
        train(tiny_train_config(tmp_path / "killed", config=tiny_multiway))
    train(tiny_train_config(tmp_path / "killed", config=tiny_multiway))  # resumes from step 4
    a = checkpoint.load(tmp_path / "straight")
    b = checkpoint.load(tmp_path / "killed")
    assert a.config.modality_experts and b.step == 6
    for (n, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(p, q), n
