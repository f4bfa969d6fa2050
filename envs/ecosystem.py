"""Where the task registry meets outside libraries: Gymnasium's registry and Stable-Baselines3.

**Gymnasium.** `register_gymnasium` (run by ``import envs``) registers every task as
``gato/<task-id>``, so that ``gymnasium.make("gato/metaworld-reach")`` builds the same env as
``envs.make("metaworld-reach")`` (wrapped by Gymnasium's usual ``OrderEnforcing`` and passive
checker; keyword arguments go to `envs.make`). Gymnasium 1.x has no entry-point plugin discovery
(gym 0.26's ``load_env_plugins`` was removed in Gymnasium 1.0), so a process that has not imported
``envs`` uses Gymnasium's module prefix, which imports the module first:
``gymnasium.make("envs:gato/metaworld-reach")``.

**Stable-Baselines3.** `sb3_env(env)` makes any task's env acceptable to SB3's ``check_env``,
``DummyVecEnv`` and ``evaluate_policy`` (and ``MultiInputPolicy``). SB3 accepts Dict observations of
``Box`` / ``Discrete`` spaces but not Gymnasium's ``Text`` space (BabyAI's mission): `TextAsCodes`
replaces each ``Text`` entry by a fixed-length ``Box`` of character codes (``0`` = padding,
``1 + i`` = the i-th character of the space's charset; every other key passes through). SB3 also
takes Meta-World for a goal-conditioned env because its library env has a ``compute_reward``;
`NotAGoalEnv` hides it.

**Import banners.** `quiet_legacy_gym` (run by ``import envs``) silences the legacy ``gym``
package's banner, which SB3's import would print.

Example:
    >>> import envs, gymnasium
    >>> env = gymnasium.make("gato/babyai-goto-red-ball")
    >>> env.spec.id
    'gato/babyai-goto-red-ball'
    >>> from envs.ecosystem import sb3_env
    >>> sb3_env(envs.make("babyai-goto-red-ball")).observation_space["text"].shape
    (512,)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

NAMESPACE = "gato"
"""Gymnasium namespace of the tasks: ``gato/<task-id>``."""


def gymnasium_id(task_id: str) -> str:
    """``"metaworld-reach"`` -> ``"gato/metaworld-reach"``."""
    return f"{NAMESPACE}/{task_id}"


def make_for_gymnasium(task_id: str, **options: Any) -> gym.Env:
    """The entry point of every ``gato/<task-id>`` spec: `envs.make` (drops ``render_mode=None``)."""
    from envs.registry import make

    if options.get("render_mode", "") is None:
        options.pop("render_mode")
    return make(task_id, **options)


def register_gymnasium() -> list[str]:
    """Register every task with Gymnasium as ``gato/<task-id>`` (idempotent); returns the ids.

    ``max_episode_steps`` is left unset: the convention wrapper truncates at the task's own limit
    (pass ``max_episode_steps=`` to ``gymnasium.make`` to shorten it).
    """
    from envs.registry import task_ids

    ids = []
    for task_id in task_ids():
        env_id = gymnasium_id(task_id)
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=make_for_gymnasium, kwargs={"task_id": task_id},
                         nondeterministic=False)
        ids.append(env_id)
    return ids


def quiet_legacy_gym() -> None:
    """Silence the legacy ``gym`` package's import banner ("Gym has been unmaintained since 2022 ...").

    stable-baselines3 imports ``gym`` when it is installed (shimmy pulls it in), and gym prints that
    notice, taken from the ``gym_notices`` table, to stderr; emptying the table silences it. Nothing
    here uses the legacy package.
    """
    try:
        import gym_notices.notices as notices  # a tiny module; importing it does not import gym

        notices.notices.clear()
    except Exception:  # noqa: BLE001 - not installed, or another layout: nothing to silence
        pass


# ----------------------------------------------------------------------------- Stable-Baselines3


class NotAGoalEnv(gym.Wrapper):
    """Hides a library env's ``compute_reward`` from SB3, which takes any env whose ``unwrapped`` has
    one for a goal-conditioned env (Meta-World's ``SawyerXYZEnv`` has one, with another meaning).

    Its ``unwrapped`` is the wrapper itself; the library env stays reachable as ``env.env.unwrapped``.
    """

    @property
    def unwrapped(self) -> gym.Env:
        return self


class TextAsCodes(gym.ObservationWrapper):
    """Each ``Text`` entry of a Dict observation becomes ``Box(0, len(charset), (max_length,), int64)``.

    A string of length L maps to its L character codes (``1 + charset.index(c)``) followed by
    ``max_length - L`` zeros, so the map is one-to-one and `decode` inverts it. SB3 (``check_env``,
    vector envs, ``evaluate_policy``, ``MultiInputPolicy``) handles the result as any Box.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict):
            raise TypeError(f"TextAsCodes needs a Dict observation space, got {space}")
        self._text: dict[str, tuple[dict[str, int], int]] = {}
        new = {}
        for key, sub in space.spaces.items():
            if isinstance(sub, spaces.Text):
                charset = sub.character_list
                self._text[key] = ({c: i + 1 for i, c in enumerate(charset)}, sub.max_length)
                new[key] = spaces.Box(0, len(charset), (sub.max_length,), np.int64)
            else:
                new[key] = sub
        self.observation_space = spaces.Dict(new)

    def encode(self, key: str, text: str) -> np.ndarray:
        """The codes of ``text`` for the Text entry ``key`` (raises on a character outside its charset)."""
        index, length = self._text[key]
        if len(text) > length:
            raise ValueError(f"{key!r} text of {len(text)} characters exceeds the space's max_length {length}")
        codes = np.zeros(length, np.int64)
        try:
            codes[: len(text)] = [index[c] for c in text]
        except KeyError as e:
            raise ValueError(f"{key!r} text {text!r} has character {e.args[0]!r} outside the space's charset") from None
        return codes

    def decode(self, key: str, codes: np.ndarray) -> str:
        """The string of ``codes`` (inverse of `encode`)."""
        chars = self.env.observation_space[key].character_list
        return "".join(chars[int(c) - 1] for c in np.asarray(codes) if c > 0)

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        out = dict(observation)
        for key in self._text:
            out[key] = self.encode(key, observation[key])
        return out


def sb3_env(env: gym.Env) -> gym.Env:
    """``env`` ready for Stable-Baselines3 (``check_env``, vector envs, ``evaluate_policy``).

    `TextAsCodes` if its observation holds a ``Text`` space; `NotAGoalEnv` if the library env has a
    ``compute_reward`` but the observation is not SB3's goal dict. Other envs are returned as they are.
    """
    space = env.observation_space
    if isinstance(space, spaces.Dict) and any(isinstance(s, spaces.Text) for s in space.spaces.values()):
        env = TextAsCodes(env)
    if hasattr(env.unwrapped, "compute_reward") and not (
            isinstance(space, spaces.Dict) and {"achieved_goal", "desired_goal"} <= set(space.spaces)):
        env = NotAGoalEnv(env)
    return env


__all__ = ["NAMESPACE", "NotAGoalEnv", "TextAsCodes", "quiet_legacy_gym", "gymnasium_id", "make_for_gymnasium", "register_gymnasium", "sb3_env"]
