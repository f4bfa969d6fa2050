"""Shared test setup: fixtures for a fake env, tiny models and small expert datasets.

The helpers behind them are plain modules, importable from any test: `fakes` (`FakeEnv`,
`RawEnv`, `make_fake_env`) and `tiny` (`tiny_config`, `tiny_model`, `tiny_train_config`).
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_trust_ledger(tmp_path_factory):
    """Pickles written by tests go to a ledger of the session, never the user's (policies.trust)."""
    from policies.trust import LEDGER_ENV

    before = os.environ.get(LEDGER_ENV)
    os.environ[LEDGER_ENV] = str(tmp_path_factory.mktemp("trust") / "written-pickles.sha256")
    yield
    if before is None:
        os.environ.pop(LEDGER_ENV, None)
    else:
        os.environ[LEDGER_ENV] = before


@pytest.fixture
def fake_env():
    """A `fakes.FakeEnv` (Discrete(3) actions; episode length ``3 + seed % 5``)."""
    from fakes import FakeEnv

    return FakeEnv()


@pytest.fixture(scope="session")
def noisy_tiny_model():
    """gato-tiny with large random weights (std 0.3), so that logits depend on the input; eval mode."""
    from tiny import tiny_model

    return tiny_model(seed=0, weight_std=0.3).eval()


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """``small_dataset(task, episodes=2, max_steps=None, policy="expert") -> path``: a recorded dataset.

    Each distinct set of arguments is generated once per session (read-only: do not write into it).
    """
    from datasets_gen.generate import Config, generate

    root = tmp_path_factory.mktemp("datasets")
    made: dict[tuple, str] = {}

    def make(task: str, episodes: int = 2, max_steps: int | None = None, policy: str = "expert") -> str:
        key = (task, episodes, max_steps, policy)
        if key not in made:
            out = root / f"{task}-{policy}-{episodes}-{max_steps}"
            generate(Config(task=task, policy=policy, episodes=episodes, shard_size=episodes, max_steps=max_steps,
                            out=str(out)), "tests")
            made[key] = str(out)
        return made[key]

    return make
