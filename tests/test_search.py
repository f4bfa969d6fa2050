"""Search experts: planning never touches the recorded env, the planner's model is the env's, and each
domain's search expert beats random on a short task."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import envs
from policies import make_policy
from policies.search import parse_options
from policies.search_dmc import PLANNING_SCORES, VECTOR_REWARDS, MPPIConfig, MPPIPolicy, StateBatch, interpolation_matrix


def _batch(obs):
    return {k: np.asarray(v)[None] for k, v in obs.items()}


def _episode_return(policy_name: str, task: str, steps: int, seed: int = 0) -> float:
    env = envs.make(task)
    pi = make_policy(policy_name, task, [env])
    obs, _ = env.reset(seed=seed)
    state = pi.reseed(pi.initial_state(1, seed), [0], [seed])
    start, total = np.ones(1, bool), 0.0
    for _ in range(steps):
        a, state = pi.act(_batch(obs), state, start)
        start[:] = False
        obs, r, term, trunc, _ = env.step(a[0])
        total += r
        if term or trunc:
            break
    env.close()
    return total


def test_parse_options_and_errors():
    assert parse_options("search") == {}
    assert parse_options("search:samples=8, horizon=5") == {"samples": "8", "horizon": "5"}
    env = envs.make("dmc-cartpole-balance")
    with pytest.raises(ValueError, match="unknown search option 'bogus'"):
        make_policy("search:bogus=1", "dmc-cartpole-balance", [env])
    with pytest.raises(ValueError, match="pass the wrapped envs"):
        make_policy("search", "dmc-cartpole-balance")
    with pytest.raises(ValueError, match="method"):
        make_policy("search:method=sgd", "dmc-cartpole-balance", [env])


def test_interpolation_matrix_by_hand():
    w = interpolation_matrix(np.arange(5), 5, 3)  # knots at t = 0, 2, 4
    np.testing.assert_allclose(w @ np.array([0.0, 1.0, 0.0]), [0, 0.5, 1, 0.5, 0])
    np.testing.assert_allclose(interpolation_matrix([5.0], 5, 3), [[0, 0, 1]])  # past the end: hold


# ---------------------------------------------------------------------------------------------- DMC


def test_dmc_planning_leaves_recorded_env_untouched():
    env = envs.make("dmc-cheetah-run")
    env.reset(seed=0)
    dmc = env.unwrapped.dmc_env
    pi = make_policy("search:samples=8,horizon=10", "dmc-cheetah-run", [env])
    state = pi.initial_state(1, 0)
    before = (dmc.physics.get_state().copy(), dmc.physics.data.ctrl.copy(), dmc.physics.data.time,
              dmc._step_count, dmc.task.random.get_state()[1].copy())
    for k in range(3):
        _, state = pi.act({}, state, np.array([k == 0]))
    after = (dmc.physics.get_state(), dmc.physics.data.ctrl, dmc.physics.data.time, dmc._step_count,
             dmc.task.random.get_state()[1])
    for b, a in zip(before, after):
        np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("task", ["dmc-cheetah-run", "dmc-walker-walk", "dmc-acrobot-swingup", "dmc-fish-swim"])
def test_dmc_score_equals_env_return(task):
    """The planner's score of an action sequence is the return the env gives for it (same model, same reward)."""
    env = envs.make(task)
    env.reset(seed=3)
    for _ in range(3):
        env.step(np.zeros(env.action_space.shape))
    pi = MPPIPolicy(task, [env], MPPIConfig(samples=3, horizon=6, knots=3))
    knots = np.random.default_rng(0).uniform(-1, 1, (3, 3, pi.nu))
    scores = pi.score(pi.start_state(0), knots, pi._workspace(0))
    ctrl = np.einsum("hk,skn->shn", pi._W, knots)
    for s in range(3):
        twin = copy.deepcopy(env.unwrapped.dmc_env)
        ret = sum(twin.step(ctrl[s, t]).reward for t in range(6))
        assert scores[s] == pytest.approx(ret, abs=1e-9)


def _spread_states(source: str):
    """(physics, StateBatch, suite rewards) of 40 states of ``"domain/task"`` spread over its joint space."""
    import mujoco

    from envs.dmc import dmc_task_id

    env = envs.make(dmc_task_id(*source.split("/")))
    env.reset(seed=1)
    dmc = env.unwrapped.dmc_env
    p = dmc.physics.copy(share_model=False)
    m, d = p.model.ptr, p.data.ptr
    rng = np.random.default_rng(0)
    rows = {k: [] for k in ("qpos", "qvel", "ctrl", "sensordata")}
    ref = []
    q0 = dmc.physics.data.qpos.copy()
    for j in range(40):
        if j == 0:  # at rest at qpos 0: the upright goal of cartpole and acrobot
            d.qpos[:], d.qvel[:] = 0.0, 0.0
        elif j % 2:  # a state from a random walk of the env's own dynamics
            env.step(rng.uniform(-1, 1, env.action_space.shape))
            d.qpos[:], d.qvel[:] = dmc.physics.data.qpos, dmc.physics.data.qvel
        else:  # a perturbed state, so sparse rewards are hit too
            d.qpos[:] = q0 + rng.normal(0, 0.3, m.nq) * (rng.random() < 0.5)
            d.qvel[:] = rng.normal(0, 3.0, m.nv)
            if source == "finger/spin":
                d.qvel[-1] = rng.choice([-20.0, -5.0, 20.0])
        d.ctrl[:] = rng.uniform(-1, 1, m.nu)
        mujoco.mj_forward(m, d)
        for k in rows:
            rows[k].append(getattr(d, k).copy())
        ref.append(dmc.task.get_reward(p))
    batch = StateBatch(p, *(np.array(rows[k]) for k in ("qpos", "qvel", "ctrl", "sensordata")))
    return p, batch, np.array(ref)


@pytest.mark.parametrize("source", sorted(VECTOR_REWARDS))
def test_vector_rewards_match_suite(source):
    """Each vectorized reward equals the suite's get_reward on states spread over the joint space."""
    p, batch, ref = _spread_states(source)
    np.testing.assert_allclose(VECTOR_REWARDS[source](p, batch), ref, atol=1e-12)


@pytest.mark.parametrize("source", sorted(PLANNING_SCORES))
def test_planning_scores_pay_one_exactly_where_the_task_does(source):
    """A sparse task's dense planning score is 1 where its reward is 1, and in [0, 1) elsewhere."""
    p, batch, ref = _spread_states(source)
    shaped = PLANNING_SCORES[source](p, batch)
    assert ((ref == 0) | (ref == 1)).all() and (ref == 0).any(), ref
    if source.startswith(("cartpole", "acrobot", "pendulum", "finger/spin")):  # the states include rewarded ones
        assert (ref == 1).any(), ref
    np.testing.assert_array_equal(shaped[ref == 1], 1.0)
    assert ((shaped[ref == 0] >= 0) & (shaped[ref == 0] < 1)).all(), shaped[ref == 0]
    assert shaped[ref == 0].max() > 0, "the score must see something where the reward is 0"


def test_dmc_search_beats_random():
    steps = 150
    searched = _episode_return("search:samples=16,horizon=20", "dmc-cartpole-balance", steps)
    random = _episode_return("random", "dmc-cartpole-balance", steps)
    assert searched > 0.9 * steps > random, (searched, random)


# -------------------------------------------------------------------------------------- Atari, Procgen


def test_atari_planning_leaves_recorded_env_untouched():
    env = envs.make("atari-pong")
    env.reset(seed=0)
    ale = env.unwrapped.ale
    pi = make_policy("search:depth=3", "atari-pong", [env])
    state = pi.initial_state(1, 0)
    ram, frame = ale.getRAM().copy(), ale.getFrameNumber()
    rng_before = ale.cloneState(include_rng=True)
    for k in range(2):
        _, state = pi.act({}, state, np.array([k == 0]))
    assert ale.getFrameNumber() == frame
    np.testing.assert_array_equal(ale.getRAM(), ram)
    assert ale.cloneState(include_rng=True) == rng_before  # emulator and its sticky-action RNG


def test_procgen_planning_leaves_recorded_env_untouched():
    env = envs.make("procgen-bigfish")
    env.reset(seed=0)
    g = env.unwrapped.gym3_env
    pi = make_policy("search:depth=3", "procgen-bigfish", [env])
    state = pi.initial_state(1, 0)
    before = g.callmethod("get_state")[0]
    for k in range(2):
        _, state = pi.act({}, state, np.array([k == 0]))
    assert g.callmethod("get_state")[0] == before


def test_atari_search_beats_random():
    steps = 40  # Boxing: points for punches landed; the lookahead lands punches within seconds
    searched = _episode_return("search:depth=4,hold=2", "atari-boxing", steps)
    random = _episode_return("random", "atari-boxing", steps)
    assert searched > random and searched >= 3, (searched, random)


def test_procgen_search_beats_random():
    steps = 120  # BigFish: +1 per smaller fish eaten, death ends the level
    searched = _episode_return("search:depth=8", "procgen-bigfish", steps)
    random = _episode_return("random", "procgen-bigfish", steps)
    assert searched > random, (searched, random)
