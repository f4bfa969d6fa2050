"""Checkpoints: safetensors weights, JSON configs, optimizer and RNG state, written atomically.

Layout of a run directory::

    RUN/checkpoints/step-00000200/
        model.safetensors      weights (shared embedding stored once)
        config.json            the GatoConfig
        train_config.json      the trainer's Config (free-form dict; absent for bare saves)
        state.json             {"step": ..., plus what the trainer adds}
        optimizer.pt           AdamW state (torch.save of tensors; loads with weights_only=True)
        rng-rank0.json         torch / numpy / python RNG state of each process
    RUN/checkpoints/latest     the name of the newest complete checkpoint directory

A checkpoint directory is written under ``step-N.tmp`` and renamed when complete, then
``latest`` is replaced atomically (write to a temporary file + ``os.replace``); a run killed at
any point leaves the previous checkpoint intact and pointed to. The policy only needs::

    model, config, extra = gato.checkpoint.load("RUN")   # eval mode, on CPU by default
    extra["step"], extra["train_config"]
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from gato.configs import GatoConfig
from gato.model import GatoModel

CHECKPOINTS = "checkpoints"
LATEST = "latest"


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (temporary file in the same directory, then ``os.replace``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def latest(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint directory of a run, or None if it has none.

    ``run_dir`` may also be a checkpoint directory itself (one holding ``config.json``).
    """
    run_dir = Path(run_dir)
    if (run_dir / "model.safetensors").exists():
        return run_dir
    pointer = run_dir / CHECKPOINTS / LATEST
    if not pointer.exists():
        return None
    ckpt = run_dir / CHECKPOINTS / pointer.read_text().strip()
    if not (ckpt / "model.safetensors").exists():
        raise FileNotFoundError(f"{pointer} names {ckpt.name}, which is missing or incomplete")
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


def write_model(ckpt: Path, model: GatoModel, config: GatoConfig) -> None:
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(ckpt / "model.safetensors"), metadata={"config": config.name})
    write_json(ckpt / "config.json", dataclasses.asdict(config))


def commit(run_dir: str | Path, step: int, keep: int = 2) -> Path:
    """Rename the finished temporary directory, point ``latest`` at it, prune old checkpoints."""
    root = Path(run_dir) / CHECKPOINTS
    final = root / f"step-{step:08d}"
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp_dir(run_dir, step), final)
    tmp = root / f".{LATEST}.tmp{os.getpid()}"
    tmp.write_text(final.name)
    os.replace(tmp, root / LATEST)
    done = sorted(p for p in root.glob("step-*") if not p.name.endswith(".tmp"))
    for old in done[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


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
    if diffs:
        raise ValueError(f"checkpoint {where} was trained with another model config: " + "; ".join(diffs)
                         + " (use a new --out directory, or the checkpoint's --config)")


def read_config(ckpt: Path) -> GatoConfig:
    with open(ckpt / "config.json") as f:
        return GatoConfig.from_dict(json.load(f))


def load_weights(ckpt: Path, model: GatoModel) -> None:
    """Load ``model.safetensors`` into ``model``, refusing another config or vocabulary."""
    check_config(read_config(ckpt), model.config, ckpt)
    weights = load_file(str(ckpt / "model.safetensors"))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    bad = [f"{k}: {tuple(v.shape)} vs {shapes.get(k)}" for k, v in weights.items() if shapes.get(k) != tuple(v.shape)]
    if bad or set(weights) != set(shapes):
        raise ValueError(f"checkpoint {ckpt} does not fit the model: shapes {bad[:5]}, "
                         f"missing {sorted(set(shapes) - set(weights))[:5]}, "
                         f"unexpected {sorted(set(weights) - set(shapes))[:5]}")
    model.load_state_dict(weights)


def load(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[GatoModel, GatoConfig, dict[str, Any]]:
    """The newest checkpoint of a run as ``(model in eval mode, its GatoConfig, extra)``.

    ``extra`` holds ``step``, ``train_config`` (dict, or None) and ``path`` (the checkpoint dir).

    Raises:
        FileNotFoundError: the run has no checkpoint.
    """
    ckpt = latest(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir} (expected {Path(run_dir) / CHECKPOINTS / LATEST})")
    config = read_config(ckpt)
    model = GatoModel(config)
    load_weights(ckpt, model)
    model.to(device).eval()
    with open(ckpt / "state.json") as f:
        state = json.load(f)
    train_config = None
    if (ckpt / "train_config.json").exists():
        with open(ckpt / "train_config.json") as f:
            train_config = json.load(f)
    return model, config, {"step": state["step"], "train_config": train_config, "path": str(ckpt), **state}
