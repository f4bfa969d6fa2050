"""Cheap, honest Atari experts scripted from the emulator RAM (privileged: they read `ale.getRAM()`).

RAM addresses are the AtariARI annotations (Anand et al. 2019, "Unsupervised State Representation
Learning in Atari", `atariari/benchmark/ram_annotations.py`):

| game     | paddle          | ball x | ball y | notes                                  |
| -------- | --------------- | ------ | ------ | -------------------------------------- |
| Pong     | player_y = 51   | 49     | 54     | ball_y = 0 while no ball is in play    |
| Breakout | player_x = 72   | 99     | 101    | ball_y = 0 before FIRE launches a ball |

The controllers only move the paddle towards the ball; the offsets and look-ahead were picked by a
small sweep under our env settings (frame skip 4, sticky actions 0.25) and the resulting returns are
measured, not claimed (docs/results.md "Atari RAM experts"). Actions are looked up by meaning
(``get_action_meanings()``), so they stay right for the minimal action set.

Example:
    >>> import envs
    >>> env = envs.make("atari-pong")
    >>> expert = ram_expert("atari-pong", [env])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from policies.base import Policy, PolicyState


@dataclass(frozen=True)
class PaddleScript:
    """One game's RAM controller.

    Attributes:
        paddle: RAM address of the player's paddle coordinate along its axis of motion.
        ball_along: RAM address of the ball coordinate along the paddle's axis.
        ball_present: RAM address that is 0 while no ball is in play.
        offset: target paddle coordinate = ball coordinate + ``lookahead`` * ball velocity + ``offset``.
        lookahead: agent steps of ball motion to anticipate.
        damping: the paddle's own velocity times this is added to its position (it has momentum).
        deadzone: no move while |paddle - target| <= deadzone.
        increase: action meaning that increases the paddle coordinate.
        decrease: action meaning that decreases it.
        idle_target: where the paddle waits while no ball is in play (None: press FIRE instead).
    """

    paddle: int
    ball_along: int
    ball_present: int
    offset: float
    lookahead: float
    damping: float
    deadzone: float
    increase: str
    decrease: str
    idle_target: float | None


SCRIPTS: dict[str, PaddleScript] = {
    # Pong: RAM 51 grows downwards; RIGHT moves the paddle up, LEFT down.
    "atari-pong": PaddleScript(paddle=51, ball_along=54, ball_present=54, offset=-9.0, lookahead=2.0,
                               damping=0.75, deadzone=3.0, increase="LEFT", decrease="RIGHT", idle_target=120.0),
    # Breakout: RAM 72 grows to the right.
    "atari-breakout": PaddleScript(paddle=72, ball_along=99, ball_present=101, offset=-10.0, lookahead=0.0,
                                   damping=0.0, deadzone=2.0, increase="RIGHT", decrease="LEFT", idle_target=None),
}


class AtariRamExpert(Policy):
    """Paddle-tracking expert; needs the wrapped envs (one per batch row) to read their RAM.

    State: (N, 2) float array of the previous (paddle, ball) coordinates, NaN after a reset.
    """

    def __init__(self, task_id: str, envs: Sequence[Any]):
        if task_id not in SCRIPTS:
            raise ValueError(f"no RAM script for {task_id!r}; scripted games: {sorted(SCRIPTS)}")
        if not envs:
            raise ValueError("AtariRamExpert reads the emulator RAM: pass the wrapped envs, e.g. envs=[env]")
        self.task_id = task_id
        self.script = SCRIPTS[task_id]
        self.envs = list(envs)
        self.name = f"atari-ram:{task_id}"
        meanings = self.envs[0].unwrapped.get_action_meanings()
        try:
            self._noop = meanings.index("NOOP")
            self._inc = meanings.index(self.script.increase)
            self._dec = meanings.index(self.script.decrease)
            self._fire = meanings.index("FIRE") if "FIRE" in meanings else self._noop
        except ValueError as e:
            raise ValueError(f"{task_id}: action set {meanings} lacks a needed action ({e})") from e

    def initial_state(self, num_envs: int, seed: int | None = None) -> PolicyState:
        return np.full((num_envs, 2), np.nan)

    def act(self, obs, state, episode_start, *, deterministic=True):
        s = self.script
        n = len(episode_start)
        if n > len(self.envs):
            raise ValueError(f"batch of {n} observations but only {len(self.envs)} envs given to {self.name}")
        state = np.array(state, dtype=np.float64)  # (N, 2) previous (paddle, ball)
        state[np.asarray(episode_start, bool)] = np.nan
        actions = np.full(n, self._noop, dtype=np.int64)
        for i in range(n):
            ram = self.envs[i].unwrapped.ale.getRAM()
            paddle, ball = float(ram[s.paddle]), float(ram[s.ball_along])
            prev_paddle, prev_ball = state[i]
            present = ram[s.ball_present] != 0
            v_ball = ball - prev_ball if present and not np.isnan(prev_ball) and prev_ball != 0 else 0.0
            v_paddle = paddle - prev_paddle if not np.isnan(prev_paddle) else 0.0
            state[i] = (paddle, ball if present else np.nan)
            if not present and s.idle_target is None:
                actions[i] = self._fire
                continue
            target = ball + s.lookahead * v_ball + s.offset if present else s.idle_target
            p = paddle + s.damping * v_paddle
            if p < target - s.deadzone:
                actions[i] = self._inc
            elif p > target + s.deadzone:
                actions[i] = self._dec
        return actions, state


def ram_expert(task_id: str, envs: Sequence[Any] | None) -> Policy | None:
    """The RAM-scripted expert of ``task_id``, or None if the game has no script (or no envs given)."""
    if task_id not in SCRIPTS or not envs:
        return None
    return AtariRamExpert(task_id, envs)


def scripted_games() -> list[str]:
    """Task ids with a RAM script."""
    return sorted(SCRIPTS)
