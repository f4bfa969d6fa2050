"""Procgen: all 16 games through procgen2 (imports as ``procgen``), ``distribution_mode="easy"``.

Ids: ``procgen-<game>``, e.g. ``procgen-coinrun``.

Observation: ``image`` = the native 64x64 RGB frame. Actions: ``Discrete(15)`` (procgen's full
combo set, identical for every game). Procgen's gym3 env resets itself at the end of a level;
this module turns it into a `gymnasium.Env`: ``reset(seed=s)`` builds a fresh gym3 env whose
``rand_seed`` is drawn from the env's seeded ``np_random`` (about 1 ms after the first one), so
the level sequence and the game's randomness follow the seed. An episode ends when procgen
starts a new level: a completed level or a death is a termination; procgen's own 1000-step
timeout is a truncation. The final observation is procgen's (the first frame of the next
level, as in procgen itself). ``info`` has ``level_seed``, ``prev_level_seed`` and
``prev_level_complete`` (1 when the level was solved).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.registry import TaskSpec, import_library, register
from envs.wrappers import IMAGE, ConventionWrapper, image_space

PACKAGE = "procgen2==0.10.7"
TIMEOUT = 1000  # procgen's per-level step limit
NUM_ACTIONS = 15
OPTIONS = (
    ("max_episode_steps", "int; time limit, default 1000 (procgen's own timeout)"),
    ("render_mode", "None or 'rgb_array' (the 512x512 human frame)"),
    ("distribution_mode", "'easy' (default), 'hard', 'extreme', 'memory' or 'exploration'"),
    ("num_levels", "int; 0 (default) = unlimited levels"),
    ("start_level", "int; first level seed when num_levels > 0, default 0"),
    ("use_backgrounds", "bool; default True"),
)

# procgen `ENV_NAMES`, in its order.
GAMES: tuple[str, ...] = (
    "bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot",
    "heist", "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot",
)

for _game in GAMES:
    register(TaskSpec(
        task_id=f"procgen-{_game}", domain="procgen", tags=("procgen",), max_episode_steps=TIMEOUT,
        source=_game, package=PACKAGE, observation_keys=(IMAGE,), action_type="discrete",
        factory="envs.procgen:make_env", options=OPTIONS,
    ))


class ProcgenEnv(gym.Env):
    """One procgen game as a `gymnasium.Env` with a (64, 64, 3) uint8 observation.

    ``self.gym3_env`` is the current ``procgen.ProcgenGym3Env`` (num=1); it is rebuilt at each reset.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, game: str, render_mode: str | None = None, **procgen_kwargs: Any):
        self.game = game
        self.render_mode = render_mode
        self._kwargs = procgen_kwargs
        self.observation_space = image_space(64, 64)
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self.gym3_env = None
        self._t = 0

    def _build(self, rand_seed: int) -> None:
        from procgen import ProcgenGym3Env

        if self.gym3_env is not None:
            self.gym3_env.close()
        self.gym3_env = ProcgenGym3Env(
            num=1, env_name=self.game, rand_seed=rand_seed, num_threads=0,
            render_mode="rgb_array" if self.render_mode == "rgb_array" else None, **self._kwargs,
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._build(int(self.np_random.integers(0, 2**31 - 1)))
        self._t = 0
        _, ob, _ = self.gym3_env.observe()
        info = dict(self.gym3_env.get_info()[0])
        return ob["rgb"][0].copy(), {k: info[k] for k in ("level_seed",) if k in info}

    def step(self, action: int):
        self.gym3_env.act(np.array([action], dtype=np.int32))
        rew, ob, first = self.gym3_env.observe()
        self._t += 1
        info = dict(self.gym3_env.get_info()[0])
        info.pop("rgb", None)
        done = bool(first[0])
        truncated = done and self._t >= TIMEOUT and not info.get("prev_level_complete", 0)
        terminated = done and not truncated
        return ob["rgb"][0].copy(), float(rew[0]), terminated, truncated, info

    def render(self):
        if self.render_mode != "rgb_array" or self.gym3_env is None:
            return None
        return np.asarray(self.gym3_env.get_info()[0]["rgb"]).copy()

    def close(self):
        if self.gym3_env is not None:
            self.gym3_env.close()
            self.gym3_env = None


def make_env(spec: TaskSpec, max_episode_steps: int | None = None, render_mode: str | None = None,
             distribution_mode: str = "easy", num_levels: int = 0, start_level: int = 0,
             use_backgrounds: bool = True):
    """Build a Procgen game (see module docstring); called by `envs.make`."""
    # procgen imports gym 0.26, which prints a deprecation banner to stderr; we only use gym3.
    with contextlib.redirect_stderr(io.StringIO()):
        import_library("procgen", PACKAGE, spec.task_id)
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"task {spec.task_id!r}: render_mode must be None or 'rgb_array', got {render_mode!r}")
    raw = ProcgenEnv(spec.source, render_mode=render_mode, distribution_mode=distribution_mode,
                     num_levels=num_levels, start_level=start_level, use_backgrounds=use_backgrounds)
    options = {k: v for k, v in (("max_episode_steps", max_episode_steps), ("render_mode", render_mode))
               if v is not None}
    for k, v, default in (("distribution_mode", distribution_mode, "easy"), ("num_levels", num_levels, 0),
                          ("start_level", start_level, 0), ("use_backgrounds", use_backgrounds, True)):
        if v != default:
            options[k] = v
    return ConventionWrapper(
        raw, spec.task_id, spaces.Dict({IMAGE: image_space(64, 64)}), lambda o: {IMAGE: o},
        int(max_episode_steps or spec.max_episode_steps), options,
    )
