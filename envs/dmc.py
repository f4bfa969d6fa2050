"""DeepMind Control Suite: every task of ``dm_control.suite.BENCHMARKING`` from state, plus pixel variants.

Ids: dm_control's ``(domain, task)`` with every ``_`` turned into ``-``: ``("cheetah", "run")`` ->
``dmc-cheetah-run``, ``("ball_in_cup", "catch")`` -> ``dmc-ball-in-cup-catch``; pixel variants
``dmc-pixels-<same>``, e.g. ``dmc-pixels-cartpole-swingup``. ``TaskSpec.source`` keeps the exact
``"domain/task"`` pair.

Observation (state): ``continuous`` = every entry of dm_control's observation dict, flattened,
concatenated in sorted key order, float32. Observation (pixels): ``image`` = ``physics.render`` of
camera 0 (camera 2 for quadruped), 64x64 RGB uint8 by default (option ``image_size``). Actions:
``Box(-1, 1)``, rescaled linearly to the task's action spec (all suite tasks are already [-1, 1]).
Episodes: 1000 steps (20 s of simulated time), ended by the time limit, i.e. **truncated**, never
terminated; a step with ``discount == 0`` (none in the suite's benchmarking tasks) terminates.

Seeding: ``reset(seed=s)`` reseeds the task's ``RandomState`` (initial state and targets) with ``s``.
Rendering uses MuJoCo's EGL backend (``MUJOCO_GL=egl``, set unless you set it yourself; without a
GPU, EGL runs in software: see docs/results.md).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.registry import TaskSpec, import_library, register
from envs.wrappers import CONTINUOUS, IMAGE, ConventionWrapper, check_image_size, continuous_space, image_space

PACKAGE = "dm-control==1.0.28"
EPISODE_STEPS = 1000
DEFAULT_IMAGE_SIZE = 64
STATE_OPTIONS = (
    ("max_episode_steps", "int; time limit, default 1000"),
    ("render_mode", "None or 'rgb_array' (240x320 frame of camera 0)"),
)
PIXEL_OPTIONS = STATE_OPTIONS + (
    ("image_size", "int or (H, W), multiples of 16; default 64"),
    ("camera_id", "int; MuJoCo camera of the observation, default 0 (2 for quadruped)"),
)

# dm_control 1.0.28 `suite.BENCHMARKING`, in its order (tests check it against the installed suite).
BENCHMARKING: tuple[tuple[str, str], ...] = (
    ("acrobot", "swingup"), ("acrobot", "swingup_sparse"), ("ball_in_cup", "catch"),
    ("cartpole", "balance"), ("cartpole", "balance_sparse"), ("cartpole", "swingup"),
    ("cartpole", "swingup_sparse"), ("cheetah", "run"), ("finger", "spin"), ("finger", "turn_easy"),
    ("finger", "turn_hard"), ("fish", "upright"), ("fish", "swim"), ("hopper", "stand"),
    ("hopper", "hop"), ("humanoid", "stand"), ("humanoid", "walk"), ("humanoid", "run"),
    ("manipulator", "bring_ball"), ("pendulum", "swingup"), ("point_mass", "easy"),
    ("reacher", "easy"), ("reacher", "hard"), ("swimmer", "swimmer6"), ("swimmer", "swimmer15"),
    ("walker", "stand"), ("walker", "walk"), ("walker", "run"),
)
# The pixel tasks of the DMC-from-pixels literature (PlaNet, CURL, DrQ).
PIXEL_TASKS: tuple[tuple[str, str], ...] = (
    ("cartpole", "swingup"), ("cheetah", "run"), ("walker", "walk"), ("finger", "spin"),
    ("reacher", "easy"), ("ball_in_cup", "catch"),
)


def dmc_task_id(domain: str, task: str, pixels: bool = False) -> str:
    """``("ball_in_cup", "catch")`` -> ``"dmc-ball-in-cup-catch"`` (``dmc-pixels-...`` with pixels)."""
    return ("dmc-pixels-" if pixels else "dmc-") + f"{domain}-{task}".replace("_", "-")


for _domain, _task in BENCHMARKING:
    register(TaskSpec(
        task_id=dmc_task_id(_domain, _task), domain="dmc", tags=("dmc", "state", "benchmarking"),
        max_episode_steps=EPISODE_STEPS, source=f"{_domain}/{_task}", package=PACKAGE,
        observation_keys=(CONTINUOUS,), action_type="continuous", factory="envs.dmc:make_env",
        options=STATE_OPTIONS,
    ))
for _domain, _task in PIXEL_TASKS:
    register(TaskSpec(
        task_id=dmc_task_id(_domain, _task, pixels=True), domain="dmc", tags=("dmc", "pixels"),
        max_episode_steps=EPISODE_STEPS, source=f"{_domain}/{_task}", package=PACKAGE,
        observation_keys=(IMAGE,), action_type="continuous", factory="envs.dmc:make_env",
        options=PIXEL_OPTIONS,
    ))


def flatten_observation(observation: dict[str, Any]) -> np.ndarray:
    """dm_control's observation dict -> one float32 vector, keys in sorted order.

    Example:
        >>> flatten_observation({"velocity": np.array([3.0]), "position": np.array([[1.0, 2.0]])})
        array([1., 2., 3.], dtype=float32)
    """
    return ObservationFlattener({k: np.shape(v) for k, v in observation.items()})(observation)


class ObservationFlattener:
    """`flatten_observation` with the key order and the shapes planned once from the observation spec.

    Each call is one ``np.concatenate(..., dtype=float32)`` (the same float64 -> float32 cast as
    ``astype``) over the entries in sorted key order, raveling only the entries that are not 1-D.

    Args:
        shapes: key -> shape of that observation entry (``()`` for a scalar).

    Example:
        >>> flat = ObservationFlattener({"velocity": (1,), "position": (1, 2)})
        >>> flat.size, flat({"velocity": np.array([3.0]), "position": np.array([[1.0, 2.0]])})
        (3, array([1., 2., 3.], dtype=float32))
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]]):
        # (key, is 1-D) in sorted key order
        self.plan: list[tuple[str, bool]] = [(k, len(shapes[k]) == 1) for k in sorted(shapes)]
        self.size = sum(int(np.prod(shapes[k], dtype=np.int64)) for k in shapes)

    def __call__(self, observation: dict[str, Any]) -> np.ndarray:
        parts = [observation[k] if is_1d else np.ravel(observation[k]) for k, is_1d in self.plan]
        return np.concatenate(parts, dtype=np.float32)  # (n,)


class DMCEnv(gym.Env):
    """A dm_control suite task as a `gymnasium.Env` (raw: dict-of-arrays or pixels observation).

    ``self.dmc_env`` is the dm_control ``control.Environment`` (``.physics``, ``.task``).
    The observation is the flattened state vector, or the rendered frame if ``pixels``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, domain: str, task: str, pixels: bool = False, image_size: tuple[int, int] = (64, 64),
                 camera_id: int | None = None, render_mode: str | None = None):
        from dm_control import suite

        self.dmc_env = suite.load(domain, task)
        self.pixels = pixels
        self.image_size = image_size
        self.camera_id = (2 if domain == "quadruped" else 0) if camera_id is None else camera_id
        self.render_mode = render_mode
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": round(1.0 / self.dmc_env.control_timestep())}
        a = self.dmc_env.action_spec()
        self.action_space = spaces.Box(
            np.broadcast_to(a.minimum, a.shape).astype(np.float64),
            np.broadcast_to(a.maximum, a.shape).astype(np.float64), a.shape, np.float64,
        )
        if pixels:
            self.observation_space = image_space(*image_size)
        else:
            spec = self.dmc_env.observation_spec()
            self._flatten = ObservationFlattener({k: tuple(s.shape) for k, s in spec.items()})
            self.observation_space = continuous_space(self._flatten.size)

    def _observe(self, time_step) -> np.ndarray:
        if self.pixels:
            h, w = self.image_size
            return self.dmc_env.physics.render(h, w, camera_id=self.camera_id).copy()
        return self._flatten(time_step.observation)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            # The task draws initial states and targets from its own RandomState.
            self.dmc_env.task._random = np.random.RandomState(seed)
        return self._observe(self.dmc_env.reset()), {}

    def step(self, action: np.ndarray):
        ts = self.dmc_env.step(action)
        terminated = bool(ts.last() and ts.discount == 0.0)
        truncated = bool(ts.last() and not terminated)
        return self._observe(ts), float(ts.reward or 0.0), terminated, truncated, {}

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self.dmc_env.physics.render(240, 320, camera_id=self.camera_id)

    def close(self):
        self.dmc_env.close()


def make_env(spec: TaskSpec, max_episode_steps: int | None = None, render_mode: str | None = None,
             image_size: Any = DEFAULT_IMAGE_SIZE, camera_id: int | None = None):
    """Build a DMC task (see module docstring); called by `envs.make`."""
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must precede importing mujoco
    import_library("dm_control.suite", PACKAGE, spec.task_id)
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"task {spec.task_id!r}: render_mode must be None or 'rgb_array', got {render_mode!r}")
    pixels = "pixels" in spec.tags
    size = check_image_size(image_size, spec.task_id)
    domain, task = spec.source.split("/")
    raw = DMCEnv(domain, task, pixels=pixels, image_size=size, camera_id=camera_id, render_mode=render_mode)
    key = IMAGE if pixels else CONTINUOUS
    options = {k: v for k, v in (("max_episode_steps", max_episode_steps), ("render_mode", render_mode),
                                 ("camera_id", camera_id)) if v is not None}
    if pixels and size != (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE):
        options["image_size"] = size
    return ConventionWrapper(
        raw, spec.task_id, spaces.Dict({key: raw.observation_space}), lambda o: {key: o},
        int(max_episode_steps or spec.max_episode_steps), options,
    )
