"""Policies behind one interface (`policies.base.Policy`) and the one constructor, `make_policy`.

| name             | what                                                                       |
| ---------------- | -------------------------------------------------------------------------- |
| ``"random"``     | uniform actions, seeded per episode (`policies.random`)                    |
| ``"expert"``     | the task's expert: BabyAI bot, Meta-World scripted (`policies.scripted`),  |
|                  | Atari RAM-scripted (`policies.atari_ram`), SB3 zoo (`policies.sb3`), or a  |
|                  | measured search expert: the best measured one (`expert_choice`)            |
| ``path/to/x.zip``| a stable-baselines3 checkpoint (`policies.sb3`)                            |
| ``"search"``,    | planning in copies of the simulator state: DMC MPPI, Atari / Procgen       |
| ``"search:k=v"`` | lookahead (`policies.search`; budget options in the name)                  |
| registered names | builders that upper layers add with `register_policy`: ``"gato"`` and a     |
|                  | run directory come from `gato.policy` once it is imported (the ``gato`` CLI |
|                  | and `eval` import it); ``checkpoint=RUN``, ``prompt_dataset=`` optional    |

`policies` sits below `datasets_gen` and `gato` and imports neither: a policy defined above
(the Gato model) fills the registry instead of being imported from here.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from envs.registry import domain_of
from policies.base import Policy, PolicyState

__all__ = ["Policy", "PolicyState", "NoExpertError", "make_policy", "POLICY_NAMES", "ExpertChoice", "expert_choice",
           "has_expert",
           "register_policy", "registered_policy_modules", "import_policy_modules"]

POLICY_NAMES = ("random", "expert", "search")


@dataclass(frozen=True)
class _Builder:
    name: str
    build: Callable[..., Policy]  # build(name, task_id, envs, **kw) -> Policy
    matches: Callable[[str], bool] | None
    module: str


_REGISTRY: dict[str, _Builder] = {}


def register_policy(name: str, build: Callable[..., Policy], *,
                    matches: Callable[[str], bool] | None = None) -> None:
    """Let `make_policy` build a policy defined in an upper layer.

    Args:
        name: the policy name (``"gato"``).
        build: ``build(name, task_id, envs, **kw) -> Policy``; ``name`` is the name as given.
        matches: other names it builds too (``os.path.isdir`` for run directories).

    Example:
        >>> from policies.random import RandomPolicy
        >>> import gymnasium as gym
        >>> register_policy("doc-random", lambda name, task_id, envs, **kw: RandomPolicy(gym.spaces.Discrete(2)))
        >>> make_policy("doc-random", "babyai-goto-red-ball").name
        'random'
    """
    _REGISTRY[name] = _Builder(name, build, matches, getattr(build, "__module__", "") or "")


def _registered(name: str) -> _Builder | None:
    if name in _REGISTRY:
        return _REGISTRY[name]
    for b in _REGISTRY.values():
        if b.matches is not None and b.matches(name):
            return b
    return None


def registered_policy_modules() -> list[str]:
    """The modules that filled the registry, to import again in a worker process."""
    return sorted({b.module for b in _REGISTRY.values() if b.module and b.module != "__main__"})


def import_policy_modules(modules: Sequence[str]) -> None:
    """Import ``modules`` (from `registered_policy_modules` of a parent process) to refill the registry."""
    for m in modules:
        importlib.import_module(m)


class NoExpertError(LookupError):
    """No expert policy exists (yet) for a task."""


def _no_expert(task_id: str, why: str) -> NoExpertError:
    from policies.search import DOMAINS as SEARCH_DOMAINS

    search = (f" Or plan with the search expert, which needs no training: `--policy search` "
              "(docs/experts.md).") if domain_of(task_id) in SEARCH_DOMAINS else ""
    return NoExpertError(
        f"No expert exists for task {task_id!r}: {why}. Train one with "
        f"`gato train-expert --task {task_id}` (stable-baselines3; see docs/datasets.md), then pass "
        "its checkpoint as the policy (`--policy path/to/model.zip`) or install it where "
        f"policies.sb3.zoo_expert finds it.{search}"
    )


REFERENCES_JSON = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "eval", "references.json")
"""The measured returns of the experts, read as data (`eval.references` reads the same file; policies
sits below eval, so it does not import it)."""


@dataclass(frozen=True)
class ExpertChoice:
    """Where ``make_policy("expert", task_id)`` gets a task's expert.

    Attributes:
        source: ``"scripted"`` (BabyAI bot, Meta-World), ``"ram"`` (an Atari RAM script),
            ``"zoo"`` (an SB3 checkpoint of the zoo) or ``"search"`` (a measured search expert).
        policy: the policy name it is built from (``"search:..."`` with the measured budget).
        measured_return: its measured mean return in eval/references.json, where measured.
    """

    source: str
    policy: str
    measured_return: float | None = None


def _measured_returns(task_id: str) -> dict[str, dict[str, Any]]:
    import json

    with open(REFERENCES_JSON) as f:
        entry = json.load(f)["tasks"].get(task_id, {})
    # the measured experts, and the random return they must beat
    out = {k: entry[k] for k in ("ram_expert", "sb3_expert", "search_expert", "random") if k in entry}
    if str(entry.get("expert", {}).get("kind", "")).startswith("sb3"):  # a trained expert as the anchor
        out.setdefault("sb3_expert", entry["expert"])
    return out


def expert_choice(task_id: str) -> ExpertChoice | None:
    """The expert ``make_policy("expert", task_id)`` builds, without building it; None if there is none.

    BabyAI and Meta-World have the scripted experts that ship with them. Elsewhere the candidates are
    an Atari RAM script (`policies.atari_ram`), a checkpoint of the SB3 zoo (`policies.sb3`) and a
    search expert measured by `eval.measure_search` (its entry in eval/references.json names the
    budget); the one with the highest measured return is the expert (`gato experts` lists them). A
    measured candidate counts only where it beats the task's random return: a planner that plays at
    the random level (procgen-coinrun's search scored 5.0 against R_min 5; crazy-climber's scored
    below random) would fill datasets with random play.
    """
    from policies.atari_ram import scripted_games
    from policies.sb3 import zoo_tasks

    if domain_of(task_id) in ("babyai", "metaworld"):
        return ExpertChoice("scripted", "expert")
    measured = _measured_returns(task_id)
    candidates = []
    if task_id in scripted_games():
        candidates.append(ExpertChoice("ram", "expert", measured.get("ram_expert", {}).get("return")))
    if task_id in zoo_tasks():
        candidates.append(ExpertChoice("zoo", "expert", measured.get("sb3_expert", {}).get("return")))
    if "search_expert" in measured:
        e = measured["search_expert"]
        candidates.append(ExpertChoice("search", str(e["policy"]), float(e["return"])))
    random_return = measured.get("random", {}).get("return")
    if random_return is not None:
        candidates = [c for c in candidates if c.measured_return is None or c.measured_return > random_return]
    if not candidates:
        return None
    return max(candidates, key=lambda c: float("-inf") if c.measured_return is None else c.measured_return)


def has_expert(task_id: str) -> bool:
    """Whether ``make_policy("expert", task_id)`` finds an expert (`expert_choice`)."""
    return expert_choice(task_id) is not None


def _action_space(task_id: str, envs: Sequence[Any] | None, action_space: Any):
    if action_space is not None:
        return action_space
    if envs:
        return envs[0].action_space
    import envs as envs_mod

    env = envs_mod.make(task_id)
    try:
        return env.action_space
    finally:
        env.close()


def make_policy(name: str, task_id: str, envs: Sequence[Any] | None = None, **kw: Any) -> Policy:
    """Build a policy for ``task_id``.

    Args:
        name: ``"random"``, ``"expert"``, a name added with `register_policy` (``"gato"`` or a run
            directory, once `gato.policy` is imported) or a path to a stable-baselines3 ``.zip`` checkpoint.
        task_id: registry id, e.g. ``"babyai-goto-red-ball"``.
        envs: the wrapped envs the policy will act in, in batch order. Privileged experts (the
            BabyAI bot, Atari RAM experts) read their state and require them.
        **kw: ``action_space=`` for ``"random"`` without envs; ``allow_pickle=True`` lets an SB3 file
            that is neither pinned in the zoo nor written by gato here load (it runs code, see
            `policies.trust`); anything else goes to the policy's builder.

    Returns:
        A `Policy`.

    Raises:
        NoExpertError: ``"expert"`` on a task without one (message says how to train one).
        ValueError: an unknown policy name.

    Example:
        >>> import gymnasium as gym
        >>> make_policy("random", "babyai-goto-red-ball", action_space=gym.spaces.Discrete(7)).name
        'random'
    """
    allow_pickle = bool(kw.pop("allow_pickle", False))  # read by the SB3 loader only
    if name == "random":
        from policies.random import RandomPolicy

        return RandomPolicy(_action_space(task_id, envs, kw.pop("action_space", None)))
    if name == "expert":
        return _make_expert(task_id, envs)
    if name == "search" or name.startswith("search:"):
        from policies.search import make_search_policy

        return make_search_policy(name, task_id, envs, **kw)
    builder = _registered(name)
    if builder is not None:
        return builder.build(name, task_id, envs, **kw)
    if name == "gato" or os.path.isdir(name):
        raise ValueError(
            f"Policy {name!r} is a Gato model, whose builder is not registered in this process: import "
            "gato.policy first (the gato command line and eval do).")
    if name.endswith(".zip") or os.path.isfile(name):
        if not os.path.isfile(name):
            raise FileNotFoundError(f"Policy checkpoint {name!r} does not exist.")
        try:
            from policies import sb3
        except ImportError as e:
            raise ImportError(f"Loading SB3 checkpoint {name!r} needs policies/sb3.py ({e}).") from e
        if not hasattr(sb3, "load_policy"):
            raise ImportError("policies.sb3 has no load_policy(path, task_id) to load an SB3 checkpoint yet.")
        return sb3.load_policy(name, task_id, allow_pickle=allow_pickle, **kw)
    raise ValueError(
        f"Unknown policy {name!r} for task {task_id!r}: use one of {POLICY_NAMES} or a path to an "
        "existing stable-baselines3 .zip checkpoint."
    )


def _make_expert(task_id: str, envs: Sequence[Any] | None) -> Policy:
    choice = expert_choice(task_id)
    if choice is None:
        raise _no_expert(task_id, "no scripted expert, no trained SB3 checkpoint and no measured search expert")
    if choice.source == "scripted" and domain_of(task_id) == "babyai":
        from policies.scripted import BabyAIBotPolicy

        return BabyAIBotPolicy(envs or [])
    if choice.source == "scripted":
        from policies.scripted import MetaWorldScriptedPolicy

        return MetaWorldScriptedPolicy(task_id)
    if choice.source == "ram":
        from policies.atari_ram import ram_expert

        expert = ram_expert(task_id, envs)
        if expert is None:
            raise _no_expert(task_id, "its RAM-scripted expert reads the env's emulator: pass the wrapped envs")
        return expert
    if choice.source == "search":
        from policies.search import make_search_policy

        return make_search_policy(choice.policy, task_id, envs)
    from policies.sb3 import zoo_expert

    expert = zoo_expert(task_id)
    if expert is None:
        raise _no_expert(task_id, "its SB3 zoo checkpoint is missing")
    return expert
    try:
        from policies.sb3 import zoo_expert
    except ImportError as e:
        raise _no_expert(task_id, f"policies.sb3 is not available ({e})") from e
    expert = zoo_expert(task_id)
    if expert is None:
        raise _no_expert(task_id, "no scripted expert and no trained SB3 checkpoint for it")
    return expert
