"""The one task registry: ``task_id -> TaskSpec`` with tags, in the style of dm_control's ``@SUITE.add``.

Every domain module (`envs/atari.py`, `envs/dmc.py`, ...) registers its tasks here at import time
from static tables, so listing ids never imports an environment library. The library is imported
only when `make` builds an env; a missing library raises `MissingDependencyError` naming the pip
package to install.

Example:
    >>> import envs
    >>> envs.task_spec("babyai-goto-red-ball").domain
    'babyai'
    >>> "atari-pong" in envs.task_ids("atari")
    True
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym

DOMAINS = ("atari", "dmc", "babyai", "metaworld", "procgen")


class UnknownTaskError(KeyError):
    """A task id that is not in the registry (the message lists the closest ids)."""

    def __str__(self) -> str:  # KeyError would repr() the message and print it quoted
        return str(self.args[0])


class MissingDependencyError(ImportError):
    """The environment library of a domain is not installed (the message names the pip package)."""


@dataclass(frozen=True)
class TaskSpec:
    """Static description of one registered task; building it needs no environment library.

    Attributes:
        task_id: registry id, lowercase ``domain-task``, e.g. ``"dmc-cheetah-run"``.
        domain: one of `DOMAINS`; ``dmc-pixels-*`` tasks have domain ``"dmc"``.
        tags: free tags used to select suites, e.g. ``("dmc", "pixels", "benchmarking")``.
        max_episode_steps: the time limit (agent steps) after which the wrapper truncates; for
            BabyAI levels whose limit depends on the mission it is the largest possible limit
            (the per-episode limit is ``env.unwrapped.max_steps``).
        source: the id of the task in its own library, e.g. ``"ALE/Pong-v5"``, ``"cheetah/run"``.
        package: the pip package that provides the library (named in missing-library errors).
        observation_keys: the keys of the Dict observation (see `envs.convention`).
        action_type: ``"discrete"`` (``Discrete(n)``) or ``"continuous"`` (``Box(-1, 1)``).
        factory: ``"module:function"`` that builds the wrapped env: ``function(spec, **options)``.
        options: the options `make` accepts for this task (name -> one-line description).
    """

    task_id: str
    domain: str
    tags: tuple[str, ...]
    max_episode_steps: int
    source: str
    package: str
    observation_keys: tuple[str, ...]
    action_type: str
    factory: str
    options: tuple[tuple[str, str], ...] = field(default=())

    def has_tag(self, tag: str) -> bool:
        return tag in self.tags


_REGISTRY: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add ``spec`` to the registry (called by the domain modules at import time)."""
    if spec.domain not in DOMAINS:
        raise ValueError(f"task {spec.task_id!r}: unknown domain {spec.domain!r}; expected one of {DOMAINS}")
    if spec.task_id in _REGISTRY:
        raise ValueError(f"task id {spec.task_id!r} registered twice")
    if spec.task_id != spec.task_id.lower() or not spec.task_id.startswith(spec.domain + "-"):
        raise ValueError(f"task id {spec.task_id!r} must be lowercase and start with {spec.domain + '-'!r}")
    _REGISTRY[spec.task_id] = spec
    return spec


def _load_domains() -> None:
    # Importing a domain module only fills the registry from its static table (no env library).
    for domain in DOMAINS:
        importlib.import_module(f"envs.{domain}")


def task_ids(domain: str | None = None, tag: str | None = None) -> list[str]:
    """Registered task ids, in registration order, optionally of one domain and/or with one tag.

    Args:
        domain: one of `DOMAINS`, or None for all.
        tag: keep only tasks with this tag (e.g. ``"pixels"``), or None.

    Raises:
        ValueError: ``domain`` is not one of `DOMAINS`.
    """
    _load_domains()
    if domain is not None and domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    return [
        t for t, s in _REGISTRY.items()
        if (domain is None or s.domain == domain) and (tag is None or tag in s.tags)
    ]


def domain_of(task_id: str) -> str:
    """The domain of a task id: the part before the first ``-``.

    The one home of this rule: `register` requires every id to start with ``domain-``, so this
    agrees with ``task_spec(task_id).domain`` for registered tasks without loading the registry,
    and still answers for ids that are not registered (test fakes, dataset names).

    Example:
        >>> domain_of("dmc-pixels-cartpole-swingup"), domain_of("babyai-goto-red-ball")
        ('dmc', 'babyai')
    """
    return str(task_id).split("-", 1)[0]


def task_spec(task_id: str) -> TaskSpec:
    """The `TaskSpec` of ``task_id``.

    Raises:
        UnknownTaskError: the id is not registered; the message lists the closest ids.
    """
    _load_domains()
    spec = _REGISTRY.get(task_id)
    if spec is None:
        close = difflib.get_close_matches(str(task_id).lower(), list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Closest ids: {', '.join(close)}." if close else ""
        raise UnknownTaskError(
            f"unknown task id {task_id!r}.{hint} `gato tasks` (or envs.task_ids()) lists all "
            f"{len(_REGISTRY)} ids; ids are lowercase 'domain-task', e.g. 'atari-pong', 'dmc-cheetah-run'."
        )
    return spec


def make(task_id: str, **options: Any) -> gym.Env:
    """Build the env of ``task_id``, wrapped to the observation convention (`envs.convention`).

    The only constructor of task envs. The returned env has a Dict observation space with the keys
    of ``task_spec(task_id).observation_keys``, a ``Discrete(n)`` or ``Box(-1, 1)`` action space,
    truncates at ``max_episode_steps`` and keeps the library env as ``env.unwrapped``.

    Args:
        task_id: a registered id, e.g. ``"babyai-goto-red-ball"``.
        **options: per-domain options (``task_spec(task_id).options`` lists them; docs/envs.md too).
            Every task accepts ``max_episode_steps`` (int, overrides the time limit) and
            ``render_mode`` (None or ``"rgb_array"``).

    Raises:
        UnknownTaskError: unknown id (lists the closest ids).
        MissingDependencyError: the domain's library is not installed (names the pip package).
        TypeError: an option the task does not accept (lists the accepted ones).

    Example:
        >>> import envs
        >>> env = envs.make("babyai-goto-red-ball")
        >>> obs, info = env.reset(seed=0)
        >>> sorted(obs), obs["discrete"].shape
        (['discrete', 'text'], (148,))
    """
    spec = task_spec(task_id)
    accepted = {name for name, _ in spec.options}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TypeError(
            f"make({task_id!r}): unknown option(s) {unknown}; this task accepts: "
            + ", ".join(f"{n} ({d})" for n, d in spec.options)
        )
    module_name, func_name = spec.factory.split(":")
    factory: Callable[..., gym.Env] = getattr(importlib.import_module(module_name), func_name)
    return factory(spec, **options)


def import_library(module: str, package: str, task_id: str) -> Any:
    """Import an env library lazily; if missing, raise an error naming the pip package."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(
            f"task {task_id!r} needs the Python module {module!r}, which failed to import ({e}). "
            f"Install it with: pip install {package}"
        ) from e
