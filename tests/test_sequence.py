"""gato.sequence: exact slot layouts of two-step toy episodes, masks, actions, the sampler."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.convention import Episode
from gato import sequence as sq
from gato import tokenizer as tk
from gato.batch import TokenBatch

SEP, PAD = tk.SEPARATOR, tk.PAD


def make_episode(task_id, observations, actions):
    t = len(actions)
    return Episode(task_id, observations, np.asarray(actions), np.zeros(t, np.float32),
                   np.zeros(t, bool), np.zeros(t, bool))


# --- exact layouts of two-step episodes ---------------------------------------------------------


def test_continuous_only_two_steps():
    ep = make_episode(
        "dmc-toy",
        {"continuous": np.array([[0.0, 1.0], [-1.0, 256.0]], np.float32)},
        np.array([[-1.0, 0.0], [1.0, 0.5]], np.float32),
    )
    s = sq.episode_to_slots(ep)
    # obs mu-law: 0 -> 32512, 1 -> 32744, -1 -> 32279, 256 -> 33023; actions binned directly:
    # -1 -> 32000, 0 -> 32512, 1 -> 33023, 0.5 -> floor(1.5 * 512) = 768 -> 32768
    assert s.tokens.tolist() == [32512, 32744, SEP, 32000, 32512, 32279, 33023, SEP, 33023, 32768]
    assert s.local_positions.tolist() == [0, 1, -1, 0, 1, 0, 1, -1, 0, 1]  # actions: their dimension
    assert s.is_action.tolist() == [False, False, False, True, True] * 2
    assert s.is_target.tolist() == [False, False, False, True, True] * 2
    assert not s.is_patch.any() and s.patches.shape == (0, 768)
    assert s.timestep_lengths.tolist() == [5, 5]
    assert s.domain == "dmc"

    b = sq.collate([s], length=12)
    assert isinstance(b, TokenBatch) and b.shape == (1, 12)
    assert b.tokens[0].tolist() == s.tokens.tolist() + [PAD, PAD]
    # targets[i] = tokens[i + 1]; the mask is on where that next token is an action token
    assert b.targets[0].tolist() == s.tokens.tolist()[1:] + [PAD, PAD, PAD]
    assert b.loss_mask[0].int().tolist() == [0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0]
    assert b.local_positions[0].tolist()[-2:] == [-1, -1]
    assert b.patches.shape == (0, 768)


def test_discrete_and_text_two_steps():
    # BabyAI-like: a mission ("go" = [576], then "go to" = [576, 298]), discrete values, Discrete(7)
    ep = make_episode(
        "babyai-toy",
        {"discrete": np.array([[1, 2], [3, 0]]), "text": ["go", "go to"]},
        np.array([3, 6]),
    )
    s = sq.episode_to_slots(ep, action_space=gym.spaces.Discrete(7))
    assert s.tokens.tolist() == [
        576, 33025, 33026, SEP, 33027,  # text, discrete 1, 2, separator, action 3
        576, 298, 33027, 33024, SEP, 33030,  # text, discrete 3, 0, separator, action 6
    ]
    assert s.local_positions.tolist() == [0, 1, 2, -1, 0, 0, 1, 2, 3, -1, 0]
    assert s.is_target.tolist() == [1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1]  # text and actions
    assert s.timestep_lengths.tolist() == [5, 6]
    b = sq.collate([s])
    assert b.shape == (1, 11)
    # slot i learns when slot i+1 is text or action
    assert b.loss_mask[0].int().tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0]
    assert b.targets[0, 4].item() == 576  # the action of step 1 predicts step 2's first text token
    assert b.is_action[0].int().tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]


def test_image_two_steps():
    # 32 x 16 frames: 2 patches (top, bottom). Step 1: top 0, bottom 255; step 2: all 51
    img = np.zeros((2, 32, 16, 3), np.uint8)
    img[0, 16:] = 255
    img[1] = 51
    ep = make_episode("atari-toy", {"image": img}, np.array([0, 5]))
    s = sq.episode_to_slots(ep)
    assert s.tokens.tolist() == [PAD, PAD, SEP, 33024, PAD, PAD, SEP, 33029]
    assert s.is_patch.tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    assert s.local_positions.tolist() == [0, 1, -1, 0, 0, 1, -1, 0]
    # rows [0, 64) and [64, 128) of 128 bins, one column covering [0, 128)
    assert s.patch_positions.tolist() == [[0, 64, 0, 128], [64, 128, 0, 128], [0] * 4, [0] * 4] * 2
    b = sq.collate([s], length=10)
    assert b.loss_mask[0].int().tolist() == [0, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    assert b.is_patch[0].int().tolist() == [1, 1, 0, 0, 1, 1, 0, 0, 0, 0]
    # patches in is_patch order: (0 -> -0.25), (255 -> 0.25), then 51 -> (0.4 - 1) / 4 = -0.15 twice
    assert b.patches.shape == (4, 768) and b.patches.dtype == torch.float32
    np.testing.assert_allclose(b.patches[:, 0].numpy(), [-0.25, 0.25, -0.15, -0.15], atol=1e-7)
    assert b.patch_positions[0, 1].tolist() == [64, 128, 0, 128]


def test_observation_order_text_image_then_keys_lexicographically():
    obs = {  # given in a scrambled order
        "discrete": np.array([[7]]),
        "continuous": np.array([[0.0]], np.float32),
        "image": np.zeros((1, 16, 16, 3), np.uint8),
        "text": ["go"],
    }
    s = sq.episode_to_slots(make_episode("x-y", obs, np.array([1])))
    assert s.tokens.tolist() == [576, PAD, 32512, 33031, SEP, 33025]
    assert s.local_positions.tolist() == [0, 1, 2, 3, -1, 0]


def test_batch_of_two_and_patch_order_over_batch():
    a = sq.episode_to_slots(make_episode("atari-a", {"image": np.full((1, 16, 16, 3), 255, np.uint8)}, [1]))
    c = sq.episode_to_slots(make_episode("atari-a", {"image": np.zeros((1, 16, 32, 3), np.uint8)}, [2]))
    b = sq.collate([c, a], length=5)
    assert b.shape == (2, 5) and b.domains == ["atari", "atari"]
    # row-major over (B, L): c's two patches (-0.25) before a's one patch (0.25)
    assert b.patches[:, 0].tolist() == [-0.25, -0.25, 0.25]
    assert torch.equal(b.is_patch.nonzero()[:, 0], torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="does not fit"):
        sq.collate([c], length=3)


# --- single observations (closed-loop policy) ---------------------------------------------------


def test_encode_observation_matches_episode_layout():
    rng = np.random.default_rng(0)
    obs = {"image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "text": "go to",
           "discrete": np.array([4, 5])}
    space = gym.spaces.Dict({
        "image": gym.spaces.Box(0, 255, (32, 32, 3), np.uint8), "text": gym.spaces.Text(64),
        "discrete": gym.spaces.Box(0, 1023, (2,), np.int64),
    })
    one = sq.encode_observation(obs, space, task_id="babyai-z")
    ep = make_episode("babyai-z", {k: ([v] if k == "text" else v[None]) for k, v in obs.items()}, np.array([2]))
    full = sq.episode_to_slots(ep)
    n = len(one)
    assert n == 2 + 4 + 2 + 1 and one.tokens[-1] == SEP
    np.testing.assert_array_equal(one.tokens, full.tokens[:n])
    np.testing.assert_array_equal(one.patches, full.patches)
    np.testing.assert_array_equal(one.local_positions, full.local_positions[:n])
    step = sq.SlotArrays.concat([one, sq.action_slots(np.array([33026]))])
    np.testing.assert_array_equal(step.tokens, full.tokens)
    np.testing.assert_array_equal(step.is_target, full.is_target)
    with pytest.raises(ValueError, match="space keys"):
        sq.encode_observation({"discrete": np.array([1, 2])}, space)
    with pytest.raises(ValueError, match=r"image shape \(16, 16, 3\) != space shape \(32, 32, 3\)"):
        sq.encode_observation({**obs, "image": np.zeros((16, 16, 3), np.uint8)}, space)


# --- actions ------------------------------------------------------------------------------------


def test_action_token_ranges():
    assert sq.action_token_ranges(gym.spaces.Discrete(7)) == [(33024, 33031)]
    assert sq.action_token_ranges(gym.spaces.Box(-1, 1, (3,), np.float32)) == [(32000, 33024)] * 3


def test_discrete_actions_round_trip_and_range_checks():
    space = gym.spaces.Discrete(7)
    tokens = sq.encode_action(np.array([0, 3, 6]), space)
    assert tokens.tolist() == [[33024], [33027], [33030]]
    assert sq.decode_action(tokens, space).tolist() == [0, 3, 6]
    with pytest.raises(ValueError, match="outside Discrete\\(7\\)"):
        sq.decode_action(np.array([33031]), space)  # action 7
    with pytest.raises(ValueError, match="not a discrete token"):
        sq.decode_action(np.array([32000]), space)
    with pytest.raises(ValueError, match="outside Discrete\\(7\\)"):
        sq.encode_action(np.array(7), space)
    with pytest.raises(ValueError, match="needs 1 action tokens"):
        sq.decode_action(np.array([33024, 33025]), space)


def test_box_actions_decode_to_bin_centres():
    space = gym.spaces.Box(-1, 1, (2,), np.float32)
    out = sq.decode_action(np.array([32000, 32768]), space)
    assert out.tolist() == [-1 + 1 / 1024, 0.5 + 1 / 1024]  # bin 768: (768.5 / 1024) * 2 - 1
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match="not a continuous token"):
        sq.decode_action(np.array([32000, 33024]), space)
    with pytest.raises(ValueError, match="non-finite.*'action'"):
        sq.encode_action(np.array([0.0, np.nan]), space, task_id="metaworld-reach")


def test_box_actions_inverse_rescaling():
    # a Box(low=[0, -2], high=[1, 2]) space: 0.5 -> 0 -> bin 512; -2 -> -1 -> bin 0
    space = gym.spaces.Box(np.array([0.0, -2.0]), np.array([1.0, 2.0]), dtype=np.float64)
    tokens = sq.encode_action(np.array([0.5, -2.0]), space)
    assert tokens.tolist() == [32512, 32000]
    # centres: bin 512 -> 1/1024 -> 0 + (1 + 1/1024) / 2 * 1; bin 0 -> -1 + 1/1024 -> -2 + (1/1024)/2 * 4
    np.testing.assert_allclose(sq.decode_action(tokens, space), [0.5 + 1 / 2048, -2 + 1 / 512], atol=1e-6)


def test_unsupported_action_spaces_are_errors():
    with pytest.raises(ValueError, match="start at 0"):
        sq.ActionSpec.from_space(gym.spaces.Discrete(5000))
    with pytest.raises(ValueError, match="finite"):
        sq.ActionSpec.from_space(gym.spaces.Box(-np.inf, np.inf, (2,)))
    with pytest.raises(TypeError, match="Discrete"):
        sq.ActionSpec.from_space(gym.spaces.MultiBinary(3))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=1, max_size=6))
def test_property_box_action_round_trip_within_half_a_bin(values):
    space = gym.spaces.Box(-1, 1, (len(values),), np.float32)
    a = np.array(values, np.float32)
    back = sq.decode_action(sq.encode_action(a, space), space)
    assert np.abs(back.astype(np.float64) - a).max() <= 1 / 1024 + 1e-7  # half a bin (+ float32 input)


# --- bad inputs name the task and key -----------------------------------------------------------


def test_nan_observation_names_task_and_key():
    obs = {"continuous": np.array([[0.0, 1.0], [np.nan, 0.0]], np.float32)}
    with pytest.raises(ValueError, match=r"non-finite value nan at index \(1, 0\) \(task 'dmc-cheetah-run', key 'continuous'\)"):
        sq.episode_to_slots(make_episode("dmc-cheetah-run", obs, np.zeros((2, 6), np.float32)))
    with pytest.raises(ValueError, match="task 'dmc-x', key 'continuous'"):
        sq.encode_observation({"continuous": np.array([np.inf])}, task_id="dmc-x")


def test_bad_discrete_and_image_and_keys():
    with pytest.raises(ValueError, match=r"discrete value 1024 is outside \[0, 1024\) \(task 'babyai-a', key 'discrete'\)"):
        sq.episode_to_slots(make_episode("babyai-a", {"discrete": np.array([[1024]])}, [0]))
    with pytest.raises(ValueError, match="multiples of 16, got 20x16 .*'atari-b'"):
        sq.episode_to_slots(make_episode("atari-b", {"image": np.zeros((1, 20, 16, 3), np.uint8)}, [0]))
    with pytest.raises(TypeError, match="uint8"):
        sq.encode_observation({"image": np.zeros((16, 16, 3), np.float32)})
    with pytest.raises(ValueError, match="unknown observation keys \\['rgb'\\]"):
        sq.encode_observation({"rgb": np.zeros(3)})
    with pytest.raises(ValueError, match="513 slots exceeds the 512 local positions"):
        sq.encode_observation({"discrete": np.zeros(513, np.int64)})
    with pytest.raises(ValueError, match="2 timesteps but there are 1 actions"):
        sq.episode_to_slots(make_episode("dmc-a", {"continuous": np.zeros((2, 1), np.float32)}, np.zeros((1, 1))))


# --- vision-language builders ------------------------------------------------------------------


def test_text_and_image_caption_sequences():
    s = sq.text_sequence(np.array([5, 6, 7, 8]), length=3)
    b = sq.collate([s], length=4)
    assert b.tokens[0].tolist() == [5, 6, 7, PAD]
    assert b.loss_mask[0].int().tolist() == [1, 1, 0, 0]  # predict 6 from 5, 7 from 6
    assert b.local_positions[0].tolist() == [-1] * 4 and b.domains == ["text"]

    img = np.zeros((16, 32, 3), np.uint8)  # 2 patches
    s = sq.image_text_sequence([(img, np.array([10, 11])), (img, np.array([12])), (img, np.array([13]))], length=8)
    # pairs: 2 + 2 = 4 slots, then 2 + 1 = 3 slots; the third pair (3 slots) does not fit in 8
    assert s.tokens.tolist() == [PAD, PAD, 10, 11, PAD, PAD, 12]
    assert s.local_positions.tolist() == [0, 1, -1, -1, 0, 1, -1]
    b = sq.collate([s], length=8)
    assert b.loss_mask[0].int().tolist() == [0, 1, 1, 0, 0, 1, 0, 0]  # the last patch predicts the caption
    assert b.patches.shape == (4, 768) and b.domains == ["vision-language"]
    with pytest.raises(ValueError, match="first"):
        sq.image_text_sequence([(img, np.array([1, 2, 3]))], length=4)


# --- the sampler --------------------------------------------------------------------------------


def numbered_episode(task_id, episode_id, length):
    """Discrete obs ``[episode_id, t]`` (slots: 2 obs + separator + 1 action = 4 per timestep)."""
    t = np.arange(length)
    obs = {"discrete": np.stack([np.full(length, episode_id), t], axis=1)}
    return make_episode(task_id, obs, t % 3)


def read_steps(s):
    """(episode_id, t) of each timestep in a sequence of numbered_episode timesteps."""
    tok = s.tokens.reshape(-1, 4)
    assert (tok[:, 2] == SEP).all()
    return [tuple(x) for x in tk.decode_discrete(tok[:, :2]).tolist()]


def test_sampler_cuts_whole_timesteps_consecutively_and_fills_l():
    eps = [numbered_episode("babyai-n", i, 30) for i in range(3)]
    sampler = sq.SequenceSampler([eps], sq.SamplerConfig(sequence_length=42, prompt_prob=0.0, seed=1))
    for _ in range(50):
        s = sampler.sample()
        steps = read_steps(s)
        # 42 // 4 = 10 whole timesteps always fit (episodes have 30), never a partial one
        assert len(s) == 40 and len(steps) == 10
        ep = {e for e, _ in steps}
        assert len(ep) == 1
        ts = [t for _, t in steps]
        assert ts == list(range(ts[0], ts[0] + 10))


def test_sampler_episode_start_prob_cuts_that_share_of_windows_from_timestep_0():
    """30-step episodes, 10-step windows: a uniform start is 0 (or pulled back to 0) 1 time in 30,
    so with episode_start_prob 0.5 about 0.5 + 0.5 / 30 of the windows begin at t = 0."""
    eps = [numbered_episode("babyai-n", i, 30) for i in range(3)]
    starts = {}
    for p in (0.0, 0.5, 1.0):
        sampler = sq.SequenceSampler([eps], sq.SamplerConfig(sequence_length=42, prompt_prob=0.0,
                                                            episode_start_prob=p, seed=2))
        starts[p] = np.mean([read_steps(sampler.sample())[0][1] == 0 for _ in range(1000)])
    assert starts[1.0] == 1.0 and abs(starts[0.5] - (0.5 + 0.5 / 30)) < 0.05 and starts[0.0] < 0.07


def test_sampler_short_episode_is_padded():
    sampler = sq.SequenceSampler([[numbered_episode("babyai-n", 0, 3)]], sq.SamplerConfig(sequence_length=20, prompt_prob=0.0))
    b = sampler.batch(2)
    assert b.shape == (2, 20)
    assert (b.tokens[:, 12:] == PAD).all() and not b.loss_mask[:, 11:].any()
    assert read_steps(sampler.sample()) == [(0, 0), (0, 1), (0, 2)]


def test_sampler_prompts_from_another_episode():
    eps = [numbered_episode("babyai-n", i, 30) for i in range(2)]
    cfg = sq.SamplerConfig(sequence_length=40, prompt_prob=1.0, prompt_end_prob=1.0, prompt_fraction=0.5, seed=3)
    sampler = sq.SequenceSampler([eps], cfg)
    for _ in range(20):
        steps = read_steps(sampler.sample())
        # prompt: the last 20 // 4 = 5 timesteps of the other episode; then 5 timesteps of this one
        assert len(steps) == 10
        (pe, _), (me, _) = steps[0], steps[5]
        assert pe != me and {e for e, _ in steps[:5]} == {pe} and {e for e, _ in steps[5:]} == {me}
        assert [t for _, t in steps[:5]] == [25, 26, 27, 28, 29]


def test_sampler_prompt_from_uniform_point_and_rates():
    eps = [numbered_episode("babyai-n", i, 100) for i in range(2)]
    cfg = sq.SamplerConfig(sequence_length=40, prompt_prob=0.25, prompt_end_prob=0.5, seed=0)
    sampler = sq.SequenceSampler([eps], cfg)
    n, prompted, from_end = 400, 0, 0
    for _ in range(n):
        steps = read_steps(sampler.sample())
        if steps[0][0] != steps[-1][0]:  # a prompt from the other episode
            prompted += 1
            from_end += steps[4][1] == 99
    # binomial(400, 0.25): mean 100, sd 8.7; of the prompts about half from the end
    assert 65 < prompted < 135
    assert 0.3 < from_end / prompted < 0.7


def test_sampler_is_deterministic_and_mixes_tasks():
    a = [numbered_episode("babyai-a", 0, 10)]
    c = [make_episode("dmc-c", {"continuous": np.zeros((10, 3), np.float32)}, np.zeros((10, 1), np.float32))]
    cfg = sq.SamplerConfig(sequence_length=32, seed=7)
    b1, b2 = sq.SequenceSampler([a, c], cfg).batch(16), sq.SequenceSampler([a, c], cfg).batch(16)
    assert torch.equal(b1.tokens, b2.tokens) and b1.domains == b2.domains
    assert set(b1.domains) == {"babyai", "dmc"}
    only_c = sq.SequenceSampler([a, c], cfg, weights=[0, 1]).batch(4)
    assert only_c.domains == ["dmc"] * 4


def test_sampler_with_images_and_text():
    rng = np.random.default_rng(0)
    eps = [make_episode("babyai-t", {"text": ["pick up a key"] * 12, "image": rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)},
                        rng.integers(0, 7, 12)) for _ in range(2)]
    b = sq.SequenceSampler([eps], sq.SamplerConfig(sequence_length=64, seed=0)).batch(3)
    # a timestep: 4 text + 1 patch + separator + action = 7 slots
    assert b.is_patch.sum().item() == b.patches.shape[0]
    assert ((b.tokens != PAD) | b.is_patch).sum(1).tolist() == [63, 63, 63]  # 9 whole timesteps
    with pytest.raises(ValueError, match="raise sequence_length"):
        sq.SequenceSampler([eps], sq.SamplerConfig(sequence_length=5, prompt_prob=0.0)).sample()


def test_sampler_skips_a_prompt_whose_budget_holds_no_timestep():
    # 4 slots per timestep; L=6 leaves a prompt budget of 3 < 4, so sequences go unprompted
    eps = [numbered_episode("babyai-n", i, 5) for i in range(2)]
    sampler = sq.SequenceSampler([eps], sq.SamplerConfig(sequence_length=6, prompt_prob=1.0, seed=0))
    for _ in range(10):
        assert len(read_steps(sampler.sample())) == 1
