"""The rollout loop: hand-computed returns on a fake env, determinism across envs and processes."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from fakes import make_fake_env
from policies.rollout import RolloutResult, load_results, rollout, save_results
from policies.base import Policy
from policies.random import RandomPolicy


class ConstantPolicy(Policy):
    """Always action 1; counts episode starts per env in its state."""

    name = "constant"

    def initial_state(self, num_envs, seed=None):
        return np.zeros(num_envs, dtype=np.int64)

    def act(self, obs, state, episode_start, *, deterministic=True):
        assert obs["continuous"].shape == (len(state), 2) and len(obs["text"]) == len(state)
        return np.ones(len(state), dtype=np.int64), state + episode_start


def _hand_return(seed: int) -> tuple[float, int]:
    # FakeEnv: length 3 + seed % 5, reward a + t/10 with a = 1.
    length = 3 + seed % 5
    return sum(1 + t / 10 for t in range(length)), length


@pytest.mark.parametrize("num_envs", [1, 3])
def test_constant_policy_returns_by_hand(num_envs):
    r = rollout(ConstantPolicy(), "fake-task", episodes=6, seed=10, num_envs=num_envs, make_env=make_fake_env)
    expected = [_hand_return(10 + i) for i in range(6)]
    assert r.seeds == list(range(10, 16))
    np.testing.assert_allclose(r.returns, [e[0] for e in expected])
    assert r.lengths == [e[1] for e in expected]
    # success: return > length, i.e. always true for a = 1 (return = L + L(L-1)/20 > L for L >= 2).
    assert r.successes == [True] * 6


def test_random_rollout_same_across_num_envs_and_workers():
    pi = RandomPolicy(gym.spaces.Discrete(3))
    kw = dict(task_id="fake-task", episodes=7, seed=3, make_env=make_fake_env)
    a = rollout(pi, num_envs=1, **kw)
    b = rollout(pi, num_envs=4, **kw)
    c = rollout(pi, num_envs=2, workers=2, **kw)
    assert a.returns == b.returns == c.returns
    assert a.lengths == b.lengths == c.lengths and a.successes == b.successes == c.successes
    # and a different seed gives different episodes
    d = rollout(pi, "fake-task", 7, seed=4, make_env=make_fake_env)
    assert d.returns != a.returns


def test_record_episodes_match_returns():
    pi = RandomPolicy(gym.spaces.Box(-1, 1, (2,), np.float32))
    r = rollout(pi, "fake-task", 3, seed=0, num_envs=2, record=True, make_env=make_fake_env,
                env_options={"continuous_actions": True})
    assert len(r.episodes) == 3
    for ep, ret, length, seed in zip(r.episodes, r.returns, r.lengths, r.seeds):
        assert len(ep) == length == 3 + seed % 5
        assert ep.observations["continuous"].shape == (length, 2) and ep.actions.shape == (length, 2)
        np.testing.assert_array_equal(ep.observations["discrete"][:, 0], np.arange(length))  # obs before each action
        assert ep.observations["text"] == ["go"] * length
        np.testing.assert_allclose(ep.rewards, ep.actions.sum(1) + np.arange(length) / 10, rtol=1e-5)
        assert ep.episode_return == pytest.approx(ret, rel=1e-5)
        assert ep.terminations.tolist() == [False] * (length - 1) + [True] and not ep.truncations.any()
        assert ep.metadata["seed"] == seed


def test_max_steps_truncates_and_results_roundtrip(tmp_path):
    r = rollout(ConstantPolicy(), "fake-task", 2, seed=4, max_steps=2, make_env=make_fake_env, record=True)
    assert r.lengths == [2, 2] and r.episodes[0].truncations.tolist() == [False, True]
    path = tmp_path / "r.json"
    save_results(str(path), [r], config={"x": 1})
    assert json.loads(path.read_text())["config"] == {"x": 1}
    (back,) = load_results(str(path))
    assert isinstance(back, RolloutResult) and back.returns == r.returns and back.successes == r.successes


def test_babyai_rollout_deterministic_across_num_envs():
    a = rollout("random", "babyai-goto-red-ball", 3, seed=0, num_envs=1)
    b = rollout("random", "babyai-goto-red-ball", 3, seed=0, num_envs=3)
    assert a.returns == b.returns and a.lengths == b.lengths and a.successes == b.successes


def test_rollout_cli(tmp_path, capsys):
    from eval.rollout import main

    out = tmp_path / "res.json"
    assert main(["--task", "babyai-goto-red-ball", "--policy", "expert", "--episodes", "2", "--out", str(out)]) == 0
    (r,) = load_results(str(out))
    assert r.policy == "expert" and r.successes == [True, True] and r.seeds == [0, 1]


class ConstantBoxPolicy(Policy):
    """Always the action (0.5, -0.5)."""

    name = "constant-box"

    def initial_state(self, num_envs, seed=None):
        return None

    def act(self, obs, state, episode_start, *, deterministic=True):
        return np.tile(np.float32([0.5, -0.5]), (len(episode_start), 1)), state


def test_action_noise_executes_perturbed_actions_and_records_the_policys():
    """DART: FakeEnv's reward is sum(executed action) + t / 10, so the executed noise is readable
    from the rewards; the recorded actions stay the policy's; the same noise whatever num_envs."""
    kw = dict(task_id="fake-task", episodes=20, seed=0, record=True, make_env=make_fake_env,
              env_options={"continuous_actions": True})
    clean = rollout(ConstantBoxPolicy(), **kw)
    noisy = rollout(ConstantBoxPolicy(), action_noise=0.2, **kw)
    again = rollout(ConstantBoxPolicy(), action_noise=0.2, num_envs=3, **kw)
    executed = []
    for c, e, a in zip(clean.episodes, noisy.episodes, again.episodes):
        assert (e.actions == np.float32([0.5, -0.5])).all()  # the label is the policy's action
        np.testing.assert_allclose(c.rewards, np.arange(len(c)) / 10, atol=1e-6)  # 0.5 - 0.5 + t / 10
        np.testing.assert_array_equal(e.rewards, a.rewards)  # noise seeded per episode
        executed.append(e.rewards - np.arange(len(e)) / 10)  # sum of the two executed dimensions
    total = np.concatenate(executed)
    # each dimension gets N(0, 0.2^2) (half the range is 1): the sum has std 0.2 * sqrt(2) ~ 0.28
    assert abs(total.mean()) < 0.1 and 0.2 < total.std() < 0.37


def test_action_noise_on_discrete_actions_replaces_them_at_that_rate():
    rng = np.random.default_rng(0)
    space = gym.spaces.Discrete(4)
    from policies.rollout import perturb_action

    executed = np.array([perturb_action(np.int64(1), space, 0.4, rng) for _ in range(4000)])
    # replaced with probability 0.4 by a uniform draw that is 1 a quarter of the time
    assert abs((executed != 1).mean() - 0.4 * 3 / 4) < 0.03
    with pytest.raises(ValueError, match="action_noise supports Box and Discrete"):
        perturb_action(np.zeros(2), gym.spaces.MultiBinary(2), 0.1, rng)
