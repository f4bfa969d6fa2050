"""Experts: RAM-scripted Atari controllers (fake RAM), the SB3 adapter, train-expert smoke + resume."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

from policies.atari_ram import AtariRamExpert, ram_expert


class FakeAle:
    def __init__(self):
        self.ram = np.zeros(128, np.uint8)

    def getRAM(self):
        return self.ram


def fake_env(meanings):
    raw = SimpleNamespace(ale=FakeAle(), get_action_meanings=lambda: list(meanings))
    return SimpleNamespace(unwrapped=raw)


PONG = ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]
BREAKOUT = ["NOOP", "FIRE", "RIGHT", "LEFT"]


def test_pong_moves_paddle_towards_ball():
    env = fake_env(PONG)
    pi = AtariRamExpert("atari-pong", [env])
    state = pi.initial_state(1)
    ram = env.unwrapped.ale.ram
    ram[51], ram[54] = 100, 150  # paddle 100, ball 150: target 150 - 9 = 141 > 100 + 3 -> down (LEFT)
    a, state = pi.act({}, state, np.array([True]))
    assert PONG[a[0]] == "LEFT"
    ram[51], ram[54] = 100, 60  # target 51 + lookahead 2 * (60 - 150)... ball moved up: UP (RIGHT)
    a, state = pi.act({}, state, np.array([False]))
    assert PONG[a[0]] == "RIGHT"
    ram[51], ram[54] = 120, 0  # no ball: wait at 120 -> within the dead zone -> NOOP
    a, state = pi.act({}, state, np.array([True]))
    assert PONG[a[0]] == "NOOP"


def test_breakout_fires_without_ball_and_follows_it():
    env = fake_env(BREAKOUT)
    pi = ram_expert("atari-breakout", [env])
    ram = env.unwrapped.ale.ram
    ram[72], ram[99], ram[101] = 80, 0, 0
    a, state = pi.act({}, pi.initial_state(1), np.array([True]))
    assert BREAKOUT[a[0]] == "FIRE"
    ram[72], ram[99], ram[101] = 80, 120, 150  # target 110 > 82 -> RIGHT
    a, state = pi.act({}, state, np.array([False]))
    assert BREAKOUT[a[0]] == "RIGHT"
    ram[72], ram[99] = 80, 60  # target 50 < 78 -> LEFT
    a, _ = pi.act({}, state, np.array([False]))
    assert BREAKOUT[a[0]] == "LEFT"


FREEWAY = ["NOOP", "UP", "DOWN"]
BOXING = ["NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT", "UPFIRE",
          "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE", "DOWNLEFTFIRE"]


def test_freeway_crosses_when_the_next_lane_is_clear_and_waits_for_a_car():
    # Lanes are centred on y = 16 + 16 k (band +- 8), the chicken's column is x = 46, a car within 8 hits.
    env = fake_env(FREEWAY)
    pi = ram_expert("atari-freeway", [env])
    ram = env.unwrapped.ale.ram
    ram[108:118] = 120
    ram[14], ram[109] = 20, 60  # in lane 0; UP reaches lane 1 (y 28) in two steps, its car 14 px away
    a, state = pi.act({}, pi.initial_state(1), np.array([True]))
    assert FREEWAY[a[0]] == "UP"
    ram[109] = 56  # lane 1's car moves -4 a step: 48 in two steps, 2 px from the chicken; lane 0 is clear
    a, state = pi.act({}, state, np.array([False]))
    assert FREEWAY[a[0]] == "NOOP"
    ram[109] = 36  # it has passed (-20 a step: -4 in two steps, 50 px away)
    a, state = pi.act({}, state, np.array([False]))
    assert FREEWAY[a[0]] == "UP"
    ram[108], ram[109] = 46, 46  # a new episode with cars on the chicken in lanes 0 and 1: step back
    a, _ = pi.act({}, state, np.array([True]))
    assert FREEWAY[a[0]] == "DOWN"


def test_boxing_closes_in_beside_the_opponent_and_punches_there():
    env = fake_env(BOXING)
    pi = ram_expert("atari-boxing", [env])
    ram = env.unwrapped.ale.ram
    ram[32], ram[34], ram[33], ram[35] = 30, 4, 109, 87  # the opening positions: far up-left of the opponent
    a, state = pi.act({}, pi.initial_state(1), np.array([True]))
    assert BOXING[a[0]] == "DOWNRIGHT"  # towards (109 - 20, 87 - 8) = (89, 79)
    ram[32], ram[34] = 89, 79  # there, on the first step of a punch period (t = 1: no punch yet)
    a, state = pi.act({}, state, np.array([False]))
    assert BOXING[a[0]] == "NOOP"
    a, state = pi.act({}, state, np.array([False]))
    a, state = pi.act({}, state, np.array([False]))  # t = 3: punch
    assert BOXING[a[0]] == "FIRE"
    ram[32] = 125  # the other side of the opponent: target x 129, 4 px to go -> RIGHT, in range -> punch at t = 6
    for _ in range(3):
        a, state = pi.act({}, state, np.array([False]))
    assert BOXING[a[0]] == "RIGHTFIRE"


def test_ram_expert_unknown_game_or_no_envs_is_none():
    assert ram_expert("atari-alien", [fake_env(PONG)]) is None
    assert ram_expert("atari-pong", None) is None


class DictEnv(gym.Env):
    observation_space = gym.spaces.Dict({"discrete": gym.spaces.Box(0, 1023, (3,), np.int64), "text": gym.spaces.Text(5)})
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return {"discrete": np.array([1, 2, 3]), "text": "hi"}, {}


def test_flat_observation_adapter():
    from policies.sb3 import FlatObservation, flatten_obs

    env = FlatObservation(DictEnv())
    assert env.key == "discrete" and env.observation_space == gym.spaces.Box(0.0, 1023.0, (3,), np.float32)
    x, _ = env.reset()
    assert x.dtype == np.float32 and list(x) == [1.0, 2.0, 3.0]
    assert flatten_obs({"continuous": np.ones((2, 4), np.float32)}, "continuous").shape == (2, 4)


def test_sac_learning_starts_by_hand():
    from datasets_gen.train_expert import hyperparameters

    assert hyperparameters("dmc", "sac", 50_000)[0]["learning_starts"] == 5_000
    assert hyperparameters("dmc", "sac", 5_000)[0]["learning_starts"] == 1_000
    assert hyperparameters("dmc", "sac", 300_000)[0]["learning_starts"] == 10_000
    kw, n_envs = hyperparameters("atari", "ppo", 10_000)
    assert n_envs == 8 and kw["n_steps"] == 128 and kw["policy"] == "CnnPolicy"


def test_train_expert_checkpoints_and_resumes(tmp_path):
    from datasets_gen.train_expert import Config, train

    out = tmp_path / "run"
    cfg = Config(task="dmc-cartpole-balance", env_steps=150, out=str(out), checkpoint_every=100, eval_episodes=1, eval_max_steps=50,
                 hp='{"learning_starts": 100, "batch_size": 32}', update_references=False, progress=False)
    first = train(cfg, "test")
    assert first["steps"] == 150 and (out / "ckpt" / "replay_buffer.pkl").exists()
    second = train(Config(**{**cfg.__dict__, "env_steps": 200}), "test resume")
    assert second["steps"] == 200  # continued from 150, not restarted
    saved = json.loads((out / "expert.json").read_text())
    assert saved["command"] == "test resume" and saved["episodes"] == 1 and saved["seeds"] == [10_000]
    # the trained zip acts on the registry env through the policy interface
    from policies import make_policy
    import envs

    env = envs.make("dmc-cartpole-balance")
    pi = make_policy(str(out / "model.zip"), "dmc-cartpole-balance", envs=[env])
    obs, _ = env.reset(seed=0)
    a, _ = pi.act({"continuous": obs["continuous"][None]}, pi.initial_state(1), np.array([True]))
    assert a.shape == (1, 1) and a.dtype == np.float32 and np.all(np.abs(a) <= 1)


def test_record_trained_expert_keeps_existing_anchor(tmp_path):
    from eval.references import record_trained_expert
    from eval.references import REFERENCES_PATH, load_references

    path = tmp_path / "refs.json"
    shutil.copyfile(REFERENCES_PATH, path)
    expert = {"return_mean": 512.0, "return_std": 1.0, "episodes": 2, "seeds": [0, 1], "steps": 10, "algo": "sac",
              "date": "2026-11-28", "command": "gato train-expert --task dmc-cartpole-balance"}
    assert record_trained_expert("dmc-cartpole-balance", expert, str(path)) == "sb3_expert"
    raw = json.loads(path.read_text())["tasks"]["dmc-cartpole-balance"]
    assert raw["sb3_expert"]["return"] == 512.0 and raw["expert"]["return"] == 1000.0
    assert "gato train-expert" in raw["sb3_expert"]["source"]
    assert record_trained_expert("babyai-new-level-x", expert, str(path)) == "expert"
    assert load_references(str(path)) is not None


def test_expert_table_takes_the_best_measured_expert_and_scores_it_against_the_published_return(tmp_path):
    from eval.experts import expert_rows, summary

    path = tmp_path / "references.json"
    path.write_text(json.dumps({"tasks": {
        "dmc-cheetah-run": {"random": {"return": 0}, "expert": {"return": 1000, "kind": "scale"},
                            "search_expert": {"return": 600, "kind": "search", "episodes": 10},
                            "sb3_expert": {"return": 700, "kind": "sb3-sac", "episodes": 10},
                            "published": {"return": 800, "kind": "sac-1m"}},
        "dmc-fish-upright": {"random": {"return": 0}, "expert": {"return": 1000, "kind": "scale"}},
        "atari-pong": {"random": {"return": -20}, "expert": {"return": 0, "kind": "human"},
                       "ram_expert": {"return": -8, "kind": "scripted-ram", "episodes": 10}},
        "procgen-bigfish": {"random": {"return": 1}, "expert": {"return": 11, "kind": "r_max"},
                            "search_expert": {"return": 5, "kind": "search", "episodes": 10}},
        "metaworld-reach": {"random": {"return": 1}, "expert": {"return": 9, "kind": "scripted"}},
    }}))
    rows = {r.task_id: r for r in expert_rows(path=str(path))}
    cheetah = rows["dmc-cheetah-run"]
    assert (cheetah.source, cheetah.ret, cheetah.published) == ("sb3_expert", 700, 800)
    assert cheetah.score == pytest.approx(700 / 800) and cheetah.meets_target          # >= 0.8 of SAC
    assert rows["dmc-fish-upright"].ret is None and not rows["dmc-fish-upright"].meets_target
    assert rows["atari-pong"].score == pytest.approx(12 / 20) and rows["atari-pong"].meets_target  # 0.6 HN
    assert rows["procgen-bigfish"].score == pytest.approx(0.4) and not rows["procgen-bigfish"].meets_target
    assert rows["metaworld-reach"].ret == 9 and rows["metaworld-reach"].score is None  # nothing published
    lines = summary(list(rows.values()))
    assert "dmc: 2 tasks, 1 with a measured expert, 1 with a published return, 1 at >= 0.8" in lines[1]
