"""One task registry over five domains, on one observation convention (`envs.convention`).

Public API: `make`, `task_ids`, `task_spec`, `domain_of`, `TaskSpec`, `DOMAINS`. See docs/envs.md.

Example:
    >>> import envs
    >>> env = envs.make("metaworld-reach")
    >>> obs, info = env.reset(seed=0)
    >>> obs["continuous"].shape, env.action_space
    ((39,), Box(-1.0, 1.0, (4,), float32))
"""

from envs.registry import (
    DOMAINS,
    MissingDependencyError,
    TaskSpec,
    UnknownTaskError,
    domain_of,
    make,
    task_ids,
    task_spec,
)

from envs.ecosystem import quiet_legacy_gym, register_gymnasium

__all__ = ["DOMAINS", "MissingDependencyError", "TaskSpec", "UnknownTaskError", "domain_of", "make", "task_ids",
           "task_spec"]

register_gymnasium()  # every task as gymnasium.make("gato/<task-id>") (envs/ecosystem.py)
quiet_legacy_gym()  # SB3's import of the legacy gym package would print its banner
