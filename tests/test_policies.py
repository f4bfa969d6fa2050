"""Policies: random determinism, the BabyAI bot and a Meta-World scripted expert, make_policy errors."""

from __future__ import annotations

import sys
import types

import gymnasium as gym
import numpy as np
import pytest

from policies.rollout import rollout
from policies import NoExpertError, make_policy
from policies.random import RandomPolicy


def test_random_policy_is_seeded_per_env_and_reseedable():
    pi = RandomPolicy(gym.spaces.Discrete(5))
    start = np.ones(3, dtype=bool)

    def draw(state, k=20):
        return np.stack([pi.act({}, state, start)[0] for _ in range(k)])  # (k, 3)

    a, b = draw(pi.initial_state(3, seed=7)), draw(pi.initial_state(3, seed=7))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64 and a.min() >= 0 and a.max() <= 4
    assert not np.array_equal(a[:, 0], a[:, 1])  # envs have their own streams
    # env 2 of seed 7 is the stream of seed 9: reseeding env 0 with 9 replays env 2's actions.
    s = pi.reseed(pi.initial_state(3, seed=0), [0], [9])
    np.testing.assert_array_equal(draw(s)[:, 0], a[:, 2])


def test_random_policy_box_actions_in_unit_box():
    pi = make_policy("random", "metaworld-reach", action_space=gym.spaces.Box(-1, 1, (4,), np.float32))
    actions, _ = pi.act({}, pi.initial_state(2, seed=0), np.ones(2, bool))
    assert actions.shape == (2, 4) and actions.dtype == np.float32 and np.abs(actions).max() <= 1


def test_random_policy_rejects_unscaled_box():
    with pytest.raises(ValueError, match="Box"):
        RandomPolicy(gym.spaces.Box(-2, 2, (3,)))


def test_unknown_policy_name():
    with pytest.raises(ValueError, match="'greedy'"):
        make_policy("greedy", "babyai-goto-red-ball", action_space=gym.spaces.Discrete(7))


def test_missing_expert_says_how_to_train_one(monkeypatch):
    fake = types.ModuleType("policies.sb3")
    fake.zoo_expert = lambda task_id: None
    fake.zoo_tasks = lambda: []
    monkeypatch.setitem(sys.modules, "policies.sb3", fake)
    with pytest.raises(NoExpertError, match="gato train-expert --task procgen-coinrun") as e:
        make_policy("expert", "procgen-coinrun")
    assert "--policy search" in str(e.value)  # procgen has a search expert


def test_the_prompt_hint_builds_with_a_policy_that_exists():
    from gato.policy import generate_command
    from policies import has_expert

    assert has_expert("metaworld-reach") and has_expert("babyai-goto-obj") and has_expert("atari-breakout")
    assert has_expert("dmc-cartpole-balance")  # in the SB3 zoo
    assert has_expert("procgen-bigfish")  # a measured search expert (eval/references.json)
    assert has_expert("atari-boxing") and not has_expert("procgen-coinrun") and not has_expert("atari-alien")
    assert "--policy expert" in generate_command("metaworld-reach")
    assert "--policy search " in generate_command("procgen-coinrun")


def test_babyai_bot_needs_envs():
    with pytest.raises(ValueError, match="envs="):
        make_policy("expert", "babyai-goto-red-ball")


def test_babyai_bot_solves_goto_red_ball():
    r = rollout("expert", "babyai-goto-red-ball", episodes=3, seed=0, num_envs=2)
    assert r.successes == [True, True, True]
    assert min(r.returns) > 0.5  # reward 1 - 0.9 * steps / 64 on success


def test_metaworld_scripted_reach_succeeds():
    r = rollout("expert", "metaworld-reach", episodes=1, seed=0, max_steps=150)
    assert r.successes == [True]


@pytest.mark.slow
def test_babyai_bot_that_loops_counts_as_failure():
    # minigrid 3.2's bot pushes subgoals forever on GoToImpUnlock seed 6 (step 146); the search
    # budget turns that into a failed episode instead of a hang.
    r = rollout("expert", "babyai-goto-imp-unlock", episodes=1, seed=6)
    assert r.successes == [False] and r.returns == [0.0]


def test_the_expert_is_the_best_measured_one(tmp_path, monkeypatch):
    """Among a task's RAM script, zoo checkpoint and measured search expert, the highest measured return wins."""
    import json

    import policies

    refs = tmp_path / "references.json"
    refs.write_text(json.dumps({"tasks": {
        "dmc-cartpole-balance": {"sb3_expert": {"return": 995.0},
                                 "search_expert": {"return": 990.0, "policy": "search:horizon=100"}},
        "dmc-cartpole-swingup": {"sb3_expert": {"return": 287.0},
                                 "search_expert": {"return": 790.0, "policy": "search:samples=32,horizon=100"}},
        "procgen-bigfish": {"search_expert": {"return": 36.0, "policy": "search"}},
        "procgen-maze": {"random": {"return": 5.0}, "search_expert": {"return": 5.0, "policy": "search"}},
    }}))
    monkeypatch.setattr(policies, "REFERENCES_JSON", str(refs))
    assert policies.expert_choice("dmc-cartpole-balance").source == "zoo"
    swingup = policies.expert_choice("dmc-cartpole-swingup")
    assert (swingup.source, swingup.policy, swingup.measured_return) == ("search", "search:samples=32,horizon=100", 790.0)
    assert policies.expert_choice("procgen-bigfish").source == "search"
    assert policies.expert_choice("procgen-coinrun") is None            # nothing measured, nothing scripted
    assert policies.expert_choice("procgen-maze") is None               # a search expert no better than random
    assert policies.expert_choice("atari-boxing").source == "ram"       # scripted, unmeasured in this file
    assert policies.expert_choice("metaworld-reach").source == "scripted"


def test_a_measured_search_expert_is_built_with_its_measured_budget(tmp_path, monkeypatch):
    import json

    import envs
    import policies
    from policies.search_discrete import LookaheadPolicy

    refs = tmp_path / "references.json"
    refs.write_text(json.dumps({"tasks": {"procgen-coinrun": {"search_expert": {"return": 9.0,
                                                                                "policy": "search:depth=7,hold=2"}}}}))
    monkeypatch.setattr(policies, "REFERENCES_JSON", str(refs))
    env = envs.make("procgen-coinrun")
    try:
        pi = make_policy("expert", "procgen-coinrun", envs=[env])
        assert isinstance(pi, LookaheadPolicy) and (pi.cfg.depth, pi.cfg.hold) == (7, 2)
    finally:
        env.close()
