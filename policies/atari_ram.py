"""Cheap, honest Atari experts scripted from the emulator RAM (privileged: they read `ale.getRAM()`).

RAM addresses are the AtariARI annotations (Anand et al. 2019, "Unsupervised State Representation
Learning in Atari", `atariari/benchmark/ram_annotations.py`):

| game     | controller       | RAM                                                                  |
| -------- | ---------------- | -------------------------------------------------------------------- |
| Pong     | `PaddleScript`   | player_y 51, ball x 49 / y 54 (ball_y = 0 while no ball is in play)  |
| Breakout | `PaddleScript`   | player_x 72, ball x 99 / y 101 (ball_y = 0 before FIRE launches it)  |
| Freeway  | `CrossingScript` | player_y 14, enemy_car_x 108-117 (one car per lane, bottom lane first) |
| Boxing   | `BoxingScript`   | player_x 32, player_y 34, enemy_x 33, enemy_y 35                     |

A controller turns one env's RAM (and its memory of the previous steps) into an action *meaning*;
`AtariRamExpert` looks the meanings up in the env's action set (``get_action_meanings()``), so they
stay right for the minimal action set. The geometry the controllers use (offsets, look-ahead, the
chicken's column, the punching distance) was picked by small sweeps under our env settings (frame
skip 4, sticky actions 0.25); their returns are measured, not claimed (docs/results.md "Atari RAM
experts").

Example:
    >>> import envs
    >>> env = envs.make("atari-pong")
    >>> expert = ram_expert("atari-pong", [env])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from policies.base import Policy, PolicyState


class RamScript(Protocol):
    """One game's controller."""

    actions: tuple[str, ...]
    """Every action meaning ``decide`` may return (the env's action set must hold them all)."""

    def decide(self, ram: np.ndarray, memory: dict[str, Any]) -> str:
        """The action meaning for this step; ``memory`` is empty at an episode start and is kept
        (updated in place) between the steps of one episode."""


@dataclass(frozen=True)
class PaddleScript:
    """Move a paddle towards the ball (Pong, Breakout).

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

    @property
    def actions(self) -> tuple[str, ...]:
        return ("NOOP", self.increase, self.decrease) + (("FIRE",) if self.idle_target is None else ())

    def decide(self, ram: np.ndarray, memory: dict[str, Any]) -> str:
        paddle, ball = float(ram[self.paddle]), float(ram[self.ball_along])
        prev_paddle, prev_ball = memory.get("paddle"), memory.get("ball")
        present = ram[self.ball_present] != 0
        v_ball = ball - prev_ball if present and prev_ball else 0.0  # no velocity from a missing ball
        v_paddle = paddle - prev_paddle if prev_paddle is not None else 0.0
        memory["paddle"], memory["ball"] = paddle, (ball if present else None)
        if not present and self.idle_target is None:
            return "FIRE"
        target = ball + self.lookahead * v_ball + self.offset if present else self.idle_target
        p = paddle + self.damping * v_paddle
        if p < target - self.deadzone:
            return self.increase
        if p > target + self.deadzone:
            return self.decrease
        return "NOOP"


@dataclass(frozen=True)
class CrossingScript:
    """Freeway: walk the chicken up across ten lanes, waiting while a car would hit it.

    Lane ``k`` (0 at the bottom) is centred on ``player_y == lane_y0 + k * lane_height``; each lane
    has one car whose x (``cars``) wraps around the screen at ``screen_width``. A car hits when it
    is within ``reach`` of the chicken's column ``player_x`` while the chicken is in its lane (within
    ``band`` of the centre). Each step, with the cars' velocities from the previous step: go UP if
    neither the next position nor the one after would be hit, else stay if staying is safe, else
    step DOWN.
    """

    player_y: int = 14
    cars: tuple[int, int] = (108, 118)
    player_x: float = 46.0
    lane_y0: float = 16.0
    lane_height: float = 16.0
    band: float = 8.0
    reach: float = 8.0
    step: float = 4.0
    screen_width: float = 160.0
    actions: tuple[str, ...] = ("NOOP", "UP", "DOWN")

    def _wrapped(self, d: np.ndarray | float) -> np.ndarray | float:
        half = self.screen_width / 2
        return (d + half) % self.screen_width - half

    def _hit(self, y: float, cars: np.ndarray, velocity: np.ndarray, steps: int) -> bool:
        k = round((y - self.lane_y0) / self.lane_height)
        if not 0 <= k < len(cars) or abs(y - (self.lane_y0 + k * self.lane_height)) > self.band:
            return False
        return abs(self._wrapped(cars[k] + steps * velocity[k] - self.player_x)) <= self.reach

    def decide(self, ram: np.ndarray, memory: dict[str, Any]) -> str:
        y, cars = float(ram[self.player_y]), ram[self.cars[0]:self.cars[1]].astype(np.float64)
        prev = memory.get("cars")
        velocity = np.zeros_like(cars) if prev is None else self._wrapped(cars - prev)
        memory["cars"] = cars
        if not self._hit(y + self.step, cars, velocity, 1) and not self._hit(y + 2 * self.step, cars, velocity, 2):
            return "UP"
        return "NOOP" if not self._hit(y, cars, velocity, 1) else "DOWN"


@dataclass(frozen=True)
class BoxingScript:
    """Boxing: stand ``reach`` to the side of the opponent and ``offset_y`` off its line, and punch.

    A held FIRE throws one punch, so it is pressed every ``punch_every`` steps while the player is
    within ``punch_window`` (x, y) of that spot. The opponent's own line (``offset_y`` 0) lands
    few punches: its guard is there.
    """

    player_x: int = 32
    player_y: int = 34
    enemy_x: int = 33
    enemy_y: int = 35
    reach: float = 20.0
    offset_y: float = -8.0
    tolerance: float = 2.0
    punch_every: int = 3
    punch_window: tuple[float, float] = (8.0, 6.0)
    actions: tuple[str, ...] = tuple(v + h + f for v in ("", "UP", "DOWN") for h in ("", "RIGHT", "LEFT")
                                     for f in ("", "FIRE") if v + h + f) + ("NOOP",)

    def decide(self, ram: np.ndarray, memory: dict[str, Any]) -> str:
        t = memory["t"] = memory.get("t", -1) + 1
        px, py = float(ram[self.player_x]), float(ram[self.player_y])
        ex, ey = float(ram[self.enemy_x]), float(ram[self.enemy_y])
        side = -1.0 if px < ex else 1.0
        dx, dy = ex + side * self.reach - px, ey + self.offset_y - py
        across = "RIGHT" if dx > self.tolerance else "LEFT" if dx < -self.tolerance else ""
        vertical = "DOWN" if dy > self.tolerance else "UP" if dy < -self.tolerance else ""
        punch = (t % self.punch_every == 0 and abs(abs(px - ex) - self.reach) <= self.punch_window[0]
                 and abs(dy) <= self.punch_window[1])
        return (vertical + across + ("FIRE" if punch else "")) or "NOOP"


SCRIPTS: dict[str, RamScript] = {
    # Pong: RAM 51 grows downwards; RIGHT moves the paddle up, LEFT down.
    "atari-pong": PaddleScript(paddle=51, ball_along=54, ball_present=54, offset=-9.0, lookahead=2.0,
                               damping=0.75, deadzone=3.0, increase="LEFT", decrease="RIGHT", idle_target=120.0),
    # Breakout: RAM 72 grows to the right.
    "atari-breakout": PaddleScript(paddle=72, ball_along=99, ball_present=101, offset=-10.0, lookahead=0.0,
                                   damping=0.0, deadzone=2.0, increase="RIGHT", decrease="LEFT", idle_target=None),
    "atari-freeway": CrossingScript(),
    "atari-boxing": BoxingScript(),
}


class AtariRamExpert(Policy):
    """A RAM-scripted expert; needs the wrapped envs (one per batch row) to read their RAM.

    State: one memory dict per env (`RamScript.decide`), emptied at each episode start.
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
        missing = [a for a in self.script.actions if a not in meanings]
        if missing:
            raise ValueError(f"{task_id}: action set {meanings} lacks {missing}, which its RAM script uses")
        self._index = {a: meanings.index(a) for a in self.script.actions}

    def initial_state(self, num_envs: int, seed: int | None = None) -> PolicyState:
        return [{} for _ in range(num_envs)]

    def act(self, obs, state, episode_start, *, deterministic=True):
        n = len(episode_start)
        if n > len(self.envs):
            raise ValueError(f"batch of {n} observations but only {len(self.envs)} envs given to {self.name}")
        memories = [{} if start else dict(m) for m, start in zip(state, np.asarray(episode_start, bool))]
        actions = np.array([self._index[self.script.decide(self.envs[i].unwrapped.ale.getRAM(), memories[i])]
                            for i in range(n)], dtype=np.int64)
        return actions, memories


def ram_expert(task_id: str, envs: Sequence[Any] | None) -> Policy | None:
    """The RAM-scripted expert of ``task_id``, or None if the game has no script (or no envs given)."""
    if task_id not in SCRIPTS or not envs:
        return None
    return AtariRamExpert(task_id, envs)


def scripted_games() -> list[str]:
    """Task ids with a RAM script."""
    return sorted(SCRIPTS)
