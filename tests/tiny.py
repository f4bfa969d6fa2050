"""Tiny models and training runs for tests (one definition, used by every test file).

    >>> tiny_model().config.name
    'gato-tiny'
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import torch

from gato.configs import GatoConfig, get_config
from gato.model import GatoModel
from gato.train import Config as TrainConfig

SYNTHETIC = ("gato.data:synthetic_source",)
"""A training data source that needs no dataset on disk (`gato.data.synthetic_source`)."""


def tiny_config(**changes: Any) -> GatoConfig:
    """``gato-tiny`` with ``changes`` (e.g. ``max_len=64``)."""
    return dataclasses.replace(get_config("gato-tiny"), **changes)


def tiny_model(seed: int = 0, weight_std: float | None = None, **changes: Any) -> GatoModel:
    """A seeded ``gato-tiny`` (with config ``changes``), in training mode.

    Args:
        seed: torch seed of the initialization.
        weight_std: if given, every weight matrix is redrawn from N(0, weight_std); a large value
            (0.3) makes the logits depend on the input instead of being nearly uniform.
    """
    torch.manual_seed(seed)
    model = GatoModel(tiny_config(**changes))
    if weight_std is not None:
        with torch.no_grad():
            for p in model.parameters():
                if p.ndim >= 2:
                    p.normal_(0.0, weight_std)
    return model


def tiny_train_config(out: Any, **kw: Any) -> TrainConfig:
    """A `gato train` config of a few steps of gato-tiny on synthetic data into ``out``."""
    base = dict(data=SYNTHETIC, out=str(out), config="gato-tiny", sequence_length=64, steps=6, batch_size=3,
                log_every=1, checkpoint_every=2, tensorboard=False, progress=False, threads=1)
    base.update(kw)
    return TrainConfig(**base)


@contextlib.contextmanager
def killed_at_forward(n: int = 5):
    """Inside the block the ``n``-th `GatoModel.forward` call raises KeyboardInterrupt, as a training
    run killed during step ``n`` (its checkpoints so far stay); the real forward is back after."""
    forward, calls = GatoModel.forward, {"n": 0}

    def dies(self, batch, **kw):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt("killed")
        return forward(self, batch, **kw)

    GatoModel.forward = dies
    try:
        yield
    finally:
        GatoModel.forward = forward
