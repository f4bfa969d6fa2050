"""GatoPolicy: legal actions, cached == uncached decoding, per-env resets, the sliding window, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from envs.convention import Episode
from fakes import FakeEnv
from gato import sequence as sq
from gato import tokenizer as tk
from gato.model import GatoModel
from gato.policy import (GatoPolicy, MissingPromptError, UnsupportedTaskError, load_prompt,
                         open_prompt_dataset, trained_tasks)

TASK = "fake-task"


@pytest.fixture
def model(noisy_tiny_model) -> GatoModel:
    """The policy's model: gato-tiny with large random weights (conftest), so that logits depend on the input."""
    return noisy_tiny_model


def prompt_for(env: FakeEnv, steps: int = 3) -> sq.SlotArrays:
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    actions = np.arange(steps) % 3 if discrete else np.linspace(-1, 1, steps * 2, dtype=np.float32).reshape(steps, 2)
    ep = Episode(TASK, {"continuous": np.arange(steps * 2, dtype=np.float32).reshape(steps, 2),
                        "discrete": np.arange(steps)[:, None], "text": ["go"] * steps},
                 actions, np.zeros(steps, np.float32), np.zeros(steps, bool), np.zeros(steps, bool))
    return sq.episode_to_slots(ep, action_space=env.action_space)


def observations(n: int, steps: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"continuous": rng.normal(0, 3, (n, 2)).astype(np.float32), "discrete": rng.integers(0, 9, (n, 1)),
             "text": ["go"] * n} for _ in range(steps)]


def run(policy: GatoPolicy, obs_seq: list[dict], starts: dict[int, list[int]] | None = None,
        deterministic: bool = True, seed: int = 0):
    """Act on every observation; ``starts[t]`` lists envs whose episode starts at step t."""
    n = len(obs_seq[0]["text"])
    state = policy.initial_state(n, seed)
    actions = []
    for t, obs in enumerate(obs_seq):
        start = np.zeros(n, bool)
        start[(starts or {}).get(t, [])] = True
        if t == 0:
            start[:] = True
        a, state = policy.act(obs, state, start, deterministic=deterministic)
        actions.append(a)
    return np.stack(actions), state


def record_logits(policy: GatoPolicy) -> list[np.ndarray]:
    seen: list[np.ndarray] = []
    inner = policy._logits

    def spy(hidden, k):
        out = inner(hidden, k)
        seen.append(out)
        return out

    policy._logits = spy  # instance attribute: only this policy records
    return seen


@pytest.mark.parametrize("continuous", [False, True])
def test_actions_are_legal_for_discrete_and_box(model, continuous):
    env = FakeEnv(continuous_actions=continuous)
    pi = GatoPolicy(model, TASK, env.observation_space, env.action_space, prompt_for(env), temperature=5.0)
    actions, _ = run(pi, observations(4, 6))
    if continuous:
        assert actions.shape == (6, 4, 2) and actions.dtype == np.float32
        assert np.all(np.abs(actions) < 1.0)
        bins = (actions + 1) / 2 * tk.NUM_BINS - 0.5  # bin centres decode to whole bins
        np.testing.assert_allclose(bins, np.round(bins), atol=1e-3)
        assert all(env.action_space.contains(a) for a in actions.reshape(-1, 2))
    else:
        assert actions.shape == (6, 4) and actions.dtype == np.int64
        assert set(np.unique(actions)) <= {0, 1, 2}
        assert len(np.unique(actions)) > 1  # temperature 5 over 3 ids: not stuck on one


@pytest.mark.parametrize("continuous", [False, True])
def test_cached_step_equals_uncached_recomputation(model, continuous):
    env = FakeEnv(continuous_actions=continuous)
    obs = observations(3, 14)
    out = {}
    for use_cache in (True, False):
        # a 48-slot context so that the window slides (re-prefill) several times in 14 steps
        pi = GatoPolicy(model, TASK, env.observation_space, env.action_space, prompt_for(env), context=48,
                        use_cache=use_cache)
        logits = record_logits(pi)
        actions, state = run(pi, obs, starts={7: [1]})
        out[use_cache] = (actions, np.concatenate(logits), state.num_slides)
    np.testing.assert_array_equal(out[True][0], out[False][0])
    np.testing.assert_allclose(out[True][1], out[False][1], atol=1e-4)
    assert out[True][2] == out[False][2] > 0
    assert out[True][1].std(axis=0).max() > 0.1  # the inputs matter: logits differ between steps and envs


def test_episode_start_resets_only_that_env(model):
    env = FakeEnv()
    pi = GatoPolicy(model, TASK, env.observation_space, env.action_space, prompt_for(env),
                    decoding={"discrete": "argmax"})  # no sampling state: only the context matters
    obs = observations(2, 8)
    both, state = run(pi, obs, starts={5: [0]})
    alone, _ = run(pi, obs)  # no reset
    np.testing.assert_array_equal(both[:, 1], alone[:, 1])  # env 1 never noticed env 0's reset
    # env 0 after its reset acts like a fresh single env that saw only the observations since
    fresh, _ = run(pi, [{k: v[:1] for k, v in o.items()} for o in obs[5:]])
    np.testing.assert_array_equal(both[5:, 0], fresh[:, 0])
    assert len(state.steps[0]) == 3 and len(state.steps[1]) == 8
    assert int(state.cache.lengths[0]) < int(state.cache.lengths[1])


@pytest.mark.parametrize("slide", ["reprefill", "drop"])
def test_sliding_window_keeps_working_past_the_context(model, slide):
    env = FakeEnv(continuous_actions=True)
    prompt = prompt_for(env)
    pi = GatoPolicy(model, TASK, env.observation_space, env.action_space, prompt, context=40, slide=slide)
    n_steps = 30  # 30 steps x 8 slots = 6x the context
    state = pi.initial_state(2, 0)
    for t, obs in enumerate(observations(2, n_steps)):
        a, state = pi.act(obs, state, np.full(2, t == 0))
        assert np.all(np.abs(a) < 1)
        assert int(state.cache.lengths.max()) <= 40
        # the cache always starts with the prompt and holds the most recent steps
        assert int(state.cache.lengths.min()) >= len(prompt)
    assert state.num_slides >= 4
    step_len = len(state.steps[0][-1])
    assert int(state.cache.lengths[0]) >= len(prompt) + step_len - 1  # at least the last step is kept


def test_unrepresentable_specs_raise(model):
    env = FakeEnv()
    with pytest.raises(UnsupportedTaskError, match="Discrete"):
        GatoPolicy(model, TASK, env.observation_space, gym.spaces.Discrete(2000))
    big = gym.spaces.Dict({"continuous": gym.spaces.Box(-np.inf, np.inf, (600,), np.float32)})
    with pytest.raises(UnsupportedTaskError, match="local positions"):
        GatoPolicy(model, TASK, big, env.action_space)
    odd = gym.spaces.Dict({"lidar": gym.spaces.Box(-1, 1, (3,), np.float32)})
    with pytest.raises(UnsupportedTaskError, match="unknown observation keys"):
        GatoPolicy(model, TASK, odd, env.action_space)
    with pytest.raises(UnsupportedTaskError, match="do not fit the context"):
        GatoPolicy(model, TASK, env.observation_space, env.action_space, prompt_for(env, 40), context=64)


def test_missing_prompt_dataset_names_the_command(tmp_path):
    with pytest.raises(MissingPromptError, match="gato generate --task babyai-goto-red-ball --policy expert"):
        open_prompt_dataset(str(tmp_path / "nope"), task_id="babyai-goto-red-ball")
    with pytest.raises(TypeError, match="open_prompt_dataset"):
        load_prompt(str(tmp_path / "nope"), 100)


def test_trained_tasks_from_the_train_config(tmp_path):
    ds = tmp_path / "x"
    ds.mkdir()
    (ds / "metadata.json").write_text('{"task_id": "metaworld-reach"}')
    cfg = {"data": [str(ds), "gato.multimodal:vl_text_sources", str(tmp_path / "dmc-cartpole-balance-expert")]}
    assert trained_tasks(cfg) == {"metaworld-reach": str(ds),
                                  "dmc-cartpole-balance": str(tmp_path / "dmc-cartpole-balance-expert")}


# ---- decoding: every mode against logits whose answer is computed by hand -----------------------


def fixed_logits(policy: GatoPolicy, table: np.ndarray) -> None:
    """Make every action token's logits ``table`` (B, hi - lo), whatever the model says."""
    policy._logits = lambda hidden, k: table.copy()


def test_every_continuous_decoding_mode_on_known_logits(model):
    env = FakeEnv(continuous_actions=True)
    n = tk.NUM_BINS
    logits = np.full((1, n), -1e9, np.float32)
    # mass 0.5 on bin 100, 0.3 on bin 900, 0.2 on bin 1000 (log-probabilities as logits)
    logits[0, [100, 900, 1000]] = np.log([0.5, 0.3, 0.2])
    want = {"argmax": 100, "mean": round(0.5 * 100 + 0.3 * 900 + 0.2 * 1000),  # 520
            "median": 100}  # cumulative mass reaches 1/2 at bin 100
    for mode, bin_ in want.items():
        pi = GatoPolicy(model, TASK, env.observation_space, env.action_space, prompt_for(env),
                        decoding={"continuous": mode})
        fixed_logits(pi, logits)
        actions, state = run(pi, observations(1, 1))
        centre = (bin_ + 0.5) / n * 2 - 1
        np.testing.assert_allclose(actions[0, 0], [centre, centre], atol=1e-6, err_msg=mode)
    logits[0, 100] = np.log(0.45)  # now the median moves to the second bin
    pi = GatoPolicy(model, TASK, env.observation_space, env.action_space, decoding={"continuous": "median"})
    fixed_logits(pi, logits)
    actions, _ = run(pi, observations(1, 1))
    np.testing.assert_allclose(actions[0, 0, 0], (900 + 0.5) / n * 2 - 1, atol=1e-6)


def test_sampling_follows_the_softmax_and_argmax_takes_the_mode(model):
    env = FakeEnv()
    logits = np.log(np.array([[0.1, 0.6, 0.3]] * 400, np.float32))
    pi = GatoPolicy(model, TASK, env.observation_space, env.action_space, decoding={"discrete": "sample"})
    fixed_logits(pi, logits)
    actions, _ = run(pi, observations(400, 1))
    freq = np.bincount(actions[0], minlength=3) / 400
    np.testing.assert_allclose(freq, [0.1, 0.6, 0.3], atol=0.07)  # ~3 standard errors
    pi = GatoPolicy(model, TASK, env.observation_space, env.action_space, temperature=0.05)
    fixed_logits(pi, logits)
    assert (run(pi, observations(400, 1))[0] == 1).all()  # a cold softmax is the argmax
    pi = GatoPolicy(model, TASK, env.observation_space, env.action_space, decoding={"discrete": "argmax"})
    fixed_logits(pi, logits)
    assert (run(pi, observations(400, 1))[0] == 1).all()


def test_bad_decoding_options_are_named(model):
    env = FakeEnv()
    with pytest.raises(ValueError, match="discrete='mean'"):
        GatoPolicy(model, TASK, env.observation_space, env.action_space, decoding={"discrete": "mean"})
    with pytest.raises(ValueError, match="'greedy'"):
        GatoPolicy(model, TASK, env.observation_space, env.action_space, decoding={"continuous": "greedy"})
    with pytest.raises(ValueError, match="temperature"):
        GatoPolicy(model, TASK, env.observation_space, env.action_space, temperature=0.0)


@pytest.mark.parametrize("continuous", [False, True])
def test_the_policy_context_equals_the_training_tokenization(model, continuous):
    """What the model saw while acting is exactly `episode_to_slots` of the same trajectory."""
    env = FakeEnv(continuous_actions=continuous)
    pi = GatoPolicy(model, TASK, env.observation_space, env.action_space)
    obs = observations(2, 5)
    actions, state = run(pi, obs)
    for j in range(2):
        acted = sq.SlotArrays.concat(state.steps[j])
        ep = Episode(TASK, {"continuous": np.stack([o["continuous"][j] for o in obs]),
                            "discrete": np.stack([o["discrete"][j] for o in obs]),
                            "text": ["go"] * 5},
                     actions[:, j], np.zeros(5, np.float32), np.zeros(5, bool), np.zeros(5, bool))
        trained = sq.episode_to_slots(ep, action_space=env.action_space)
        for field in ("tokens", "is_patch", "local_positions", "is_action", "is_target", "timestep_lengths"):
            np.testing.assert_array_equal(getattr(acted, field), getattr(trained, field), err_msg=field)


def test_batched_tokenization_equals_one_observation_at_a_time():
    obs = {"continuous": np.array([[0.5, -2.0], [3.0, 0.0]], np.float32), "discrete": np.array([[4], [7]]),
           "text": ["go", "go to the red ball"], "image": np.arange(2 * 32 * 16 * 3, dtype=np.uint8).reshape(2, 32, 16, 3)}
    runs = sq.encode_observation_batch(obs, task_id=TASK)
    for j, run_ in enumerate(runs):
        one = sq.encode_observation({k: v[j] for k, v in obs.items()}, task_id=TASK)
        for field in ("tokens", "is_patch", "patches", "patch_positions", "local_positions", "is_action",
                      "is_target", "timestep_lengths"):
            np.testing.assert_array_equal(getattr(run_, field), getattr(one, field), err_msg=field)
    with pytest.raises(ValueError, match="observations"):
        sq.encode_observation_batch({"continuous": np.zeros((2, 2)), "discrete": np.zeros((3, 1), int)})


def test_image_policy_encodes_each_patch_once_and_equals_uncached(model):
    """Patch features kept by pixels (and the batched re-prefill of slides) change nothing the model sees."""
    obs_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (32, 32, 3), np.uint8)})
    act_space = gym.spaces.Discrete(3)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)  # 4 patches each
    frames[:, :16] = frames[0, :16]  # the top two patches are the same in every frame: 2 + 3 * 2 distinct
    ep = Episode(TASK, {"image": frames}, np.arange(3), np.zeros(3, np.float32), np.zeros(3, bool), np.zeros(3, bool))
    prompt = sq.episode_to_slots(ep, action_space=act_space)
    obs_seq = [{"image": frames[rng.integers(0, 3, 2)]} for _ in range(14)]
    out = {}
    for use_cache in (True, False):
        # a 40-slot context: 6 slots a step after an 18-slot prompt, so the window slides often
        pi = GatoPolicy(model, TASK, obs_space, act_space, prompt, context=40, use_cache=use_cache)
        logits = record_logits(pi)
        state = pi.initial_state(2, 0)
        actions = []
        for t, o in enumerate(obs_seq):
            a, state = pi.act(o, state, np.array([t == 0, t in (0, 5)]))  # env 1 restarts at step 5
            actions.append(a)
        out[use_cache] = (np.stack(actions), np.concatenate(logits), state)
    np.testing.assert_array_equal(out[True][0], out[False][0])
    np.testing.assert_allclose(out[True][1], out[False][1], atol=1e-4)
    cached = out[True][2]
    assert cached.num_slides == out[False][2].num_slides > 2
    assert cached.patch_features.encoded == 8  # every distinct patch once (the prompt holds them all)
    assert out[True][1].std(axis=0).max() > 0.1
