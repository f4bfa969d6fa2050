"""DMC search expert: sampling-based model-predictive control in copies of the physics state.

At every control step, for each env:

1. copy the recorded env's full physics state (``mj_getState``; read only) as the start state;
2. sample ``samples`` action sequences over ``horizon`` control steps around the previous plan,
   shifted one step (the warm start). A sequence is ``knots`` action vectors spread evenly over the
   horizon and linearly interpolated between them (a smooth, low-frequency parameterization: the
   search is over ``knots * nu`` numbers, not ``horizon * nu``);
3. roll every sequence out in C with ``mujoco.rollout`` on the episode's copy of the model, from
   the start state, and score it with the task's own reward summed over the horizon: a vectorized
   NumPy transcription of the suite's ``get_reward`` where one exists (`VECTOR_REWARDS`, each
   checked against the suite's reward in tests), else the suite's ``get_reward`` on a copy of the
   physics for each scored state (slower);
4. update the plan: MPPI (weights ``exp((R - max R) / (temperature * std R))``), CEM (mean of the
   elites) or predictive sampling (the best sequence, ``method="ps"``), ``iterations`` times;
5. act with the plan's first action.

The planning copies (model, data, task) are made at each episode start from the recorded env; the
recorded env itself is never stepped, reset or written.

Cost: ``samples * iterations * horizon * n_sub_steps`` MuJoCo steps per control step (measured per
task in docs/experts.md).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from policies.base import Policy

FULLPHYSICS = None  # mujoco.mjtState.mjSTATE_FULLPHYSICS, set on first use (import mujoco lazily)


@dataclass
class MPPIConfig:
    """Planning budget and update rule of the DMC search expert (options of ``--policy search:...``)."""

    samples: int = 64
    """action sequences rolled out per iteration (one of them is the current plan, unperturbed)."""
    horizon: int = 30
    """control steps each sequence looks ahead."""
    knots: int = 4
    """spline knots over the horizon (actions are linearly interpolated between them)."""
    iterations: int = 1
    """plan updates per control step."""
    noise: float = 0.5
    """std of the Gaussian perturbation of the knots (actions live in [-1, 1])."""
    temperature: float = 0.1
    """MPPI temperature, in units of the std of the sampled returns (small: greedy)."""
    method: str = "mppi"
    """``mppi``, ``cem`` (mean of the top ``elites``) or ``ps`` (predictive sampling: keep the best)."""
    elites: int = 8
    """CEM: sequences averaged into the new plan."""
    reward_stride: int = 1
    """score every k-th control step of the horizon (times k): cheaper scoring for slow rewards."""
    coarse: int = 1
    """plan with a physics timestep this many times larger (fewer MuJoCo steps; an approximate model)."""
    shaped: bool = True
    """plan with the task's dense planning score where its reward is sparse (`PLANNING_SCORES`); the
    recorded return is the task's own reward either way."""

    def validate(self) -> None:
        if self.method not in ("mppi", "cem", "ps"):
            raise ValueError(f"search option method={self.method!r}: use 'mppi', 'cem' or 'ps'")
        for k in ("samples", "horizon", "knots", "iterations", "elites", "reward_stride", "coarse"):
            if getattr(self, k) < 1:
                raise ValueError(f"search option {k}={getattr(self, k)} must be >= 1")
        if self.knots > self.horizon:
            raise ValueError(f"search option knots={self.knots} exceeds horizon={self.horizon}")
        if self.samples < 2:
            raise ValueError("search option samples must be >= 2 (one is the current plan)")


def interpolation_matrix(times: np.ndarray, horizon: int, knots: int) -> np.ndarray:
    """(len(times), knots) linear-interpolation weights of knots at ``linspace(0, horizon - 1, knots)``.

    Times past the last knot hold it (and before the first, the first).

    Example:
        >>> interpolation_matrix(np.arange(3), 3, 2)
        array([[1. , 0. ],
               [0.5, 0.5],
               [0. , 1. ]])
    """
    times = np.asarray(times, dtype=np.float64)
    if knots == 1:
        return np.ones((len(times), 1))
    pos = np.clip(times, 0, horizon - 1) / (horizon - 1) * (knots - 1)  # knot coordinates
    lo = np.minimum(np.floor(pos).astype(int), knots - 2)
    frac = pos - lo
    w = np.zeros((len(times), knots))
    w[np.arange(len(times)), lo] = 1 - frac
    w[np.arange(len(times)), lo + 1] = frac
    return w


# ---------------------------------------------------------------------------------------------
# Vectorized task rewards. Each takes the planning physics (for names and model constants) and a
# `StateBatch` of M states, and returns (M,) rewards equal to the suite's get_reward on each state.


class StateBatch:
    """M physics states after a control step, with the controls applied during that step.

    Attributes:
        qpos: (M, nq); qvel: (M, nv); ctrl: (M, nu); sensordata: (M, nsensordata) of the same states.
    """

    def __init__(self, physics: Any, qpos: np.ndarray, qvel: np.ndarray, ctrl: np.ndarray, sensordata: np.ndarray):
        self.physics = physics
        self.qpos, self.qvel, self.ctrl, self.sensordata = qpos, qvel, ctrl, sensordata
        self._kin: dict[str, np.ndarray] = {}

    def sensor(self, name: str) -> np.ndarray:
        """(M, dim) values of the named sensor."""
        import mujoco

        m = self.physics.model.ptr
        i = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, name)
        adr, dim = m.sensor_adr[i], m.sensor_dim[i]
        return self.sensordata[:, adr:adr + dim]

    def kinematics(self, field: str, name: str) -> np.ndarray:
        """(M, 3) or (M, 9) ``field`` (xpos, xmat, xipos, geom_xpos, site_xpos) of the named object.

        Runs ``mj_kinematics`` once per state (on scratch data of the planning copy), for every field
        asked for so far, the first time a field is asked for.
        """
        import mujoco

        key = f"{field}:{name}"
        if key not in self._kin:
            kind = {"xpos": "body", "xmat": "body", "xipos": "body", "geom_xpos": "geom", "site_xpos": "site"}[field]
            idx = self.physics.model.name2id(name, kind)
            m = self.physics.model.ptr
            d = mujoco.MjData(m)
            out = np.empty((len(self.qpos),) + getattr(d, field)[idx].shape)
            for j in range(len(self.qpos)):
                d.qpos[:] = self.qpos[j]
                mujoco.mj_kinematics(m, d)
                out[j] = getattr(d, field)[idx]
            self._kin[key] = out
        return self._kin[key]


def _tol(x, **kw):
    from dm_control.utils import rewards

    return rewards.tolerance(x, **kw)


def _small_control(ctrl: np.ndarray) -> np.ndarray:
    return (_tol(ctrl, margin=1, value_at_margin=0, sigmoid="quadratic").mean(axis=1) + 4) / 5


def _cartpole(sparse: bool) -> Callable[[Any, StateBatch], np.ndarray]:
    def reward(physics, b: StateBatch) -> np.ndarray:
        cart = b.qpos[:, 0]
        cos = np.cos(np.cumsum(b.qpos[:, 1:], axis=1))  # (M, poles): pole i's angle is the sum of hinges <= i
        if sparse:
            return _tol(cart, bounds=(-0.25, 0.25)) * _tol(cos, bounds=(0.995, 1)).prod(axis=1)
        upright = (cos + 1) / 2
        centered = (1 + _tol(cart, margin=2)) / 2
        small_control = (4 + _tol(b.ctrl[:, 0], margin=1, value_at_margin=0, sigmoid="quadratic")) / 5
        small_velocity = (1 + _tol(b.qvel[:, 1:], margin=5).min(axis=1)) / 2
        return upright.mean(axis=1) * small_control * small_velocity * centered
    return reward


def _pendulum(physics, b: StateBatch) -> np.ndarray:
    from dm_control.suite.pendulum import _COSINE_BOUND

    return _tol(np.cos(b.qpos[:, 0]), bounds=(_COSINE_BOUND, 1))


def _cheetah(physics, b: StateBatch) -> np.ndarray:
    return _tol(b.sensor("torso_subtreelinvel")[:, 0], bounds=(10, float("inf")), margin=10, value_at_margin=0,
                sigmoid="linear")


def _walker(move_speed: float) -> Callable[[Any, StateBatch], np.ndarray]:
    def reward(physics, b: StateBatch) -> np.ndarray:
        standing = _tol(b.kinematics("xpos", "torso")[:, 2], bounds=(1.2, float("inf")), margin=0.6)
        upright = (1 + b.kinematics("xmat", "torso")[:, 8]) / 2
        stand = (3 * standing + upright) / 4
        if move_speed == 0:
            return stand
        move = _tol(b.sensor("torso_subtreelinvel")[:, 0], bounds=(move_speed, float("inf")),
                    margin=move_speed / 2, value_at_margin=0.5, sigmoid="linear")
        return stand * (5 * move + 1) / 6
    return reward


def _hopper(hopping: bool) -> Callable[[Any, StateBatch], np.ndarray]:
    def reward(physics, b: StateBatch) -> np.ndarray:
        height = b.kinematics("xipos", "torso")[:, 2] - b.kinematics("xipos", "foot")[:, 2]
        standing = _tol(height, bounds=(0.6, 2))
        if hopping:
            return standing * _tol(b.sensor("torso_subtreelinvel")[:, 0], bounds=(2, float("inf")), margin=1,
                                   value_at_margin=0.5, sigmoid="linear")
        return standing * _small_control(b.ctrl)
    return reward


def _finger_spin(physics, b: StateBatch) -> np.ndarray:
    return (b.sensor("hinge_velocity")[:, 0] <= -15.0).astype(np.float64)


def _finger_turn(physics, b: StateBatch) -> np.ndarray:
    spinner = b.sensor("spinner")[:, [0, 2]]
    to_target = (b.sensor("target")[:, [0, 2]] - spinner) - (b.sensor("tip")[:, [0, 2]] - spinner)
    dist = np.linalg.norm(to_target, axis=1) - physics.named.model.site_size["target", 0]
    return (dist <= 0).astype(np.float64)


def _ball_in_cup(physics, b: StateBatch) -> np.ndarray:
    d = np.abs(b.kinematics("site_xpos", "target")[:, [0, 2]] - b.kinematics("xpos", "ball")[:, [0, 2]])
    size = physics.named.model.site_size["target", [0, 2]] - physics.named.model.geom_size["ball", 0]
    return np.all(d < size, axis=1).astype(np.float64)


def _reacher(physics, b: StateBatch) -> np.ndarray:
    radii = physics.named.model.geom_size[["target", "finger"], 0].sum()
    d = b.kinematics("geom_xpos", "target")[:, :2] - b.kinematics("geom_xpos", "finger")[:, :2]
    return _tol(np.linalg.norm(d, axis=1), bounds=(0, radii))


def _point_mass(physics, b: StateBatch) -> np.ndarray:
    size = physics.named.model.geom_size["target", 0]
    d = b.kinematics("geom_xpos", "target") - b.kinematics("geom_xpos", "pointmass")
    return _tol(np.linalg.norm(d, axis=1), bounds=(0, size), margin=size) * _small_control(b.ctrl)


def _acrobot(sparse: bool) -> Callable[[Any, StateBatch], np.ndarray]:
    def reward(physics, b: StateBatch) -> np.ndarray:
        radius = physics.named.model.site_size["target", 0]
        d = np.linalg.norm(b.kinematics("site_xpos", "target") - b.kinematics("site_xpos", "tip"), axis=1)
        return _tol(d, bounds=(0, radius), margin=0 if sparse else 1)
    return reward


VECTOR_REWARDS: dict[str, Callable[[Any, StateBatch], np.ndarray]] = {
    "cartpole/balance": _cartpole(False), "cartpole/swingup": _cartpole(False),
    "cartpole/balance_sparse": _cartpole(True), "cartpole/swingup_sparse": _cartpole(True),
    "pendulum/swingup": _pendulum, "cheetah/run": _cheetah,
    "walker/stand": _walker(0.0), "walker/walk": _walker(1.0), "walker/run": _walker(8.0),
    "hopper/stand": _hopper(False), "hopper/hop": _hopper(True),
    "finger/spin": _finger_spin, "finger/turn_easy": _finger_turn, "finger/turn_hard": _finger_turn,
    "ball_in_cup/catch": _ball_in_cup, "reacher/easy": _reacher, "reacher/hard": _reacher,
    "point_mass/easy": _point_mass, "acrobot/swingup": _acrobot(False), "acrobot/swingup_sparse": _acrobot(True),
}
"""``"domain/task"`` -> vectorized reward; other tasks are scored with the suite's get_reward per state."""


def _shaped(hit: np.ndarray, dist: np.ndarray, margin: float) -> np.ndarray:
    """1 where the sparse reward is earned, else up to 0.5 falling linearly to 0 at ``margin`` away."""
    return np.where(hit, 1.0, 0.5 * np.clip(1.0 - dist / margin, 0.0, 1.0))


def _pendulum_shaped(physics, b: StateBatch) -> np.ndarray:
    cos = np.cos(b.qpos[:, 0])
    return _shaped(_pendulum(physics, b) > 0, 1.0 - cos, 2.0)


def _finger_spin_shaped(physics, b: StateBatch) -> np.ndarray:
    # the task pays 1 at a hinge velocity <= -15 rad/s: rise linearly to it
    return np.clip(-b.sensor("hinge_velocity")[:, 0] / 15.0, 0.0, 1.0)


def _finger_turn_shaped(physics, b: StateBatch) -> np.ndarray:
    spinner = b.sensor("spinner")[:, [0, 2]]
    to_target = (b.sensor("target")[:, [0, 2]] - spinner) - (b.sensor("tip")[:, [0, 2]] - spinner)
    dist = np.linalg.norm(to_target, axis=1) - physics.named.model.site_size["target", 0]
    return _shaped(dist <= 0, dist, 0.4)


def _ball_in_cup_shaped(physics, b: StateBatch) -> np.ndarray:
    d = b.kinematics("site_xpos", "target")[:, [0, 2]] - b.kinematics("xpos", "ball")[:, [0, 2]]
    return _shaped(_ball_in_cup(physics, b) > 0, np.linalg.norm(d, axis=1), 0.6)


def _reacher_shaped(physics, b: StateBatch) -> np.ndarray:
    radii = physics.named.model.geom_size[["target", "finger"], 0].sum()
    d = b.kinematics("geom_xpos", "target")[:, :2] - b.kinematics("geom_xpos", "finger")[:, :2]
    dist = np.linalg.norm(d, axis=1)
    return _shaped(dist <= radii, dist - radii, 0.4)


def _sparse_with_dense(sparse: Callable, dense: Callable) -> Callable[[Any, StateBatch], np.ndarray]:
    """1 where the sparse reward pays, else half the task's dense sibling reward."""
    def score(physics, b: StateBatch) -> np.ndarray:
        return np.where(sparse(physics, b) > 0, 1.0, 0.5 * dense(physics, b))
    return score


PLANNING_SCORES: dict[str, Callable[[Any, StateBatch], np.ndarray]] = {
    "cartpole/balance_sparse": _sparse_with_dense(_cartpole(True), _cartpole(False)),
    "cartpole/swingup_sparse": _sparse_with_dense(_cartpole(True), _cartpole(False)),
    "acrobot/swingup_sparse": _sparse_with_dense(_acrobot(True), _acrobot(False)),
    "pendulum/swingup": _pendulum_shaped, "finger/spin": _finger_spin_shaped,
    "finger/turn_easy": _finger_turn_shaped, "finger/turn_hard": _finger_turn_shaped,
    "ball_in_cup/catch": _ball_in_cup_shaped, "reacher/easy": _reacher_shaped, "reacher/hard": _reacher_shaped,
}
"""Dense planning scores of the sparse-reward tasks: each equals 1 exactly where the task pays 1 and is
below 1 elsewhere (half the dense sibling task's reward for cartpole and acrobot; a ramp towards the
goal for the others), so a plan that maximizes the score earns the reward, and a plan short of it
still sees which way is closer."""


# ---------------------------------------------------------------------------------------------


@dataclass
class Workspace:
    """One env's planning copies, rebuilt at each episode start from the recorded env (never shared with it).

    Attributes:
        physics: a dm_control ``Physics`` copy (own model and data) of the recorded env's physics.
        task: a deep copy of the recorded env's task (its ``get_reward`` scores states without a
            vectorized reward).
        data: scratch ``MjData`` for ``mujoco.rollout``.
        n_sub_steps: MuJoCo steps per control step in the plan (the env's, divided by ``coarse``).
    """

    physics: Any
    task: Any
    data: Any
    n_sub_steps: int


@dataclass
class MPPIState:
    """Per-env plans and generators (explicit rollout state).

    Attributes:
        plans: per env, (knots, nu) current plan (None after an episode start).
        rngs: per env, the sampling generator (restarted from the episode seed by `reseed`).
        workspaces: per env, the planning copies of the current episode (None until its first step).
    """

    plans: list[np.ndarray | None]
    rngs: list[np.random.Generator]
    workspaces: list[Workspace | None] = field(default_factory=list)


def _episode_rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(None if seed is None else [int(seed), 0x5EA4C4])


class MPPIPolicy(Policy):
    """Sampling-based MPC on DMC tasks (see module docstring).

    Args:
        task_id: a ``dmc-*`` registry id.
        envs: the wrapped envs (one per batch row); their dm_control physics is read, never written.
        cfg: planning budget and update rule.

    Example:
        >>> import envs
        >>> env = envs.make("dmc-cartpole-balance")
        >>> pi = MPPIPolicy("dmc-cartpole-balance", [env], MPPIConfig(samples=8, horizon=10))
        >>> obs, _ = env.reset(seed=0)
        >>> state = pi.initial_state(1, seed=0)
        >>> action, state = pi.act({k: v[None] for k, v in obs.items()}, state, np.ones(1, bool))
        >>> action.shape
        (1, 1)
    """

    def __init__(self, task_id: str, envs: Sequence[Any], cfg: MPPIConfig | None = None):
        import mujoco
        from mujoco import rollout

        global FULLPHYSICS
        FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.cfg = cfg or MPPIConfig()
        self.cfg.validate()
        self.task_id = task_id
        self.envs = list(envs)
        for e in self.envs:
            if not hasattr(e.unwrapped, "dmc_env"):
                raise ValueError(f"{task_id}: the DMC search expert needs envs built by envs.make('dmc-...'); got "
                                 f"{type(e.unwrapped).__name__} without .dmc_env")
        dmc = self.envs[0].unwrapped.dmc_env
        self.source = self._source(task_id)
        shaping = PLANNING_SCORES.get(self.source) if self.cfg.shaped else None
        self.vector_reward = shaping or VECTOR_REWARDS.get(self.source)
        self.nu = dmc.action_spec().shape[0]
        self.n_sub_steps = int(dmc._n_sub_steps)
        c = self.cfg
        self.name = (f"search-mppi:{task_id}:{c.method},s{c.samples},h{c.horizon},k{c.knots},i{c.iterations},"
                     f"n{c.noise},t{c.temperature}" + (f",c{c.coarse}" if c.coarse > 1 else "")
                     + (f",r{c.reward_stride}" if c.reward_stride > 1 else "") + (",shaped" if shaping else ""))
        self._W = interpolation_matrix(np.arange(c.horizon), c.horizon, c.knots)  # (H, K)
        knot_t = np.linspace(0, c.horizon - 1, c.knots) if c.knots > 1 else np.zeros(1)
        # warm start: the plan one control step later, on the same knots (the last knot holds)
        self._W_shift = interpolation_matrix(knot_t + 1.0, c.horizon, c.knots)  # (K, K)
        self._roll = rollout.Rollout(nthread=0)

    @staticmethod
    def _source(task_id: str) -> str:
        try:
            import envs

            return envs.task_spec(task_id).source
        except (ImportError, KeyError, AttributeError):
            raise ValueError(f"{task_id!r} is not a registered DMC task") from None

    def initial_state(self, num_envs: int, seed: int | None = None) -> MPPIState:
        rngs = [_episode_rng(None if seed is None else int(seed) + i) for i in range(num_envs)]
        return MPPIState([None] * num_envs, rngs, [None] * num_envs)

    def reseed(self, state: MPPIState, env_indices, seeds) -> MPPIState:
        for i, s in zip(env_indices, seeds):
            state.rngs[int(i)] = _episode_rng(s)
        return state

    def _workspace(self, i: int) -> Workspace:
        import mujoco

        dmc = self.envs[i].unwrapped.dmc_env
        physics = dmc.physics.copy(share_model=False)
        n_sub = self.n_sub_steps
        if self.cfg.coarse > 1:
            c = min(self.cfg.coarse, n_sub) if n_sub > 1 else self.cfg.coarse
            physics.model.opt.timestep *= c
            n_sub = max(1, n_sub // c)
        return Workspace(physics, copy.deepcopy(dmc.task), mujoco.MjData(physics.model.ptr), n_sub)

    def act(self, obs, state: MPPIState, episode_start, *, deterministic=True):
        n = len(episode_start)
        if n > len(self.envs):
            raise ValueError(f"batch of {n} observations but only {len(self.envs)} envs given to {self.name}")
        actions = np.zeros((n, self.nu), dtype=np.float32)
        for i in range(n):
            if episode_start[i] or state.workspaces[i] is None:
                state.workspaces[i] = self._workspace(i)
                state.plans[i] = np.zeros((self.cfg.knots, self.nu))
            plan = self.plan(i, state.plans[i], state.rngs[i], state.workspaces[i])
            actions[i] = plan[0]
            state.plans[i] = self._W_shift @ plan  # warm start for the next control step
        return actions, state

    def start_state(self, i: int) -> np.ndarray:
        """(nstate,) full physics state of recorded env ``i`` (a copy; the env is only read)."""
        import mujoco

        physics = self.envs[i].unwrapped.dmc_env.physics
        m = physics.model.ptr
        s = np.empty(mujoco.mj_stateSize(m, FULLPHYSICS))
        mujoco.mj_getState(m, physics.data.ptr, s, FULLPHYSICS)
        return s

    def plan(self, i: int, plan: np.ndarray, rng: np.random.Generator, ws: Workspace) -> np.ndarray:
        """Improve ``plan`` (K, nu) from env ``i``'s current state; returns the new plan."""
        c = self.cfg
        s0 = self.start_state(i)
        for it in range(c.iterations):
            eps = rng.standard_normal((c.samples, c.knots, self.nu)) * c.noise
            eps[0] = 0.0  # the current plan itself
            knots = np.clip(plan[None] + eps, -1.0, 1.0)  # (S, K, nu)
            returns = self.score(s0, knots, ws)  # (S,)
            if c.method == "ps":
                plan = knots[int(np.argmax(returns))]
            elif c.method == "cem":
                plan = knots[np.argsort(returns)[-c.elites:]].mean(axis=0)
            else:
                z = (returns - returns.max()) / (c.temperature * max(float(returns.std()), 1e-8))
                w = np.exp(z)
                plan = np.einsum("s,skn->kn", w / w.sum(), knots)
        return plan

    def score(self, s0: np.ndarray, knots: np.ndarray, ws: Workspace) -> np.ndarray:
        """(S,) sum of task rewards over the horizon of each knot sequence (S, K, nu) from state ``s0``."""
        c = self.cfg
        S, H, nsub = knots.shape[0], c.horizon, ws.n_sub_steps
        ctrl = np.einsum("hk,skn->shn", self._W, knots)  # (S, H, nu)
        # One extra MuJoCo step so that sensordata (computed before each step) exists for the last state.
        phys_ctrl = np.concatenate([np.repeat(ctrl, nsub, axis=1), ctrl[:, -1:]], axis=1)  # (S, H*nsub+1, nu)
        m = ws.physics.model.ptr
        states, sensordata = self._roll.rollout(m, ws.data, np.tile(s0, (S, 1)), phys_ctrl)
        scored = np.arange(c.reward_stride - 1, H, c.reward_stride)  # control steps that are scored
        after = (scored + 1) * nsub  # physics step index right after control step k
        st = states[:, after - 1].reshape(S * len(scored), -1)  # state after control step k
        nq, nv = m.nq, m.nv
        qpos, qvel = st[:, 1:1 + nq], st[:, 1 + nq:1 + nq + nv]
        u = ctrl[:, scored].reshape(S * len(scored), -1)
        if self.vector_reward is not None:
            sens = sensordata[:, after].reshape(S * len(scored), -1)
            r = self.vector_reward(ws.physics, StateBatch(ws.physics, qpos, qvel, u, sens))
        else:
            r = self._reward_by_suite(ws, st, u)
        return np.asarray(r, np.float64).reshape(S, len(scored)).sum(axis=1) * c.reward_stride

    def _reward_by_suite(self, ws: Workspace, states: np.ndarray, ctrl: np.ndarray) -> np.ndarray:
        import mujoco

        p = ws.physics
        m, d = p.model.ptr, p.data.ptr
        out = np.empty(len(states))
        for j in range(len(states)):
            mujoco.mj_setState(m, d, states[j], FULLPHYSICS)
            d.ctrl[:] = ctrl[j]
            mujoco.mj_forward(m, d)
            out[j] = ws.task.get_reward(p)
        return out
