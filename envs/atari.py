"""Atari: the 57 games of the standard Atari-57 set (DQN / Agent57) on ale-py v5.

Ids: the game's snake_case name with ``-``: ``atari-pong``, ``atari-montezuma-revenge``,
``atari-up-n-down``; ``TaskSpec.source`` is the ALE id (``ALE/Pong-v5``).

Preprocessing (ale-py v5 defaults, i.e. Machado et al. 2018): frame skip 4 (the reward is summed
over the 4 frames), sticky actions with ``repeat_action_probability=0.25``, the game's *minimal*
action set (``Discrete(n)``, n = 3..18), episodes truncated at 27,000 agent steps (= the v5 cap of
108,000 frames; counted by the wrapper in agent steps, ALE's own frame cap is off), full game over (no life-loss episodes), **no reward clipping**, no frame stacking, no
max-pooling. Observation: ``image`` = the 210x160 RGB frame resized to 80x80 with
``cv2.INTER_AREA`` (80 = 5 x 16 tiles into 16x16 patches). ``env.unwrapped`` is ale-py's
``AtariEnv`` (RAM: ``env.unwrapped.ale.getRAM()``).

Option ``fire_on_reset=True`` (off by default): in games whose action set has FIRE, the env presses
FIRE once after a reset and after each lost life, as DQN-style evaluations do for games that wait
for a serve (Breakout). The press happens inside the env: its reward counts, it is not an agent
step, and the agent never has to choose FIRE to start play.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from envs.registry import TaskSpec, import_library, register
from envs.wrappers import IMAGE, ConventionWrapper, check_image_size, image_space

PACKAGE = "ale-py==0.12.1"
MAX_EPISODE_STEPS = 27_000  # 108,000 frames / frame skip 4
DEFAULT_IMAGE_SIZE = 80
OPTIONS = (
    ("max_episode_steps", "int; time limit, default 27000 (108k frames)"),
    ("render_mode", "None or 'rgb_array' (the full 210x160 frame)"),
    ("fire_on_reset", "bool; press FIRE after a reset and each lost life (games with FIRE), default False"),
    ("image_size", "int or (H, W), multiples of 16; default 80"),
    ("repeat_action_probability", "float; sticky actions, default 0.25"),
    ("frameskip", "int; default 4"),
    ("full_action_space", "bool; default False (minimal action set)"),
)

# The Atari-57 games (as in DQN Zoo's atari_data.py), ALE v5 names.
GAMES: tuple[str, ...] = (
    "Alien", "Amidar", "Assault", "Asterix", "Asteroids", "Atlantis", "BankHeist", "BattleZone",
    "BeamRider", "Berzerk", "Bowling", "Boxing", "Breakout", "Centipede", "ChopperCommand",
    "CrazyClimber", "Defender", "DemonAttack", "DoubleDunk", "Enduro", "FishingDerby", "Freeway",
    "Frostbite", "Gopher", "Gravitar", "Hero", "IceHockey", "Jamesbond", "Kangaroo", "Krull",
    "KungFuMaster", "MontezumaRevenge", "MsPacman", "NameThisGame", "Phoenix", "Pitfall", "Pong",
    "PrivateEye", "Qbert", "Riverraid", "RoadRunner", "Robotank", "Seaquest", "Skiing", "Solaris",
    "SpaceInvaders", "StarGunner", "Surround", "Tennis", "TimePilot", "Tutankham", "UpNDown",
    "Venture", "VideoPinball", "WizardOfWor", "YarsRevenge", "Zaxxon",
)


def game_to_task_id(game: str) -> str:
    """``"MontezumaRevenge"`` -> ``"atari-montezuma-revenge"``; ``"UpNDown"`` -> ``"atari-up-n-down"``."""
    import re

    return "atari-" + "-".join(w.lower() for w in re.findall(r"[A-Z][a-z]*", game))


for _game in GAMES:
    register(TaskSpec(
        task_id=game_to_task_id(_game), domain="atari", tags=("atari", "atari57"),
        max_episode_steps=MAX_EPISODE_STEPS, source=f"ALE/{_game}-v5", package=PACKAGE,
        observation_keys=(IMAGE,), action_type="discrete", factory="envs.atari:make_env", options=OPTIONS,
    ))


class FireOnReset(gymnasium.Wrapper):
    """Presses FIRE after ``reset`` and after each lost life (the module docstring's ``fire_on_reset``).

    ``unwrapped`` stays ale-py's ``AtariEnv``.
    """

    def __init__(self, env: Any):
        super().__init__(env)
        self.fire = env.unwrapped.get_action_meanings().index("FIRE")

    def _fire(self) -> tuple[Any, float, bool, bool, dict]:
        return self.env.step(self.fire)

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self._fire()  # no reward is possible before the serve
        if terminated or truncated:
            obs, info = self.env.reset(**kwargs)
        return obs, info

    def step(self, action: Any):
        lives = self.env.unwrapped.ale.lives()
        obs, reward, terminated, truncated, info = self.env.step(action)
        if not (terminated or truncated) and 0 < self.env.unwrapped.ale.lives() < lives:
            obs, extra, terminated, truncated, info = self._fire()
            reward += extra
        return obs, reward, terminated, truncated, info


def make_env(spec: TaskSpec, max_episode_steps: int | None = None, render_mode: str | None = None,
             image_size: Any = DEFAULT_IMAGE_SIZE, repeat_action_probability: float = 0.25,
             frameskip: int = 4, full_action_space: bool = False, fire_on_reset: bool = False):
    """Build an Atari game (see module docstring); called by `envs.make`."""
    gym = import_library("gymnasium", "gymnasium", spec.task_id)
    ale_py = import_library("ale_py", PACKAGE, spec.task_id)
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no "A.L.E: Arcade Learning Environment" banner
    cv2 = import_library("cv2", "opencv-python-headless", spec.task_id)
    gym.register_envs(ale_py)
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"task {spec.task_id!r}: render_mode must be None or 'rgb_array', got {render_mode!r}")
    h, w = check_image_size(image_size, spec.task_id)
    limit = int(max_episode_steps or spec.max_episode_steps)
    raw = gym.make(
        spec.source, render_mode=render_mode, repeat_action_probability=repeat_action_probability,
        frameskip=frameskip, full_action_space=full_action_space,
        # 0 = no ALE frame cap: ALE counts reset frames too (DoubleDunk truncated 4 steps early),
        # so the one time limit is the ConventionWrapper's, in agent steps.
        max_num_frames_per_episode=0,
    ).unwrapped  # drop gymnasium's checker wrappers

    def obs_fn(frame: np.ndarray) -> dict[str, Any]:
        # (210, 160, 3) -> (h, w, 3); INTER_AREA averages pixels, so thin sprites survive.
        return {IMAGE: cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)}

    options = {k: v for k, v in (("max_episode_steps", max_episode_steps), ("render_mode", render_mode))
               if v is not None}
    if (h, w) != (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE):
        options["image_size"] = (h, w)
    if repeat_action_probability != 0.25:
        options["repeat_action_probability"] = repeat_action_probability
    if frameskip != 4:
        options["frameskip"] = frameskip
    if full_action_space:
        options["full_action_space"] = True
    if fire_on_reset:
        options["fire_on_reset"] = True
        if "FIRE" in raw.get_action_meanings():
            raw = FireOnReset(raw)
    return ConventionWrapper(raw, spec.task_id, spaces.Dict({IMAGE: image_space(h, w)}), obs_fn, limit, options)
