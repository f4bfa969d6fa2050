"""Shared test setup."""

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
