"""Measure search experts: mean return over N episodes per task, cost per step, into the reference file.

Each episode is one `rollout` call (episode ``i`` resets with ``seed + i``, as everywhere), and its
result is appended to ``--results`` as soon as it ends, so a killed run resumes where it stopped.
When a task has all its episodes, its entry ``search_expert`` is written to `eval/references.json`
(return, std, per-episode returns, seconds per step, the policy name with its budget, the
command) beside the published return of the task (`published`), where the field has one.

    python -m eval.measure_search --tasks dmc-cheetah-run procgen-bigfish --episodes 10 \\
        --policy "search:samples=64,horizon=30"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from typing import Any

import numpy as np

def published(task_id: str) -> dict[str, Any] | None:
    """The published return to set beside a search expert's, with its source, or None.

    DMC: the task's ``published`` entry (SAC at 1M steps); Atari and Procgen: the human / R_max anchor.
    """
    from eval.references import REFERENCES_PATH

    with open(REFERENCES_PATH) as f:
        entry = json.load(f)["tasks"].get(task_id, {})
    if "published" in entry:
        return entry["published"]
    anchor = entry.get("expert", {})
    if anchor.get("kind") in ("human", "r_max"):
        return {"return": anchor["return"], "kind": anchor["kind"], "source": anchor.get("source", "")}
    return None


def _load(path: str) -> dict[str, Any]:
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def _save(path: str, data: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def measure(task_id: str, policy: str, episodes: int, seed: int, results: str, max_steps: int | None,
            command: str, write_reference: bool = True) -> dict[str, Any]:
    """Run the missing episodes of ``task_id``; write its reference entry when all are in."""
    from policies.rollout import rollout
    from policies.search import is_search_name, resolved_name

    if is_search_name(policy):  # record the budget it plans with (bare "search": the task's tuned one)
        policy = resolved_name(policy, task_id)
    data = _load(results)
    key = f"{task_id}|{policy}|{seed}|{max_steps}"
    rows = data.setdefault(key, {"task": task_id, "policy": policy, "seed": seed, "max_steps": max_steps,
                                 "episodes": {}})
    for i in range(episodes):
        if str(i) in rows["episodes"]:
            continue
        t0 = time.perf_counter()
        r = rollout(policy, task_id, 1, seed=seed + i, max_steps=max_steps)
        wall = time.perf_counter() - t0
        data = _load(results)  # another task may have been written meanwhile (one process at a time, but be safe)
        rows = data.setdefault(key, rows)
        rows["episodes"][str(i)] = {"return": r.returns[0], "length": r.lengths[0], "seconds": round(wall, 2),
                                    "policy_name": r.policy}
        _save(results, data)
        print(f"{task_id} episode {i}: return {r.returns[0]:.2f}, {r.lengths[0]} steps, "
              f"{1000 * wall / max(r.lengths[0], 1):.1f} ms/step", flush=True)
    eps = [rows["episodes"][str(i)] for i in range(episodes)]
    returns = [e["return"] for e in eps]
    steps = sum(e["length"] for e in eps)
    entry = {
        "return": round(float(np.mean(returns)), 4), "std": round(float(np.std(returns)), 4),
        "episodes": episodes, "seeds": [seed + i for i in range(episodes)],
        "returns": [round(float(x), 4) for x in returns],
        "mean_length": round(steps / episodes, 1),
        "seconds_per_step": round(sum(e["seconds"] for e in eps) / max(steps, 1), 5),
        "policy": policy, "kind": "search", "max_steps": max_steps,
        "source": f"measured {time.strftime('%Y-%m-%d')}: {command} (one process at nice 19 on a shared 2-core "
                  "machine: seconds_per_step is an upper bound)",
    }
    pub = published(task_id)
    if pub is not None:
        entry["published"] = pub
    if write_reference:
        from eval.references import update_references

        update_references({task_id: {"search_expert": entry}})
    return entry


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", required=True, help="registry task ids")
    p.add_argument("--policy", default="search", help="search policy with its budget, e.g. search:samples=64")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="cap on episode length (recorded in the entry)")
    p.add_argument("--results", default="runs/search/episodes.json", help="per-episode results (resume file)")
    p.add_argument("--no-reference", action="store_true", help="do not write eval/references.json")
    a = p.parse_args(argv)
    command = "python -m eval.measure_search " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    for task in a.tasks:
        e = measure(task, a.policy, a.episodes, a.seed, a.results, a.max_steps, command, not a.no_reference)
        pub = e.get("published", {}).get("return")
        print(f"{task}: search {e['return']:.1f} +- {e['std']:.1f} ({e['seconds_per_step'] * 1000:.1f} ms/step)"
              + (f", published {pub}" if pub is not None else ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
