"""`gato demo` (what `make demo` runs): expert data, a small Gato trained on CPU, closed-loop evaluation.

Stages, each resumable (rerunning the same command continues where it stopped):

1. **data**: one expert dataset per task of the suite under ``--data`` (`gato generate`;
   an existing finished dataset is reused as it is, an unfinished one resumes its shards).
2. **train**: `gato train` on all of them (plus synthetic vision-language and text with
   ``--language``) as a subprocess with a wall-clock limit from ``--minutes``; checkpoints every
   ~minute, so a stopped run resumes from its last checkpoint.
3. **eval**: the last checkpoint rolled out closed-loop by `eval.evaluate` on held-out seeds
   (``--seed``, far from the datasets' 0..N-1), and the scripted / zoo experts and the random
   policy as baselines on the same seeds (`run_suite`); results cached per task and checkpoint step.
4. **report**: the per-task and per-domain expert-normalized table, the number of tasks at or above
   50% of expert, `eval.report` files (JSON, Markdown, PNG), plus vision-language / text metrics
   (`eval.language`) when the model trained on them.

``--smoke`` is the seconds-long end-to-end version the tests run (gato-tiny, two short tasks).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# ACTION_NOISE: DART noise injection per domain (`gato generate --action-noise`; DMC 0.3), one
# definition shared with `gato generate --suite experts` and `gato release`
from datasets_gen.suite import ACTION_NOISE
from envs import domain_of
from envs.atomic import atomic_write_json
from policies.rollout import RolloutResult, load_results, rollout, save_results

# The default suite: one short task per control domain the demo can teach on 2 CPU cores, chosen so
# that the little CPU time goes into updates rather than into long episodes or pixels: BabyAI GoToObjS4
# (symbolic grid + mission text, ~2.5-step expert episodes), two Meta-World tasks (39-d state,
# scripted experts), DMC cartpole-balance from state (SB3 zoo expert) and Breakout (80x80 pixels,
# RAM-scripted expert, ~1000-step episodes; scored against human; see ``domain_weights``). Pong's RAM
# expert plays ~14k-step episodes, too long to evaluate in minutes. docs/design.md "The demo" gives
# the reasons and docs/results.md "The demo" the measurements behind these choices.
DEFAULT_SUITE: tuple[str, ...] = (
    "babyai-goto-obj-s4",
    "metaworld-reach",
    "metaworld-button-press",
    "dmc-cartpole-balance",
    "atari-breakout",
)
SMOKE_SUITE: tuple[str, ...] = ("dmc-cartpole-balance", "metaworld-reach")
# Expert episodes per task by domain, enough that the evaluation goals lie inside the training
# distribution (each Meta-World episode is one goal; each BabyAI episode one layout), and episodes per
# shard. Cheap to generate on 2 processes: BabyAI ~0.05 s, Meta-World ~0.5 s, DMC ~1 s, Breakout ~2 s
# per episode.
DATA_EPISODES = {"babyai": 2000, "metaworld": 100, "dmc": 20, "atari": 6}
SHARD_SIZE = {"babyai": 250, "metaworld": 10, "dmc": 5, "atari": 1}
# Evaluation episodes per task (held-out seeds): 20, and more where episodes are short.
EVAL_EPISODES = {"babyai": 100}


def idle_cores(seconds: float = 0.5, stat: str = "/proc/stat") -> int:
    """Cores that other processes leave free, from ``/proc/stat`` over ``seconds``: the share of CPU
    time that was idle, waiting on I/O or spent at a nice level (niced work yields to ours) times
    the cores, rounded, at least 1. ``os.cpu_count()`` where ``/proc/stat`` does not exist."""
    cores = os.cpu_count() or 1

    def snapshot() -> tuple[int, int]:
        with open(stat) as f:  # "cpu  user nice system idle iowait irq softirq steal ..."
            user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in f.readline().split()[1:9])
        return nice + idle + iowait, user + nice + system + idle + iowait + irq + softirq + steal

    try:
        free0, total0 = snapshot()
        time.sleep(seconds)
        free1, total1 = snapshot()
    except (OSError, ValueError):
        return cores
    return max(1, min(cores, round(cores * (free1 - free0) / max(1, total1 - total0))))


def stage_threads(cfg: DemoConfig, stage: str, log=None) -> int:
    """``cfg.threads``, or the idle cores now (logged with the stage's name)."""
    if cfg.threads is not None:
        return cfg.threads
    threads = idle_cores()
    if log is not None:
        log(f"{stage}: {threads} thread{'s' * (threads > 1)} ({threads} of {os.cpu_count()} cores idle)")
    return threads


def log_line(message: str) -> None:
    """A stage's progress line, on stderr (the report tables go to stdout)."""
    print(message, file=sys.stderr, flush=True)


def run_suite(
    tasks: tuple[str, ...] = DEFAULT_SUITE,
    policies: tuple[str, ...] = ("random", "expert"),
    episodes: int = 5,
    seed: int = 1000,
    num_envs: int = 1,
    workers: int = 1,
    max_steps: int | None = None,
    log=log_line,
) -> list[RolloutResult]:
    """Roll out each policy on each task; skip (and log) a policy that does not exist for a task.

    The envs are made as the evaluation makes them (`eval.evaluate.env_options`: Atari presses FIRE
    on reset), so the rows compare with the Gato policy's.
    """
    from eval.evaluate import env_options
    from policies import NoExpertError

    results = []
    for task_id in tasks:
        for policy in policies:
            t0 = time.perf_counter()
            try:
                r = rollout(policy, task_id, episodes, seed, num_envs=num_envs, workers=workers, max_steps=max_steps,
                            env_options=env_options(task_id))
            except NoExpertError as e:
                log(f"skip {task_id} {policy}: {str(e).split(':')[0]}")
                continue
            sr = "" if r.success_rate is None else f", success {100 * r.success_rate:.0f}%"
            log(f"{task_id:28s} {policy:7s} mean return {r.mean_return:9.3f}{sr} ({time.perf_counter() - t0:.1f}s)")
            results.append(r)
    return results


@dataclass
class DemoConfig:
    """`gato demo`: build expert data, train a small Gato on CPU, evaluate it closed-loop, report."""

    tasks: tuple[str, ...] = DEFAULT_SUITE
    """Task ids of the suite (a task without an expert is skipped with a note)."""
    minutes: float = 30.0
    """Wall-clock budget of the whole demo; training gets what data and evaluation leave."""
    config: str = "gato-small-blind"
    """Model config (gato.configs.CONFIGS). gato-small (512 slots, the least that holds a BabyAI timestep
    beside a prompt) gets ~2x the updates of gato-demo in the same CPU time; gato-small-blind is
    gato-small whose action slots feed only their positions, so the trunk cannot fit the data by
    continuing the last action (the plain model's closed loop collapses as its loss falls:
    docs/results.md "Meta-World reach alone")."""
    out: str = "runs/demo"
    """Run directory: model/ (checkpoints), eval/, report.json/.md/.png, demo_config.json."""
    data: str = "data/demo-suite"
    """Where the expert datasets go, one directory per task (finished ones are reused, so a rerun
    or a longer demo builds only what is missing)."""
    data_scale: float = 1.0
    """Multiplies the episode counts (``data_episodes``)."""
    data_episodes: dict[str, int] = dataclasses.field(default_factory=lambda: dict(DATA_EPISODES))
    """Expert episodes per task, by domain."""
    action_noise: dict[str, float] = dataclasses.field(default_factory=lambda: dict(ACTION_NOISE))
    """DART noise injection of the expert data, by domain (``gato generate --action-noise``)."""
    episodes: int = 20
    """Evaluation episodes per task (held-out seeds), for domains not in ``eval_episodes``."""
    eval_episodes: dict[str, int] = dataclasses.field(default_factory=lambda: dict(EVAL_EPISODES))
    """Evaluation episodes per task by domain (short-episode domains get more)."""
    seed: int = 10_000
    """Evaluation episode i resets with seed + i."""
    baselines: bool = False
    """Also roll out the expert and random policies on the evaluation seeds (rows of the table; ~2-4
    minutes that training then lacks). Scores are normalized by the reference returns either way."""
    language: bool = True
    """Also train on synthetic captioning / VQA / text (small weight) and report their metrics."""
    language_weight: float = 0.05
    """Sampling weight of each vision-language / text domain (control domains weigh 1)."""
    domain_weights: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"babyai": 0.5, "metaworld": 2.0, "atari": 0.5})
    """Sampling weight of control domains other than 1 (applied to the domains the suite trains on).
    The trainer averages the loss per sequence, so a weight is the domain's share of the gradient:
    Meta-World's two tasks get the most, BabyAI (learned in a few hundred steps) and Breakout (image
    patches cost ~10x a state token per step) the least."""
    batch_size: int = 8
    """Training sequences per step."""
    lr: float | None = 2e-3
    """Peak learning rate (None: the model config's); warm-up is the trainer's 1.5% of steps."""
    episode_start_prob: float = 0.0
    """Share of training windows cut from an episode's first timestep (``gato train --episode-start-prob``)."""
    train_steps: int | None = None
    """Training steps on a step schedule; None: the trainer's wall-clock schedule (``--time-budget``)
    fills what data, baselines and ``eval_minutes`` leave of the budget."""
    eval_minutes: float = 6.0
    """Time kept for the Gato evaluation and the language metrics after training."""
    max_steps: int | None = None
    """Cap on episode length for data and evaluation (smoke runs; scores then are not comparable)."""
    atari_eval_steps: int = 2000
    """Cap on Atari evaluation episodes (agent steps), so that a policy that never serves (FIRE) cannot
    run the 27,000-step time limit; a cut episode scores what it scored until then (report says so)."""
    threads: int | None = None
    """torch CPU threads for training and evaluation (and data-generation processes). None:
    training and evaluation take the cores that no other process keeps busy when their stage starts
    (`idle_cores`): both on an idle 2-core machine, one when another process holds a core (two
    threads sharing a core with a third process wait on each other at every operation: 1 thread
    trains 1.4x faster then, docs/results.md "Shared value features, weight averaging, truncated
    Meta-World data"); data generation uses every core (its processes do not wait on each other)."""
    slide: str = "reprefill"
    """Context sliding of the Gato policy: reprefill or drop."""
    smoke: bool = False
    """Seconds-long end-to-end run (gato-tiny, two tasks, 2 short episodes, no baselines/language)."""
    force: bool = False
    """Write into an --out that holds another command's files (rerunning the demo resumes its own)."""


def check_config(cfg: DemoConfig) -> DemoConfig:
    """Validate ``cfg`` before anything is written (`gato.cli` conventions); returns it."""
    from envs.commandline import UsageError, at_least, check_out_dir, check_task, in_range
    from gato.configs import get_config

    for task_id in cfg.tasks:
        check_task(task_id, "--tasks")
    try:
        get_config(cfg.config)
    except KeyError as e:
        raise UsageError(f"--config {cfg.config}: {e.args[0]}") from None
    for flag, value, low in (("--episodes", cfg.episodes, 1), ("--batch-size", cfg.batch_size, 1),
                             ("--threads", cfg.threads, 1), ("--max-steps", cfg.max_steps, 1),
                             ("--train-steps", cfg.train_steps, 1), ("--atari-eval-steps", cfg.atari_eval_steps, 1)):
        at_least(value, low, flag)
    for flag, value in (("--minutes", cfg.minutes), ("--data-scale", cfg.data_scale), ("--eval-minutes", cfg.eval_minutes)):
        if not value > 0:
            raise UsageError(f"{flag} {value}: must be above 0")
    in_range(cfg.language_weight, 0.0, 1e6, "--language-weight")
    in_range(cfg.episode_start_prob, 0.0, 1.0, "--episode-start-prob")
    for domain, noise in cfg.action_noise.items():
        in_range(noise, 0.0, 1.0, f"--action-noise {domain}")
    if cfg.slide not in ("reprefill", "drop"):
        raise UsageError(f"--slide {cfg.slide}: use reprefill or drop")
    check_out_dir(cfg.out, "demo", force=cfg.force)
    return cfg


def smoke_config(cfg: DemoConfig) -> DemoConfig:
    """The tiny settings of ``--smoke`` (its own default out / data; tasks if not given)."""
    return dataclasses.replace(
        cfg, tasks=SMOKE_SUITE if cfg.tasks == DEFAULT_SUITE else cfg.tasks, minutes=min(cfg.minutes, 3.0),
        config="gato-tiny", data="data/demo-smoke" if cfg.data == DemoConfig.data else cfg.data,
        out="runs/demo-smoke" if cfg.out == DemoConfig.out else cfg.out,
        data_episodes={d: 2 for d in DATA_EPISODES}, episodes=2, eval_episodes={}, baselines=False,
        language=False, batch_size=4, eval_minutes=0.5,
        max_steps=cfg.max_steps or 40, threads=1, train_steps=cfg.train_steps or 8)



# ---------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------


def dataset_plan(cfg: DemoConfig) -> list[tuple[str, int, int, float]]:
    """(task, episodes, shard size, action noise) per task: ``data_episodes`` of its domain times
    ``data_scale``, and the domain's ``action_noise``."""
    plan = []
    for task_id in cfg.tasks:
        domain = domain_of(task_id)
        n = max(1, round(cfg.data_episodes.get(domain, 4) * cfg.data_scale))
        plan.append((task_id, n, min(n, SHARD_SIZE.get(domain, n)), float(cfg.action_noise.get(domain, 0.0))))
    return plan


def generate_config(cfg: DemoConfig, task_id: str, episodes: int, shard: int, noise: float):
    """The `gato generate` config of one task's dataset (``dataset_plan``'s row)."""
    from datasets_gen.generate import Config as GenConfig

    # processes that do not wait on each other: all cores even when some are busy
    workers = max(1, min(cfg.threads or os.cpu_count() or 1, episodes // shard))
    return GenConfig(task=task_id, policy="expert", episodes=episodes, out=os.path.join(data_root(cfg), task_id),
                     shard_size=shard, max_steps=cfg.max_steps, workers=workers, action_noise=noise)


def data_root(cfg: DemoConfig) -> str:
    """``data``, or ``<data>-x<scale>`` when ``data_scale != 1``."""
    return cfg.data if cfg.data_scale == 1.0 else f"{cfg.data}-x{cfg.data_scale:g}"


def build_datasets(cfg: DemoConfig, log=log_line) -> dict[str, str]:
    """Stage 1: one expert dataset per task (finished ones reused); returns ``{task: path}``."""
    from datasets_gen.generate import _check_identity, generate
    from policies import NoExpertError

    paths = {}
    for task_id, n, shard, noise in dataset_plan(cfg):
        gen = generate_config(cfg, task_id, n, shard, noise)
        out = gen.out
        if os.path.isfile(os.path.join(out, "metadata.json")):
            _check_identity(out, gen)  # a finished dataset is reused only if made with this plan
        else:
            t0 = time.perf_counter()
            command = (f"gato generate --task {task_id} --policy expert --episodes {n} --shard-size {shard} "
                       f"--workers {gen.workers} --out {out}" + (f" --max-steps {cfg.max_steps}" if cfg.max_steps else "")
                       + (f" --action-noise {noise:g}" if noise else ""))
            try:
                meta = generate(gen, command)
            except NoExpertError as e:
                log(f"skip {task_id}: {str(e).split(':')[0]}")
                continue
            except ValueError as e:  # e.g. the directory holds a dataset made with other options
                log(f"skip {task_id}: {e}")
                continue
            log(f"data {task_id}: {meta['episodes_recorded']} episodes, {meta['steps_recorded']} steps, "
                f"{len(meta['filter']['kept'])} kept ({time.perf_counter() - t0:.0f}s)")
        paths[task_id] = out
    return paths


def train_weights(cfg: DemoConfig, datasets: dict[str, str]) -> dict[str, float]:
    """The trainer's ``--domain-weights``: language domains (if on) and ``domain_weights`` of trained domains."""
    weights = {d: cfg.language_weight for d in ("captioning", "vqa", "text")} if cfg.language else {}
    trained = {domain_of(t) for t in datasets}
    weights.update({d: w for d, w in cfg.domain_weights.items() if d in trained})
    return weights


def train_model(cfg: DemoConfig, datasets: dict[str, str], seconds: float, log=log_line) -> Path:
    """Stage 2: `gato train` in a subprocess on a wall-clock schedule of ``seconds`` (``--time-budget``).

    The time budget is fixed on the first run and saved in ``demo_state.json``: a rerun resumes the
    same schedule from the last checkpoint (the trainer counts the seconds already spent).
    With ``train_steps`` the schedule is a fixed step count instead.
    """
    from gato.train import run_stage, stage_schedule

    run = Path(cfg.out) / "model"
    budget, schedule = stage_schedule(run, Path(cfg.out) / "demo_state.json", seconds, cfg.train_steps,
                                      checkpoint_minutes=2, log_every=20)
    if schedule is None:
        log(f"train: already done ({run})")
        return run
    data = list(datasets.values())
    if cfg.language:
        data.append("gato.multimodal:vl_text_sources")
    weights = train_weights(cfg, datasets)
    threads = stage_threads(cfg, "train", log)
    cmd = [sys.executable, "-m", "gato.train", "--data", *data, "--out", str(run), "--config", cfg.config,
           *schedule, "--batch-size", str(cfg.batch_size), "--threads", str(threads),
           "--no-progress", "--no-tensorboard"]
    if weights:
        cmd += ["--domain-weights", *[x for k, v in weights.items() for x in (k, str(v))]]
    if cfg.lr is not None:
        cmd += ["--lr", str(cfg.lr)]
    if cfg.episode_start_prob:
        cmd += ["--episode-start-prob", str(cfg.episode_start_prob)]
    log(f"train: {budget / 60:.1f} min of training: {' '.join(cmd[1:])}")
    rc, last = run_stage(cmd, run, Path(cfg.out) / "train.log", threads, timeout=max(5.0, budget + 120.0))
    log(f"train: {'finished' if rc == 0 else 'stopped at the time limit'}; evaluating {last}")
    return run


def evaluate_model(cfg: DemoConfig, run: Path, datasets: dict[str, str], log=log_line) -> tuple[list[RolloutResult], dict]:
    """Stage 3: the Gato policy on every task (results cached per task and checkpoint step)."""
    import torch

    from eval.evaluate import EvalConfig, evaluate
    from gato import checkpoint

    torch.set_num_threads(stage_threads(cfg, "eval", log))
    loaded = checkpoint.load(run)
    cache_dir = Path(cfg.out) / "eval"
    cache_dir.mkdir(parents=True, exist_ok=True)
    results, infos = [], []
    for task_id in datasets:
        cached = cache_dir / f"{task_id}.step{loaded.step}.json"
        if cached.exists():
            r = load_results(str(cached))[0]
            log(f"{task_id:32s} mean return {r.mean_return:10.3f} (cached)")
            results.append(r)
            continue
        n = eval_episodes(cfg, task_id)
        ecfg = EvalConfig(checkpoint=str(run), tasks=(task_id,), episodes=n, seed=cfg.seed,
                          num_envs=min(n, 50), max_steps=eval_max_steps(cfg, task_id), slide=cfg.slide,
                          prompt_data=(datasets[task_id],))
        rs, info = evaluate(ecfg, loaded, log=log)
        save_results(str(cached), rs)
        results += rs
        infos.append(info)
    info = {"checkpoint": str(run), "checkpoint_step": loaded.step,
            "trained_tasks": sorted(datasets), "trained_domains": sorted({domain_of(t) for t in datasets}),
            "unseen_domain_tasks": [], "seconds": {k: v for i in infos for k, v in i["seconds"].items()}}
    return results, info


def eval_episodes(cfg: DemoConfig, task_id: str) -> int:
    """Evaluation episodes of a task: ``eval_episodes`` of its domain, else ``episodes``."""
    return cfg.eval_episodes.get(domain_of(task_id), cfg.episodes)


def eval_max_steps(cfg: DemoConfig, task_id: str) -> int | None:
    """The evaluation episode cap of a task (``max_steps``; Atari also ``atari_eval_steps``)."""
    caps = [c for c in (cfg.max_steps, cfg.atari_eval_steps if domain_of(task_id) == "atari" else None) if c]
    return min(caps) if caps else None


def language_metrics(cfg: DemoConfig, run: Path, log=log_line) -> tuple[dict, list[tuple[str, str]]]:
    """Vision-language and text metrics of the checkpoint (`eval.language`), if it trained on them."""
    if not cfg.language:
        return {}, []
    try:
        from gato import checkpoint
        from eval.language import LanguageEvalConfig, evaluate_language, report_section
    except ImportError as e:
        log(f"language metrics skipped: {e}")
        return {}, []
    model = checkpoint.load(run).model
    t0 = time.perf_counter()
    metrics = evaluate_language(model, LanguageEvalConfig(checkpoint=str(run), num_scenes=20, text_max_tokens=4000))
    log(f"language metrics ({time.perf_counter() - t0:.0f}s): "
        + ", ".join(f"{k}: {v}" for k, v in _flat_numbers(metrics).items()))
    return metrics, [report_section(metrics)]


def _train_steps_done(run: Path) -> int:
    from gato import checkpoint

    return int(json.loads((checkpoint.latest(run) / "state.json").read_text())["step"])


def _flat_numbers(metrics: dict) -> dict[str, str]:
    out = {}
    for key, sub in metrics.items():
        if isinstance(sub, dict):
            out.update({f"{key}.{k}": f"{v:.3f}" for k, v in sub.items() if isinstance(v, float)})
    return out


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_json(path, obj, default=str)


def summary_lines(report, policy: str) -> list[str]:
    """The per-domain normalized scores of ``policy`` and its count of tasks at or above 50% of expert."""
    from eval.report import at_least_half_line

    lines = [f"{policy}: {at_least_half_line(report, policy)}"]
    for d in report.domains:
        if d.policy == policy:
            lines.append(f"  {d.domain:10s} mean {100 * d.mean:6.1f}%  IQM {100 * d.iqm:6.1f}%  "
                         f"({d.n_at_least_half}/{d.n_tasks} tasks >= 50%)")
    return lines


def main(argv: list[str] | None = None) -> int:
    from eval.evaluate import write_eval_report
    from eval.report import format_domain_table, format_task_table
    from envs.commandline import parse

    cfg = parse(DemoConfig, argv, "gato demo")
    if cfg.smoke:
        cfg = smoke_config(cfg)
    cfg = check_config(cfg)
    t_start = time.perf_counter()
    budget = cfg.minutes * 60
    os.makedirs(cfg.out, exist_ok=True)
    _write_json(Path(cfg.out) / "demo_config.json", asdict(cfg))

    datasets = build_datasets(cfg)
    if not datasets:
        raise RuntimeError(f"no dataset could be built for {cfg.tasks}")
    baselines = []
    if cfg.baselines:  # before training, so that training gets exactly what is left
        cache = Path(cfg.out) / "eval" / "baselines.json"
        if cache.exists():
            baselines = load_results(str(cache))
        else:
            baselines = [r for t in datasets for r in run_suite(
                (t,), episodes=eval_episodes(cfg, t), seed=cfg.seed, num_envs=min(eval_episodes(cfg, t), 50),
                max_steps=eval_max_steps(cfg, t))]
            cache.parent.mkdir(parents=True, exist_ok=True)
            save_results(str(cache), baselines)
    train_s = max(10.0, budget - (time.perf_counter() - t_start) - 60 * cfg.eval_minutes)
    run = train_model(cfg, datasets, train_s)
    results, info = evaluate_model(cfg, run, datasets)
    gato_policy = results[0].policy
    results += baselines
    lang, sections = language_metrics(cfg, run)
    info["eval_max_steps"] = {t: eval_max_steps(cfg, t) for t in datasets}
    capped = {t: c for t, c in info["eval_max_steps"].items() if c}
    sections.append(("Demo settings", (
        f"Model {cfg.config}, {_train_steps_done(run)} training steps, batch {cfg.batch_size}, peak lr "
        f"{cfg.lr or 'of the config'}, domain weights {train_weights(cfg, datasets)}; evaluation on "
        f"{ {t: eval_episodes(cfg, t) for t in datasets} } episodes per task from seed {cfg.seed}; datasets in "
        f"{data_root(cfg)}. " + (f"Evaluation episodes cut at {capped} agent steps (a cut episode scores "
                                 f"what it scored until then)." if capped else "No episode cap."))))
    info["minutes"] = round((time.perf_counter() - t_start) / 60, 1)
    info["config"] = asdict(cfg)
    report, paths = write_eval_report(results, os.path.join(cfg.out, "report.json"), info,
                                      extra_sections=sections, extra={"language": lang} if lang else None,
                                      reps=500 if cfg.smoke else 2000)
    print()
    print(format_domain_table(report))
    print()
    print(format_task_table(report))
    for _, task, why in report.unscored:
        print(f"not scored: {task}: {why}")
    print()
    for line in summary_lines(report, gato_policy):
        print(line)
    print(f"\nwrote {', '.join(paths.values())} after {info['minutes']} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
