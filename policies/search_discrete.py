"""Atari and Procgen search experts: lookahead over actions in a deterministic copy of the game.

At every step, for each env:

1. copy the recorded env's state: ALE ``cloneState()`` (the emulator without its RNG) or procgen's
   ``get_state`` (bytes); the recorded env is only read;
2. restore it into a *planning copy*: a second emulator of the same game built with sticky actions
   off (``repeat_action_probability=0``), so the lookahead is deterministic while the recorded env
   keeps its sticky actions; for procgen a second ``ProcgenGym3Env`` of the same game;
3. for every action ``a``, ``rollouts`` sequences start with ``a`` and continue with random actions,
   each held ``hold`` steps, up to ``depth`` steps; one more sequence continues the previous step's
   best sequence (the warm start, so sparse-reward plans are followed through);
4. a sequence's value is its discounted return, minus ``loss_penalty`` if it loses a life (Atari)
   or ends the level without completing it (procgen), where it stops; ``loss_penalty`` is large by
   default, so the search first avoids losses, then maximizes score;
5. act with the first action of the best sequence (ties: the warm-started sequence, then the lowest
   action index).

Cost: about ``(n_actions * rollouts + 1) * depth`` env steps in the copy per recorded step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from policies.base import Policy


@dataclass
class LookaheadConfig:
    """Planning budget of the Atari / Procgen search expert (options of ``--policy search:...``)."""

    depth: int = 20
    """steps each sequence looks ahead."""
    rollouts: int = 1
    """random continuations per first action."""
    hold: int = 4
    """each random action of a continuation is held this many steps."""
    discount: float = 0.99
    """per-step discount of rewards along a sequence."""
    loss_penalty: float = 1e4
    """subtracted from a sequence that loses a life / dies (then it stops)."""
    warm_start: bool = True
    """also try the continuation of the previous step's best sequence."""

    def validate(self) -> None:
        for k in ("depth", "rollouts", "hold"):
            if getattr(self, k) < 1:
                raise ValueError(f"search option {k}={getattr(self, k)} must be >= 1")
        if not 0 < self.discount <= 1:
            raise ValueError(f"search option discount={self.discount} must be in (0, 1]")


class AtariCopy:
    """A deterministic ALE emulator of the recorded env's game, restored from its cloned state."""

    def __init__(self, env: Any):
        import gymnasium as gym

        raw = env.unwrapped
        if not hasattr(raw, "ale"):
            raise ValueError(f"the Atari search expert needs envs built by envs.make('atari-...'); got {type(raw).__name__}")
        self.recorded = raw
        spec_id = raw.spec.id if raw.spec is not None else None
        game = getattr(raw, "_game", None)
        kw = dict(repeat_action_probability=0.0, frameskip=1, max_num_frames_per_episode=0,
                  full_action_space=len(raw._action_set) == 18)
        self.copy = (gym.make(spec_id, **kw) if spec_id else gym.make(f"ALE/{_camel(game)}-v5", **kw)).unwrapped
        self.ale = self.copy.ale
        self.actions = list(raw._action_set)  # Discrete index -> ALE action, the recorded env's mapping
        if list(self.copy._action_set) != self.actions:
            raise RuntimeError("the planning copy's action set differs from the recorded env's")
        self.frameskip = int(raw._frameskip)
        self.n = len(self.actions)
        self._lives = 0

    def clone(self) -> Any:
        return self.recorded.ale.cloneState()  # read-only on the recorded emulator

    def restore(self, state: Any) -> None:
        self.ale.restoreState(state)
        self._lives = self.ale.lives()

    def step(self, a: int) -> tuple[float, bool, bool]:
        """(reward, lost a life, game over) of one agent step (``frameskip`` frames) in the copy."""
        r = 0.0
        act = self.actions[a]
        for _ in range(self.frameskip):
            r += self.ale.act(act, 1.0)
        lives = self.ale.lives()
        lost = lives < self._lives
        self._lives = lives
        over = self.ale.game_over(with_truncation=False)
        return r, lost or over, over


def _camel(game: str) -> str:
    return "".join(w.capitalize() for w in game.split("_"))


class ProcgenCopy:
    """A second procgen env of the recorded env's game, set from its serialized state."""

    def __init__(self, env: Any):
        from procgen import ProcgenGym3Env

        raw = env.unwrapped
        if not hasattr(raw, "gym3_env"):
            raise ValueError(f"the Procgen search expert needs envs built by envs.make('procgen-...'); got {type(raw).__name__}")
        self.recorded = raw
        self.copy = ProcgenGym3Env(num=1, env_name=raw.game, rand_seed=0, num_threads=0, **raw._kwargs)
        self.n = int(raw.action_space.n)
        self._a = np.zeros(1, dtype=np.int32)

    def clone(self) -> bytes:
        if self.recorded.gym3_env is None:
            raise RuntimeError("reset the recorded procgen env before acting")
        return self.recorded.gym3_env.callmethod("get_state")[0]  # serializes; the env is only read

    def restore(self, state: bytes) -> None:
        self.copy.callmethod("set_state", [state])

    def step(self, a: int) -> tuple[float, bool, bool]:
        """(reward, died, level over) of one step in the copy."""
        self._a[0] = a
        self.copy.act(self._a)
        rew, _, first = self.copy.observe()
        if not first[0]:
            return float(rew[0]), False, False
        complete = bool(self.copy.get_info()[0].get("prev_level_complete", 0))
        return float(rew[0]), not complete, True


@dataclass
class LookaheadState:
    """Per-env best sequences and generators (explicit rollout state).

    Attributes:
        plans: per env, the rest of the last best sequence (empty after an episode start).
        rngs: per env, the generator of random continuations (restarted from the episode seed).
    """

    plans: list[list[int]]
    rngs: list[np.random.Generator]
    values: list[float] = field(default_factory=list)


def _episode_rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(None if seed is None else [int(seed), 0x100CA4])


class LookaheadPolicy(Policy):
    """Lookahead search on Atari or Procgen (see module docstring).

    Args:
        task_id: an ``atari-*`` or ``procgen-*`` registry id.
        envs: the wrapped envs (one per batch row); their state is read, never written.
        cfg: planning budget.

    Example:
        >>> import envs
        >>> env = envs.make("procgen-bigfish")
        >>> pi = LookaheadPolicy("procgen-bigfish", [env], LookaheadConfig(depth=4))
        >>> obs, _ = env.reset(seed=0)
        >>> action, state = pi.act({k: v[None] for k, v in obs.items()}, pi.initial_state(1, 0), np.ones(1, bool))
        >>> action.shape
        (1,)
    """

    def __init__(self, task_id: str, envs: Sequence[Any], cfg: LookaheadConfig | None = None):
        self.cfg = cfg or LookaheadConfig()
        self.cfg.validate()
        self.task_id = task_id
        self.envs = list(envs)
        make = AtariCopy if task_id.startswith("atari-") else ProcgenCopy
        self.copies = [make(e) for e in self.envs]  # planning emulators (scratch, reloaded every step)
        c = self.cfg
        self.name = (f"search-lookahead:{task_id}:d{c.depth},r{c.rollouts},h{c.hold},g{c.discount}"
                     + ("" if c.warm_start else ",cold"))

    def initial_state(self, num_envs: int, seed: int | None = None) -> LookaheadState:
        rngs = [_episode_rng(None if seed is None else int(seed) + i) for i in range(num_envs)]
        return LookaheadState([[] for _ in range(num_envs)], rngs, [0.0] * num_envs)

    def reseed(self, state: LookaheadState, env_indices, seeds) -> LookaheadState:
        for i, s in zip(env_indices, seeds):
            state.rngs[int(i)] = _episode_rng(s)
        return state

    def act(self, obs, state: LookaheadState, episode_start, *, deterministic=True):
        n = len(episode_start)
        if n > len(self.envs):
            raise ValueError(f"batch of {n} observations but only {len(self.envs)} envs given to {self.name}")
        actions = np.zeros(n, dtype=np.int64)
        for i in range(n):
            if episode_start[i]:
                state.plans[i] = []
            seq, value = self.search(i, state.plans[i], state.rngs[i])
            actions[i] = seq[0]
            state.plans[i], state.values[i] = seq[1:], value
        return actions, state

    def _continuation(self, rng: np.random.Generator, n_actions: int, length: int) -> list[int]:
        hold = self.cfg.hold
        k = -(-length // hold)
        return np.repeat(rng.integers(0, n_actions, k), hold)[:length].tolist()

    def search(self, i: int, prev: list[int], rng: np.random.Generator) -> tuple[list[int], float]:
        """The best sequence found from env ``i``'s current state, and its value."""
        c, copy = self.cfg, self.copies[i]
        root = copy.clone()
        candidates: list[list[int]] = []
        if c.warm_start and prev:
            candidates.append(prev + self._continuation(rng, copy.n, c.depth - len(prev)))
        for a in range(copy.n):
            for _ in range(c.rollouts):
                candidates.append([a] + self._continuation(rng, copy.n, c.depth - 1))
        best, best_value = candidates[0], -np.inf
        for seq in candidates:
            copy.restore(root)
            value, g = 0.0, 1.0
            for t, a in enumerate(seq):
                r, lost, over = copy.step(a)
                value += g * r
                if lost:
                    value -= g * c.loss_penalty
                if lost or over:
                    seq = seq[:t + 1]
                    break
                g *= c.discount
            if value > best_value:
                best, best_value = seq, value
        return best, best_value
