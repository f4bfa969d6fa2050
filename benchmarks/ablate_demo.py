"""Ablations on the demo mixture: does each model and loss choice pay for itself?

Every variant trains gato-small on the demo's datasets (built by `gato demo`) with the demo's
weights and peak learning rate, for the same wall-clock budget on the wall-clock schedule, then
is measured two ways:

1. **held-out loss**: mean target cross-entropy per domain over the same fixed batches for every
   variant (drawn with another seed than training; each target counts once), so lower is better
   at equal CPU time;
2. **closed-loop score**: the expert-normalized score of the Gato policy on the demo's tasks, on the
   demo's held-out seeds (20 episodes, BabyAI 100), with its 95% interval.

Variants: ``full`` (the defaults), ``no-positions`` (no absolute position embedding),
``one-action-embedding`` (every action token shares one embedding), ``token-loss`` (the loss
averaged over targets instead of sequences), ``text-targets`` (the BabyAI mission is a target too),
``multiway`` (modality experts: a feed-forward expert per modality in every block),
``blind-actions`` / ``action-inputs`` (action slots feed no token / their token to the trunk),
``fourier`` / ``blind-fourier`` (continuous-value rows start as Fourier features of the bin),
``value-features`` (continuous-value rows are free rows plus a shared map of the bin's features),
``ema`` / ``value-features-ema`` (evaluated on the average of the weights, ``--ema-decay 0.99``).

    python benchmarks/ablate_demo.py [--minutes 8] [--variants full no-positions] [--seeds 0 1 2] [--tasks ...]

Each variant's run and evaluation are cached under ``--out``; a stopped run resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from envs import domain_of
from envs.atomic import atomic_write_json
from eval.evaluate import EvalConfig, evaluate, write_eval_report
from gato import checkpoint
from gato import data as gdata
from gato.configs import CONFIGS, get_config
from gato.demo import DEFAULT_SUITE, EVAL_EPISODES, DemoConfig, train_weights
from gato.train import Config as TrainConfig, train
from policies.rollout import load_results, save_results

# variant -> (model config changes, trainer config changes)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "full": ({}, {}),
    "no-positions": ({"absolute_positions": False}, {}),
    "one-action-embedding": ({"action_positions": 1}, {}),
    "token-loss": ({}, {"loss_reduction": "token"}),
    "text-targets": ({}, {"observation_text_targets": True}),
    "multiway": ({"modality_experts": True}, {}),
    "blind-actions": ({"action_token_inputs": False}, {}),
    "action-inputs": ({"action_token_inputs": True}, {}),
    "blind-fourier": ({"action_token_inputs": False, "value_embedding_init": "fourier"}, {}),
    "fourier": ({"value_embedding_init": "fourier"}, {}),
    "value-features": ({"value_features": 32}, {}),
    "value-features-zero": ({"value_features": 32, "value_embedding_init": "zero"}, {}),
    "ema": ({}, {"ema_decay": 0.99}),
    "value-features-ema": ({"value_features": 32}, {"ema_decay": 0.99}),
    "episode-starts": ({}, {"episode_start_prob": 0.5}),
}


def held_out_loss(model, sources, weights: dict[str, float], batches: int, batch_size: int) -> dict[str, float]:
    """Mean target cross-entropy per domain over fixed batches (seed 12345, not a training seed)."""
    mixture = gdata.Mixture(sources, model.config.max_len, weights, seed=12_345)
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    model.eval()
    with torch.inference_mode():
        for step in range(batches):
            _, metrics = model(mixture.batch(step, batch_size), reduction="token")
            for key, value in metrics.items():
                if key.startswith("loss_sum/"):
                    d = key.split("/", 1)[1]
                    sums[d] = sums.get(d, 0.0) + float(value)
                    counts[d] = counts.get(d, 0.0) + float(metrics[f"targets/{d}"])
    return {d: sums[d] / counts[d] for d in sorted(sums) if counts[d]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ablate_demo", description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=8.0, help="training wall clock per variant")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--tasks", nargs="+", default=list(DEFAULT_SUITE), help="demo tasks (their datasets must exist)")
    ap.add_argument("--eval-tasks", nargs="*", default=None, help="closed-loop tasks (default: --tasks)")
    ap.add_argument("--data", default=DemoConfig.data, help="the demo datasets, one per task")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--loss-batches", type=int, default=24)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="training seeds; each variant trains once per seed (run NAME, or NAME-seedS for S != 0)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/ablate")
    args = ap.parse_args(argv)

    demo = DemoConfig(tasks=tuple(args.tasks))
    datasets = {t: os.path.join(args.data, t) for t in args.tasks}
    missing = [p for p in datasets.values() if not os.path.isfile(os.path.join(p, "metadata.json"))]
    if missing:
        raise SystemExit(f"error: no finished dataset at {missing}; run `gato demo` once to build them")
    data = [*datasets.values(), "gato.multimodal:vl_text_sources"]
    weights = train_weights(demo, datasets)
    torch.set_num_threads(args.threads)
    base = get_config(demo.config)
    table = Path(args.out) / "ablation.json"  # rows of earlier invocations stay
    rows = json.loads(table.read_text()) if table.exists() else {}
    for variant, seed in [(v, s) for v in args.variants for s in args.seeds]:
        model_changes, train_changes = VARIANTS[variant]
        config_name = f"{base.name}/{variant}"
        CONFIGS[config_name] = dataclasses.replace(base, name=config_name, **model_changes)
        name = variant if seed == 0 else f"{variant}-seed{seed}"
        run = Path(args.out) / name
        t0 = time.perf_counter()
        train(TrainConfig(data=tuple(data), out=str(run), config=config_name, steps=10**9, seed=seed,
                          batch_size=demo.batch_size, lr=demo.lr, time_budget=60 * args.minutes,
                          checkpoint_every=10**9, checkpoint_minutes=2.0, log_every=20, domain_weights=weights,
                          threads=args.threads, tensorboard=False, progress=False, **train_changes))
        loaded = checkpoint.load(run)
        sources = gdata.build_sources(data, base.max_len)
        losses = held_out_loss(loaded.model, sources, weights, args.loss_batches, demo.batch_size)
        results = []
        for task_id in args.eval_tasks if args.eval_tasks is not None else args.tasks:
            cached = run / f"eval.{task_id}.json"
            if cached.exists():
                results += load_results(str(cached))
                continue
            n = EVAL_EPISODES.get(domain_of(task_id), args.episodes)
            ecfg = EvalConfig(checkpoint=str(run), tasks=(task_id,), episodes=n, seed=demo.seed, num_envs=min(n, 50),
                              prompt_data=(datasets[task_id],),
                              max_steps=demo.atari_eval_steps if domain_of(task_id) == "atari" else None)
            rs, _ = evaluate(ecfg, loaded, log=lambda *_: None)
            save_results(str(cached), rs)
            results += rs
        info = {"checkpoint": str(run), "checkpoint_step": loaded.step, "trained_tasks": sorted(datasets),
                "trained_domains": sorted({domain_of(t) for t in datasets}), "unseen_domain_tasks": [], "seconds": {}}
        report, _ = write_eval_report(results, str(run / "report.json"), info)
        scores = {t.task_id: (t.normalized, *t.normalized_ci) for t in report.tasks}
        rows[name] = {"steps": loaded.step, "held_out_loss": losses, "normalized": scores,
                      "at_least_half": int(sum(s[0] >= 0.5 for s in scores.values())),
                      "minutes": round((time.perf_counter() - t0) / 60, 1)}
        print(f"{name}: {rows[name]}", flush=True)
        atomic_write_json(table, rows)

    domains = sorted({d for r in rows.values() for d in r["held_out_loss"]})
    tasks = sorted({t for r in rows.values() for t in r["normalized"]})
    print(f"\n{args.minutes:g} training minutes per variant, {args.threads} threads, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| variant | steps | " + " | ".join(f"loss {d}" for d in domains) + " | "
          + " | ".join(tasks) + " | >= 50% |")
    print("| --- | ---: |" + " ---: |" * (len(domains) + len(tasks) + 1))
    for name, r in rows.items():
        losses = " | ".join(f"{r['held_out_loss'].get(d, np.nan):.3f}" for d in domains)
        scores = " | ".join(
            f"{100 * r['normalized'][t][0]:.0f} [{100 * r['normalized'][t][1]:.0f}, {100 * r['normalized'][t][2]:.0f}]"
            if t in r["normalized"] else "-" for t in tasks)
        print(f"| {name} | {r['steps']} | {losses} | {scores} | {r['at_least_half']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
