"""Shard checksums of an episode dataset: recorded as each shard is written, checked before use.

``DATASET/SHA256SUMS`` (coreutils ``sha256sum`` format, see `policies.trust`) lists the sha256 of
every finished shard, added by the generating process as each shard is renamed into place, and of
``metadata.json`` once it is written. ``cd DATASET && sha256sum -c SHA256SUMS`` checks it without
this project.

Three depths of checking:

* ``full``: every shard's sha256 against the manifest (`gato info --verify`, `gato generate` resume,
  ``gato train --verify-data full``). Finds any changed byte.
* ``quick``: the shard exists, starts with the HDF5 signature, opens (HDF5 compares the file size
  with the end-of-file address in its superblock, so a truncated file fails), and its root
  attributes name the expected episodes. Milliseconds per shard; ``gato train`` and
  `open_dataset` run it by default. A byte changed inside the data passes it.
* ``structure``: for datasets written before checksums (no ``SHA256SUMS``): every array of every
  episode is read in full and its length compared with ``metadata.json``. Finds truncation and
  most garbling, not a flipped bit in uncompressed data. `gato generate` adopts the shards of such
  a dataset that pass it (records their sha256) and regenerates the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

from datasets_gen.format import FORMAT, METADATA, episode_datasets, episode_name
from policies.trust import SUMS, ManifestError, check_file, fsync_file, read_sums, sha256_file, write_sums

Mode = Literal["quick", "full"]
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass
class Report:
    """What `verify_dataset` found.

    Attributes:
        path: the dataset directory.
        mode: ``quick`` or ``full`` (``full`` on a dataset without checksums reads every shard whole).
        checked: shard file names checked.
        problems: ``{file name: why}`` for each bad file (shards, ``metadata.json``, ``SHA256SUMS``).
        checksummed: the dataset has a ``SHA256SUMS`` (False: written before checksums).
    """

    path: str
    mode: str
    checked: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    checksummed: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """One ``DATASET/file: why`` line per problem."""
        return [f"{os.path.join(self.path, name)}: {why}" for name, why in sorted(self.problems.items())]


# ----------------------------------------------------------------------------- the manifest


def read_manifest(dataset: str) -> dict[str, str] | None:
    """``{file name: sha256}`` from ``DATASET/SHA256SUMS``; None if the dataset has none (older format).

    Raises:
        ManifestError: the manifest exists but cannot be parsed.
    """
    path = os.path.join(dataset, SUMS)
    if not os.path.exists(path):
        return None
    return read_sums(path)


def record(dataset: str, name: str, digest: str) -> None:
    """Add (or replace) the sha256 of ``name`` in the manifest; only the generating parent process calls it."""
    sums = read_manifest(dataset) or {}
    sums[name] = digest
    write_sums(os.path.join(dataset, SUMS), sums)


def forget(dataset: str, names: Iterable[str]) -> None:
    sums = read_manifest(dataset) or {}
    for name in names:
        sums.pop(name, None)
    write_sums(os.path.join(dataset, SUMS), sums)


# ----------------------------------------------------------------------------- one shard


def quick_check(path: str, first_episode: int | None = None, num_episodes: int | None = None) -> str | None:
    """None if the shard at ``path`` looks whole (see the module docstring), else what is wrong."""
    import h5py

    if not os.path.isfile(path):
        return "missing"
    try:
        with open(path, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if head != HDF5_SIGNATURE:
        return f"not an HDF5 file (starts with {head!r}): garbled or overwritten"
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
    except Exception as e:  # OSError mostly; h5py raises others on some damage
        return f"does not open as HDF5, truncated or garbled ({type(e).__name__}: {str(e)[:160]})"
    if attrs.get("format") != FORMAT:
        return f"root attribute format is {attrs.get('format')!r}, not {FORMAT!r}"
    for key, want in (("first_episode", first_episode), ("num_episodes", num_episodes)):
        if want is not None and attrs.get(key) != want:
            return f"holds {key} {attrs.get(key)!r}, expected {want}"
    return None


def structure_check(path: str, first_episode: int, num_episodes: int,
                    lengths: dict[int, int] | None = None) -> str | None:
    """Read every array of every episode of a shard whole and check its length.

    Args:
        path: the shard.
        first_episode, num_episodes: the episodes it must hold.
        lengths: ``{episode index: length}`` from ``metadata.json``; None: each episode's own
            ``length`` attribute (a dataset whose generation did not finish).
    """
    import h5py

    why = quick_check(path, first_episode, num_episodes)
    if why is not None:
        return why
    try:
        with h5py.File(path, "r") as f:
            for i in range(first_episode, first_episode + num_episodes):
                g = f[episode_name(i)]
                want = int(g.attrs["length"]) if lengths is None else lengths[i]
                for name, ds in episode_datasets(g).items():
                    n = len(ds[()])
                    if n != want:
                        return f"episode {i}: {name} has {n} steps, expected {want}"
    except Exception as e:  # whatever h5py raises on damaged data
        return f"episode data unreadable ({type(e).__name__}: {str(e)[:160]})"
    return None


# ----------------------------------------------------------------------------- a dataset


def _metadata_rows(dataset: str) -> tuple[list[str] | None, dict[str, list[dict[str, Any]]]]:
    """(shard names from metadata.json or None, {shard: its episode rows})."""
    import json

    with open(os.path.join(dataset, METADATA), "rb") as f:
        meta = json.loads(f.read().decode("utf-8"))
    by_shard: dict[str, list[dict[str, Any]]] = {}
    for row in meta["episodes"]:
        by_shard.setdefault(row["shard"], []).append(row)
    return list(meta["shards"]), by_shard


def verify_dataset(dataset: str, mode: Mode = "full", shards: Iterable[str] | None = None) -> Report:
    """Check the shards of a dataset (all that ``metadata.json`` lists, or ``shards``).

    ``full`` also checks ``metadata.json`` against the manifest and, on a dataset without
    checksums, reads every shard whole (`structure_check`).

    Returns:
        A `Report`; ``report.problems`` names each bad file and why.
    """
    dataset = str(dataset)
    report = Report(dataset, mode)
    try:
        sums = read_manifest(dataset)
    except (ManifestError, OSError) as e:
        report.problems[SUMS] = f"unreadable ({e})"
        return report
    report.checksummed = sums is not None
    if sums is not None and mode == "full" and METADATA in sums:
        why = check_file(os.path.join(dataset, METADATA), sums[METADATA])
        if why is not None:
            report.problems[METADATA] = why
            return report
    try:
        listed, rows = _metadata_rows(dataset)
    except FileNotFoundError:
        report.problems[METADATA] = "missing: generation did not finish (rerun the generate command in config.json)"
        return report
    except (OSError, ValueError, KeyError, TypeError) as e:
        report.problems[METADATA] = f"unreadable ({type(e).__name__}: {e})"
        return report
    names = sorted(set(listed if shards is None else shards))
    for name in names:
        path = os.path.join(dataset, name)
        report.checked.append(name)
        shard_rows = sorted(rows.get(name, []), key=lambda r: r["index"])
        if sums is not None and name not in sums:
            why = "missing" if not os.path.exists(path) else f"not listed in {SUMS} (unfinished or foreign file)"
        elif mode == "full" and sums is not None:
            why = check_file(path, sums[name])
        elif mode == "full":
            why = (structure_check(path, shard_rows[0]["index"], len(shard_rows),
                                   {r["index"]: r["length"] for r in shard_rows})
                   if shard_rows else quick_check(path))
        else:
            why = quick_check(path, shard_rows[0]["index"] if shard_rows else None, len(shard_rows) or None)
        if why is not None:
            report.problems[name] = why
    return report


def shard_digest(path: str) -> str:
    """sha256 of a finished shard (fsynced first: it is about to be renamed into place)."""
    fsync_file(path)
    return sha256_file(path)
