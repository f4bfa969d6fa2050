"""Scripted experts that ship with the environments: the BabyAI bot and Meta-World's policies.

Both are *privileged*: the BabyAI bot plans on the minigrid env's full grid (``env.unwrapped``),
the Meta-World policies read the 39-dim state vector (our ``continuous`` observation). They are
the expert references and data generators for those two domains (measured success rates in
docs/results.md "Scripted experts: BabyAI and Meta-World").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from policies.base import Policy

# BabyAI actions (minigrid `Actions`): left, right, forward, pickup, drop, toggle, done.
BABYAI_DONE = 6
# A bot plan uses at most 8 breadth-first searches per step on the levels we profiled; on some seeds
# (e.g. GoToImpUnlock seed 6, step 146) minigrid 3.2's bot pushes subgoals forever inside one
# `replan`. Past this many searches in one step the bot has given up: the episode counts as failed.
MAX_SEARCHES_PER_STEP = 64


class BotStuckError(RuntimeError):
    """The BabyAI bot's `replan` looped (more than `MAX_SEARCHES_PER_STEP` searches in one step)."""


class _SearchBudget:
    """Wraps one bot's breadth-first search with a per-step budget (deterministic, unlike a timeout)."""

    def __init__(self, bot: Any):
        self.search = bot._breadth_first_search
        self.calls = 0
        bot._breadth_first_search = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls > MAX_SEARCHES_PER_STEP:
            raise BotStuckError(f"BabyAI bot made more than {MAX_SEARCHES_PER_STEP} searches in one step")
        return self.search(*args, **kwargs)


@dataclass
class BotState:
    """Per-env BabyAI bots.

    Attributes:
        bots: one `BabyAIBot` per env (None before the env's first step).
        budgets: per env, the bot's search budget (`_SearchBudget`).
        last_actions: the action each env took last (fed to ``bot.replan``).
        failed: per env, true once the bot raised (e.g. it opened a box on KeyInBox); the env then
            gets ``done`` until its episode ends, so the failure shows in the success rate.
        num_failures: bot exceptions over all episodes so far.
        planned_at: per env, the env's ``step_count`` when the bot last planned: an env that was not
            stepped since (an idle env at the end of a batched rollout) gets its last action again
            instead of a new (expensive) plan.
    """

    bots: list[Any]
    budgets: list[Any]
    last_actions: list[int | None]
    failed: list[bool]
    num_failures: int = 0
    planned_at: list[int] = field(default_factory=list)


class BabyAIBotPolicy(Policy):
    """`minigrid.utils.baby_ai_bot.BabyAIBot` behind the batched policy interface.

    A new bot is created for env ``j`` whenever ``episode_start[j]`` (the bot must see a fresh
    env); then ``bot.replan(last_action)`` gives each action (minigrid 3.2 API: ``replan(None)`` on
    the first step, then the action actually taken).

    Args:
        envs: the N wrapped envs, in the order of the observation batch; ``env.unwrapped`` must be
            the minigrid BabyAI env.
    """

    name = "expert"

    def __init__(self, envs: Sequence[gym.Env]):
        if not envs:
            raise ValueError(
                "The BabyAI bot plans on the env's own grid: pass envs=[...] (the wrapped envs being "
                "stepped, from envs.make) to make_policy('expert', task_id, envs=...)."
            )
        self.envs = list(envs)

    def initial_state(self, num_envs: int, seed: int | None = None) -> BotState:
        if num_envs != len(self.envs):
            raise ValueError(f"BabyAIBotPolicy was built for {len(self.envs)} envs, asked for {num_envs}.")
        return BotState([None] * num_envs, [None] * num_envs, [None] * num_envs, [False] * num_envs,
                        planned_at=[-1] * num_envs)

    def act(
        self, obs: dict[str, Any], state: BotState, episode_start: np.ndarray, *, deterministic: bool = True
    ) -> tuple[np.ndarray, BotState]:
        from minigrid.utils.baby_ai_bot import BabyAIBot

        actions = np.empty(len(self.envs), dtype=np.int64)  # (N,)
        for j, env in enumerate(self.envs):
            step_count = env.unwrapped.step_count
            if episode_start[j] or state.bots[j] is None:
                state.bots[j] = BabyAIBot(env.unwrapped)
                state.budgets[j] = _SearchBudget(state.bots[j])
                state.last_actions[j] = None
                state.failed[j] = False
            elif step_count == state.planned_at[j]:  # not stepped since the last plan: nothing new to plan
                actions[j] = state.last_actions[j]
                continue
            state.planned_at[j] = step_count
            if state.failed[j]:
                action = BABYAI_DONE
            else:
                state.budgets[j].calls = 0
                try:
                    action = int(state.bots[j].replan(state.last_actions[j]))
                except Exception:  # noqa: BLE001 - the bot gives up (DisappearedBoxError, BotStuckError, failed plans)
                    state.failed[j] = True
                    state.num_failures += 1
                    action = BABYAI_DONE
            state.last_actions[j] = action
            actions[j] = action
        return actions, state


@dataclass
class _NoState:
    num_envs: int = 0
    extra: dict = field(default_factory=dict)


def metaworld_task_name(task_id: str) -> str:
    """``"metaworld-pick-place"`` -> Meta-World's ``"pick-place-v3"``."""
    if not task_id.startswith("metaworld-"):
        raise ValueError(f"{task_id!r} is not a Meta-World task id (expected 'metaworld-<task>').")
    return task_id[len("metaworld-"):] + "-v3"


class MetaWorldScriptedPolicy(Policy):
    """Meta-World's hand-written ``Sawyer<Task>V3Policy`` (``metaworld.policies.ENV_POLICY_MAP``).

    Stateless: each action is a function of the 39-dim observation (``obs["continuous"]``).
    Actions are clipped to [-1, 1], the env's (and our wrapper's) action box; Meta-World clips them
    the same way internally.

    Args:
        task_id: e.g. ``"metaworld-reach"``.
    """

    name = "expert"

    def __init__(self, task_id: str):
        from metaworld.policies import ENV_POLICY_MAP

        key = metaworld_task_name(task_id)
        if key not in ENV_POLICY_MAP:
            import difflib

            close = difflib.get_close_matches(key, ENV_POLICY_MAP, n=3)
            raise KeyError(f"No Meta-World scripted policy for {task_id!r} ({key!r}); closest: {close}.")
        self.task_id = task_id
        self.scripted = ENV_POLICY_MAP[key]()

    def initial_state(self, num_envs: int, seed: int | None = None) -> _NoState:
        return _NoState(num_envs)

    def act(
        self, obs: dict[str, Any], state: _NoState, episode_start: np.ndarray, *, deterministic: bool = True
    ) -> tuple[np.ndarray, _NoState]:
        x = np.asarray(obs["continuous"], dtype=np.float64)  # (N, 39)
        actions = np.stack([self.scripted.get_action(o) for o in x]).astype(np.float32)  # (N, 4)
        return np.clip(actions, -1.0, 1.0), state
