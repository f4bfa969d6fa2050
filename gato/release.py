"""`gato release`: the CPU generalist trained on every task that has an expert, evaluated, and released.

    gato release --name gato-small-cpu            # data, <= 2 h of training, evaluation, releases/gato-small-cpu/
    gato release --smoke                          # the seconds-long version the tests run
    gato eval --checkpoint releases/gato-small-cpu --tasks metaworld-reach   # from any clone, no training

Tasks (`datasets_gen.suite.expert_tasks`, the suite of `gato generate
--suite experts`): every task with an expert in the project: the BabyAI levels whose bot success
measured in ``eval/references.json`` is at least ``--babyai-min-success``, all 50 Meta-World tasks
(scripted experts), the tasks of the SB3 zoo (``policies/zoo``: DMC) and the Atari games with a
RAM-scripted expert (`policies.atari_ram`). A task whose expert turns out to be missing is skipped
with a note.

Stages, each resumable (rerunning the same command continues where it stopped), as in `gato demo`:

1. **data**: one expert dataset per task under ``--data`` (`datasets_gen.suite.build_datasets`, what
   `gato generate --suite experts` runs), tasks spread over ``--workers`` processes; a finished
   dataset is reused, an unfinished one resumes its shards.
2. **train**: `gato train` on all of them in a subprocess on the trainer's wall-clock schedule
   (``--time-budget``, ``--minutes``); it checkpoints every few minutes, so a stopped run resumes.
3. **assemble**: the last checkpoint's weights (safetensors), model config, trainer config and
   state, with ``SHA256SUMS``, plus one small prompt dataset per task (``prompts/<task>/``: the
   first timesteps of the dataset's best episode, which is what the policy prompts with) go to
   ``--out`` (``releases/<name>/``). `eval.evaluate` reads a checkpoint directory's ``prompts/``
   first, so the release evaluates from a fresh clone without ``data/``.
4. **eval**: the release itself (exactly what ``gato eval --checkpoint <release>`` loads) rolled
   out on held-out seeds, tasks spread over ``--workers`` processes; results cached per task and
   checkpoint step in ``<work>/eval/``.
5. **report**: `eval.report`'s per-task table, per-domain aggregates and the Figure-5 curve
   (``report.json/.md/.png`` and ``report.results.json``) inside the release, and its README.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from datasets_gen import suite
from datasets_gen.suite import DATA_EPISODES, DOMAIN_ORDER, SHARD_SIZE  # noqa: F401  (the release's defaults)
from envs import domain_of
from envs.atomic import atomic_write_json, atomic_write_text

FORMAT = "gato-release-v1"
MAX_CHECKPOINT_BYTES = 50 * 10**6
"""A release's ``model.safetensors`` must not exceed 50 MB (fp32 weights: 12.5M parameters)."""
SMOKE_TASKS = ("metaworld-reach", "dmc-cartpole-balance")
RELEASE_FILES = ("model.safetensors", "config.json", "state.json", "train_config.json")
"""The checkpoint files a release carries (no optimizer or RNG state), listed in its ``SHA256SUMS``."""
PROMPTS = "prompts"  # eval.evaluate.BUNDLED_PROMPTS


@dataclass
class ReleaseConfig:
    """`gato release`: expert data for every task with an expert, train the CPU model, evaluate each task,
    and write releases/<name>/ (safetensors checkpoint, prompts, per-task table, aggregates, curve)."""

    name: str = "gato-small-cpu"
    """Release name: the release goes to releases/<name>, the work files to runs/release-<name>."""
    minutes: float = 120.0
    """Wall-clock training budget in minutes (data generation and evaluation come on top)."""
    config: str = "gato-small-blind"
    """Model config (gato.configs.CONFIGS); its fp32 weights must fit in 50 MB (gato-small and
    gato-small-blind: 5.4M parameters, 21 MB; gato-demo 38 MB; the published sizes do not fit). The
    default is the demo's: action slots feed only their positions, which keeps the Meta-World arm's
    closed loop from copying its own action history (docs/results.md)."""
    tasks: tuple[str, ...] = ()
    """Task ids to release (default: every task with an expert, see the module docstring)."""
    babyai_min_success: float = 0.5
    """A BabyAI level is released when its bot's measured success (eval/references.json) is at least this."""
    data_episodes: dict[str, int] = dataclasses.field(default_factory=lambda: dict(DATA_EPISODES))
    """Expert episodes per task, by domain (e.g. --data-episodes babyai 200 metaworld 100 dmc 20 atari 4)."""
    eval_episodes: int = 20
    """Evaluation episodes per task (held-out seeds)."""
    seed: int = 10_000
    """Evaluation episode i resets with seed + i (the datasets use seeds 0..N-1)."""
    out: str | None = None
    """Release directory (default releases/<name>)."""
    work: str | None = None
    """Work directory: model/ (training checkpoints), eval/ (cached results), logs (default runs/release-<name>)."""
    data: str = "data/release"
    """Where the expert datasets go, one directory per task (finished ones are reused)."""
    workers: int = 2
    """Processes for data generation and evaluation (tasks are spread over them)."""
    threads: int = 2
    """torch CPU threads of training (each evaluation process gets threads / workers, at least 1)."""
    batch_size: int = 8
    """Training sequences per step."""
    lr: float | None = 2e-3
    """Peak learning rate (None: the model config's); warm-up is the trainer's 1.5% of the schedule."""
    domain_weights: dict[str, float] = dataclasses.field(default_factory=dict)
    """Sampling weight per domain; a domain not named gets the square root of its number of tasks
    (tasks of a domain are equally likely, so each task keeps a share between uniform-per-domain
    and uniform-per-task)."""
    train_steps: int | None = None
    """Train a fixed number of steps instead of the wall-clock budget (smoke runs)."""
    max_steps: int | None = None
    """Cap on episode length for data and evaluation (smoke runs; scores then are not comparable)."""
    atari_eval_steps: int = 2000
    """Cap on Atari evaluation episodes (agent steps): Pong's expert plays ~14k-step episodes; a cut
    episode scores what it scored until then (the report says so)."""
    baselines: bool = False
    """Also roll out the expert and random policies on the evaluation seeds (rows of the table)."""
    smoke: bool = False
    """Seconds-long end-to-end run: gato-tiny, two tasks, 2 short episodes each, a few training steps."""
    force: bool = False
    """Write into an --out, --work or --data that holds another command's files, or replace a
    finished release that this work directory did not make."""


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


def default_paths(cfg: ReleaseConfig) -> ReleaseConfig:
    return dataclasses.replace(cfg, out=cfg.out or os.path.join("releases", cfg.name),
                               work=cfg.work or os.path.join("runs", f"release-{cfg.name}"))


def smoke_config(cfg: ReleaseConfig) -> ReleaseConfig:
    """The tiny settings of ``--smoke`` (its own name, data and directories unless given)."""
    name = "smoke" if cfg.name == ReleaseConfig.name else cfg.name
    return dataclasses.replace(
        cfg, name=name, tasks=cfg.tasks or SMOKE_TASKS, config="gato-tiny", minutes=min(cfg.minutes, 1.0),
        data_episodes={d: 2 for d in DATA_EPISODES}, eval_episodes=min(cfg.eval_episodes, 2),
        data="data/release-smoke" if cfg.data == ReleaseConfig.data else cfg.data,
        out=cfg.out or os.path.join("runs", f"release-{name}", "release"),
        threads=1, batch_size=4, train_steps=cfg.train_steps or 6, max_steps=cfg.max_steps or 30)


def checkpoint_bytes(config_name: str) -> int:
    """Bytes of the fp32 weights of a model config (the size of its ``model.safetensors``, give or take the header)."""
    from gato.configs import get_config
    from gato.model import count_parameters

    return 4 * count_parameters(get_config(config_name))


def data_dir(cfg: ReleaseConfig, task_id: str) -> str:
    return os.path.join(cfg.data, task_id)


def expert_configs(cfg: ReleaseConfig, tasks: list[str]) -> list:
    """The `gato generate` config of each task's expert dataset under ``--data`` (`datasets_gen.suite.dataset_plan`)."""
    return [suite.expert_config(t, n, shard, data_dir(cfg, t), cfg.max_steps)
            for t, n, shard in suite.dataset_plan(tasks, cfg.data_episodes)]


SHAPING = ("config", "data", "data_episodes", "babyai_min_success", "tasks_resolved", "batch_size", "lr",
           "domain_weights", "minutes", "train_steps", "max_steps")
"""Options that shape the data or the training: a rerun must keep them to resume its work directory."""


def check_config(cfg: ReleaseConfig) -> tuple[ReleaseConfig, list[str], dict[str, str]]:
    """Validate ``cfg`` before anything is written; returns it (with paths), its tasks and the left-out ones."""
    import envs
    from envs.commandline import (CommandError, UsageError, at_least, changed_options, check_out_dir, check_task,
                                  in_range)
    from gato.configs import get_config

    if not cfg.name or "/" in cfg.name or cfg.name.startswith("."):
        raise UsageError(f"--name {cfg.name!r}: give a plain directory name (no '/', not starting with '.')")
    cfg = default_paths(cfg)
    for task_id in cfg.tasks:
        check_task(task_id, "--tasks")
    try:
        get_config(cfg.config)
    except KeyError as e:
        raise UsageError(f"--config {cfg.config}: {e.args[0]}") from None
    size = checkpoint_bytes(cfg.config)
    if size > MAX_CHECKPOINT_BYTES:
        raise UsageError(f"--config {cfg.config}: its fp32 weights take {size / 1e6:.0f} MB, over the release's "
                         f"{MAX_CHECKPOINT_BYTES / 1e6:.0f} MB; use gato-small or gato-demo")
    for flag, value, low in (("--eval-episodes", cfg.eval_episodes, 1), ("--workers", cfg.workers, 1),
                             ("--threads", cfg.threads, 1), ("--batch-size", cfg.batch_size, 1),
                             ("--train-steps", cfg.train_steps, 1), ("--max-steps", cfg.max_steps, 1),
                             ("--atari-eval-steps", cfg.atari_eval_steps, 1)):
        at_least(value, low, flag)
    if not cfg.minutes > 0:
        raise UsageError(f"--minutes {cfg.minutes}: must be above 0")
    in_range(cfg.babyai_min_success, 0.0, 1.0, "--babyai-min-success")
    for flag, table in (("--data-episodes", cfg.data_episodes), ("--domain-weights", cfg.domain_weights)):
        for domain, value in table.items():
            if domain not in envs.DOMAINS:
                raise UsageError(f"{flag} {domain}: unknown domain; the domains are {', '.join(envs.DOMAINS)}")
            at_least(value, 1 if flag == "--data-episodes" else 0, f"{flag} {domain}")
    if cfg.tasks:
        tasks, left_out = list(dict.fromkeys(cfg.tasks)), {}
    else:
        tasks, left_out = suite.expert_tasks(cfg.babyai_min_success)
    resuming = check_out_dir(cfg.work, "release", force=cfg.force, flag="--work")
    stored = Path(cfg.work) / "release_config.json"
    if resuming and stored.is_file():
        before = json.loads(stored.read_text())
        if not cfg.tasks and before.get("tasks_resolved") and before["tasks_resolved"] != tasks:
            # The tasks are fixed at the first run: experts added to the project since then do not
            # change a release under way (a new --name takes them in).
            added = sorted(set(tasks) - set(before["tasks_resolved"]))
            tasks = list(before["tasks_resolved"])
            left_out = {t: why for t, why in left_out.items() if t not in tasks}
            if added:
                print(f"note: resuming {cfg.work} on its {len(tasks)} tasks; {len(added)} task(s) got an expert "
                      f"since it started ({', '.join(added[:5])}{', ...' if len(added) > 5 else ''}); "
                      "give a new --name to include them", file=sys.stderr)
        now = {**asdict(cfg), "tasks_resolved": tasks}
        diffs = changed_options({k: before.get(k) for k in SHAPING}, {k: now[k] for k in SHAPING})
        if diffs:
            shown = "; ".join(f"{k.replace('_resolved', '')} was {a!r}, now {b!r}" for k, (a, b) in diffs.items())
            raise CommandError(f"--work {cfg.work} was started with other options ({shown}); rerun with the stored "
                               "options to resume it, or give another --name (or --work)")
    release_exists = check_out_dir(cfg.out, "release", force=cfg.force)
    if release_exists and not resuming and not cfg.force:
        raise CommandError(f"--out {cfg.out} holds a finished release that --work {cfg.work} did not make; give "
                           "another --name or --out (or --force to replace it)")
    suite.check_datasets(expert_configs(cfg, tasks), force=cfg.force,
                         flag="--data", root=cfg.data)
    return cfg, tasks, left_out


# ---------------------------------------------------------------------------------------------
# Stage 1: data
# ---------------------------------------------------------------------------------------------


PRELOAD = ("gato.release", "envs", "datasets_gen.generate", "eval.evaluate")
"""What the worker processes of data generation and evaluation import once (`datasets_gen.suite.in_processes`)."""


def build_datasets(cfg: ReleaseConfig, tasks: list[str], log=print) -> tuple[dict[str, str], dict[str, str]]:
    """Stage 1: ``({task: dataset path}, {task: why skipped})``; tasks spread over ``workers`` processes."""
    outcomes = suite.build_datasets(expert_configs(cfg, tasks), workers=cfg.workers, where=cfg.data, log=log,
                                    preload=PRELOAD)
    skipped = {t: r["skip"] for t, r in outcomes.items() if "skip" in r}
    paths = {t: data_dir(cfg, t) for t in tasks if t not in skipped}
    return paths, skipped


# ---------------------------------------------------------------------------------------------
# Stage 2: training
# ---------------------------------------------------------------------------------------------


def train_weights(cfg: ReleaseConfig, datasets: dict[str, str]) -> dict[str, float]:
    """The trainer's ``--domain-weights``: given ones, else the square root of each domain's task count."""
    counts = suite.count_by_domain(datasets)
    return {d: float(cfg.domain_weights.get(d, round(math.sqrt(n), 3))) for d, n in counts.items()}


def train_model(cfg: ReleaseConfig, datasets: dict[str, str], log=print) -> Path:
    """Stage 2: `gato train` in a subprocess on a wall-clock schedule of ``minutes`` (``--time-budget``).

    The budget is fixed on the first run and saved in ``release_state.json``: a rerun resumes the
    same schedule from the last checkpoint (the trainer counts the seconds already spent).
    """
    from gato.train import run_stage, stage_schedule

    work = Path(cfg.work)
    run = work / "model"
    budget, schedule = stage_schedule(run, work / "release_state.json", cfg.minutes * 60, cfg.train_steps,
                                      checkpoint_minutes=5, log_every=50)
    if schedule is None:
        log(f"train: already done ({run})")
        return run
    weights = train_weights(cfg, datasets)
    cmd = [sys.executable, "-m", "gato.train", "--data", *datasets.values(), "--out", str(run), "--config", cfg.config,
           *schedule, "--batch-size", str(cfg.batch_size), "--threads", str(cfg.threads),
           "--no-progress", "--no-tensorboard",
           "--domain-weights", *[x for k, v in weights.items() for x in (k, str(v))]]
    if cfg.lr is not None:
        cmd += ["--lr", str(cfg.lr)]
    what = f"{cfg.train_steps} steps" if cfg.train_steps is not None else f"{budget / 60:.1f} min"
    log(f"train: {what} on {len(datasets)} tasks, domain weights {weights} (log: {work / 'train.log'})")
    rc, last = run_stage(cmd, run, work / "train.log", cfg.threads, timeout=max(60.0, 1.2 * budget + 600.0))
    log(f"train: {'finished' if rc == 0 else 'stopped at the time limit'} at {last}")
    return run


# ---------------------------------------------------------------------------------------------
# Stage 3: the release directory
# ---------------------------------------------------------------------------------------------


def prompt_timesteps(config_name: str) -> int:
    """Timesteps kept of each prompt episode: half the model's context in timesteps, twice what the
    longest prompt reads (the prompt takes at most half the context, a timestep has at least 2 slots)."""
    from gato.configs import get_config

    return get_config(config_name).max_len // 2


def write_prompt_dataset(source: str, out: Path, timesteps: int) -> dict[str, Any]:
    """A one-episode dataset at ``out``: the first ``timesteps`` steps of the best kept episode of ``source``.

    The best episode (highest return among those the filter keeps) is the one `gato.policy.load_prompt`
    prompts with, and the prompt is taken from its start, so the release prompts exactly as the
    training datasets would. Returns the new dataset's metadata.
    """
    import h5py
    import numpy as np

    from datasets_gen import checksums
    from datasets_gen.format import METADATA, shard_name, write_episode
    from datasets_gen.reader import open_dataset
    from policies.trust import sha256_file

    with open_dataset(source) as ds:
        best = int(np.argmax(ds.returns))
        index = int(ds.indices[best])
        n = ds.episode_length(best)
        k = min(n, timesteps)
        ep = ds.window(best, 0, k)
        src_meta = ds.metadata
    row = next(r for r in src_meta["episodes"] if r["index"] == index)
    truncations = np.asarray(ep.truncations, bool).copy()
    if k < n:
        truncations[-1] = True
    ep = dataclasses.replace(ep, truncations=truncations)
    ret = float(np.sum(ep.rewards, dtype=np.float64))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shard = shard_name(0)
    with h5py.File(out / shard, "w") as f, h5py.File(os.path.join(source, row["shard"]), "r") as src:
        f.attrs.update({k_: v for k_, v in src.attrs.items()})
        f.attrs.update(shard=0, first_episode=0, num_episodes=1)
        success = row.get("success")
        write_episode(f, 0, ep, {"index": 0, "seed": row["seed"], "return": ret, "length": k,
                                 "success": -1 if success is None else int(success)})
    checksums.record(str(out), shard, checksums.shard_digest(str(out / shard)))
    meta = {key: src_meta[key] for key in ("format", "task_id", "domain", "policy", "policy_name", "policy_version",
                                           "deterministic", "max_steps", "observation_space", "action_space",
                                           "versions") if key in src_meta}
    meta.update({
        "seed": row["seed"], "seeds": [row["seed"]], "episodes_recorded": 1, "steps_recorded": k, "shard_size": 1,
        "shards": [shard], "returns": [ret], "expert_return": src_meta.get("expert_return"),
        "expert_return_source": f"the source dataset's: {src_meta.get('expert_return_source')}",
        "expert_window": src_meta.get("expert_window"),
        "command": (f"gato release: the first {k} of {n} timesteps of episode {index} (seed {row['seed']}, return "
                    f"{row['return']:.4g}), the best kept episode of the dataset made by: {src_meta.get('command')}"),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "filter": {"enabled": False, "fraction": None, "threshold": None, "kept": [0]},
        "episodes": [{"index": 0, "seed": row["seed"], "return": ret, "length": k, "success": row.get("success"),
                      "shard": shard}],
        "prompt_source": {"episode": index, "length": n, "timesteps": k, "return": row["return"],
                          "dataset_episodes": src_meta.get("episodes_recorded")},
    })
    atomic_write_json(out / METADATA, meta)
    checksums.record(str(out), METADATA, sha256_file(str(out / METADATA)))
    return meta


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def assemble(cfg: ReleaseConfig, run: Path, datasets: dict[str, str], skipped: dict[str, str],
             left_out: dict[str, str], command: str, log=print) -> Path:
    """Stage 3: the release directory ``cfg.out`` from the last checkpoint of ``run`` (kept if already made from it)."""
    from gato import checkpoint
    from gato.model import count_parameters
    from policies.trust import sha256_file, write_sums

    ckpt = checkpoint.latest(run)
    checkpoint.verify(ckpt)
    step = checkpoint.read_state(ckpt)["step"]
    rel = Path(cfg.out)
    info_path = rel / "release.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        if info.get("checkpoint_step") == step and sorted(info.get("tasks", [])) == sorted(datasets):
            return rel
    size = (ckpt / "model.safetensors").stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise RuntimeError(f"{ckpt / 'model.safetensors'} holds {size / 1e6:.1f} MB, over the release's "
                           f"{MAX_CHECKPOINT_BYTES / 1e6:.0f} MB")
    tmp = rel.with_name(f".{rel.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in RELEASE_FILES:
        if (ckpt / name).exists():
            shutil.copy2(ckpt / name, tmp / name)
    write_sums(tmp / "SHA256SUMS", {name: sha256_file(tmp / name) for name in RELEASE_FILES if (tmp / name).exists()})
    k = prompt_timesteps(cfg.config)
    for task_id, path in datasets.items():
        write_prompt_dataset(path, tmp / PROMPTS / task_id, k)
    state = checkpoint.read_state(ckpt)
    config = checkpoint.read_config(ckpt)
    info = {
        "format": FORMAT, "name": cfg.name, "created": time.strftime("%Y-%m-%d %H:%M:%S"), "command": command,
        "git_commit": git_commit(), "model_config": cfg.config, "parameters": count_parameters(config),
        "checkpoint_bytes": size, "checkpoint_step": step,
        "train_seconds": round(float(state.get("train_seconds", 0.0)), 1),
        "train_budget_minutes": None if cfg.train_steps is not None else cfg.minutes,
        "train_weights": train_weights(cfg, datasets), "batch_size": cfg.batch_size, "lr": cfg.lr,
        "tasks": sorted(datasets, key=suite.task_order), "skipped": skipped, "left_out": left_out,
        "data_episodes": {t: n for t, n, _ in suite.dataset_plan(list(datasets), cfg.data_episodes)},
        "prompt_timesteps": k,
        "evaluation": {"episodes": cfg.eval_episodes, "seed": cfg.seed,
                       "max_steps": {t: eval_max_steps(cfg, t) for t in datasets if eval_max_steps(cfg, t)}},
        "evaluate_with": f"gato eval --checkpoint {cfg.out} --tasks <task>",
    }
    atomic_write_json(tmp / "release.json", info)
    shutil.rmtree(rel, ignore_errors=True)
    os.replace(tmp, rel)
    log(f"release: {rel} (step {step}, model {size / 1e6:.1f} MB, {len(datasets)} prompt datasets, "
        f"{suite.dir_bytes(rel) / 1e6:.1f} MB in all)")
    return rel


# ---------------------------------------------------------------------------------------------
# Stage 4: evaluation
# ---------------------------------------------------------------------------------------------


def eval_max_steps(cfg: ReleaseConfig, task_id: str) -> int | None:
    """The evaluation episode cap of a task (``max_steps``; Atari also ``atari_eval_steps``)."""
    caps = [c for c in (cfg.max_steps, cfg.atari_eval_steps if domain_of(task_id) == "atari" else None) if c]
    return min(caps) if caps else None


_LOADED: dict[str, Any] = {}  # per evaluation process: the release's model, loaded once


def _eval_task(job: dict[str, Any]) -> str:
    """Roll the release out on one task (in a worker process); write the results to ``job["cache"]``."""
    import torch

    from envs.commandline import log
    from eval.evaluate import EvalConfig, evaluate
    from gato import checkpoint
    from policies.rollout import save_results

    torch.set_num_threads(job["threads"])
    key = (job["checkpoint"], job["step"])
    if key not in _LOADED:
        _LOADED[key] = checkpoint.load(job["checkpoint"])
    ecfg = EvalConfig(checkpoint=job["checkpoint"], tasks=(job["task"],), episodes=job["episodes"], seed=job["seed"],
                      num_envs=min(job["episodes"], 50), max_steps=job["max_steps"], progress=False)
    results, info = evaluate(ecfg, _LOADED[key], log=log)
    save_results(job["cache"], results, config={"seconds": info["seconds"], "checkpoint_step": info["checkpoint_step"],
                                                "settings": job["settings"]})
    return job["cache"]


def eval_settings(cfg: ReleaseConfig, task_id: str) -> dict[str, Any]:
    """What a cached evaluation of a task must have used to be reused."""
    return {"episodes": cfg.eval_episodes, "seed": cfg.seed, "max_steps": eval_max_steps(cfg, task_id)}


def _cached_settings(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())["config"]["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def evaluate_release(cfg: ReleaseConfig, rel: Path, tasks: list[str], step: int, log=print):
    """Stage 4: the release on every task (cached per task and step); returns (results, seconds per task)."""
    from policies.rollout import load_results

    cache_dir = Path(cfg.work) / "eval"
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = {t: cache_dir / f"{t}.step{step}.json" for t in tasks}
    todo = [t for t in tasks if eval_settings(cfg, t) != _cached_settings(cache[t])]
    if len(todo) < len(tasks):
        log(f"eval: {len(tasks) - len(todo)} of {len(tasks)} tasks cached in {cache_dir}")
    # the longest episodes first, so that the processes finish together
    todo.sort(key=lambda t: (-suite.task_order(t)[0], t))
    workers = max(1, min(cfg.workers, len(todo)))
    jobs = [{"checkpoint": str(rel), "step": step, "task": t, "episodes": cfg.eval_episodes, "seed": cfg.seed,
             "max_steps": eval_max_steps(cfg, t), "cache": str(cache[t]), "settings": eval_settings(cfg, t),
             "threads": max(1, cfg.threads // workers)} for t in todo]
    t0 = time.perf_counter()
    if workers > 1:
        for i, _ in enumerate(suite.in_processes(_eval_task, jobs, workers, PRELOAD)):
            if (i + 1) % 10 == 0 or i + 1 == len(jobs):
                log(f"eval: {i + 1}/{len(jobs)} tasks ({time.perf_counter() - t0:.0f}s)")
    else:
        for j in jobs:
            _eval_task(j)
    results, seconds = [], {}
    for t in tasks:
        results += load_results(str(cache[t]))
        seconds.update(json.loads(cache[t].read_text())["config"].get("seconds", {}))
    return results, seconds


def run_baselines(cfg: ReleaseConfig, tasks: list[str], log=print):
    """The expert and random policies on the evaluation seeds (cached per task)."""
    from gato.demo import run_suite
    from policies.rollout import load_results, save_results

    out = []
    for t in tasks:
        path = Path(cfg.work) / "eval" / f"{t}.baselines.json"
        if _cached_settings(path) != eval_settings(cfg, t):
            save_results(str(path), run_suite((t,), episodes=cfg.eval_episodes, seed=cfg.seed,
                                              num_envs=min(cfg.eval_episodes, 50), max_steps=eval_max_steps(cfg, t),
                                              log=log), config={"settings": eval_settings(cfg, t)})
        out += load_results(str(path))
    return out


# ---------------------------------------------------------------------------------------------
# Stage 5: report, and the command
# ---------------------------------------------------------------------------------------------


def release_readme(cfg: ReleaseConfig, info: dict[str, Any], summary: list[str]) -> str:
    lines = [f"# Release `{cfg.name}`", "",
             f"Gato `{info['model_config']}` ({info['parameters']:,} parameters, "
             f"{info['checkpoint_bytes'] / 1e6:.1f} MB fp32 safetensors), {info['checkpoint_step']} training steps "
             f"({info['train_seconds'] / 60:.1f} min of training) on {len(info['tasks'])} tasks; made by "
             f"`{info['command']}` at commit {info.get('git_commit') or 'unknown'} on {info['created']}.", "",
             "Evaluate it (no training, no data/ needed: the prompts are in `prompts/`):", "", "```bash",
             f"gato eval --checkpoint {cfg.out} --tasks {info['tasks'][0]} --episodes 20",
             f"gato eval --checkpoint {cfg.out} --domain metaworld", "```", "",
             f"Results ({info['evaluation']['episodes']} held-out episodes per task from seed "
             f"{info['evaluation']['seed']}): `report.md` (per-task table, per-domain aggregates), `report.png` "
             "(fraction of tasks above each expert-normalized threshold, Gato's Figure 5), `report.json`, "
             "`report.results.json` (every episode's return).", "", "```", *summary, "```", ""]
    if info.get("skipped"):
        lines += ["Skipped (no expert):", "", *[f"- {t}: {why}" for t, why in info["skipped"].items()], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import shlex

    from eval.evaluate import write_eval_report
    from eval.report import format_domain_table, format_task_table
    from envs.commandline import log, parse
    from gato.demo import summary_lines

    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse(ReleaseConfig, argv, "gato release")
    if cfg.smoke:
        cfg = smoke_config(cfg)
    cfg, tasks, left_out = check_config(cfg)
    command = "gato release " + shlex.join(argv)
    t_start = time.perf_counter()
    work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_json(work / "release_config.json", {**asdict(cfg), "tasks_resolved": tasks})
    counts = ", ".join(f"{d} {n}" for d, n in suite.count_by_domain(tasks).items())
    log(f"release {cfg.name}: {len(tasks)} tasks ({counts})"
        + (f"; {len(left_out)} BabyAI levels left out (bot success < {cfg.babyai_min_success})" if left_out else ""))

    datasets, skipped = build_datasets(cfg, tasks, log)
    if not datasets:
        raise RuntimeError(f"no dataset could be built for {len(tasks)} tasks: {skipped}")
    run = train_model(cfg, datasets, log)
    rel = assemble(cfg, run, datasets, skipped, left_out, command, log)
    info = json.loads((rel / "release.json").read_text())
    step = info["checkpoint_step"]
    info["evaluation"] = {"episodes": cfg.eval_episodes, "seed": cfg.seed,
                          "max_steps": {t: eval_max_steps(cfg, t) for t in datasets if eval_max_steps(cfg, t)}}
    results, seconds = evaluate_release(cfg, rel, list(datasets), step, log)
    gato_policy = results[0].policy
    if cfg.baselines:
        results += run_baselines(cfg, list(datasets), log)
    capped = info["evaluation"]["max_steps"]
    sections = [("Release settings", (
        f"Model {cfg.config} ({info['parameters']:,} parameters), {step} training steps in "
        f"{info['train_seconds'] / 60:.1f} min, batch {cfg.batch_size}, peak lr {cfg.lr or 'of the config'}, domain "
        f"weights {info['train_weights']}; expert episodes per task {_per_domain(info['data_episodes'])}; "
        f"evaluation on {cfg.eval_episodes} episodes per task from seed {cfg.seed}. "
        + (f"Evaluation episodes cut at {_per_domain(capped)} agent steps (a cut episode scores what it "
           "scored until then). " if capped else "No episode cap. ")
        + (f"Skipped (no expert): {', '.join(skipped)}. " if skipped else "")
        + (f"BabyAI levels left out (bot success below {cfg.babyai_min_success}): {', '.join(left_out)}."
           if left_out else "")))]
    report_info = {"checkpoint": str(rel), "checkpoint_step": step, "trained_tasks": sorted(datasets),
                   "trained_domains": sorted({domain_of(t) for t in datasets}), "unseen_domain_tasks": [],
                   "seconds": seconds, "config": asdict(cfg),
                   "minutes": round((time.perf_counter() - t_start) / 60, 1)}
    report, paths = write_eval_report(results, str(rel / "report.json"), report_info, extra_sections=sections,
                                      reps=500 if cfg.smoke else 2000)
    summary = summary_lines(report, gato_policy)
    info["results"] = {"summary": summary, "eval_seconds": round(sum(seconds.values()), 1)}
    atomic_write_json(rel / "release.json", info)
    atomic_write_text(rel / "README.md", release_readme(cfg, info, summary))
    print()
    print(format_domain_table(report))
    print()
    print(format_task_table(report))
    for _, task, why in report.unscored:
        print(f"not scored: {task}: {why}")
    print()
    for line in summary:
        print(line)
    print(f"\nwrote {rel} ({suite.dir_bytes(rel) / 1e6:.1f} MB) after {report_info['minutes']} min")
    return 0


def _per_domain(per_task: dict[str, Any]) -> str:
    """``{task: value}`` shown per domain when a domain's tasks share the value."""
    by: dict[str, set] = {}
    for t, v in per_task.items():
        by.setdefault(domain_of(t), set()).add(v)
    return ", ".join(f"{d} {next(iter(v)) if len(v) == 1 else sorted(v)}" for d, v in by.items())


if __name__ == "__main__":
    sys.exit(main())
