"""Random access to a recorded dataset, reading lazily from the HDF5 shards.

Nothing but ``metadata.json`` is loaded when a dataset is opened: returns and lengths come from it,
and `EpisodeDataset.window` reads only the requested timesteps of one episode (HDF5 hyperslabs;
images are chunked 32 steps at a time), so datasets larger than RAM work. At most
``max_open_files`` shard files are held open (least recently used are closed). The object pickles
without its open files, so it can go to DataLoader worker processes.

Opening checks the shards it will read (`datasets_gen.checksums`): ``verify="quick"`` (default)
that each exists, opens as HDF5 and holds its episodes; ``"full"`` their sha256 against
``SHA256SUMS``. A bad shard raises `CorruptShardError` naming each one, unless
``skip_bad_shards=True``, which drops their episodes and names them on stderr.

Example (needs a dataset: ``gato generate --task babyai-goto-red-ball --out data/demo/babyai-goto-red-ball``):
    >>> ds = open_dataset("data/demo/babyai-goto-red-ball")  # doctest: +SKIP
    >>> len(ds), ds.task_id  # doctest: +SKIP
    >>> ds.window(0, 0, 4).actions  # (4,) int64  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import sys
from collections import OrderedDict
from typing import Any

import h5py
import numpy as np

from datasets_gen.format import METADATA, describe_space, episode_datasets, episode_name, read_episode
from envs.convention import Episode


class DatasetError(ValueError):
    """A dataset that cannot be read as asked (the message says which file and what to do)."""


class CorruptShardError(DatasetError):
    """A shard file is truncated or damaged; the message names the file and the episode."""


class DatasetSpecError(DatasetError):
    """The dataset's observation/action spaces differ from the task's (both are shown)."""


_SPEC_CACHE: dict[str, tuple[dict, dict]] = {}
_WARNED_UNCHECKSUMMED: set[str] = set()


def task_spaces(task_id: str) -> tuple[dict, dict]:
    """(observation space, action space) descriptions of the registered task (cached per process)."""
    if task_id not in _SPEC_CACHE:
        import envs

        env = envs.make(task_id)
        try:
            _SPEC_CACHE[task_id] = (describe_space(env.observation_space), describe_space(env.action_space))
        finally:
            env.close()
    return _SPEC_CACHE[task_id]


def _canon(d: Any) -> Any:
    """Space descriptions with infinite bounds as strings (datasets of the first format day wrote floats)."""
    if isinstance(d, dict):
        return {k: _canon(v) for k, v in d.items()}
    if isinstance(d, float) and not np.isfinite(d):
        return str(d)
    return d


class EpisodeDataset:
    """The episodes of one dataset directory (by default only those the return filter keeps).

    Attributes:
        path: dataset directory.
        metadata: the parsed ``metadata.json`` (task, policy, seeds, versions, spaces, expert_return, ...).
        indices: (N,) recorded episode index of each dataset item.
    """

    def __init__(self, path: str, filtered: bool = True, check_spec: bool = True, max_open_files: int = 8,
                 verify: str = "quick", skip_bad_shards: bool = False):
        self.path = str(path)
        meta_path = os.path.join(self.path, METADATA)
        if not os.path.exists(meta_path):
            hint = (" Generation did not finish: rerun the `gato generate` command in config.json to resume it."
                    if os.path.exists(os.path.join(self.path, "config.json")) else " Is this a dataset directory?")
            raise DatasetError(f"{meta_path} does not exist.{hint}")
        try:
            with open(meta_path, "rb") as f:
                self.metadata: dict[str, Any] = json.loads(f.read().decode("utf-8"))
            rows = {r["index"]: r for r in self.metadata["episodes"]}
            keep = self.metadata["filter"]["kept"] if filtered else sorted(rows)
            self._rows = [rows[i] for i in keep]
        except (ValueError, KeyError, TypeError) as e:  # undecodable, not JSON, or not this format
            raise DatasetError(f"{meta_path} is unreadable ({type(e).__name__}: {e}); rerun the generate command "
                               f"in {os.path.join(self.path, 'config.json')} to rewrite it") from e
        self.skipped_shards: dict[str, str] = {}
        if verify != "none":
            self._verify(verify, skip_bad_shards)
        self.indices = np.array([r["index"] for r in self._rows], dtype=np.int64)
        self.max_open_files = max_open_files
        self._files: OrderedDict[str, h5py.File] = OrderedDict()
        self._handles: dict[str, dict[int, dict]] = {}  # shard -> episode index -> dataset handles
        if check_spec:
            self.check_spec()

    def _verify(self, mode: str, skip: bool) -> None:
        from datasets_gen.checksums import verify_dataset

        if mode not in ("quick", "full"):
            raise ValueError(f"verify must be 'quick', 'full' or 'none', got {mode!r}")
        report = verify_dataset(self.path, mode, shards={r["shard"] for r in self._rows})
        if not report.checksummed and self.path not in _WARNED_UNCHECKSUMMED:
            _WARNED_UNCHECKSUMMED.add(self.path)
            print(f"note: {self.path} has no SHA256SUMS (written before shard checksums): checked shard headers "
                  "only; rerun its generate command to record checksums", file=sys.stderr)
        if report.ok:
            return
        config = os.path.join(self.path, "config.json")
        if not skip or not set(report.problems) <= {r["shard"] for r in self._rows}:
            raise CorruptShardError(
                f"{len(report.problems)} bad file(s) in dataset {self.path}: " + "; ".join(report.lines())
                + f". Rerun the generate command in {config} to regenerate them"
                + ("" if skip else ", or pass --skip-bad-shards to train without them"))
        self.skipped_shards = dict(report.problems)
        self._rows = [r for r in self._rows if r["shard"] not in report.problems]
        for line in report.lines():
            print(f"warning: skipping {line} (--skip-bad-shards)", file=sys.stderr)

    # -- description --------------------------------------------------------------------------
    @property
    def task_id(self) -> str:
        return self.metadata["task_id"]

    @property
    def domain(self) -> str:
        return self.metadata["domain"]

    @property
    def returns(self) -> np.ndarray:
        """(N,) float64 episode returns, in dataset order."""
        return np.array([r["return"] for r in self._rows], dtype=np.float64)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64 episode lengths."""
        return np.array([r["length"] for r in self._rows], dtype=np.int64)

    def __len__(self) -> int:
        return len(self._rows)

    def episode_length(self, i: int) -> int:
        return int(self._row(i)["length"])

    def check_spec(self) -> None:
        """Raises `DatasetSpecError` if the recorded spaces differ from the registered task's."""
        obs, act = task_spaces(self.task_id)
        rec_obs, rec_act = _canon(self.metadata["observation_space"]), _canon(self.metadata["action_space"])
        if (obs, act) != (rec_obs, rec_act):
            raise DatasetSpecError(
                f"{self.path} does not match task {self.task_id!r}:\n"
                f"  dataset observation space: {json.dumps(rec_obs)}\n  task    observation space: {json.dumps(obs)}\n"
                f"  dataset action space: {json.dumps(rec_act)}\n  task    action space: {json.dumps(act)}\n"
                "Regenerate the dataset with the current envs, or open it with check_spec=False if you know why they differ."
            )

    # -- reading ------------------------------------------------------------------------------
    def _row(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"episode {i} out of range for a dataset of {len(self)} episodes ({self.path})")
        return self._rows[i]

    def _file(self, shard: str) -> h5py.File:
        f = self._files.pop(shard, None)
        if f is None:
            f = h5py.File(os.path.join(self.path, shard), "r")
            while len(self._files) >= self.max_open_files:
                name, old = self._files.popitem(last=False)
                self._handles.pop(name, None)
                old.close()
        self._files[shard] = f
        return f

    def window(self, i: int, start: int, stop: int) -> Episode:
        """Timesteps ``[start, stop)`` of episode ``i`` (reads only those from disk)."""
        row = self._row(i)
        n = row["length"]
        if not 0 <= start <= stop <= n:
            raise IndexError(f"window [{start}, {stop}) outside episode {i} of length {n} ({self.path})")
        shard_path = os.path.join(self.path, row["shard"])
        try:
            f = self._file(row["shard"])
            per_shard = self._handles.setdefault(row["shard"], {})
            handles = per_shard.get(row["index"])
            if handles is None:  # group lookups cost more than small reads: keep the handles
                handles = per_shard[row["index"]] = episode_datasets(f[episode_name(row["index"])])
            meta = {**row, "task_id": self.task_id, "policy": self.metadata["policy"]}
            ep = read_episode(handles, self.task_id, start, stop, metadata=meta)
        except Exception as e:  # noqa: BLE001 - whatever h5py raises on damaged bytes (OSError, KeyError, TypeError, ...)
            self._files.pop(row["shard"], None)
            self._handles.pop(row["shard"], None)
            raise CorruptShardError(
                f"{shard_path}: cannot read episode {row['index']} (dataset item {i}): {type(e).__name__}: {e}. "
                f"The other shards stay readable; delete this file and rerun the generate command in "
                f"{os.path.join(self.path, 'config.json')} to regenerate it."
            ) from e
        lengths = {len(ep.actions), len(ep.rewards), len(ep.terminations), len(ep.truncations),
                   *(len(v) for v in ep.observations.values())}
        if lengths != {stop - start}:
            raise CorruptShardError(f"{shard_path}: episode {row['index']} has arrays of lengths {sorted(lengths)}, "
                                    f"expected {stop - start} for window [{start}, {stop})")
        return ep

    def episode(self, i: int) -> Episode:
        """Episode ``i`` whole."""
        return self.window(i, 0, self.episode_length(i))

    def __getitem__(self, i: int) -> Episode:
        return self.episode(i)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._handles.clear()

    def __enter__(self) -> "EpisodeDataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_files"] = OrderedDict()  # h5py handles do not pickle; reopened lazily
        state["_handles"] = {}
        return state

    def __repr__(self) -> str:
        return f"EpisodeDataset({self.path!r}, task={self.task_id!r}, episodes={len(self)})"


def open_dataset(path: str, filtered: bool = True, check_spec: bool = True, verify: str = "quick",
                 skip_bad_shards: bool = False) -> EpisodeDataset:
    """Opens a dataset directory written by `gato generate`.

    Args:
        path: dataset directory (holds ``metadata.json`` and ``shard-*.h5``).
        filtered: only the episodes the return filter kept (all recorded ones if False).
        check_spec: refuse a dataset whose spaces differ from the registered task's.
        verify: ``"quick"`` (shards exist and open), ``"full"`` (sha256 of each shard) or ``"none"``.
        skip_bad_shards: drop the episodes of bad shards (named on stderr) instead of raising.

    Raises:
        DatasetError: not a finished dataset. DatasetSpecError: spaces differ. CorruptShardError:
        a bad shard (each is named), without ``skip_bad_shards``.
    """
    return EpisodeDataset(path, filtered=filtered, check_spec=check_spec, verify=verify,
                          skip_bad_shards=skip_bad_shards)
