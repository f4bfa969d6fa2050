"""Reference scores for expert normalization: one data file, `eval/references.json`, failing loudly.

Each task has a ``random`` and an ``expert`` entry, each with its return and its provenance:

- Atari: random and *human* returns of the standard Atari-57 table (``expert.kind == "human"``).
- Procgen: R_min / R_max (easy distribution) of Cobbe et al. 2019.
- DMC: 0 / 1000, the suite's return scale (1000 steps, rewards in [0, 1]).
- BabyAI, Meta-World: the project's own measured returns of the random policy and the scripted
  expert, with the command that measured them (`eval.measure_references`).

Example:
    >>> from eval.references import reference
    >>> ref = reference("atari-pong")
    >>> ref.random, ref.expert
    (-20.7, 14.6)
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from dataclasses import dataclass
from typing import Any

from envs.atomic import atomic_write_json

REFERENCES_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "references.json")


class MissingReferenceError(KeyError):
    """A task has no reference entry (the message lists the closest ids and how to add one)."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Reference:
    """The normalization anchors of one task.

    Attributes:
        task_id: registry id.
        random: return of the random policy (normalized score 0).
        expert: return of the expert (normalized score 1); human for Atari, R_max for Procgen.
        expert_kind: ``"human"``, ``"r_max"``, ``"scale"`` (DMC 1000), ``"scripted"``, ``"sb3"``, ...
        random_source: provenance of ``random`` (paper/table or the exact command).
        expert_source: provenance of ``expert``.
        random_success: measured success rate of the random policy, where measured.
        expert_success: measured success rate of the expert, where measured.
    """

    task_id: str
    random: float
    expert: float
    expert_kind: str
    random_source: str
    expert_source: str
    random_success: float | None = None
    expert_success: float | None = None


def _read(path: str) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float) -> dict[str, Reference]:
    raw = _read(path)
    out = {}
    for task_id, e in raw["tasks"].items():
        r, x = e.get("random"), e.get("expert")
        if r is None or x is None:  # an incomplete entry is missing, not zero
            continue
        out[task_id] = Reference(
            task_id=task_id, random=float(r["return"]), expert=float(x["return"]),
            expert_kind=str(x.get("kind", "")), random_source=str(r.get("source", "")),
            expert_source=str(x.get("source", "")), random_success=r.get("success_rate"),
            expert_success=x.get("success_rate"),
        )
    return out


def load_references(path: str | None = None) -> dict[str, Reference]:
    """All complete entries of the reference file (re-read when the file changes)."""
    path = path or REFERENCES_PATH
    return _load_cached(path, os.path.getmtime(path))


def reference(task_id: str, path: str | None = None) -> Reference:
    """The `Reference` of ``task_id``.

    Raises:
        MissingReferenceError: no complete entry; the message lists the closest ids.
    """
    refs = load_references(path)
    if task_id not in refs:
        close = difflib.get_close_matches(task_id, list(refs), n=3, cutoff=0.6)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise MissingReferenceError(
            f"No reference scores for task {task_id!r} in {path or REFERENCES_PATH}.{hint} Measure them with "
            f"`gato measure-references --tasks {task_id}` (random and expert rollouts), or add an "
            "entry with its source."
        )
    return refs[task_id]


def update_references(entries: dict[str, dict[str, Any]], path: str | None = None) -> None:
    """Merge ``{task_id: {"random": {...}, "expert": {...}}}`` into the file (atomic write).

    Only the given sub-entries are replaced: updating ``expert`` keeps the task's ``random``.
    """
    import fcntl

    path = path or REFERENCES_PATH
    # Measurements of several domains run as separate processes: serialize read-modify-write.
    import hashlib
    import tempfile

    lock_path = os.path.join(tempfile.gettempdir(), f"gato-refs-{hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12]}.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        raw = _read(path) if os.path.exists(path) else {"tasks": {}}
        for task_id, e in entries.items():
            raw["tasks"].setdefault(task_id, {}).update(e)
        raw["tasks"] = dict(sorted(raw["tasks"].items()))
        atomic_write_json(path, raw)


def record_trained_expert(task_id: str, expert: dict[str, Any], path: str | None = None) -> str:
    """Write a trained expert's measured return (its ``expert.json``) into ``eval/references.json``.

    A task without an expert reference (e.g. a BabyAI level the bot cannot solve) gets it as its
    ``expert`` entry (kind ``sb3``). A task that already has one (Atari human scores, the DMC 1000
    scale, scripted experts) keeps it as the normalization anchor, and the trained expert is
    recorded beside it as ``sb3_expert`` so that a weak short-budget run never moves the anchor.

    Returns:
        The sub-entry name written (``"expert"`` or ``"sb3_expert"``).
    """
    entry = {
        "return": round(float(expert["return_mean"]), 4), "std": round(float(expert["return_std"]), 4),
        "episodes": int(expert["episodes"]), "seeds": [int(s) for s in expert["seeds"]],
        "steps": int(expert["steps"]), "kind": f"sb3-{expert['algo']}",
        "source": f"measured {expert['date']}: {expert['command']} (deterministic policy)",
    }
    try:
        reference(task_id, path)
        key = "sb3_expert"
    except MissingReferenceError:
        key = "expert"
    update_references({task_id: {key: entry}}, path)
    return key


def measured_table(domain: str, path: str | None = None) -> str:
    """Markdown table of a measured domain: random and expert success rates and returns per task.

    Tasks whose expert is not above random are marked ``inverted`` (they cannot be normalized).
    """
    raw = _read(path or REFERENCES_PATH)["tasks"]
    rows = ["| task | expert success % | random success % | expert return | random return | note |",
            "| --- | ---: | ---: | ---: | ---: | --- |"]

    def pct(e: dict[str, Any]) -> str:
        return "-" if e.get("success_rate") is None else f"{100 * e['success_rate']:.0f}"

    for task_id, e in raw.items():
        if not task_id.startswith(domain + "-") or "expert" not in e or "random" not in e:
            continue
        x, r = e["expert"], e["random"]
        note = "" if x["return"] > r["return"] else "inverted: expert not above random"
        rows.append(f"| {task_id} | {pct(x)} | {pct(r)} | {x['return']:.3f} | {r['return']:.3f} | {note} |")
    return "\n".join(rows)
