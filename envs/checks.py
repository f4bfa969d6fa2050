"""Env checks: Gymnasium's own ``check_env`` plus the project's named checks, for any registered task.

Each check is a small function ``check_<what>(task_id, env, ...)`` that raises `EnvCheckError`
with a message saying what is wrong; `run_checks` runs them all on one task and `main` is
``gato check-env``.

Checks (in `CHECKS` order):
    gymnasium_check_env      gymnasium.utils.env_checker.check_env, the real one (seeding, spaces,
                             step/reset API, returned data not reused, rgb_array render).
    convention_spaces        the Dict keys are the spec's observation keys; image uint8 (H, W, 3)
                             with H, W multiples of 16; continuous float32 (n,); discrete int64 in
                             [0, 1024); text a Text space; actions Discrete(n) or Box(-1, 1) float32.
    unwrapped_is_library_env env.unwrapped is the library's env (ALE with RAM, minigrid, Meta-World).
    observations_match_space reset + random steps: every observation has exactly the space's keys,
                             dtypes and shapes, lies in the space, and has no NaN/inf; rewards finite.
    seeded_determinism       two envs reset with the same seed and fed the same actions give
                             identical observations, rewards and flags (across episode ends).
    action_validation        an out-of-space action raises ValueError naming the task and the space.
    episodes_end             a random policy's episode ends within max_episode_steps, and an
                             episode that is not terminated is truncated exactly at the limit.

Example:
    >>> from envs.checks import run_checks
    >>> results = run_checks("babyai-goto-red-ball")
    >>> all(r.ok for r in results)
    True
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import envs
from envs.convention import CONTINUOUS, DISCRETE, DISCRETE_MAX, IMAGE, PATCH_SIZE, TEXT

# Steps of random play that the step-based checks take.
DETERMINISM_STEPS = 64
OBSERVATION_STEPS = 32
# `episodes_end` plays a whole episode if the time limit is at most this many steps; otherwise it
# rebuilds the env with max_episode_steps=budget and checks the truncation there.
EPISODE_STEP_BUDGET = 1000
PIXEL_EPISODE_STEP_BUDGET = 100  # DMC pixel tasks render in software (~20-60 steps/s)


class EnvCheckError(AssertionError):
    """A check failed; the message names the task, the check and what is wrong."""


@dataclass
class CheckResult:
    """The outcome of one check on one task."""

    task_id: str
    check: str
    ok: bool
    message: str = ""
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()


def _fail(task_id: str, check: str, what: str) -> None:
    raise EnvCheckError(f"{task_id}: {check}: {what}")


def _random_actions(space: spaces.Space, n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    if isinstance(space, spaces.Discrete):
        return [np.int64(a) for a in rng.integers(0, space.n, size=n)]
    return [a for a in rng.uniform(-1.0, 1.0, size=(n,) + space.shape).astype(np.float32)]


# ---- the checks ------------------------------------------------------------------------------
def check_gymnasium_check_env(task_id: str, env: gym.Env) -> list[str]:
    """Run ``gymnasium.utils.env_checker.check_env`` (the real one); return its warnings."""
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            check_env(env)
        except Exception as e:  # noqa: BLE001 - re-raised with the task named
            _fail(task_id, "gymnasium_check_env", f"{type(e).__name__}: {e}")
    return sorted({str(w.message) for w in caught})


def check_convention_spaces(task_id: str, env: gym.Env) -> None:
    """The observation and action spaces follow `envs.convention` and the task's spec."""
    name = "convention_spaces"
    spec = envs.task_spec(task_id)
    obs_space = env.observation_space
    if not isinstance(obs_space, spaces.Dict):
        _fail(task_id, name, f"observation space must be a Dict, got {obs_space}")
    if tuple(sorted(obs_space.spaces)) != tuple(sorted(spec.observation_keys)):
        _fail(task_id, name, f"observation keys {sorted(obs_space.spaces)} != spec {sorted(spec.observation_keys)}")
    for key, sub in obs_space.spaces.items():
        if key == IMAGE:
            ok = (isinstance(sub, spaces.Box) and sub.dtype == np.uint8 and len(sub.shape) == 3
                  and sub.shape[2] == 3 and sub.shape[0] % PATCH_SIZE == 0 and sub.shape[1] % PATCH_SIZE == 0
                  and np.all(sub.low == 0) and np.all(sub.high == 255))
            if not ok:
                _fail(task_id, name, f"'image' must be Box(0, 255, (H, W, 3), uint8) with H, W multiples of {PATCH_SIZE}, got {sub}")
        elif key == CONTINUOUS:
            if not (isinstance(sub, spaces.Box) and sub.dtype == np.float32 and len(sub.shape) == 1):
                _fail(task_id, name, f"'continuous' must be a 1-D float32 Box, got {sub}")
        elif key == DISCRETE:
            ok = (isinstance(sub, spaces.Box) and sub.dtype == np.int64 and len(sub.shape) == 1
                  and np.all(sub.low >= 0) and np.all(sub.high < DISCRETE_MAX))
            if not ok:
                _fail(task_id, name, f"'discrete' must be a 1-D int64 Box within [0, {DISCRETE_MAX}), got {sub}")
        elif key == TEXT:
            if not isinstance(sub, spaces.Text):
                _fail(task_id, name, f"'text' must be a Text space, got {sub}")
        else:
            _fail(task_id, name, f"unknown observation key {key!r}; allowed: image, continuous, discrete, text")
    act = env.action_space
    if spec.action_type == "discrete":
        if not (isinstance(act, spaces.Discrete) and act.start == 0):
            _fail(task_id, name, f"spec says discrete actions but the action space is {act}")
    else:
        ok = (isinstance(act, spaces.Box) and act.dtype == np.float32 and len(act.shape) == 1
              and np.all(act.low == -1) and np.all(act.high == 1))
        if not ok:
            _fail(task_id, name, f"continuous actions must be Box(-1, 1, (n,), float32), got {act}")


def check_unwrapped_is_library_env(task_id: str, env: gym.Env) -> None:
    """``env.unwrapped`` is the library's env, as the privileged scripted experts need."""
    name = "unwrapped_is_library_env"
    raw = env.unwrapped
    domain = envs.task_spec(task_id).domain
    if domain == "atari":
        if not (hasattr(raw, "ale") and len(raw.ale.getRAM()) == 128):
            _fail(task_id, name, f"env.unwrapped should be ale_py's AtariEnv with .ale.getRAM() (128 bytes), got {type(raw)}")
    elif domain == "babyai":
        from minigrid.minigrid_env import MiniGridEnv

        if not isinstance(raw, MiniGridEnv):
            _fail(task_id, name, f"env.unwrapped should be a minigrid MiniGridEnv (for BabyAIBot), got {type(raw)}")
    elif domain == "metaworld":
        from metaworld.sawyer_xyz_env import SawyerXYZEnv

        if not isinstance(raw, SawyerXYZEnv):
            _fail(task_id, name, f"env.unwrapped should be a Meta-World SawyerXYZEnv, got {type(raw)}")
    elif domain == "dmc":
        if not hasattr(raw, "dmc_env"):
            _fail(task_id, name, f"env.unwrapped should be envs.dmc.DMCEnv (with .dmc_env), got {type(raw)}")
    elif domain == "procgen":
        if not hasattr(raw, "gym3_env"):
            _fail(task_id, name, f"env.unwrapped should be envs.procgen.ProcgenEnv (with .gym3_env), got {type(raw)}")


def _check_obs(task_id: str, name: str, obs: Any, space: spaces.Dict, where: str) -> None:
    if not isinstance(obs, dict):
        _fail(task_id, name, f"{where}: observation must be a dict, got {type(obs).__name__}")
    if sorted(obs) != sorted(space.spaces):
        _fail(task_id, name, f"{where}: observation keys {sorted(obs)} != space keys {sorted(space.spaces)}")
    for key, sub in space.spaces.items():
        value = obs[key]
        if isinstance(sub, spaces.Text):
            if not isinstance(value, str):
                _fail(task_id, name, f"{where}: '{key}' must be a str, got {type(value).__name__}")
            if not sub.contains(value):
                bad = sorted(set(value) - set(sub.character_set))
                _fail(task_id, name, f"{where}: '{key}'={value!r} is not in {sub} (length {len(value)}, chars outside the charset: {bad})")
            continue
        if not isinstance(value, np.ndarray):
            _fail(task_id, name, f"{where}: '{key}' must be a numpy array, got {type(value).__name__}")
        if value.dtype != sub.dtype or value.shape != sub.shape:
            _fail(task_id, name, f"{where}: '{key}' has dtype {value.dtype} shape {value.shape}, space says {sub.dtype} {sub.shape}")
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            _fail(task_id, name, f"{where}: '{key}' has NaN/inf at indices {np.flatnonzero(~np.isfinite(value))[:10].tolist()}")
        if not sub.contains(value):
            lo, hi = value.min(), value.max()
            _fail(task_id, name, f"{where}: '{key}' (min {lo}, max {hi}) is outside its space {sub}")


def check_observations_match_space(task_id: str, env: gym.Env, steps: int = OBSERVATION_STEPS, seed: int = 0) -> None:
    """Observations have exactly the space's keys, dtypes and shapes, lie in it, and are finite."""
    name = "observations_match_space"
    obs, info = env.reset(seed=seed)
    _check_obs(task_id, name, obs, env.observation_space, "reset")
    if not isinstance(info, dict):
        _fail(task_id, name, f"reset info must be a dict, got {type(info).__name__}")
    for t, action in enumerate(_random_actions(env.action_space, steps, seed)):
        obs, reward, terminated, truncated, info = env.step(action)
        _check_obs(task_id, name, obs, env.observation_space, f"step {t}")
        if not isinstance(reward, float) or not np.isfinite(reward):
            _fail(task_id, name, f"step {t}: reward must be a finite float, got {reward!r}")
        if not isinstance(terminated, bool) or not isinstance(truncated, bool):
            _fail(task_id, name, f"step {t}: terminated/truncated must be bool, got {type(terminated)}, {type(truncated)}")
        if terminated or truncated:
            obs, info = env.reset()
            _check_obs(task_id, name, obs, env.observation_space, f"reset after step {t}")


def _obs_equal(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    diff = []
    for k in a:
        if isinstance(a[k], str) or isinstance(b.get(k), str):
            if a[k] != b.get(k):
                diff.append(k)
        elif not np.array_equal(a[k], b[k]):
            diff.append(k)
    return diff


def check_seeded_determinism(task_id: str, env_a: gym.Env, env_b: gym.Env, steps: int = DETERMINISM_STEPS,
                             seed: int = 7) -> None:
    """Two envs reset with the same seed and fed the same actions agree exactly, across episode ends.

    After an episode ends both envs are reset without a seed, which must continue deterministically.
    """
    name = "seeded_determinism"
    obs_a, _ = env_a.reset(seed=seed)
    obs_b, _ = env_b.reset(seed=seed)
    if diff := _obs_equal(obs_a, obs_b):
        _fail(task_id, name, f"reset(seed={seed}) gave different observations ({diff}) in two envs")
    for t, action in enumerate(_random_actions(env_a.action_space, steps, seed)):
        obs_a, r_a, term_a, trunc_a, _ = env_a.step(action)
        obs_b, r_b, term_b, trunc_b, _ = env_b.step(action)
        if diff := _obs_equal(obs_a, obs_b):
            _fail(task_id, name, f"step {t} after reset(seed={seed}): observations differ ({diff}) for the same actions")
        if r_a != r_b or term_a != term_b or trunc_a != trunc_b:
            _fail(task_id, name, f"step {t}: (reward, terminated, truncated) differ: {(r_a, term_a, trunc_a)} vs {(r_b, term_b, trunc_b)}")
        if term_a or trunc_a:
            obs_a, _ = env_a.reset()
            obs_b, _ = env_b.reset()
            if diff := _obs_equal(obs_a, obs_b):
                _fail(task_id, name, f"unseeded reset after the episode ending at step {t} differs ({diff})")


def check_action_validation(task_id: str, env: gym.Env) -> None:
    """An action outside the action space raises ValueError naming the task and the space."""
    name = "action_validation"
    space = env.action_space
    bad = [space.n, -1, 0.5] if isinstance(space, spaces.Discrete) else [
        np.full(space.shape, 1.5, np.float32), np.zeros(space.shape[0] + 1, np.float32),
        np.full(space.shape, np.nan, np.float32)]
    env.reset(seed=0)
    for action in bad:
        try:
            env.step(action)
        except ValueError as e:
            if task_id not in str(e) or str(space) not in str(e):
                _fail(task_id, name, f"the error for action {action!r} must name the task and the space {space}, got: {e}")
        else:
            _fail(task_id, name, f"action {action!r} is outside {space} but env.step accepted it")


def check_episodes_end(task_id: str, budget: int | None = None, seed: int = 0) -> int:
    """A random policy's episode ends within the time limit; a non-terminated one truncates exactly there.

    Plays one whole episode if ``max_episode_steps <= budget``; otherwise rebuilds the env with
    ``max_episode_steps=budget``. Returns the episode length.
    """
    name = "episodes_end"
    spec = envs.task_spec(task_id)
    if budget is None:
        budget = PIXEL_EPISODE_STEP_BUDGET if "pixels" in spec.tags else EPISODE_STEP_BUDGET
    limit = spec.max_episode_steps
    env = envs.make(task_id) if limit <= budget else envs.make(task_id, max_episode_steps=budget)
    limit = min(limit, budget)
    try:
        env.reset(seed=seed)
        actions = _random_actions(env.action_space, limit, seed)
        for t, action in enumerate(actions, start=1):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                if truncated and not terminated and t != limit and not _library_limit(env, t):
                    _fail(task_id, name, f"truncated at step {t}, but the time limit is {limit} (and the library's own limit is not {t})")
                return t
        _fail(task_id, name, f"episode did not end within max_episode_steps={limit}")
    finally:
        env.close()
    return limit


def _library_limit(env: gym.Env, t: int) -> bool:
    # BabyAI levels with a mission-dependent limit truncate at minigrid's max_steps (<= the spec's bound).
    return getattr(env.unwrapped, "max_steps", None) == t


# ---- running ---------------------------------------------------------------------------------
CHECKS: tuple[str, ...] = (
    "gymnasium_check_env", "convention_spaces", "unwrapped_is_library_env", "observations_match_space",
    "seeded_determinism", "action_validation", "episodes_end",
)


def run_checks(task_id: str, checks: tuple[str, ...] = CHECKS, budget: int | None = None,
               steps: int | None = None) -> list[CheckResult]:
    """Run the named ``checks`` on ``task_id``; a failure is recorded, not raised.

    Args:
        task_id: a registered id.
        checks: names from `CHECKS`.
        budget: step budget of ``episodes_end`` (None: 1000, or 100 for DMC pixel tasks).
        steps: random steps of ``observations_match_space`` and ``seeded_determinism``
            (None: 32 and 64).
    """
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown check(s) {sorted(unknown)}; available: {', '.join(CHECKS)}")
    envs.task_spec(task_id)  # unknown id -> error with the closest ids
    results: list[CheckResult] = []
    built: dict[str, gym.Env] = {}

    def env(which: str = "a") -> gym.Env:
        if which not in built:
            built[which] = envs.make(task_id)
        return built[which]

    runners: dict[str, Callable[[], Any]] = {
        "gymnasium_check_env": lambda: check_gymnasium_check_env(task_id, env()),
        "convention_spaces": lambda: check_convention_spaces(task_id, env()),
        "unwrapped_is_library_env": lambda: check_unwrapped_is_library_env(task_id, env()),
        "observations_match_space": lambda: check_observations_match_space(
            task_id, env(), steps=steps or OBSERVATION_STEPS),
        "seeded_determinism": lambda: check_seeded_determinism(
            task_id, env("a"), env("b"), steps=steps or DETERMINISM_STEPS),
        "action_validation": lambda: check_action_validation(task_id, env()),
        "episodes_end": lambda: check_episodes_end(task_id, budget=budget),
    }
    try:
        for name in checks:
            t0 = time.perf_counter()
            try:
                out = runners[name]()
                notes = tuple(out) if isinstance(out, list) else ()
                results.append(CheckResult(task_id, name, True, "", time.perf_counter() - t0, notes))
            except EnvCheckError as e:
                results.append(CheckResult(task_id, name, False, str(e), time.perf_counter() - t0))
            except Exception as e:  # noqa: BLE001 - a crash is a failed check, with its type
                results.append(CheckResult(task_id, name, False, f"{task_id}: {name}: raised {type(e).__name__}: {e}",
                                           time.perf_counter() - t0))
    finally:
        for e in built.values():
            e.close()
    return results


@dataclass
class CheckEnvConfig:
    """`gato check-env`: run the env checks on registered tasks."""

    task: str | None = None
    """One task id (e.g. babyai-goto-red-ball); default: all tasks of --domain, or every task."""
    domain: str | None = None
    """Check every task of this domain (atari, dmc, babyai, metaworld, procgen)."""
    tag: str | None = None
    """Only tasks with this tag (e.g. pixels, state)."""
    checks: tuple[str, ...] = CHECKS
    """Which checks to run (names in envs.checks.CHECKS)."""
    budget: int | None = None
    """Step budget of episodes_end (default 1000; 100 for DMC pixel tasks)."""
    show_warnings: bool = False
    """Print the warnings gymnasium's check_env emitted."""


def main(argv: list[str] | None = None) -> int:
    """``gato check-env [--task T | --domain D] [--tag TAG]``; exit code 1 if any check fails."""
    from envs.commandline import UsageError, check_task, parse

    cfg = parse(CheckEnvConfig, argv, "gato check-env")
    if cfg.task is not None and (cfg.domain is not None or cfg.tag is not None):
        raise UsageError("give either --task or --domain/--tag, not both")
    unknown = sorted(set(cfg.checks) - set(CHECKS))
    if unknown:
        raise UsageError(f"--checks {' '.join(unknown)}: unknown check; the checks are {', '.join(CHECKS)}")
    if cfg.task is not None:
        tasks = [check_task(cfg.task)]
    else:
        try:
            tasks = envs.task_ids(cfg.domain, tag=cfg.tag)
        except ValueError as e:
            raise UsageError(f"--domain {cfg.domain}: {e}") from None
        if not tasks:
            raise UsageError(f"no task has --tag {cfg.tag!r}")
    failed = 0
    for task_id in tasks:
        results = run_checks(task_id, tuple(cfg.checks), budget=cfg.budget)
        bad = [r for r in results if not r.ok]
        failed += bool(bad)
        total = sum(r.seconds for r in results)
        print(f"{'FAIL' if bad else 'ok  '} {task_id:<40} {total:6.1f}s", flush=True)
        for r in bad:
            print(f"     {r.message}", flush=True)
        if cfg.show_warnings:
            for r in results:
                for w in r.warnings:
                    print(f"     warning ({r.check}): {w}")
    print(f"{len(tasks) - failed}/{len(tasks)} tasks passed all checks ({', '.join(cfg.checks)})")
    return 1 if failed else 0
