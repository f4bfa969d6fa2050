"""BabyAI: every level that minigrid registers (``BabyAI-*``), with the mission as text.

Ids: ``BabyAI-GoToRedBall-v0`` -> ``babyai-goto-red-ball`` (CamelCase -> kebab, "GoTo" -> "goto",
size suffixes kept together: ``BabyAI-GoToLocalS5N2-v0`` -> ``babyai-goto-local-s5n2``).

Observation: ``discrete`` = the 7x7x3 symbolic egocentric grid (object, color, state), flattened in
C order (147 ints), followed by the agent direction (0-3): 148 int64 values in [0, 10]; ``text`` = the
mission string. Actions: ``Discrete(7)`` (left, right, forward, pickup, drop, toggle, done).
``env.unwrapped`` is the minigrid env, so ``minigrid.utils.baby_ai_bot.BabyAIBot(env.unwrapped)``
works. The time limit is minigrid's own ``max_steps`` (it truncates); for levels whose limit depends
on the mission (``num_navs * room_size**2 * rooms``) ``TaskSpec.max_episode_steps`` is its largest
value.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from gymnasium import spaces

from envs.registry import TaskSpec, import_library, register
from envs.wrappers import DISCRETE, TEXT, ConventionWrapper, discrete_space, text_space

PACKAGE = "minigrid==3.2.0"
GRID_VALUES = 7 * 7 * 3  # the symbolic view, flattened
OPTIONS = (
    ("max_episode_steps", "int; truncate earlier than minigrid's own limit"),
    ("render_mode", "None or 'rgb_array' (minigrid's full-grid render)"),
)

# (minigrid id without the "BabyAI-" prefix, largest time limit), from minigrid 3.2.0's registry.
# `tests/test_envs.py::test_babyai_table_matches_minigrid` (full) checks it against the installed minigrid.
LEVELS: tuple[tuple[str, int], ...] = (
    ("GoToRedBallGrey-v0", 64),
    ("GoToRedBall-v0", 64),
    ("GoToRedBallNoDists-v0", 64),
    ("GoToObj-v0", 64),
    ("GoToObjS4-v0", 16),
    ("GoToObjS6-v1", 36),
    ("GoToLocal-v0", 64),
    ("GoToLocalS5N2-v0", 25),
    ("GoToLocalS6N2-v0", 36),
    ("GoToLocalS6N3-v0", 36),
    ("GoToLocalS6N4-v0", 36),
    ("GoToLocalS7N4-v0", 49),
    ("GoToLocalS7N5-v0", 49),
    ("GoToLocalS8N2-v0", 64),
    ("GoToLocalS8N3-v0", 64),
    ("GoToLocalS8N4-v0", 64),
    ("GoToLocalS8N5-v0", 64),
    ("GoToLocalS8N6-v0", 64),
    ("GoToLocalS8N7-v0", 64),
    ("GoTo-v0", 576),
    ("GoToOpen-v0", 576),
    ("GoToObjMaze-v0", 576),
    ("GoToObjMazeOpen-v0", 576),
    ("GoToObjMazeS4R2-v0", 64),
    ("GoToObjMazeS4-v0", 144),
    ("GoToObjMazeS5-v0", 225),
    ("GoToObjMazeS6-v0", 324),
    ("GoToObjMazeS7-v0", 441),
    ("GoToImpUnlock-v0", 576),
    ("GoToSeq-v0", 2304),
    ("GoToSeqS5R2-v0", 400),
    ("GoToRedBlueBall-v0", 64),
    ("GoToDoor-v0", 441),
    ("GoToObjDoor-v0", 576),
    ("Open-v0", 576),
    ("OpenRedDoor-v0", 50),
    ("OpenDoor-v0", 576),
    ("OpenDoorDebug-v0", 576),
    ("OpenDoorColor-v0", 576),
    ("OpenDoorLoc-v0", 576),
    ("OpenTwoDoors-v0", 720),
    ("OpenRedBlueDoors-v0", 720),
    ("OpenRedBlueDoorsDebug-v0", 720),
    ("OpenDoorsOrderN2-v0", 720),
    ("OpenDoorsOrderN4-v0", 720),
    ("OpenDoorsOrderN2Debug-v0", 720),
    ("OpenDoorsOrderN4Debug-v0", 720),
    ("Pickup-v0", 576),
    ("UnblockPickup-v0", 576),
    ("PickupLoc-v0", 64),
    ("PickupDist-v0", 49),
    ("PickupDistDebug-v0", 49),
    ("PickupAbove-v0", 288),
    ("PutNextLocal-v0", 128),
    ("PutNextLocalS5N3-v0", 50),
    ("PutNextLocalS6N4-v0", 72),
    ("PutNextS4N1-v0", 128),
    ("PutNextS5N2-v0", 200),
    ("PutNextS5N1-v0", 200),
    ("PutNextS6N3-v0", 288),
    ("PutNextS7N4-v0", 392),
    ("PutNextS5N2Carrying-v0", 200),
    ("PutNextS6N3Carrying-v0", 288),
    ("PutNextS7N4Carrying-v0", 392),
    ("Unlock-v0", 576),
    ("UnlockLocal-v0", 576),
    ("UnlockLocalDist-v0", 576),
    ("KeyInBox-v0", 576),
    ("UnlockPickup-v0", 72),
    ("UnlockPickupDist-v0", 72),
    ("BlockedUnlockPickup-v0", 576),
    ("UnlockToUnlock-v0", 1080),
    ("ActionObjDoor-v0", 441),
    ("FindObjS5-v0", 500),
    ("FindObjS6-v0", 720),
    ("FindObjS7-v0", 980),
    ("KeyCorridor-v0", 1080),
    ("KeyCorridorS3R1-v0", 270),
    ("KeyCorridorS3R2-v0", 270),
    ("KeyCorridorS3R3-v0", 270),
    ("KeyCorridorS4R3-v0", 480),
    ("KeyCorridorS5R3-v0", 750),
    ("KeyCorridorS6R3-v0", 1080),
    ("OneRoomS8-v0", 64),
    ("OneRoomS12-v0", 144),
    ("OneRoomS16-v0", 256),
    ("OneRoomS20-v0", 400),
    ("MoveTwoAcrossS5N2-v0", 400),
    ("MoveTwoAcrossS8N9-v0", 1024),
    ("Synth-v0", 1152),
    ("SynthS5R2-v0", 300),
    ("SynthLoc-v0", 1152),
    ("SynthSeq-v0", 4608),
    ("MiniBossLevel-v0", 800),
    ("BossLevel-v0", 4608),
    ("BossLevelNoUnlock-v0", 4608),
)


def level_to_task_id(level: str) -> str:
    """``"GoToLocalS5N2-v0"`` -> ``"babyai-goto-local-s5n2"``.

    Example:
        >>> level_to_task_id("GoToRedBall-v0")
        'babyai-goto-red-ball'
    """
    name = re.sub(r"-v\d+$", "", level)
    words = re.findall(r"(?:[A-Z]\d+)+|[A-Z][a-z]*|\d+", name)
    kebab = "-".join(w.lower() for w in words)
    kebab = re.sub(r"(^|-)go-to(?=-|$)", r"\1goto", kebab)
    return f"babyai-{kebab}"


for _level, _max_steps in LEVELS:
    register(TaskSpec(
        task_id=level_to_task_id(_level),
        domain="babyai",
        tags=("babyai",),
        max_episode_steps=_max_steps,
        source=f"BabyAI-{_level}",
        package=PACKAGE,
        observation_keys=(DISCRETE, TEXT),
        action_type="discrete",
        factory="envs.babyai:make_env",
        options=OPTIONS,
    ))


def _obs(raw: dict[str, Any]) -> dict[str, Any]:
    grid = np.asarray(raw["image"], dtype=np.int64).reshape(GRID_VALUES)  # (7, 7, 3) -> (147,)
    return {DISCRETE: np.append(grid, np.int64(raw["direction"])), TEXT: str(raw["mission"])}


def _quiet_mission_sampling() -> None:
    """Send minigrid's "Sampling rejected: ..." lines to the debug log instead of stdout.

    `RoomGridLevel` prints one each time it redraws a level whose mission it cannot place (a normal
    step of generating BabyAI levels, not an error); rebinding ``print`` in that one module keeps
    them out of the user's output.
    """
    import logging

    from minigrid.envs.babyai.core import roomgrid_level

    logger = logging.getLogger("minigrid.babyai")
    roomgrid_level.print = lambda *args, **kw: logger.debug(" ".join(map(str, args)))


def make_env(spec: TaskSpec, max_episode_steps: int | None = None, render_mode: str | None = None):
    """Build a BabyAI level (see module docstring); called by `envs.make`."""
    gym = import_library("gymnasium", "gymnasium", spec.task_id)
    import_library("minigrid", PACKAGE, spec.task_id)  # registers the BabyAI-* ids
    _quiet_mission_sampling()
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"task {spec.task_id!r}: render_mode must be None or 'rgb_array', got {render_mode!r}")
    raw = gym.make(spec.source, render_mode=render_mode).unwrapped  # drop gymnasium's checker wrappers
    obs_space = spaces.Dict({DISCRETE: discrete_space(GRID_VALUES + 1), TEXT: text_space()})
    options = {k: v for k, v in (("max_episode_steps", max_episode_steps), ("render_mode", render_mode)) if v is not None}
    return ConventionWrapper(
        raw, spec.task_id, obs_space, _obs, max_episode_steps or spec.max_episode_steps, options,
    )
