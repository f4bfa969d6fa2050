"""Meta-World: all 50 v3 tasks as MT1 tasks, with the goal randomized per episode.

Ids: ``pick-place-v3`` -> ``metaworld-pick-place``.

Each reset draws a fresh goal/object placement ("rand_vec") from the task's own
``_random_reset_space`` with the env's seeded ``np_random``: the same distribution from which
``metaworld.MT1`` pre-samples its 50 goals, but a new goal every episode, and ``reset(seed=s)``
fixes it (Meta-World's own ``reset`` ignores ``seed``; the wrapper calls ``env.seed(s)`` first).
The goal is observable (MT1's ``partially_observable=False``).

Observation: ``continuous`` = the raw 39-dim observation (hand xyz, gripper, two objects' pose,
the previous frame's 18 values, goal xyz) as float32. Actions: ``Box(-1, 1, (4,))`` (Meta-World's
own bounds, so no rescaling). Episodes are truncated at 500 steps (``max_path_length``); success
does not terminate, ``info["success"]`` (0.0/1.0) is kept. ``env.unwrapped`` is the
``SawyerXYZEnv``, which the scripted policies in ``metaworld.policies`` read.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from gymnasium import spaces

from envs.registry import TaskSpec, import_library, register
from envs.wrappers import CONTINUOUS, ConventionWrapper, continuous_space

PACKAGE = "metaworld==3.1.1"
OBS_DIM = 39
MAX_PATH_LENGTH = 500
OPTIONS = (
    ("max_episode_steps", "int; time limit, default 500 (Meta-World's max_path_length)"),
    ("render_mode", "None or 'rgb_array' (MuJoCo render, MUJOCO_GL=egl by default)"),
    ("camera_name", "str; MuJoCo camera for render(), e.g. 'corner', 'topview', 'gripperPOV'"),
)

# metaworld 3.1.1 `metaworld.env_dict.ALL_V3_ENVIRONMENTS`, in its order.
TASKS: tuple[str, ...] = (
    "assembly-v3", "basketball-v3", "bin-picking-v3", "box-close-v3", "button-press-topdown-v3",
    "button-press-topdown-wall-v3", "button-press-v3", "button-press-wall-v3", "coffee-button-v3",
    "coffee-pull-v3", "coffee-push-v3", "dial-turn-v3", "disassemble-v3", "door-close-v3",
    "door-lock-v3", "door-open-v3", "door-unlock-v3", "hand-insert-v3", "drawer-close-v3",
    "drawer-open-v3", "faucet-open-v3", "faucet-close-v3", "hammer-v3", "handle-press-side-v3",
    "handle-press-v3", "handle-pull-side-v3", "handle-pull-v3", "lever-pull-v3",
    "pick-place-wall-v3", "pick-out-of-hole-v3", "pick-place-v3", "plate-slide-v3",
    "plate-slide-side-v3", "plate-slide-back-v3", "plate-slide-back-side-v3", "peg-insert-side-v3",
    "peg-unplug-side-v3", "soccer-v3", "stick-push-v3", "stick-pull-v3", "push-v3", "push-wall-v3",
    "push-back-v3", "reach-v3", "reach-wall-v3", "shelf-place-v3", "sweep-into-v3", "sweep-v3",
    "window-open-v3", "window-close-v3",
)


def name_to_task_id(name: str) -> str:
    """``"pick-place-v3"`` -> ``"metaworld-pick-place"``."""
    return "metaworld-" + name.removesuffix("-v3")


for _name in TASKS:
    register(TaskSpec(
        task_id=name_to_task_id(_name),
        domain="metaworld",
        tags=("metaworld", "mt1"),
        max_episode_steps=MAX_PATH_LENGTH,
        source=_name,
        package=PACKAGE,
        observation_keys=(CONTINUOUS,),
        action_type="continuous",
        factory="envs.metaworld:make_env",
        options=OPTIONS,
    ))


def _obs(raw: np.ndarray) -> dict[str, Any]:
    return {CONTINUOUS: np.asarray(raw, dtype=np.float32).copy()}


def make_env(
    spec: TaskSpec,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    camera_name: str | None = None,
):
    """Build a Meta-World MT1 task (see module docstring); called by `envs.make`."""
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must precede importing mujoco
    import_library("metaworld", PACKAGE, spec.task_id)
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"task {spec.task_id!r}: render_mode must be None or 'rgb_array', got {render_mode!r}")
    raw = ALL_V3_ENVIRONMENTS[spec.source](render_mode=render_mode, camera_name=camera_name)
    limit = int(max_episode_steps or spec.max_episode_steps)
    raw.max_path_length = limit  # Meta-World raises if stepped past its own limit
    # MT1 task setup, as `metaworld._make_tasks` does it, but drawing a new goal every reset from
    # the env's seeded np_random instead of freezing one of 50 pre-sampled goals.
    raw._set_task_called = True
    raw._freeze_rand_vec = False
    raw.seeded_rand_vec = True
    raw._partially_observable = False  # MT1: the goal is part of the observation
    raw.__dict__.pop("sawyer_observation_space", None)  # recompute the cached space with the goal bounds
    options = {k: v for k, v in (("max_episode_steps", max_episode_steps), ("render_mode", render_mode),
                                 ("camera_name", camera_name)) if v is not None}
    return ConventionWrapper(
        raw, spec.task_id, spaces.Dict({CONTINUOUS: continuous_space(OBS_DIM)}), _obs, limit, options,
        seed_fn=raw.seed,
    )
