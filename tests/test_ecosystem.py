"""The registry seen from outside: gymnasium.make("gato/<task>") and Stable-Baselines3 on every domain."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest

import envs
from envs.ecosystem import NotAGoalEnv, TextAsCodes, gymnasium_id, sb3_env

# One task per domain (DMC from state and from pixels).
ONE_PER_DOMAIN = ["babyai-goto-red-ball", "metaworld-reach", "dmc-cartpole-balance", "atari-pong", "procgen-coinrun"]


def test_every_task_is_registered_with_gymnasium():
    ids = envs.task_ids()
    assert all(gymnasium_id(t) in gymnasium.registry for t in ids)
    assert gymnasium.registry[gymnasium_id("atari-pong")].kwargs == {"task_id": "atari-pong"}


@pytest.mark.parametrize("task_id", ["babyai-goto-red-ball", "dmc-cartpole-balance"])
def test_gymnasium_make_builds_the_registry_env(task_id):
    env = gymnasium.make(f"gato/{task_id}", max_episode_steps=3)
    ours = envs.make(task_id)
    try:
        assert env.spec.id == f"gato/{task_id}"
        assert env.observation_space == ours.observation_space and env.action_space == ours.action_space
        a, _ = env.reset(seed=5)
        b, _ = ours.reset(seed=5)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) if k != "text" else a[k] == b[k] for k in a)
        for _ in range(3):  # gymnasium's max_episode_steps applies
            *_, truncated, _ = env.step(env.action_space.sample())
        assert truncated
    finally:
        env.close()
        ours.close()


def test_module_prefix_registers_without_importing_envs():
    code = ("import gymnasium, sys; env = gymnasium.make('envs:gato/dmc-cartpole-balance'); "
            "print(env.spec.id, 'envs' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["gato/dmc-cartpole-balance", "True"]
    assert "unmaintained" not in out.stderr  # the legacy gym banner stays away


def test_text_as_codes_round_trip_and_errors():
    env = TextAsCodes(envs.make("babyai-goto-red-ball"))
    obs, _ = env.reset(seed=0)
    assert obs["text"].shape == (512,) and obs["text"].dtype == np.int64 and obs["text"] in env.observation_space["text"]
    assert env.decode("text", obs["text"]) == "go to the red ball"
    assert env.observation_space["discrete"] == env.env.observation_space["discrete"]  # other keys untouched
    with pytest.raises(ValueError, match="'!'.*outside the space's charset"):
        env.encode("text", "go!")
    with pytest.raises(ValueError, match="exceeds the space's max_length 512"):
        env.encode("text", "a" * 513)
    env.close()


def test_sb3_env_wraps_only_what_sb3_cannot_take():
    dmc = envs.make("dmc-cartpole-balance")
    assert sb3_env(dmc) is dmc
    mw = sb3_env(envs.make("metaworld-reach"))  # Meta-World's compute_reward would make SB3 see a GoalEnv
    assert isinstance(mw, NotAGoalEnv) and mw.unwrapped is mw and hasattr(mw.env.unwrapped, "compute_reward")
    mw.close()
    dmc.close()


@pytest.mark.parametrize("task_id", ONE_PER_DOMAIN + [pytest.param("dmc-pixels-cartpole-swingup", marks=pytest.mark.slow)])
def test_sb3_check_env_and_evaluate_policy(task_id):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    env = sb3_env(envs.make(task_id, max_episode_steps=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3's checker warns about anything it would mishandle
        check_env(env)
    model = PPO("MultiInputPolicy", env, n_steps=8, batch_size=8, device="cpu", seed=0)
    mean, std = evaluate_policy(model, Monitor(env), n_eval_episodes=2)
    assert np.isfinite(mean) and np.isfinite(std)
    env.close()
