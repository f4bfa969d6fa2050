"""Tests of the task registry, the convention wrapper and the env checks.

Fast (default): registry/id/error behaviour, the wrapper on a fake env with hand-computed answers,
each domain's observation against the library's raw data, and all checks on a few tasks per
domain. ``-m full``: every check on every registered task.
"""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import envs
from envs import checks
from envs.registry import MissingDependencyError, UnknownTaskError, import_library
from envs.wrappers import ConventionWrapper, continuous_space, rescale_action
from fakes import RawEnv


def wrap(raw: gym.Env, max_episode_steps: int = 100) -> ConventionWrapper:
    obs_space = spaces.Dict({"continuous": continuous_space(1)})
    return ConventionWrapper(raw, "fake-task", obs_space,
                             lambda o: {"continuous": np.asarray(o, np.float32)}, max_episode_steps)


def test_box_actions_are_rescaled_linearly_to_the_raw_bounds():
    env = wrap(RawEnv())
    env.reset(seed=0)
    assert env.action_space == spaces.Box(-1.0, 1.0, (2,), np.float32)
    # low + (a + 1) / 2 * (high - low) with low = [0, -2], high = [10, 2]
    for action, expected in [([-1, -1], [0, -2]), ([1, 1], [10, 2]), ([0, 0], [5, 0]), ([-0.5, 0.5], [2.5, 1.0])]:
        env.step(np.array(action, np.float32))
        np.testing.assert_allclose(env.unwrapped.raw_actions[-1], expected, atol=1e-6)
    assert env.unwrapped.raw_actions[-1].dtype == np.float64  # the raw space's dtype


def test_rescale_action_by_hand():
    np.testing.assert_allclose(rescale_action(np.array([0.0]), np.array([-3.0]), np.array([1.0])), [-1.0])


def test_float_round_off_above_one_is_clipped_not_rejected():
    env = wrap(RawEnv())
    env.reset(seed=0)
    env.step(np.array([1.000001, -1.000001]))
    np.testing.assert_allclose(env.unwrapped.raw_actions[-1], [10.0, -2.0])


@pytest.mark.parametrize("bad", [np.array([1.5, 0.0]), np.array([0.0, 0.0, 0.0]), np.array([np.nan, 0.0]), "left",
                                 np.array([0.5, np.nan], np.float32), np.array([-np.inf, 0.0]), np.array([[0.0, 0.0]])])
def test_box_action_outside_the_space_names_task_and_space(bad):
    env = wrap(RawEnv())
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"fake-task.*Box\(-1\.0, 1\.0, \(2,\), float32\)"):
        env.step(bad)
    assert env.unwrapped.raw_actions == []


@pytest.mark.parametrize("bad", [5, -1, 2.0, np.array([1, 2]), True, np.int64(5), np.uint8(200)])
def test_discrete_action_outside_the_space_names_task_and_space(bad):
    env = wrap(RawEnv(spaces.Discrete(5)))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"fake-task.*Discrete\(5\)"):
        env.step(bad)


def test_discrete_actions_pass_through_as_int():
    env = wrap(RawEnv(spaces.Discrete(5)))
    env.reset(seed=0)
    env.step(np.int64(4))
    env.step(0)
    assert env.unwrapped.raw_actions == [4, 0]


def test_identity_box_actions_are_copied_into_the_raw_dtype():
    env = wrap(RawEnv(spaces.Box(-1.0, 1.0, (2,), np.float64)))
    env.reset(seed=0)
    action = np.array([0.25, -1.0], np.float32)
    env.step(action)
    raw = env.unwrapped.raw_actions[-1]
    assert raw.dtype == np.float64 and raw.tolist() == [0.25, -1.0]
    raw[0] = 7.0  # the env may keep or mutate its action: the caller's array is not shared
    assert action[0] == np.float32(0.25)


def test_dmc_flattener_matches_sorted_concatenation():
    from envs.dmc import ObservationFlattener, flatten_observation

    obs = {"z": np.float64(0.1), "a": np.arange(6.0).reshape(2, 3) / 7, "m": np.array([1e-3, -2.5])}
    flat = ObservationFlattener({k: np.shape(v) for k, v in obs.items()})
    expected = np.concatenate([np.asarray(obs[k], np.float32).reshape(-1) for k in ("a", "m", "z")])
    out = flat(obs)
    assert out.dtype == np.float32 and flat.size == 9
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(flatten_observation(obs), expected)


def test_time_limit_truncates_exactly_at_max_episode_steps():
    env = wrap(RawEnv(), max_episode_steps=3)
    env.reset(seed=0)
    flags = [env.step(np.zeros(2, np.float32))[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    env.reset()
    assert env.elapsed_steps == 0


def test_termination_passes_through_and_step_before_reset_raises():
    env = wrap(RawEnv(terminate_at=2), max_episode_steps=10)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2, np.float32))
    env.reset(seed=0)
    env.step(np.zeros(2, np.float32))
    obs, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
    assert (terminated, truncated, reward, info["t"]) == (True, False, 1.0, 2)
    assert obs["continuous"].dtype == np.float32 and obs["continuous"][0] == 2.0


def test_image_size_must_tile_into_patches():
    with pytest.raises(ValueError, match="multiple of 16"):
        envs.make("atari-pong", image_size=84)


# ---- registry --------------------------------------------------------------------------------
def test_counts_per_domain():
    counts = {d: len(envs.task_ids(d)) for d in envs.DOMAINS}
    assert counts == {"atari": 57, "dmc": 28 + 6, "babyai": 96, "metaworld": 50, "procgen": 16}
    assert len(envs.task_ids(tag="pixels")) == 6


def test_ids_are_unique_lowercase_and_prefixed_by_domain():
    ids = envs.task_ids()
    assert len(ids) == len(set(ids))
    for t in ids:
        spec = envs.task_spec(t)
        assert t == t.lower() and t.startswith(spec.domain + "-") and " " not in t


@pytest.mark.parametrize("task_id, domain, source", [
    ("atari-pong", "atari", "ALE/Pong-v5"),
    ("atari-montezuma-revenge", "atari", "ALE/MontezumaRevenge-v5"),
    ("atari-up-n-down", "atari", "ALE/UpNDown-v5"),
    ("dmc-cheetah-run", "dmc", "cheetah/run"),
    ("dmc-ball-in-cup-catch", "dmc", "ball_in_cup/catch"),
    ("dmc-pixels-cartpole-swingup", "dmc", "cartpole/swingup"),
    ("babyai-goto-red-ball", "babyai", "BabyAI-GoToRedBall-v0"),
    ("babyai-goto-local-s5n2", "babyai", "BabyAI-GoToLocalS5N2-v0"),
    ("babyai-goto-obj-s6", "babyai", "BabyAI-GoToObjS6-v1"),
    ("metaworld-pick-place", "metaworld", "pick-place-v3"),
    ("procgen-coinrun", "procgen", "coinrun"),
])
def test_id_scheme(task_id, domain, source):
    spec = envs.task_spec(task_id)
    assert (spec.domain, spec.source) == (domain, source)


def test_unknown_id_lists_closest_ids():
    with pytest.raises(UnknownTaskError, match="atari-pong"):
        envs.make("atari-pongg")
    with pytest.raises(KeyError, match="dmc-cheetah-run"):
        envs.task_spec("dmc-cheetah_run")


def test_unknown_domain_and_option():
    with pytest.raises(ValueError, match="atari, dmc"):
        envs.task_ids("mujoco")
    with pytest.raises(TypeError, match="max_episode_steps"):
        envs.make("babyai-goto-red-ball", frame_skip=4)


def test_missing_library_names_the_pip_package(monkeypatch):
    with pytest.raises(MissingDependencyError, match="pip install some-package==1.0"):
        import_library("no_such_module_for_gato_tests", "some-package==1.0", "fake-task")
    monkeypatch.setitem(sys.modules, "procgen", None)  # `import procgen` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"procgen-coinrun.*pip install procgen2"):
        envs.make("procgen-coinrun")


def test_gato_tasks_prints_one_id_per_line(capsys):
    from envs.cli import main

    assert main(["--domain", "procgen"]) == 0
    lines = capsys.readouterr().out.split()
    assert len(lines) == 16 and lines[0] == "procgen-bigfish"


# ---- the static tables match the installed libraries -------------------------------------
def test_tables_match_the_installed_libraries():
    import minigrid  # noqa: F401 - registers BabyAI-*
    from dm_control import suite
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    from envs import atari, babyai, dmc, metaworld, procgen

    assert dmc.BENCHMARKING == tuple(suite.BENCHMARKING)
    assert set(metaworld.TASKS) == set(ALL_V3_ENVIRONMENTS)
    assert {f"BabyAI-{level}" for level, _ in babyai.LEVELS} == {k for k in gym.registry if k.startswith("BabyAI-")}
    from procgen.env import ENV_NAMES
    assert procgen.GAMES == tuple(ENV_NAMES)
    assert len(set(atari.GAMES)) == 57


# ---- each domain's observation against the library's raw data ----------------------------
def test_babyai_observation_is_the_symbolic_grid_direction_and_mission():
    env = envs.make("babyai-goto-red-ball")
    obs, _ = env.reset(seed=3)
    raw = env.unwrapped.gen_obs()
    assert obs["discrete"].shape == (148,) and obs["discrete"].dtype == np.int64
    np.testing.assert_array_equal(obs["discrete"][:147], raw["image"].reshape(-1))
    assert obs["discrete"][147] == raw["direction"] == env.unwrapped.agent_dir
    assert obs["text"] == raw["mission"] == "go to the red ball"
    from minigrid.utils.baby_ai_bot import BabyAIBot

    bot = BabyAIBot(env.unwrapped)  # the privileged expert works on env.unwrapped
    for _ in range(env.unwrapped.max_steps):
        obs, reward, terminated, truncated, _ = env.step(int(bot.replan()))
        if terminated or truncated:
            break
    assert terminated and reward > 0


def test_atari_observation_is_the_area_resized_frame():
    import cv2

    env = envs.make("atari-breakout")
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(1)
    frame = env.unwrapped.ale.getScreenRGB()
    assert frame.shape == (210, 160, 3)
    np.testing.assert_array_equal(obs["image"], cv2.resize(frame, (80, 80), interpolation=cv2.INTER_AREA))
    assert env.action_space == spaces.Discrete(4)  # Breakout's minimal action set
    assert env.unwrapped._frameskip == 4 and env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)


def test_dmc_state_is_sorted_flattened_and_1000_steps_truncate():
    env = envs.make("dmc-cartpole-balance")
    obs, _ = env.reset(seed=0)
    raw = env.unwrapped.dmc_env.task.get_observation(env.unwrapped.dmc_env.physics)
    # sorted keys: position (3,), velocity (2,)
    expected = np.concatenate([raw["position"], raw["velocity"]]).astype(np.float32)
    np.testing.assert_array_equal(obs["continuous"], expected)
    flags = [env.step(np.zeros(1, np.float32))[2:4] for _ in range(1000)]
    assert flags[-1] == (False, True) and not any(any(f) for f in flags[:-1])


def test_metaworld_goal_is_randomized_per_episode_and_fixed_by_seed():
    env = envs.make("metaworld-reach")
    goals = [env.reset(seed=s)[0]["continuous"][36:39].copy() for s in (0, 0, 1)]
    np.testing.assert_array_equal(goals[0], goals[1])
    assert not np.array_equal(goals[0], goals[2])
    next_goal = env.reset()[0]["continuous"][36:39]
    assert not np.array_equal(next_goal, goals[2])
    _, _, terminated, _, info = env.step(np.zeros(4, np.float32))
    assert "success" in info and terminated is False


def test_procgen_reset_seed_fixes_the_level():
    env = envs.make("procgen-coinrun")
    a = env.reset(seed=5)[0]["image"]
    b = env.reset(seed=5)[0]["image"]
    c = env.reset(seed=6)[0]["image"]
    assert a.shape == (64, 64, 3) and np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("game", ["coinrun", "bigfish", "maze", "starpilot"])
def test_procgen_reseeding_equals_a_fresh_gym3_env_with_the_same_rand_seed(game):
    # reset(seed=s) reuses the built gym3 env (set_state + force reset); it must play exactly the
    # levels of a gym3 env built with rand_seed = the seed envs derives from s (as before).
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):
        from procgen import ProcgenGym3Env
    env = envs.make(f"procgen-{game}").unwrapped
    env.reset(seed=0)
    for a in range(20):  # leave the first level mid-episode
        env.step(a % 15)
    assert env._template is not None  # the reseeding path is the one tested
    obs, info = env.reset(seed=3)
    ref = ProcgenGym3Env(num=1, env_name=game, distribution_mode="easy", num_threads=0,
                         rand_seed=int(np.random.default_rng(3).integers(0, 2**31 - 1)))
    np.testing.assert_array_equal(obs, ref.observe()[1]["rgb"][0])
    assert info["level_seed"] == ref.get_info()[0]["level_seed"]
    for a in np.random.default_rng(0).integers(15, size=40):
        obs, reward, terminated, truncated, info = env.step(int(a))
        ref.act(np.array([a]))
        ref_reward, ref_obs, first = ref.observe()
        np.testing.assert_array_equal(obs, ref_obs["rgb"][0])
        assert (reward, terminated or truncated, info) == (ref_reward[0], bool(first[0]), ref.get_info()[0])
        if terminated or truncated:
            break


# ---- the checks: a few tasks per domain (fast), every task (full) ------------------------
FAST_TASKS = ["babyai-goto-red-ball", "babyai-put-next-local", "dmc-cheetah-run", "dmc-ball-in-cup-catch",
              "atari-pong", "metaworld-reach", "procgen-coinrun"]


@pytest.mark.parametrize("task_id", FAST_TASKS)
def test_all_checks_pass(task_id):
    failed = [r.message for r in checks.run_checks(task_id) if not r.ok]
    assert failed == []


def test_checks_pass_on_a_dmc_pixel_task_with_short_budgets():
    results = checks.run_checks("dmc-pixels-cartpole-swingup", budget=10, steps=4)
    assert [r.message for r in results if not r.ok] == []


def test_a_broken_env_fails_the_named_check():
    env_a, env_b = envs.make("dmc-cheetah-run"), envs.make("dmc-cheetah-run")
    env_b.unwrapped.dmc_env.task._random = np.random.RandomState(1)  # a second env that ignores the seed
    env_b.unwrapped.reset = lambda seed=None, options=None: (env_b.unwrapped._observe(env_b.unwrapped.dmc_env.reset()), {})
    with pytest.raises(checks.EnvCheckError, match=r"dmc-cheetah-run: seeded_determinism: reset\(seed=7\)"):
        checks.check_seeded_determinism("dmc-cheetah-run", env_a, env_b)


def test_check_env_cli_reports_failures_by_exit_code(capsys):
    assert checks.main(["--task", "babyai-goto-red-ball", "--checks", "convention_spaces", "action_validation"]) == 0
    assert "1/1 tasks passed" in capsys.readouterr().out
    from envs.commandline import UsageError

    with pytest.raises(UsageError, match="'babyai-goto-red-bal'.*babyai-goto-red-ball"):  # `gato` exits 2 on it
        checks.main(["--task", "babyai-goto-red-bal"])


@pytest.mark.full
@pytest.mark.parametrize("task_id", envs.task_ids())
def test_all_checks_pass_on_every_task(task_id):
    failed = [r.message for r in checks.run_checks(task_id) if not r.ok]
    assert failed == []


@pytest.mark.full
@pytest.mark.parametrize("task_id", envs.task_ids("babyai"))
def test_babyai_time_limit_bound_holds(task_id):
    env = envs.make(task_id)
    for seed in range(20):
        env.reset(seed=seed)
        assert env.unwrapped.max_steps <= envs.task_spec(task_id).max_episode_steps


def test_fire_on_reset_serves_so_a_noop_policy_loses_its_lives():
    """Breakout waits for FIRE: NOOPs play forever without the option and lose 5 lives with it."""
    served = envs.make("atari-breakout", fire_on_reset=True)
    waiting = envs.make("atari-breakout")
    for env, ends in ((served, True), (waiting, False)):
        env.reset(seed=0)
        done, steps = False, 0
        while not done and steps < 1000:
            _, _, terminated, truncated, _ = env.step(0)  # NOOP
            done, steps = terminated or truncated, steps + 1
        assert done is ends and (env.unwrapped.ale.lives() == 0) is ends
        env.close()
    assert served.spec.kwargs.get("fire_on_reset") is True
