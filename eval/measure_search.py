"""Measure search experts: mean return over N episodes per task, cost per step, into the reference file.

Each episode is one `rollout` call (episode ``i`` resets with ``seed + i``, as everywhere), and its
result is appended to ``--results`` as soon as it ends, so a killed run resumes where it stopped.
When a task has all its episodes, its entry ``search_expert`` is written to `eval/references.json`
(return, std, per-episode returns, seconds per step, the policy name with its budget, the
command) beside the published return of the task where `PUBLISHED` has one.

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

# Published returns to compare with. DMC: CURL paper (Laskin et al. 2020),
# Table 1, "State SAC" at 500k steps. Atari: the human score of the Atari-57 table (already the
# task's `expert` reference). Procgen: Cobbe et al.'s R_max (already the task's `expert` reference).
CURL_STATE_SAC_500K = {
    "dmc-finger-spin": 923, "dmc-cartpole-swingup": 848, "dmc-reacher-easy": 923, "dmc-cheetah-run": 795,
    "dmc-walker-walk": 948, "dmc-ball-in-cup-catch": 974,
}
CURL_SOURCE = "CURL (Laskin et al. 2020, arXiv:2004.04136) Table 1, State SAC at 500k env steps"


def published(task_id: str) -> dict[str, Any] | None:
    """The published return to set beside a search expert's, with its source, or None."""
    if task_id in CURL_STATE_SAC_500K:
        return {"return": CURL_STATE_SAC_500K[task_id], "source": CURL_SOURCE}
    try:
        from eval.references import reference

        ref = reference(task_id)
    except Exception:  # no reference entry: nothing published to compare with
        return None
    if ref.expert_kind in ("human", "r_max"):
        return {"return": ref.expert, "kind": ref.expert_kind, "source": ref.expert_source}
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
