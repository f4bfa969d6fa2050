"""Closed-loop score of one checkpoint under every decoding mode of the Gato policy.

Each task of the demo suite is evaluated on the same held-out seeds with each decoding mode that
applies to its action type (discrete: sample, argmax; continuous: sample, argmax, mean, median),
and the table gives the expert-normalized score with its 95% interval per (task, mode). The
policy's default decoding (`gato.policy.DEFAULT_DECODING`) is chosen from this table.

    python benchmarks/compare_decoding.py --checkpoint runs/demo/model --data data/demo-suite \
        [--tasks ...] [--episodes 20] [--out runs/decoding]

Results are cached per (task, mode) under ``--out``, so a stopped run resumes.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from _common import write_json

from envs import domain_of
from eval.evaluate import EvalConfig, evaluate, write_eval_report
from gato import checkpoint
from gato.demo import DEFAULT_SUITE, EVAL_EPISODES
from gato.policy import DECODING_MODES
from policies.rollout import load_results, save_results

DISCRETE_DOMAINS = {"babyai", "atari", "procgen"}


def modes_for(task_id: str) -> list[str]:
    """The decoding modes that apply to a task's action type."""
    return ["sample", "argmax"] if domain_of(task_id) in DISCRETE_DOMAINS else list(DECODING_MODES)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="compare_decoding", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="runs/demo/model")
    ap.add_argument("--data", default="data/demo-suite", help="one expert dataset per task (the prompts)")
    ap.add_argument("--tasks", nargs="+", default=list(DEFAULT_SUITE))
    ap.add_argument("--episodes", type=int, default=20, help="per task (BabyAI: the demo's count)")
    ap.add_argument("--seed", type=int, default=10_000)
    ap.add_argument("--atari-steps", type=int, default=2000, help="cap on Atari episodes, as in the demo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/decoding")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    loaded = checkpoint.load(args.checkpoint)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for task_id in args.tasks:
        kind = "discrete" if domain_of(task_id) in DISCRETE_DOMAINS else "continuous"
        n = EVAL_EPISODES.get(domain_of(task_id), args.episodes)
        for mode in modes_for(task_id):
            cached = out / f"{task_id}.{mode}.json"
            if cached.exists():
                results += load_results(str(cached))
                continue
            t0 = time.perf_counter()
            cfg = EvalConfig(checkpoint=args.checkpoint, tasks=(task_id,), episodes=n, seed=args.seed,
                             num_envs=min(n, 50), prompt_data=(os.path.join(args.data, task_id),),
                             max_steps=args.atari_steps if domain_of(task_id) == "atari" else None,
                             **{f"{kind}_decoding": mode})
            rs, _ = evaluate(cfg, loaded, log=lambda *_: None)
            for r in rs:
                r.policy = f"gato:{mode}"
            save_results(str(cached), rs)
            results += rs
            print(f"{task_id:28s} {mode:7s} mean return {rs[0].mean_return:10.3f} ({time.perf_counter() - t0:.0f}s)",
                  flush=True)
    info = {"checkpoint": args.checkpoint, "checkpoint_step": loaded.step, "trained_tasks": [],
            "trained_domains": [], "unseen_domain_tasks": [], "seconds": {}}
    report, paths = write_eval_report(results, str(out / "report.json"), info)
    print("\n| task | " + " | ".join(DECODING_MODES) + " |\n| --- |" + " ---: |" * len(DECODING_MODES))
    rows: dict[str, dict[str, str]] = {}
    for t in report.tasks:
        mode = t.policy.split(":", 1)[1]
        lo, hi = t.normalized_ci
        rows.setdefault(t.task_id, {})[mode] = f"{100 * t.normalized:.0f} [{100 * lo:.0f}, {100 * hi:.0f}]"
    for task_id, cells in rows.items():
        print(f"| {task_id} | " + " | ".join(cells.get(m, "-") for m in DECODING_MODES) + " |")
    print(f"\nexpert-normalized %, 95% interval over episodes; checkpoint step {loaded.step}; "
          f"load average {os.getloadavg()[0]:.1f}; wrote {paths['json']}")
    write_json(out / "table.json", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
