"""Procgen: all 16 games through procgen2 (imports as ``procgen``), ``distribution_mode="easy"``.

Ids: ``procgen-<game>``, e.g. ``procgen-coinrun``.

Observation: ``image`` = the native 64x64 RGB frame. Actions: ``Discrete(15)`` (procgen's full
combo set, identical for every game). Procgen's gym3 env resets itself at the end of a level;
this module turns it into a `gymnasium.Env`: ``reset(seed=s)`` draws a ``rand_seed`` from the env's
seeded ``np_random`` and puts the env on exactly the levels of a gym3 env built with that
``rand_seed`` (without rebuilding it: see `ProcgenEnv`), so the level sequence and the game's
randomness follow the seed. An episode ends when procgen
starts a new level: a completed level or a death is a termination; procgen's own 1000-step
timeout is a truncation. The final observation is procgen's (the first frame of the next
level, as in procgen itself). ``info`` has ``level_seed``, ``prev_level_seed`` and
``prev_level_complete`` (1 when the level was solved).
"""

from __future__ import annotations

import contextlib
import io
import struct
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


def _mt19937(seed: int) -> np.random.MT19937:
    """A Mersenne Twister seeded like C++ ``std::mt19937::seed(seed)`` (numpy's legacy int seeding)."""
    bit_generator = np.random.MT19937()
    bit_generator._legacy_seeding(int(seed) & 0xFFFFFFFF)
    return bit_generator


def _mt19937_text(bit_generator: np.random.MT19937) -> bytes:
    """The engine state as libstdc++'s ``operator<<`` writes it: 624 words, then the position."""
    state = bit_generator.state["state"]
    return (" ".join(map(str, state["key"].tolist())) + f" {int(state['pos'])}").encode()


def _level_seed_generator_text(rand_seed: int, draws: int) -> bytes:
    """Procgen's per-game level-seed generator for ``rand_seed``, after ``draws`` draws.

    procgen's VecGame seeds a generator with ``rand_seed`` and seeds game ``n``'s level-seed
    generator with that generator's ``n``-th output (n = 0 here: one env).
    """
    level_gen = _mt19937(int(_mt19937(rand_seed).random_raw()))
    if draws:
        level_gen.random_raw(draws)
    return _mt19937_text(level_gen)


class ProcgenEnv(gym.Env):
    """One procgen game as a `gymnasium.Env` with a (64, 64, 3) uint8 observation.

    ``self.gym3_env`` is the ``procgen.ProcgenGym3Env`` (num=1), built at the first reset.

    Seeding without rebuilding: a seeded reset must give the levels of a fresh gym3 env built with
    ``rand_seed=r``. A level is generated from a level seed drawn from the game's level-seed
    generator (a ``std::mt19937`` seeded from ``r``), and procgen serializes that generator in its
    state (``get_state``/``set_state``, the text form of the engine). So at the first reset the env
    is built once and its state right after construction is kept as a template; each reset
    restores the template with the level-seed generator replaced by the fresh one for ``r``, then
    sends procgen's force-reset action (-1), which draws the first level seed from it and generates
    that level, as construction does. ~0.3 ms instead of ~0.7 ms for a rebuild; the equivalence
    (identical observations, rewards, flags and infos) is checked for all 16 games in
    `tests/test_envs.py`. If the template's layout is not the expected one, every reset rebuilds.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, game: str, render_mode: str | None = None, **procgen_kwargs: Any):
        self.game = game
        self.render_mode = render_mode
        self._kwargs = procgen_kwargs
        self.observation_space = image_space(64, 64)
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self.gym3_env = None
        self._template: tuple[bytes, bytes] | None = None  # state bytes before/after the level-seed generator
        self._t = 0

    def _build(self, rand_seed: int) -> None:
        from procgen import ProcgenGym3Env

        if self.gym3_env is not None:
            self.gym3_env.close()
        self.gym3_env = ProcgenGym3Env(
            num=1, env_name=self.game, rand_seed=rand_seed, num_threads=0,
            render_mode="rgb_array" if self.render_mode == "rgb_array" else None, **self._kwargs,
        )
        if self._template is None:
            state = self.gym3_env.callmethod("get_state")[0]
            text = _level_seed_generator_text(rand_seed, draws=1)  # construction drew the first level
            at = state.find(text)
            if at >= 4 and state.count(text) == 1 and struct.unpack("<i", state[at - 4:at])[0] == len(text):
                self._template = (state[:at - 4], state[at + len(text):])

    def _reseed(self, rand_seed: int) -> bool:
        """Put the built env on the first level of ``rand_seed`` (False: no template, rebuild)."""
        if self.gym3_env is None or self._template is None:
            return False
        text = _level_seed_generator_text(rand_seed, draws=0)
        head, tail = self._template
        self.gym3_env.callmethod("set_state", [head + struct.pack("<i", len(text)) + text + tail])
        self.gym3_env.act(np.array([-1], dtype=np.int32))  # procgen's force reset: next level seed
        return True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rand_seed = int(self.np_random.integers(0, 2**31 - 1))
        if not self._reseed(rand_seed):
            self._build(rand_seed)
        self._t = 0
        _, ob, _ = self.gym3_env.observe()
        info = self.gym3_env.get_info()[0]
        return ob["rgb"][0], {k: info[k] for k in ("level_seed",) if k in info}

    def step(self, action: int):
        self.gym3_env.act(np.array([action], dtype=np.int32))
        rew, ob, first = self.gym3_env.observe()  # fresh copies of gym3's buffers
        self._t += 1
        info = self.gym3_env.get_info()[0]  # a fresh dict
        info.pop("rgb", None)
        done = bool(first[0])
        truncated = done and self._t >= TIMEOUT and not info.get("prev_level_complete", 0)
        terminated = done and not truncated
        return ob["rgb"][0], float(rew[0]), terminated, truncated, info  # (64, 64, 3) view of a fresh copy

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
    levels: dict[str, int] = {"num_levels": num_levels, "start_level": start_level}
    if distribution_mode == "exploration":  # procgen fixes the level itself and rejects these options
        if (num_levels, start_level) != (0, 0):
            raise ValueError(f"task {spec.task_id!r}: distribution_mode='exploration' fixes the level; "
                             f"drop num_levels={num_levels} / start_level={start_level}")
        levels = {}
    raw = ProcgenEnv(spec.source, render_mode=render_mode, distribution_mode=distribution_mode,
                     use_backgrounds=use_backgrounds, **levels)
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
