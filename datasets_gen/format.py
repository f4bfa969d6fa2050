"""The on-disk format of an episode dataset (HDF5 shards + one JSON metadata file).

A dataset is a directory::

    DATASET/
      config.json            the `gato generate` config that made it (a rerun must match it)
      metadata.json          written last: task, policy, seeds, versions, spaces, per-episode index,
                             returns, expert_return, filtering (absent => generation not finished)
      shard-00000.h5         episodes [0, S), S = shard_size
      shard-00001.h5         episodes [S, 2S) ...

Each shard is written to ``shard-NNNNN.h5.tmp<pid>`` and renamed when complete, so a shard either
exists whole or not at all. Inside a shard (readable with h5py alone)::

    /                                   attrs: format, task_id, shard, policy, policy_name, policy_version,
                                        first_episode, num_episodes
    /episode_000017/                    attrs: index, seed, return, length, success (1/0, -1 if undefined)
        observations/<key>              (T, ...) one dataset per observation key:
                                        image uint8 (T, H, W, 3) (chunked, lzf), continuous float32 (T, n),
                                        discrete int64 (T, n), text variable-length UTF-8 strings (T,)
        actions                         (T,) int64 for Discrete, (T, n) float32 in [-1, 1] for Box
        rewards                         (T,) float32, reward after each action
        terminations, truncations       (T,) bool

Step t holds the observation the action was taken on, that action, and the reward that followed.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import h5py
import numpy as np

from envs.convention import IMAGE, TEXT, Episode

FORMAT = "gato-episodes-v1"
SHARD_PATTERN = "shard-{:05d}.h5"
EPISODE_PATTERN = "episode_{:06d}"
METADATA = "metadata.json"
CONFIG = "config.json"
_STR = h5py.string_dtype("utf-8")


def shard_name(shard: int) -> str:
    return SHARD_PATTERN.format(shard)


def episode_name(index: int) -> str:
    return EPISODE_PATTERN.format(index)


def write_episode(f: h5py.File, index: int, episode: Episode, attrs: dict[str, Any]) -> None:
    """Writes ``episode`` as group ``episode_<index>`` of an open shard."""
    g = f.create_group(episode_name(index))
    obs = g.create_group("observations")
    for key, value in episode.observations.items():
        if key == TEXT:
            obs.create_dataset(key, data=np.array(list(value), dtype=object), dtype=_STR)
        elif key == IMAGE:
            value = np.asarray(value)  # (T, H, W, 3) uint8
            chunks = (min(len(value), 32),) + value.shape[1:] if len(value) else None
            obs.create_dataset(key, data=value, chunks=chunks, compression="lzf")
        else:
            obs.create_dataset(key, data=np.asarray(value))
    g.create_dataset("actions", data=np.asarray(episode.actions))
    g.create_dataset("rewards", data=np.asarray(episode.rewards, np.float32))
    g.create_dataset("terminations", data=np.asarray(episode.terminations, bool))
    g.create_dataset("truncations", data=np.asarray(episode.truncations, bool))
    for k, v in attrs.items():
        g.attrs[k] = v


def episode_datasets(g: h5py.Group) -> dict[str, h5py.Dataset]:
    """``{"observations/<key>": ds, "actions": ds, ...}`` of an episode group (handles, no data read)."""
    d = {f"observations/{k}": v for k, v in g["observations"].items()}
    for name in ("actions", "rewards", "terminations", "truncations"):
        d[name] = g[name]
    return d


def read_episode(g: h5py.Group | dict[str, h5py.Dataset], task_id: str, start: int = 0, stop: int | None = None,
                 metadata: dict[str, Any] | None = None) -> Episode:
    """Reads timesteps ``[start, stop)`` of an episode (a group, or its `episode_datasets`); only those bytes.

    ``metadata`` becomes the episode's metadata; None reads the group's attributes.
    """
    sl = slice(start, stop)
    d = g if isinstance(g, dict) else episode_datasets(g)
    obs: dict[str, Any] = {}
    for name, ds in d.items():
        if name.startswith("observations/"):
            key = name.split("/", 1)[1]
            obs[key] = list(ds.asstr()[sl]) if key == TEXT else ds[sl]
    if metadata is None:
        attrs = g.attrs if not isinstance(g, dict) else d["actions"].parent.attrs
        metadata = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}
    return Episode(task_id, obs, d["actions"][sl], d["rewards"][sl], d["terminations"][sl],
                   d["truncations"][sl], metadata)


def _bound(values: np.ndarray) -> float | str:
    """A Box bound as strict JSON: the number if uniform ("inf"/"-inf" as strings), else "varies"."""
    if values.size != 1:
        return "varies"
    v = float(values[0])
    return v if np.isfinite(v) else str(v)


def describe_space(space: gym.Space) -> dict[str, Any]:
    """A JSON description of a space, equal for equal spaces (used to refuse mismatched datasets)."""
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: describe_space(s) for k, s in sorted(space.spaces.items())}}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.Box):
        low, high = np.unique(space.low), np.unique(space.high)
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _bound(low), "high": _bound(high)}
    if isinstance(space, gym.spaces.Text):
        return {"type": "Text", "max_length": int(space.max_length)}
    return {"type": type(space).__name__, "repr": repr(space)}


