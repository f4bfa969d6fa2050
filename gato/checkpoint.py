"""Checkpoints: safetensors weights, JSON configs, optimizer and RNG state, written atomically.

Layout of a run directory::

    RUN/checkpoints/step-00000200/
        model.safetensors      weights (shared embedding stored once; with --ema-decay, their average)
        train_weights.safetensors  with --ema-decay only: the raw weights a resumed run continues from
        config.json            the GatoConfig
        train_config.json      the trainer's Config (free-form dict; absent for bare saves)
        state.json             {"step": ..., plus what the trainer adds}
        optimizer.pt           AdamW state (torch.save of tensors; loads with weights_only=True)
        rng-rank0.json         torch / numpy / python RNG state of each process
        SHA256SUMS             sha256 of every file above (`sha256sum -c SHA256SUMS` checks it)
    RUN/checkpoints/latest     the name of the newest complete checkpoint directory

A checkpoint directory is written under ``step-N.tmp``; when complete, each file is fsynced and
hashed into ``SHA256SUMS``, and the directory is renamed, then ``latest`` is replaced atomically
(write to a temporary file + fsync + ``os.replace``); a run killed at any point leaves the previous
checkpoint intact and pointed to.

Every load verifies the checkpoint against its ``SHA256SUMS`` first (`verify`): a corrupt one is
refused with its path (`CorruptCheckpointError`), and `resume_point` falls back to the newest
checkpoint that verifies, saying so. A checkpoint written before checksums existed (no
``SHA256SUMS``) loads with a warning, its files still parsed defensively. The policy only needs::

    loaded = gato.checkpoint.load("RUN")   # a LoadedCheckpoint; the model in eval mode, on CPU by default
    loaded.model, loaded.config, loaded.step, loaded.train_config
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from gato.configs import GatoConfig
from gato.model import GatoModel
from policies.trust import SUMS, ManifestError, check_file, fsync_dir, fsync_file, read_sums, sha256_file, write_sums

CHECKPOINTS = "checkpoints"
LATEST = "latest"
MODEL_WEIGHTS = "model.safetensors"
"""The weights a policy and `gato eval` load (with ``ema_decay``, the trainer's average)."""
TRAIN_WEIGHTS = "train_weights.safetensors"
"""With ``ema_decay``: the raw weights a resumed run continues from (absent otherwise)."""
REQUIRED = (MODEL_WEIGHTS, "config.json", "state.json")
"""Files every checkpoint holds (and its ``SHA256SUMS`` must list)."""
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclasses.dataclass
class LoadedCheckpoint:
    """What `load` returns.

    Attributes:
        model: the model, in eval mode, on the device asked for.
        config: its `GatoConfig`.
        step: the training step it was saved at.
        train_config: the trainer's config (``train_config.json``), or None for a bare save.
        path: the checkpoint directory it was loaded from.
        state: ``state.json`` as written (``step`` and what the trainer adds).
    """

    model: GatoModel
    config: GatoConfig
    step: int
    train_config: dict[str, Any] | None
    path: Path
    state: dict[str, Any]


class CorruptCheckpointError(ValueError):
    """A checkpoint whose files differ from its ``SHA256SUMS`` or cannot be parsed; the message names the path."""


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (temporary file in the same directory, then ``os.replace``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def latest(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint directory of a run, or None if it has none.

    ``run_dir`` may also be a checkpoint directory itself (one holding ``config.json``).
    """
    run_dir = Path(run_dir)
    if (run_dir / MODEL_WEIGHTS).exists():
        return run_dir
    pointer = run_dir / CHECKPOINTS / LATEST
    if not pointer.exists():
        return None
    try:
        name = pointer.read_bytes().decode("utf-8").strip()
    except UnicodeDecodeError as e:
        raise CorruptCheckpointError(f"{pointer} is garbled ({e}); rerun the training command to resume from "
                                     "the newest checkpoint that verifies") from e
    ckpt = run_dir / CHECKPOINTS / name
    if not name or not (ckpt / MODEL_WEIGHTS).exists():
        raise FileNotFoundError(f"{pointer} names {name[:80]!r}, which is missing or incomplete; rerun the "
                                "training command to resume from the newest checkpoint that verifies")
    return ckpt


def tmp_dir(run_dir: str | Path, step: int) -> Path:
    """Where checkpoint ``step`` is assembled before `commit` renames it."""
    return Path(run_dir) / CHECKPOINTS / f"step-{step:08d}.tmp"


def begin(run_dir: str | Path, step: int) -> Path:
    """Create an empty temporary checkpoint directory for ``step`` (process 0 only)."""
    tmp = tmp_dir(run_dir, step)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def write_weights(ckpt: Path, model: GatoModel, name: str = MODEL_WEIGHTS) -> None:
    """``model``'s weights to ``ckpt/name`` (``MODEL_WEIGHTS`` or ``TRAIN_WEIGHTS``)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(ckpt / name), metadata={"config": model.config.name})


def write_model(ckpt: Path, model: GatoModel, config: GatoConfig) -> None:
    """``model``'s weights to ``MODEL_WEIGHTS`` and its config to ``config.json``."""
    write_weights(ckpt, model)
    write_json(ckpt / "config.json", dataclasses.asdict(config))


def seal(ckpt: Path) -> dict[str, str]:
    """Fsync every file of a finished checkpoint directory and record its sha256 in ``SHA256SUMS``."""
    sums = {}
    for f in sorted(ckpt.iterdir()):
        if f.is_file() and f.name != SUMS and not f.name.startswith("."):
            fsync_file(f)
            sums[f.name] = sha256_file(f)
    missing = [name for name in REQUIRED if name not in sums]
    assert not missing, f"{ckpt} lacks {missing}"  # the writers above always write them
    write_sums(ckpt / SUMS, sums)
    fsync_dir(ckpt)
    return sums


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """The complete ``step-N`` directories of a run, newest first (temporary and quarantined ones excluded)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found, reverse=True)]


def commit(run_dir: str | Path, step: int, keep: int = 2) -> Path:
    """Seal the finished temporary directory, rename it, point ``latest`` at it, prune old checkpoints."""
    root = Path(run_dir) / CHECKPOINTS
    final = root / f"step-{step:08d}"
    seal(tmp_dir(run_dir, step))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp_dir(run_dir, step), final)
    fsync_dir(root)
    tmp = root / f".{LATEST}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(final.name)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / LATEST)
    fsync_dir(root)
    done = checkpoint_dirs(run_dir)
    for old in done[keep:] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


_WARNED_UNSEALED: set[str] = set()


def verify(ckpt: str | Path) -> None:
    """Check every file of a checkpoint directory against its ``SHA256SUMS``.

    A directory without ``SHA256SUMS`` (written before checksums) passes with a warning, once per path.

    Raises:
        CorruptCheckpointError: a listed file is missing or differs, a required file is unlisted, or
            ``SHA256SUMS`` is unreadable; the message names the directory and each bad file.
    """
    ckpt = Path(ckpt)
    sums_path = ckpt / SUMS
    if not sums_path.exists():
        missing = [name for name in REQUIRED if not (ckpt / name).is_file()]
        if missing:
            raise CorruptCheckpointError(f"checkpoint {ckpt} is incomplete: no {', '.join(missing)}")
        if str(ckpt) not in _WARNED_UNSEALED:
            _WARNED_UNSEALED.add(str(ckpt))
            print(f"warning: checkpoint {ckpt} has no {SUMS} (written before checkpoints were checksummed); "
                  "loading it unverified", file=sys.stderr)
        return
    try:
        sums = read_sums(sums_path)
    except (ManifestError, OSError) as e:
        raise CorruptCheckpointError(f"checkpoint {ckpt}: its {SUMS} is unreadable ({e})") from e
    problems = [f"{name}: not listed in {SUMS}" for name in REQUIRED if name not in sums]
    for name, digest in sorted(sums.items()):
        if "/" in name or name.startswith("."):
            problems.append(f"{name}: not a file name of a checkpoint")
        elif (why := check_file(ckpt / name, digest)) is not None:
            problems.append(f"{name}: {why}")
    if problems:
        raise CorruptCheckpointError(f"checkpoint {ckpt} is corrupt: " + "; ".join(problems))


def resume_point(run_dir: str | Path, quarantine: bool = False) -> Path | None:
    """The newest checkpoint of a run that verifies, or None if the run has no checkpoint.

    ``latest`` is tried first, then every ``step-N`` directory from the newest. Each one refused is
    reported on stderr with its path and why, and the one resumed from is named. With
    ``quarantine`` (process 0 of a resuming trainer), a refused directory newer than the resume
    point is renamed ``step-N.corrupt``: the resumed run writes those steps again.

    Raises:
        CorruptCheckpointError: checkpoints exist but none verifies.
    """
    root = Path(run_dir) / CHECKPOINTS
    candidates = checkpoint_dirs(run_dir)
    refused = []
    pointer = root / LATEST
    if pointer.exists():
        try:
            named = root / pointer.read_bytes().decode("utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            refused.append(f"{pointer}: unreadable ({e})")
        else:
            if named in candidates:
                candidates.remove(named)
                candidates.insert(0, named)
            else:
                refused.append(f"{pointer} names {named.name!r}, which is not a complete checkpoint")
    if not candidates:
        if refused:
            raise CorruptCheckpointError(f"no checkpoint in {root} to resume from: {'; '.join(refused)}. Delete "
                                         f"{root} to start the run over")
        return None
    bad = []
    for ckpt in candidates:
        try:
            verify(ckpt)
        except CorruptCheckpointError as e:
            refused.append(str(e))
            bad.append(ckpt)
            continue
        for line in refused:
            print(f"warning: {line}", file=sys.stderr)
        if refused:
            print(f"resuming from {ckpt}, the newest checkpoint that verifies", file=sys.stderr)
        if quarantine:
            step = int(_STEP_DIR.match(ckpt.name).group(1))
            for b in bad:
                if int(_STEP_DIR.match(b.name).group(1)) > step:
                    os.replace(b, b.with_name(b.name + ".corrupt"))
                    print(f"moved the corrupt {b.name} to {b.name}.corrupt (delete it once inspected)", file=sys.stderr)
        return ckpt
    raise CorruptCheckpointError(f"no checkpoint of {run_dir} verifies: " + " | ".join(refused)
                                 + f". Delete or move {root} to start the run over")


def save(run_dir: str | Path, model: GatoModel, config: GatoConfig, *, step: int,
         optimizer: torch.optim.Optimizer | None = None, state: dict[str, Any] | None = None,
         train_config: dict[str, Any] | None = None, keep: int = 2) -> Path:
    """Write a complete checkpoint of one process atomically; returns its directory."""
    ckpt = begin(run_dir, step)
    write_model(ckpt, model, config)
    write_json(ckpt / "state.json", {"step": step, **(state or {})})
    if train_config is not None:
        write_json(ckpt / "train_config.json", train_config)
    if optimizer is not None:
        torch.save(optimizer.state_dict(), ckpt / "optimizer.pt")
    return commit(run_dir, step, keep)


def check_config(saved: GatoConfig, expected: GatoConfig, where: str | Path) -> None:
    """Raise naming every field where a checkpoint's config differs from the expected one."""
    diffs = [f"{f.name}: checkpoint {getattr(saved, f.name)!r} != requested {getattr(expected, f.name)!r}"
             for f in dataclasses.fields(GatoConfig)
             if f.name not in ("paper_params", "suggested_lr") and getattr(saved, f.name) != getattr(expected, f.name)]
    if saved.vocab_size != expected.vocab_size:
        raise ValueError(
            f"checkpoint {where} was trained with another vocabulary: " + "; ".join(diffs)
            + f". This version embeds {expected.vocab_size} ids (docs/spec.md \"Token ids\"; a checkpoint of "
            f"34050 ids predates the location tokens); training cannot resume from it: train in a new --out "
            f"directory. Its own commands (eval, caption, ask) still load it with its own vocabulary")
    if diffs:
        raise ValueError(f"checkpoint {where} was trained with another model config: " + "; ".join(diffs)
                         + " (use a new --out directory, or the checkpoint's --config)")


def read_json(ckpt: Path, name: str) -> Any:
    """A JSON file of a checkpoint; an unparsable one raises `CorruptCheckpointError` naming it."""
    try:
        with open(ckpt / name, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except FileNotFoundError as e:
        raise CorruptCheckpointError(f"checkpoint {ckpt} has no {name}") from e
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CorruptCheckpointError(f"{ckpt / name} is not valid JSON ({type(e).__name__}: {e})") from e


def read_config(ckpt: Path) -> GatoConfig:
    raw = read_json(ckpt, "config.json")
    try:
        return GatoConfig.from_dict(raw)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise CorruptCheckpointError(f"{ckpt / 'config.json'} is not a GatoConfig ({type(e).__name__}: {e})") from e


def read_state(ckpt: Path) -> dict[str, Any]:
    """``state.json`` of a checkpoint (a dict with an integer ``step``)."""
    state = read_json(ckpt, "state.json")
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise CorruptCheckpointError(f"{ckpt / 'state.json'} holds no integer 'step': {str(state)[:80]}")
    return state


def read_rng(ckpt: Path, rank: int) -> dict[str, Any]:
    """``rng-rank<rank>.json``: the torch / numpy / python RNG states of one process."""
    name = f"rng-rank{rank}.json"
    if not (ckpt / name).exists():
        raise ValueError(f"{ckpt} was written by fewer processes (no {name}); resume with the same number of "
                         "processes")
    state = read_json(ckpt, name)
    if not isinstance(state, dict) or not all(isinstance(state.get(k), list) for k in ("torch", "numpy", "python")):
        raise CorruptCheckpointError(f"{ckpt / name} holds no torch / numpy / python RNG state")
    return state


def check_fingerprints(ckpt: Path, state: dict[str, Any], now: list[float]) -> None:
    """Compare the replica fingerprints recorded in ``state.json`` with those of the loaded weights.

    ``now`` comes from `gato.train.replica_fingerprints` right after loading: every process
    must hold the weights that were saved. The tolerance allows another device's summation order.

    Raises:
        CorruptCheckpointError: the recorded ones disagree among themselves or with ``now``.
    """
    saved = state.get("replica_fingerprints")
    if saved is None:  # a bare `save`, or a checkpoint older than fingerprints
        return
    if not isinstance(saved, list) or not saved or not all(isinstance(x, (int, float)) for x in saved):
        raise CorruptCheckpointError(f"{ckpt / 'state.json'}: replica_fingerprints is not a list of numbers: {saved!r}")
    if len(set(saved)) != 1:
        raise CorruptCheckpointError(f"{ckpt / 'state.json'}: the processes that wrote it held different "
                                     f"parameters {saved}")
    off = [x for x in now if not math.isclose(x, saved[0], rel_tol=1e-9, abs_tol=1e-6)]
    if off:
        raise CorruptCheckpointError(f"{ckpt}: the loaded weights have fingerprints {now}, not the {saved[0]} "
                                     "recorded when they were saved")


def load_weights(ckpt: Path, model: GatoModel, name: str = MODEL_WEIGHTS) -> None:
    """Load ``ckpt/name`` (``MODEL_WEIGHTS`` or ``TRAIN_WEIGHTS``) into ``model``, refusing
    another config or vocabulary."""
    check_config(read_config(ckpt), model.config, ckpt)
    try:
        weights = load_file(str(ckpt / name))
    except Exception as e:  # SafetensorError, OSError, ...: any unreadable file
        raise CorruptCheckpointError(f"{ckpt / name} is unreadable ({type(e).__name__}: {e})") from e
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    bad = [f"{k}: {tuple(v.shape)} vs {shapes.get(k)}" for k, v in weights.items() if shapes.get(k) != tuple(v.shape)]
    if bad or set(weights) != set(shapes):
        raise ValueError(f"checkpoint {ckpt} does not fit the model: shapes {bad[:5]}, "
                         f"missing {sorted(set(shapes) - set(weights))[:5]}, "
                         f"unexpected {sorted(set(weights) - set(shapes))[:5]}")
    model.load_state_dict(weights)


def load_optimizer(ckpt: Path, optimizer: torch.optim.Optimizer, device: torch.device | str = "cpu") -> None:
    """Load ``optimizer.pt`` into ``optimizer`` with ``weights_only=True`` (tensors and containers only, no code)."""
    try:
        state = torch.load(ckpt / "optimizer.pt", map_location=device, weights_only=True)
        optimizer.load_state_dict(state)
    except FileNotFoundError as e:
        raise CorruptCheckpointError(f"checkpoint {ckpt} has no optimizer.pt to resume from") from e
    except Exception as e:  # UnpicklingError, RuntimeError, EOFError, KeyError, ValueError: an unreadable file
        raise CorruptCheckpointError(f"{ckpt / 'optimizer.pt'} is unreadable ({type(e).__name__}: {str(e)[:200]})") from e


def load(run_dir: str | Path, device: torch.device | str = "cpu") -> LoadedCheckpoint:
    """The newest checkpoint of a run (or the checkpoint directory ``run_dir``), its model on ``device``.

    Raises:
        FileNotFoundError: the run has no checkpoint.
        CorruptCheckpointError: the checkpoint does not verify or cannot be parsed (names the path, and
            the newest checkpoint of the run that verifies, if any).
    """
    ckpt = latest(run_dir)
    if ckpt is None:
        from envs.commandline import what_is

        holds = what_is(run_dir) if Path(run_dir).is_dir() else None
        also = f"; it holds {holds}" if holds else ""
        raise FileNotFoundError(f"no checkpoint in {run_dir} (expected {Path(run_dir) / CHECKPOINTS / LATEST} "
                                f"or model.safetensors){also}")
    try:
        verify(ckpt)
    except CorruptCheckpointError as e:
        older = next((c for c in checkpoint_dirs(ckpt.parent.parent) if c != ckpt and _verifies(c)), None)
        hint = (f"; the newest checkpoint that verifies is {older}: pass it instead, or rerun the training "
                "command to resume from it" if older else "; no other checkpoint of this run verifies")
        raise CorruptCheckpointError(f"{e}{hint}") from None
    config = read_config(ckpt)
    model = GatoModel(config)
    load_weights(ckpt, model)
    model.to(device).eval()
    state = read_state(ckpt)
    train_config = read_json(ckpt, "train_config.json") if (ckpt / "train_config.json").exists() else None
    return LoadedCheckpoint(model=model, config=config, step=state["step"], train_config=train_config, path=ckpt,
                            state=state)


def _verifies(ckpt: Path) -> bool:
    try:
        verify(ckpt)
    except CorruptCheckpointError:
        return False
    return True
