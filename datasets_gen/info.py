"""`gato info DATASET`: a JSON summary of a dataset (the episodes the return filter keeps).

    $ gato info data/demo/babyai-goto-red-ball
    {"task": "babyai-goto-red-ball", "policy": "expert", "episodes": 64, "steps": 401, "return_mean": ..., ...}
    $ gato info data/demo/babyai-goto-red-ball --verify     # + the sha256 of every shard

Every shard gets the quick check (it exists, opens as HDF5, holds its episodes); ``--verify``
compares every shard's sha256 with the dataset's SHA256SUMS. A bad shard is named on stderr and
the exit status is 1 (docs/trust.md).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from datasets_gen.format import METADATA


@dataclass
class Config:
    """Print a JSON summary of a dataset."""

    data: str
    """Dataset directory written by `gato generate` (also the first argument: `gato info DATASET`)."""
    all: bool = False
    """summarize every recorded episode, not only those the return filter keeps."""
    verify: bool = False
    """check every shard against the dataset's SHA256SUMS (sha256 of each file; a dataset written before
    checksums has every shard read whole); exit 1 naming each bad file."""


def summary(path: str, meta: dict[str, Any] | None = None, filtered: bool = True) -> dict[str, Any]:
    """``episodes``, ``steps``, ``return_mean``, ``return_std``, ``task``, ``policy`` (+ filter info)."""
    if meta is None:
        meta_path = os.path.join(path, METADATA)
        if not os.path.exists(meta_path):
            raise FileNotFoundError(f"{meta_path} does not exist: not a finished dataset (rerun its gato generate command)")
        with open(meta_path) as f:
            meta = json.load(f)
    rows = meta["episodes"]
    if filtered:
        kept = set(meta["filter"]["kept"])
        rows = [r for r in rows if r["index"] in kept]
    returns = np.array([r["return"] for r in rows], dtype=np.float64)
    return {
        "task": meta["task_id"], "policy": meta["policy"], "episodes": len(rows),
        "steps": int(sum(r["length"] for r in rows)),
        "return_mean": float(returns.mean()) if len(rows) else None,
        "return_std": float(returns.std()) if len(rows) else None,
        "episodes_recorded": meta["episodes_recorded"], "expert_return": meta["expert_return"],
        "filter": meta["filter"]["enabled"], "path": path,
    }


def main(argv: list[str] | None = None) -> int:
    from envs.commandline import check_dir, parse

    cfg = parse(Config, argv, "gato info", positional=("data",))
    check_dir(cfg.data, "DATASET", "dataset directory")
    verified = verify(cfg.data, "full") if cfg.verify else None
    info = summary(cfg.data, filtered=not cfg.all)
    if not cfg.verify:
        verify(cfg.data, "quick")  # a missing, truncated or overwritten shard fails without --verify too
    print(json.dumps({**info, **({"verified": verified} if verified else {})}))
    return 0


def verify(path: str, mode: str = "full") -> dict[str, Any]:
    """Check every shard (``full``: sha256; ``quick``: exists and opens); each bad file on stderr, then a `ValueError`."""
    from datasets_gen.checksums import verify_dataset
    from datasets_gen.reader import CorruptShardError

    report = verify_dataset(path, mode)
    if not report.ok:
        for line in report.lines():
            print(line, file=sys.stderr)
        raise CorruptShardError(
            f"{len(report.problems)} bad file(s) in {path}: {', '.join(sorted(report.problems))}; rerun the generate "
            f"command in {os.path.join(path, 'config.json')} to regenerate them")
    if not report.checksummed and mode == "full":
        print(f"note: {path} has no SHA256SUMS (written before shard checksums): every shard was read whole instead; "
              "rerun its generate command to record checksums", file=sys.stderr)
    return {"shards": len(report.checked), "by": "sha256" if report.checksummed else "reading every shard"}


if __name__ == "__main__":
    sys.exit(main())
