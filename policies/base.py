"""The one policy interface: random, scripted, RL-expert and Gato policies all answer `act`.

A policy is batched over ``num_envs`` environments. Rollout state (RNGs, per-env bots, a Gato
KV cache) is explicit: it comes in and goes out of `act` and never lives on the object, in the
spirit of SB3's ``predict(obs, state, episode_start, deterministic)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

PolicyState = Any


class Policy(ABC):
    """Maps a batch of observations to a batch of actions.

    ``obs`` is the batched observation convention of `envs.convention`: a dict whose arrays have a
    leading env axis (``image`` (N, H, W, 3), ``continuous`` (N, n), ...) and whose ``text`` is a
    list of N strings. Actions come back as (N,) int64 for ``Discrete`` and (N, n) float32 in
    [-1, 1] for ``Box`` action spaces.
    """

    name: str = "policy"

    @abstractmethod
    def initial_state(self, num_envs: int, seed: int | None = None) -> PolicyState:
        """State for ``num_envs`` fresh environments."""

    def reseed(self, state: PolicyState, env_indices: "np.ndarray | list[int]", seeds: "list[int]") -> PolicyState:
        """Restart the randomness of envs ``env_indices`` from their new episodes' seeds.

        `policies.rollout` calls this when it resets env ``env_indices[k]`` with seed ``seeds[k]``, so
        a stochastic policy draws the same numbers in episode ``i`` however episodes are batched
        over envs and processes. Deterministic policies keep this default (state unchanged).
        """
        return state

    @abstractmethod
    def act(
        self,
        obs: dict[str, Any],
        state: PolicyState,
        episode_start: np.ndarray,
        *,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, PolicyState]:
        """One action per env.

        Args:
            obs: batched observations.
            state: what `initial_state` or the previous `act` returned.
            episode_start: (N,) bool, true where the env was just reset (per-env state restarts).
            deterministic: greedy actions where the policy is stochastic.

        Returns:
            (actions, new_state).
        """
