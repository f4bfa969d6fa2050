"""Model tests: parameter counts, masked loss, patch positions, KV-cache decoding."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from gato.batch import TokenBatch
from gato.configs import CONFIGS, get_config
from gato.model import GatoModel, KVCache, Slots, count_parameters
from tiny import tiny_model

PAD = 34049


def random_batch(b: int = 2, length: int = 24, patches_per_row: int = 4, seed: int = 0) -> TokenBatch:
    """Rows of [patch x k, tokens..., separator, action]-like slots with every field populated."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(32000, 34048, (b, length), generator=g)
    is_patch = torch.zeros(b, length, dtype=torch.bool)
    is_patch[:, 1:1 + patches_per_row] = True
    tokens[is_patch] = PAD
    p = int(is_patch.sum())
    positions = torch.zeros(b, length, 4, dtype=torch.long)
    k = torch.arange(patches_per_row)
    positions[:, 1:1 + patches_per_row] = torch.stack([k * 32, k * 32 + 32, k * 16, k * 16 + 16], -1)
    local = torch.arange(length).repeat(b, 1)
    is_action = torch.zeros(b, length, dtype=torch.bool)
    is_action[:, -3:] = True
    local[:, -4] = -1  # separator
    local[:, -3:] = torch.arange(3)  # action dimensions
    targets = torch.roll(tokens, -1, 1)
    loss_mask = is_action.clone()
    loss_mask[:, -1] = False
    return TokenBatch(tokens, is_patch, torch.rand(p, 768, generator=g) - 0.5, positions, local,
                      is_action, targets, loss_mask, ["atari", "dmc"][:b] + ["atari"] * max(0, b - 2))


def test_published_configs_match_paper_counts():
    for name in ("gato-79m", "gato-364m", "gato-1.18b"):
        cfg = CONFIGS[name]
        n = count_parameters(cfg)
        print(f"{name}: {n:,} params (paper {cfg.paper_params:,})")
        assert abs(n / cfg.paper_params - 1) < 0.05, (name, n)


def test_parameter_count_by_hand():
    cfg = get_config("gato-tiny")
    d, h, v = cfg.width, cfg.ffw_hidden, cfg.vocab_size
    inner = cfg.num_heads * cfg.head_dim
    block = 4 * d + 4 * d * inner + 3 * d * h  # two LayerNorms, Q/K/V/out, GEGLU
    c = cfg.patch_channels
    patch = (3 * 16 * c + c) + 2 * (9 * c * c + c) + 3 * 2 * c + (16 * c * d + d)
    tables = v * d + 2 * 128 * d + 512 * d + cfg.action_positions * d + cfg.max_len * d
    assert count_parameters(cfg) == cfg.num_layers * block + patch + tables + 2 * d


def test_unknown_config_names_the_choices():
    with pytest.raises(KeyError, match="gato-tiny"):
        get_config("gato-tiyn")


def test_loss_is_masked_cross_entropy_over_full_logits():
    model, batch = tiny_model().eval(), random_batch()  # eval: deterministic patch positions
    loss, metrics = model(batch)
    full = model.logits(model.trunk(model.embed(batch)))  # (B, L, V)
    expected = F.cross_entropy(full[batch.loss_mask], batch.targets[batch.loss_mask])
    assert torch.allclose(loss, expected, atol=1e-6)
    assert int(metrics["targets"]) == 4
    # per-domain sums partition the total
    total = metrics["loss_sum/atari"] + metrics["loss_sum/dmc"]
    assert torch.allclose(total / 4, loss, atol=1e-6)
    assert int(metrics["targets/atari"]) == 2


def test_loss_ignores_inputs_after_the_last_target():
    """Causality: changing slots after the last target slot does not change the loss."""
    model, batch = tiny_model().eval(), random_batch()
    batch.loss_mask[:, -3:] = False
    loss_a, _ = model(batch)
    batch.tokens[:, -2:] = 32000
    loss_b, _ = model(batch)
    assert torch.equal(loss_a, loss_b)


def test_uniform_initial_loss_is_near_log_vocab():
    loss, _ = tiny_model()(random_batch())
    assert abs(loss.item() - math.log(34178)) < 0.5


def test_patch_position_bins_train_draw_from_interval_eval_take_rounded_mean():
    model = tiny_model()
    pos = torch.tensor([[0, 8, 10, 11], [5, 6, 120, 128]])
    model.eval()
    rows, cols = model.patch_position_bins(pos)
    assert rows.tolist() == [4, 5] and cols.tolist() == [10, 124]
    model.train()
    draws = torch.stack([torch.stack(model.patch_position_bins(pos)) for _ in range(200)])  # (200, 2, P)
    assert draws[:, 0, 0].min() == 0 and draws[:, 0, 0].max() == 7  # uniform over [0, 8)
    assert (draws[:, 1, 0] == 10).all() and (draws[:, 1, 1] >= 120).all()


def test_patch_and_action_embeddings_reach_only_their_slots():
    model = tiny_model().eval()
    batch = random_batch(b=1)
    x = model.embed(batch)[0]
    tok = model.token_embedding(batch.tokens[0]) + model.position_embedding.weight[:len(x)]
    dim = batch.local_positions[0, -1]  # the action slot's dimension
    assert torch.allclose(x[-1], tok[-1] + model.action_embedding.weight[dim])  # action slot
    assert torch.allclose(x[-4], tok[-4])  # separator-like slot: local position -1, not an action
    assert torch.allclose(x[0], tok[0] + model.local_position_embedding.weight[0])
    assert not torch.allclose(x[1], tok[1] + model.local_position_embedding.weight[1])  # a patch


def test_action_dimensions_get_their_own_rows():
    """Two action slots with the same token differ by their dimension's row, and only by it."""
    model = tiny_model().eval()
    batch = random_batch(b=1)
    batch.is_action[0, -2:] = True
    batch.tokens[0, -2:] = batch.tokens[0, -1]
    batch.local_positions[0, -2:] = torch.tensor([0, 1])
    x = model.embed(batch)[0]
    rows = model.action_embedding.weight
    pos = model.position_embedding.weight
    assert torch.allclose(x[-1] - x[-2], rows[1] - rows[0] + pos[len(x) - 1] - pos[len(x) - 2], atol=1e-6)


def test_without_action_token_inputs_hidden_states_ignore_action_values():
    """action_token_inputs=False: changing past action tokens changes no hidden state (the model
    cannot copy its last action); the paper's default does change the slots after them."""
    batch = random_batch(b=1)
    other = dataclasses.replace(batch, tokens=batch.tokens.clone())
    other.tokens[0, -3:-1] = 33024 + (other.tokens[0, -3:-1] - 33024 + 7) % 1024  # two action values
    blind, paper = tiny_model(action_token_inputs=False).eval(), tiny_model().eval()
    with torch.no_grad():
        assert torch.equal(blind.hidden(batch), blind.hidden(other))
        changed = (paper.hidden(batch) - paper.hidden(other)).abs().amax(-1)[0]
    assert (changed[:-3] == 0).all() and (changed[-3:] > 1e-4).all()  # only at and after them
    assert blind.embed(batch)[0, -1].allclose(
        blind.action_embedding.weight[2] + blind.position_embedding.weight[len(batch.tokens[0]) - 1])


def test_fourier_value_rows_make_neighbouring_bins_alike():
    """value_embedding_init="fourier": bins 500 and 501 start nearly equal, bins 0 and 1023 nearly
    orthogonal; every row has the norm of an N(0, 0.02) row; the other rows keep the normal init."""
    from gato.tokenizer import CONTINUOUS_OFFSET as C

    def cos(a, b):
        return float(torch.nn.functional.cosine_similarity(a, b, dim=0))

    smooth, normal = tiny_model(value_embedding_init="fourier"), tiny_model()
    e, n = smooth.token_embedding.weight.detach(), normal.token_embedding.weight.detach()
    assert cos(e[C + 500], e[C + 501]) > 0.95 and abs(cos(e[C], e[C + 1023])) < 0.3
    assert abs(cos(n[C + 500], n[C + 501])) < 0.5  # unrelated at the normal init
    width = smooth.config.width
    assert torch.allclose(e[C:C + 1024].norm(dim=1), torch.full((1024,), 0.02 * width ** 0.5))
    assert torch.equal(e[:C], n[:C])  # text rows: the same seed, the same normal draw
    with pytest.raises(ValueError, match="value_embedding_init='sine'"):
        tiny_model(value_embedding_init="sine")


def test_value_features_share_one_map_across_bins():
    """value_features: the input row of a continuous token and its output logit row are the same
    (free row + shared part); a gradient through bin 100 alone moves bin 900's row (through the
    shared map) but no text row; 0 leaves the table as it is; an odd count is refused."""
    from gato.tokenizer import CONTINUOUS_OFFSET as C

    model = tiny_model(value_features=8)
    rows = model.token_rows()
    assert rows.shape == model.token_embedding.weight.shape
    shared = model.value_rows()
    assert torch.allclose(rows[C + 7], model.token_embedding.weight[C + 7] + shared[7])
    assert torch.equal(rows[:C], model.token_embedding.weight[:C])
    assert torch.allclose(model.token_rows(C + 5, C + 9), rows[C + 5:C + 9])
    assert torch.allclose(model.token_rows(C - 2, C + 2), rows[C - 2:C + 2])  # a range across the edge
    value, text = random_batch(b=1), random_batch(b=1)
    value.tokens[0, 0], text.tokens[0, 0] = C + 100, 7  # slot 0 differs only in its token
    w = model.token_embedding.weight
    assert torch.allclose(model.embed(value)[0, 0] - model.embed(text)[0, 0], w[C + 100] + shared[100] - w[7],
                          atol=1e-6)
    before = model.token_rows().detach().clone()
    hidden = torch.randn(1, model.config.width)
    loss = -torch.log_softmax(model.logits(hidden, (C, C + 1024)), -1)[0, 100]
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    after = model.token_rows().detach()
    assert (after[C + 900] - before[C + 900]).abs().max() > 1e-6
    assert torch.equal(after[:C], before[:C])
    plain = tiny_model()
    assert plain.value_rows() is None and torch.equal(plain.token_rows(), plain.token_embedding.weight)
    with pytest.raises(ValueError, match="value_features=3"):
        tiny_model(value_features=3)


def test_zero_value_init_starts_rows_as_the_shared_features():
    """value_embedding_init="zero" with value_features: every continuous-value row starts as its
    shared part alone (so bins 500 and 501 start alike), text rows keep the normal init; without
    value_features the option is refused."""
    from gato.tokenizer import CONTINUOUS_OFFSET as C

    model, normal = tiny_model(value_features=8, value_embedding_init="zero"), tiny_model(value_features=8)
    assert torch.equal(model.token_embedding.weight[C:C + 1024], torch.zeros(1024, model.config.width))
    assert torch.allclose(model.token_rows(C, C + 1024), model.value_rows())
    rows = model.token_rows(C, C + 1024).detach()
    assert float(torch.nn.functional.cosine_similarity(rows[500], rows[501], dim=0)) > 0.9
    assert torch.equal(model.token_embedding.weight[:C], normal.token_embedding.weight[:C])
    with pytest.raises(ValueError, match="needs value_features"):
        tiny_model(value_embedding_init="zero")


def test_sequence_reduction_weights_sequences_not_targets():
    """Loss = mean over sequences of each one's mean: a 1-target row weighs as much as a 3-target row."""
    model = tiny_model().eval()
    batch = random_batch(b=2)
    batch.loss_mask[:] = False
    batch.loss_mask[0, :3] = True
    batch.loss_mask[1, 5] = True
    per_token, _ = model(batch, reduction="token")
    per_sequence, _ = model(batch, reduction="sequence")
    logits = model.logits(model.trunk(model.embed(batch)))
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), reduction="none").view(2, -1)
    row0, row1 = ce[0, :3], ce[1, 5]
    assert torch.allclose(per_token, (row0.sum() + row1) / 4, atol=1e-5)
    assert torch.allclose(per_sequence, (row0.mean() + row1) / 2, atol=1e-5)


def _slots(batch: TokenBatch, lo: int, hi: int) -> Slots:
    """Slots [lo, hi) of every row, with the matching patches."""
    per_row_before = batch.is_patch[:, :lo].sum(1)
    per_row_in = batch.is_patch[:, lo:hi].sum(1)
    offsets = torch.cumsum(batch.is_patch.sum(1), 0) - batch.is_patch.sum(1)
    pieces = [batch.patches[o + pb:o + pb + pi] for o, pb, pi in zip(offsets, per_row_before, per_row_in)]
    return Slots(batch.tokens[:, lo:hi], batch.is_patch[:, lo:hi], torch.cat(pieces),
                 batch.patch_positions[:, lo:hi], batch.local_positions[:, lo:hi], batch.is_action[:, lo:hi])


@pytest.mark.parametrize("value_features", [0, 8])
def test_incremental_decode_equals_full_forward(value_features):
    model = tiny_model(value_features=value_features).eval()
    batch = random_batch(b=3, length=24)
    with torch.no_grad():
        full = model.logits(model.trunk(model.embed(batch)))  # (B, L, V)
        cache = model.new_cache(3, capacity=32)
        outs = []
        for lo, hi in [(0, 7), (7, 8), (8, 9), (9, 20), (20, 24)]:
            hidden, cache = model.decode(_slots(batch, lo, hi), cache)
            outs.append(model.logits(hidden))
    assert cache.lengths.tolist() == [24, 24, 24]
    assert torch.allclose(torch.cat(outs, 1), full, atol=1e-5)
    lo_hi = model.logits(hidden[:, -1], vocab_range=(32000, 33024))
    assert torch.allclose(lo_hi, full[:, -1, 32000:33024], atol=1e-5)


def test_decode_rows_of_different_lengths_and_reset():
    model = tiny_model().eval()
    batch = random_batch(b=2, length=20)
    with torch.no_grad():
        full = model.logits(model.trunk(model.embed(batch)))
        cache = model.new_cache(2, capacity=20)
        first_row = _slots(batch, 0, 20)
        only0 = Slots(first_row.tokens[:1, :12], first_row.is_patch[:1, :12],
                      first_row.patches[:4], first_row.patch_positions[:1, :12],
                      first_row.local_positions[:1, :12], first_row.is_action[:1, :12])
        model.decode(only0, cache, rows=[0])  # row 0 ahead by 12 slots
        assert cache.lengths.tolist() == [12, 0]
        one = Slots(batch.tokens[1:, :12], batch.is_patch[1:, :12], batch.patches[4:],
                    batch.patch_positions[1:, :12], batch.local_positions[1:, :12], batch.is_action[1:, :12])
        model.decode(one, cache, rows=[1])
        hidden, _ = model.decode(_slots(batch, 12, 20), cache)
    assert torch.allclose(model.logits(hidden), full[:, 12:], atol=1e-5)
    with pytest.raises(ValueError, match="KV cache full"):
        model.decode(_slots(batch, 19, 20), cache)
    cache.reset([1])
    assert cache.lengths.tolist() == [20, 0]


def test_cache_drop_shifts_later_slots_left():
    cfg = get_config("gato-tiny")
    cache = KVCache.allocate(cfg, batch_size=2, capacity=8)
    for t in cache.keys + cache.values:
        t.copy_(torch.arange(8.0).view(1, 1, 8, 1).expand_as(t))
    cache.lengths[:] = torch.tensor([8, 3])
    cache.drop(2, start=1)  # drop slots 1, 2: row 0 keeps [0, 3..7], row 1 keeps [0]
    assert cache.lengths.tolist() == [6, 1]
    assert cache.keys[0][0, 0, :6, 0].tolist() == [0, 3, 4, 5, 6, 7]
    assert cache.values[1][1, 1, :1, 0].tolist() == [0]


def test_drop_then_decode_equals_reencoding_for_one_layer():
    """With one layer and no absolute positions a slot's key/value depends on that slot alone, so
    dropping the oldest slots then decoding equals a fresh forward over the kept slots."""
    torch.manual_seed(0)
    config = dataclasses.replace(get_config("gato-tiny"), num_layers=1, absolute_positions=False)
    model = GatoModel(config).eval()
    batch = random_batch(b=1, length=16, patches_per_row=0)
    with torch.no_grad():
        cache = model.new_cache(1, capacity=12)
        model.decode(_slots(batch, 0, 12), cache)
        cache.drop(4, start=2)  # keep slots 0, 1 (a "prompt") and 6..11
        hidden, _ = model.decode(_slots(batch, 12, 16), cache)
        keep = torch.tensor([0, 1] + list(range(6, 16)))
        kept = Slots(batch.tokens[:, keep], batch.is_patch[:, keep], batch.patches,
                     batch.patch_positions[:, keep], batch.local_positions[:, keep], batch.is_action[:, keep])
        fresh = model.trunk(model.embed(kept))[:, -4:]
    assert cache.lengths.tolist() == [12]
    assert torch.allclose(hidden, fresh, atol=1e-5)


def _rows(s: Slots, rows: list[int]) -> Slots:
    """Rows ``rows`` of ``s``, with their patches."""
    per_row = s.is_patch.sum(1)
    offsets = torch.cumsum(per_row, 0) - per_row
    patches = torch.cat([s.patches[offsets[r]:offsets[r] + per_row[r]] for r in rows])
    return Slots(s.tokens[rows], s.is_patch[rows], patches, s.patch_positions[rows], s.local_positions[rows],
                 s.is_action[rows])


def test_decode_of_row_subsets_and_given_patch_features_equals_full_forward():
    """Rows fed apart (not consecutive, consecutive, one), one with its patch features computed beforehand."""
    model = tiny_model().eval()
    batch = random_batch(b=3, length=20, seed=1)
    with torch.no_grad():
        full = model.trunk(model.embed(batch))
        cache = model.new_cache(3, capacity=20)
        head = _slots(batch, 0, 8)
        h02, _ = model.decode(_rows(head, [0, 2]), cache, rows=[0, 2])  # same start, rows 0 and 2
        one = _rows(head, [1])
        h1, _ = model.decode(one, cache, rows=[1], patch_features=model.patch_encoder(one.patches))
        mid = _slots(batch, 8, 9)  # one slot per row, same length: no mask
        h_mid, _ = model.decode(mid, cache)
        h12, _ = model.decode(_rows(_slots(batch, 9, 14), [1, 2]), cache, rows=[1, 2])  # consecutive rows
        h0, _ = model.decode(_rows(_slots(batch, 9, 14), [0]), cache, rows=[0])
        h_tail, _ = model.decode(_slots(batch, 14, 20), cache)
    assert torch.allclose(h02, full[[0, 2], :8], atol=1e-5) and torch.allclose(h1, full[1:2, :8], atol=1e-5)
    assert torch.allclose(h_mid, full[:, 8:9], atol=1e-5)
    assert torch.allclose(h12, full[1:, 9:14], atol=1e-5) and torch.allclose(h0, full[:1, 9:14], atol=1e-5)
    assert torch.allclose(h_tail, full[:, 14:], atol=1e-5)
