"""Stable-Baselines3 checkpoints as `Policy`, and the expert zoo lookup.

SB3 models see one flat observation, not our Dict convention. `observation_key` picks the one key
of the Dict that an SB3 model is trained on, and `FlatObservation` (used by
`datasets_gen.train_expert` when training) and `SB3Policy.act` (when acting) apply the same
selection, so that a checkpoint trained on our envs acts on our envs.

| domain            | key          | SB3 policy                          |
| ----------------- | ------------ | ----------------------------------- |
| DMC state         | `continuous` | `MlpPolicy` (SAC)                   |
| BabyAI            | `discrete`   | `MlpPolicy` on float32 (PPO); the mission text is ignored |
| Procgen, pixels   | `image`      | `CnnPolicy` (PPO)                   |

Atari experts trained by `gato train-expert` use SB3's own Atari preprocessing on the raw ALE env
(84x84 grey, 4 stacked frames) and therefore are not served through this adapter; the cheap Atari
experts are `policies.atari_ram`.

SB3 zips are Python pickles: loading one runs any code it holds. `SB3Policy.load` reads a zip
only if `policies.trust.check_pickle` admits it: pinned in ``policies/zoo/SHA256SUMS``, written
by gato on this account, or named with ``allow_pickle=True`` (``--allow-pickle``). The bytes that
were checked are the bytes loaded. See docs/trust.md.

Example:
    >>> from policies.sb3 import zoo_expert
    >>> policy = zoo_expert("dmc-cartpole-balance")  # None if the zoo has no such expert
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.convention import CONTINUOUS, DISCRETE, IMAGE
from policies import trust
from policies.base import Policy, PolicyState

ZOO_DIR = Path(__file__).resolve().parent / "zoo"
"""`policies/zoo/<task_id>/` holds `model.zip` and `expert.json` per task (package data of `policies`)."""
ZOO_SUMS = ZOO_DIR / trust.SUMS
"""The zoo's manifest: the sha256 of every ``<task_id>/model.zip`` it ships (checked on load)."""

ALGOS = ("sac", "ppo", "dqn")


def observation_key(space: gym.spaces.Dict) -> str:
    """The one key of a Dict observation an SB3 model sees (`continuous`, then `discrete`, then `image`).

    Raises:
        ValueError: if the space has none of them.
    """
    for key in (CONTINUOUS, DISCRETE, IMAGE):
        if key in space.spaces:
            return key
    raise ValueError(
        f"observation space {space} has none of the keys {CONTINUOUS!r}, {DISCRETE!r}, {IMAGE!r} an SB3 "
        "model can read; text-only tasks have no SB3 expert"
    )


def flat_space(space: gym.spaces.Dict, key: str) -> gym.spaces.Box:
    """The Box an SB3 model is built on for ``space[key]`` (discrete values become float32)."""
    sub = space[key]
    if key == DISCRETE:
        return gym.spaces.Box(0.0, float(np.max(sub.high)), shape=sub.shape, dtype=np.float32)
    return sub


def flatten_obs(obs: dict[str, Any], key: str) -> np.ndarray:
    """``obs[key]`` as SB3 wants it (works for one observation or a batch)."""
    x = np.asarray(obs[key])
    return x.astype(np.float32) if key == DISCRETE else x


class FlatObservation(gym.ObservationWrapper):
    """Dict-convention env -> env with one Box observation ``obs[key]`` (for SB3 training)."""

    def __init__(self, env: gym.Env, key: str | None = None):
        super().__init__(env)
        self.key = key or observation_key(env.observation_space)
        self.observation_space = flat_space(env.observation_space, self.key)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        return flatten_obs(observation, self.key)


def zoo_pins() -> dict[str, str]:
    """``{absolute path: sha256}`` of the zoo files pinned in ``policies/zoo/SHA256SUMS``."""
    if not ZOO_SUMS.exists():
        return {}
    return {str((ZOO_DIR / name).resolve()): digest for name, digest in trust.read_sums(ZOO_SUMS).items()}


def pin_in_zoo(path: str | Path) -> None:
    """Record the sha256 of a file inside the zoo in its manifest (`gato train-expert --zoo`)."""
    path = Path(path).resolve()
    name = path.relative_to(ZOO_DIR.resolve()).as_posix()
    sums = trust.read_sums(ZOO_SUMS) if ZOO_SUMS.exists() else {}
    sums[name] = trust.sha256_file(path)
    trust.write_sums(ZOO_SUMS, sums)


def _load_model(path: Path, algo: str | None, allow_pickle: bool = False):
    import stable_baselines3 as sb3

    data = trust.check_pickle(path, allow_pickle=allow_pickle, pinned=zoo_pins(), what="SB3 checkpoint")
    names = [algo] if algo else list(ALGOS)
    errors = []
    for name in names:
        cls = {"sac": sb3.SAC, "ppo": sb3.PPO, "dqn": sb3.DQN}[name]
        try:
            return cls.load(io.BytesIO(data), device="cpu"), name
        except Exception as e:  # wrong algorithm class for this zip: try the next one
            errors.append(f"{name}: {type(e).__name__}: {e}")
    raise ValueError(f"could not load SB3 checkpoint {path} as any of {names}: " + "; ".join(errors))


class SB3Policy(Policy):
    """An SB3 model acting on batched Dict-convention observations.

    Args:
        model: a loaded SB3 ``BaseAlgorithm``.
        obs_key: the observation key the model was trained on.
        name: shown in datasets and reports.
    """

    def __init__(self, model: Any, obs_key: str, name: str = "sb3", checkpoint: str | None = None):
        self.model = model
        self.checkpoint = checkpoint  # the zip it was loaded from (datasets record its hash)
        self.obs_key = obs_key
        self.name = name
        self.is_box = isinstance(model.action_space, gym.spaces.Box)

    @classmethod
    def load(cls, path: str | Path, algo: str | None = None, obs_key: str | None = None,
             allow_pickle: bool = False) -> "SB3Policy":
        """Loads ``path`` (a model zip, or a directory with ``model.zip`` and ``expert.json``).

        The algorithm and observation key come from ``expert.json`` beside the zip when present.
        ``allow_pickle`` admits a zip that is neither pinned in the zoo nor written by gato here.

        Raises:
            policies.trust.UntrustedPickleError: the zip is not admitted (the message says how to proceed).
        """
        path = Path(path)
        zip_path = path / "model.zip" if path.is_dir() else path
        if not zip_path.exists():
            raise FileNotFoundError(f"SB3 checkpoint {zip_path} does not exist; pass a model .zip or a zoo directory")
        meta_path = zip_path.parent / "expert.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        if meta and meta.get("obs_key", "") is None:
            raise ValueError(
                f"{zip_path} was trained on SB3's Atari preprocessing of the raw ALE screen (84x84 grey, 4 stacked "
                "frames), not on our observation convention, so it cannot act through the Policy interface; "
                "use the RAM-scripted experts (policies.atari_ram) or evaluate it with SB3 directly"
            )
        model, algo = _load_model(zip_path, algo or meta.get("algo"), allow_pickle)
        if obs_key is None:
            obs_key = meta.get("obs_key")
        if obs_key is None:
            shape = model.observation_space.shape
            obs_key = IMAGE if len(shape) == 3 else CONTINUOUS
        return cls(model, obs_key, name=f"sb3-{algo}:{zip_path}", checkpoint=str(zip_path))

    def initial_state(self, num_envs: int, seed: int | None = None) -> PolicyState:
        return None  # MLP/CNN experts are stateless

    def act(self, obs, state, episode_start, *, deterministic=True):
        x = flatten_obs(obs, self.obs_key)  # (N, ...) batch
        actions, _ = self.model.predict(x, deterministic=deterministic)
        if self.is_box:
            actions = np.clip(np.asarray(actions, dtype=np.float32), -1.0, 1.0)  # (N, n)
        else:
            actions = np.asarray(actions, dtype=np.int64).reshape(len(x))  # (N,)
        return actions, state


def zoo_dir(task_id: str) -> Path:
    """Where the zoo expert of ``task_id`` lives (may not exist)."""
    return ZOO_DIR / task_id


def zoo_expert(task_id: str) -> Policy | None:
    """The committed SB3 expert for ``task_id``, or None if the zoo has none."""
    d = zoo_dir(task_id)
    if not (d / "model.zip").exists():
        return None
    policy = SB3Policy.load(d)
    policy.name = f"zoo:{task_id}"
    return policy


def zoo_tasks() -> list[str]:
    """Task ids with a committed zoo expert."""
    if not ZOO_DIR.exists():
        return []
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / "model.zip").exists())


def load_policy(path: str | Path, task_id: str | None = None, **kw: Any) -> Policy:
    """`policies.make_policy` hook: an SB3 checkpoint path -> `SB3Policy` (``algo=``/``obs_key=``/``allow_pickle=``)."""
    return SB3Policy.load(path, algo=kw.pop("algo", None), obs_key=kw.pop("obs_key", None),
                          allow_pickle=bool(kw.pop("allow_pickle", False)))
