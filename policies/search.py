"""Search experts: policies that decide each action by planning in copies of the simulator state.

One policy kind per domain, all behind `policies.base.Policy` and built by name with
``make_policy("search", task_id, envs)`` (``gato generate --policy search``):

| domain  | planner                                                          | module                     |
| ------- | ---------------------------------------------------------------- | -------------------------- |
| DMC     | MPPI / predictive sampling over spline action knots, batched     | `policies.search_dmc`      |
|         | rollouts in C (``mujoco.rollout``), scored with the task reward  |                            |
| Atari   | per-action lookahead in a deterministic emulator copy            | `policies.search_discrete` |
|         | (``cloneState`` / ``restoreState``)                              |                            |
| Procgen | the same lookahead through procgen's ``get_state``/``set_state`` | `policies.search_discrete` |

The recorded env is only *read* (its state is copied into a planning copy); planning never steps,
resets or reseeds it. The planning budget comes as options in the policy name::

    gato generate --task dmc-cheetah-run --policy "search:samples=128,horizon=40,iterations=2"
    gato generate --task atari-pong --policy "search:depth=30,rollouts=2"

Bare ``search`` plans with the task's tuned budget (`TASK_BUDGETS`: the horizon must cover the
task's time scale) or the domain's defaults; options in the name override it. Measured returns,
costs per step and the budget curves: docs/experts.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from policies.base import Policy

PREFIX = "search"
DOMAINS = ("dmc", "atari", "procgen")
"""The domains with a search expert."""


TASK_BUDGETS: dict[str, str] = {
    # DMC: swing-ups and balancing need about a second of lookahead (100 control steps of 0.01 s).
    "dmc-cartpole-balance": "samples=32,horizon=100,knots=5",
    "dmc-cartpole-balance-sparse": "samples=32,horizon=100,knots=5",
    "dmc-cartpole-swingup": "samples=32,horizon=100,knots=5",
    "dmc-cartpole-swingup-sparse": "samples=32,horizon=100,knots=5",
    "dmc-pendulum-swingup": "samples=32,horizon=100,knots=5",
    "dmc-acrobot-swingup": "samples=32,horizon=100,knots=5",
    "dmc-acrobot-swingup-sparse": "samples=32,horizon=100,knots=5",
    "dmc-finger-turn-easy": "samples=32,horizon=50",
    "dmc-finger-turn-hard": "samples=32,horizon=50",
    "dmc-finger-spin": "samples=32,horizon=30",
    "dmc-cheetah-run": "samples=64,horizon=50,knots=6",
    "dmc-reacher-hard": "samples=32,horizon=30",
    "dmc-walker-stand": "samples=32,horizon=30",
    "dmc-walker-walk": "samples=32,horizon=30",
    "dmc-walker-run": "samples=32,horizon=30",
    # the hopper gets up from the floor: 1.2 s of lookahead
    "dmc-hopper-stand": "samples=64,horizon=60,knots=6",
    # suite rewards scored state by state (slow): fewer, shorter sequences, every other step scored
    "dmc-humanoid-stand": "samples=16,horizon=10,reward_stride=2",
    "dmc-humanoid-walk": "samples=16,horizon=10,reward_stride=2",
    "dmc-humanoid-run": "samples=16,horizon=10,reward_stride=2",
    "dmc-fish-swim": "samples=16,horizon=20,reward_stride=4",
    # Atari: a short lookahead (5 agent steps, 20 frames) re-planned every step beats a long one.
    **{f"atari-{game}": "depth=5" for game in (
        "assault", "asterix", "atlantis", "crazy-climber", "ice-hockey", "krull", "star-gunner", "tutankham",
        "video-pinball")},
    # deeper where 5 steps lose: Kung-Fu Master 10,220 at depth 5 (0.44 human-normalized), 14,020 at
    # depth 10 in 2,000 steps; Gopher 860 / 1,322 / 1,666 at depth 5 / 10 / 15; Road Runner 90 at depth 5
    "atari-kung-fu-master": "depth=10",
    "atari-gopher": "depth=15",
    "atari-road-runner": "depth=15",
}
"""Per-task planning budgets used by bare ``search`` (each measured in docs/experts.md)."""


def is_search_name(name: str) -> bool:
    """True for ``"search"`` and ``"search:k=v,..."``."""
    return name == PREFIX or name.startswith(PREFIX + ":")


def parse_options(name: str) -> dict[str, str]:
    """``"search:samples=64,horizon=30"`` -> ``{"samples": "64", "horizon": "30"}``.

    Example:
        >>> parse_options("search:samples=64,horizon=30")
        {'samples': '64', 'horizon': '30'}
    """
    if not is_search_name(name):
        raise ValueError(f"not a search policy name: {name!r} (expected 'search' or 'search:k=v,...')")
    body = name[len(PREFIX) + 1:]
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in body.split(","))):
        if "=" not in item:
            raise ValueError(f"search option {item!r} in {name!r} is not key=value, e.g. 'search:samples=64'")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def build_config(cls: type, options: dict[str, Any], task_id: str) -> Any:
    """A config dataclass ``cls`` from string/typed options, naming unknown keys and bad values."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kw: dict[str, Any] = {}
    for k, v in options.items():
        if k not in fields:
            raise ValueError(f"unknown search option {k!r} for task {task_id!r}; options of {cls.__name__}: "
                             f"{sorted(fields)}")
        default = getattr(cls(), k)
        try:
            kw[k] = type(default)(v) if not isinstance(v, type(default)) else v
        except ValueError:
            raise ValueError(f"search option {k}={v!r} for task {task_id!r} is not a {type(default).__name__}") from None
    cfg = cls(**kw)
    if hasattr(cfg, "validate"):
        cfg.validate()
    return cfg


def task_options(name: str, task_id: str) -> dict[str, str]:
    """The options ``name`` plans ``task_id`` with: the task's `TASK_BUDGETS` entry, overridden by ``name``'s.

    Example:
        >>> task_options("search:samples=64", "dmc-pendulum-swingup")
        {'samples': '64', 'horizon': '100', 'knots': '5'}
    """
    base = parse_options(f"{PREFIX}:{TASK_BUDGETS[task_id]}") if task_id in TASK_BUDGETS else {}
    return {**base, **parse_options(name)}


def resolved_name(name: str, task_id: str) -> str:
    """``name`` with every option it plans ``task_id`` with spelled out (what a measurement records).

    Example:
        >>> resolved_name("search", "dmc-pendulum-swingup")
        'search:samples=32,horizon=100,knots=5'
    """
    options = task_options(name, task_id)
    return PREFIX + (":" + ",".join(f"{k}={v}" for k, v in options.items()) if options else "")


def make_search_policy(name: str, task_id: str, envs: Sequence[Any] | None, **kw: Any) -> Policy:
    """The search expert of ``task_id``'s domain, with the budget options of ``name``.

    Args:
        name: ``"search"`` (the task's budget, `TASK_BUDGETS`, or the domain's defaults) or
            ``"search:k=v,..."`` (options over it).
        task_id: registry id.
        envs: the wrapped envs the policy acts in (required: planning copies their state).
        **kw: typed options, merged over those in the name.

    Raises:
        ValueError: no envs, a domain without a search expert, or an unknown option.
    """
    from envs import domain_of

    options: dict[str, Any] = {**task_options(name, task_id), **kw}
    if not envs:
        raise ValueError(f"the search expert plans in copies of the env's state: pass the wrapped envs "
                         f"(make_policy({name!r}, {task_id!r}, envs=[env]))")
    domain = domain_of(task_id)
    if domain == "dmc":
        from policies.search_dmc import MPPIConfig, MPPIPolicy

        return MPPIPolicy(task_id, envs, build_config(MPPIConfig, options, task_id))
    if domain in ("atari", "procgen"):
        from policies.search_discrete import LookaheadConfig, LookaheadPolicy

        return LookaheadPolicy(task_id, envs, build_config(LookaheadConfig, options, task_id))
    raise ValueError(f"no search expert for domain {domain!r} (task {task_id!r}); search experts exist for "
                     f"{', '.join(DOMAINS)}")
