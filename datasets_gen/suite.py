"""`gato generate --suite experts`: an expert dataset for every task with an expert, in parallel and resumably.

    gato generate --suite experts --out data/experts [--workers 2] [--ray] [--domain metaworld]
                  [--tasks metaworld-reach ...] [--episodes-scale 0.1] [--max-steps N]

``--out DIR`` gets one `gato generate` dataset per task, ``DIR/<task>/``, and ``DIR/suite.json``
(written atomically after each task): per task its path, episodes (recorded and kept by the 80%
filter), steps, bytes (the sizes of its files), seconds, or why it was skipped. Rerunning the same
command resumes: a finished dataset is reused as it is, an unfinished one resumes its shards
(`datasets_gen.generate`), so a killed run loses at most the shards it was writing.

The one place for what `gato generate --suite` and `gato release` (stage 1) share:

- `expert_tasks`, the suite ``experts``: every task whose ``make_policy("expert", task)`` is an
  expert: the BabyAI levels whose bot success measured in ``eval/references.json`` is at least
  ``babyai_min_success`` (0.5), and every other task with an expert (`policies.expert_choice`):
  all Meta-World tasks (scripted experts), the Atari games with a RAM-scripted expert, the tasks of
  the SB3 zoo (DMC) and the tasks with a search expert measured by `eval.measure_search` (DMC,
  Atari, Procgen); where a task has several, the best measured one. A task whose expert turns out
  to be missing (an SB3 zoo checkpoint not there) is skipped with the reason.
- `DATA_EPISODES`, `SHARD_SIZE`, `ACTION_NOISE` and `dataset_plan`: episodes, episodes per shard
  and DART noise per domain.
- `build_datasets`: the per-task jobs, all through one job function (`generate_job`), on
  ``workers`` processes (`in_processes`) or as Ray tasks (`on_ray`); a single unfinished task uses
  the workers on its shards instead.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from datasets_gen.format import METADATA
from datasets_gen.generate import Config as GenConfig, _check_identity, generate, import_ray, ray_session
from envs import domain_of
from envs.atomic import atomic_write_json

SUITES = {"experts": "every task with an expert (BabyAI levels the bot solves, Meta-World, the SB3 zoo, "
                     "RAM-scripted Atari)"}
SUITE_FILE = "suite.json"
SUITE_KIND = "generate --suite"  # envs.commandline's name for a directory with a suite.json
FORMAT = "gato-suite-v1"
DOMAIN_ORDER = ("babyai", "metaworld", "dmc", "atari")
# Expert episodes per task by domain, and episodes per shard (the unit of resumption). Meta-World
# records one goal per episode (>= 100 so that evaluation goals lie inside the training
# distribution); BabyAI one layout per episode, over 90 levels; DMC and Atari episodes are long.
DATA_EPISODES = {"babyai": 200, "metaworld": 100, "dmc": 20, "atari": 4}
SHARD_SIZE = {"babyai": 50, "metaworld": 10, "dmc": 5, "atari": 1}
# DART noise injection per domain (`gato generate --action-noise`): the DMC expert holds the pole
# so still that its own episodes never show a recovery (docs/results.md "Copycat, value rows,
# noise injection and episode starts").
ACTION_NOISE = {"dmc": 0.3}
REFERENCES_JSON = Path(__file__).resolve().parent.parent / "eval" / "references.json"
"""The measured expert success rates, read as data (`eval.references` reads the same file; datasets_gen
sits below eval, so it does not import it)."""
NO_EXPERT = ("no expert in the project: not a BabyAI level the bot solves, a Meta-World task, an SB3 zoo task "
             "(policies/zoo) or a RAM-scripted Atari game")


# ---------------------------------------------------------------------------------------------
# The suite: tasks and the per-domain plan
# ---------------------------------------------------------------------------------------------


def measured_success(path: str | os.PathLike | None = None) -> dict[str, float | None]:
    """``{task: the expert's measured success rate}`` for the complete entries (a random and an expert
    return) of ``eval/references.json``; None where no success rate was measured."""
    with open(path or REFERENCES_JSON) as f:
        raw = json.load(f)["tasks"]
    return {t: e["expert"].get("success_rate") for t, e in raw.items()
            if e.get("random") is not None and e.get("expert") is not None}


def expert_tasks(babyai_min_success: float = 0.5) -> tuple[list[str], dict[str, str]]:
    """Every task with an expert (the module docstring), and ``{task: why left out}`` for the BabyAI
    levels the bot fails."""
    import envs
    from policies import has_expert

    measured = measured_success()
    tasks, left_out = [], {}
    for task_id in envs.task_ids("babyai"):
        success = measured.get(task_id)
        if success is None or success < babyai_min_success:
            left_out[task_id] = (f"bot success {success} < {babyai_min_success} (eval/references.json)"
                                 if success is not None else "no measured bot success in eval/references.json")
        else:
            tasks.append(task_id)
    tasks += [t for t in envs.task_ids() if domain_of(t) != "babyai" and has_expert(t)]
    return tasks, left_out


def count_by_domain(tasks: Iterable[str]) -> dict[str, int]:
    """``{domain: number of tasks}`` in the order the domains first appear."""
    counts: dict[str, int] = {}
    for task_id in tasks:
        counts[domain_of(task_id)] = counts.get(domain_of(task_id), 0) + 1
    return counts


def task_order(task_id: str) -> tuple[int, str]:
    """Sort key: the domains in `DOMAIN_ORDER` (short episodes first), then the id."""
    d = domain_of(task_id)
    return (DOMAIN_ORDER.index(d) if d in DOMAIN_ORDER else len(DOMAIN_ORDER), task_id)


def dataset_plan(tasks: Iterable[str], data_episodes: dict[str, int] | None = None, scale: float = 1.0,
                 shard_size: dict[str, int] | None = None) -> list[tuple[str, int, int]]:
    """(task, episodes, shard size) per task: its domain's ``data_episodes`` (4 for a domain not named)
    times ``scale`` (at least 1), in shards of its domain's ``shard_size``."""
    data_episodes = DATA_EPISODES if data_episodes is None else data_episodes
    shard_size = SHARD_SIZE if shard_size is None else shard_size
    plan = []
    for task_id in tasks:
        domain = domain_of(task_id)
        n = max(1, round(int(data_episodes.get(domain, 4)) * scale))
        plan.append((task_id, n, min(n, int(shard_size.get(domain, n)))))
    return plan


def expert_config(task_id: str, episodes: int, shard: int, out: str, max_steps: int | None = None,
                  workers: int = 1, action_noise: dict[str, float] | None = None) -> GenConfig:
    """The `gato generate` config of one task's expert dataset (a `dataset_plan` row)."""
    noise = ACTION_NOISE if action_noise is None else action_noise
    return GenConfig(task=task_id, policy="expert", episodes=episodes, out=out, shard_size=shard, max_steps=max_steps,
                     workers=workers, action_noise=float(noise.get(domain_of(task_id), 0.0)))


def check_datasets(configs: Iterable[GenConfig], force: bool = False, flag: str = "--out", root: str = "") -> None:
    """Before anything is written: each dataset directory is new or a `gato generate` dataset made with
    the same options (`CommandError` naming ``flag`` and ``root`` otherwise)."""
    from envs.commandline import CommandError, check_out_dir

    for gen in configs:
        check_out_dir(gen.out, "generate", force=force, flag=flag)
        try:
            _check_identity(gen.out, gen)
        except ValueError as e:
            raise CommandError(f"{flag} {root or gen.out}: {e}") from None


# ---------------------------------------------------------------------------------------------
# The per-task job, and where it runs
# ---------------------------------------------------------------------------------------------


def holds_only_datasets(path: str) -> bool:
    """Whether ``path`` is a directory of `gato generate` datasets and nothing else (what `gato release
    --data` writes: the same per-task datasets as a suite, without its suite.json)."""
    from envs.commandline import out_kind

    entries = list(Path(path).iterdir()) if Path(path).is_dir() else []
    return bool(entries) and all(e.is_dir() and out_kind(e) == "generate" for e in entries)


def is_finished(path: str) -> bool:
    return os.path.isfile(os.path.join(path, METADATA))


def finished_outcome(task_id: str, path: str) -> dict[str, Any]:
    """The outcome of a finished dataset that is reused (its counts from its metadata.json)."""
    out: dict[str, Any] = {"task": task_id, "path": path, "reused": True}
    try:
        with open(os.path.join(path, METADATA)) as f:
            meta = json.load(f)
        out.update(episodes=meta["episodes_recorded"], steps=meta["steps_recorded"], kept=len(meta["filter"]["kept"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return out


def generate_command(gen: GenConfig) -> str:
    """The `gato generate` command line of one task's dataset (recorded in its metadata)."""
    return (f"gato generate --task {gen.task} --policy expert --episodes {gen.episodes} --shard-size "
            f"{gen.shard_size} --workers {gen.workers} --out {gen.out}"
            + (f" --max-steps {gen.max_steps}" if gen.max_steps else "")
            + (f" --action-noise {gen.action_noise:g}" if gen.action_noise else ""))


def generate_job(job: dict[str, Any]) -> dict[str, Any]:
    """Build (or resume, or reuse) one task's dataset, in a worker process, a Ray task or this process.

    ``job["config"]`` is the `datasets_gen.generate.Config` as a dict. Returns ``{"task", "path",
    "episodes", "steps", "kept", "seconds"}``, ``{"task", "path", "reused": True, ...}`` for a
    finished dataset, or ``{"task", "skip": why}`` when the task has no expert.
    """
    from envs.commandline import CommandError
    from policies import NoExpertError

    gen = GenConfig(**job["config"])
    t0 = time.perf_counter()
    if is_finished(gen.out):
        return finished_outcome(gen.task, gen.out)
    try:
        meta = generate(gen, generate_command(gen))
    except (NoExpertError, CommandError) as e:
        msg = str(e)
        if "No expert" not in msg:
            raise
        return {"task": gen.task, "skip": msg[msg.find("No expert"):].split(". ")[0]}
    return {"task": gen.task, "path": gen.out, "episodes": meta["episodes_recorded"], "steps": meta["steps_recorded"],
            "kept": len(meta["filter"]["kept"]), "seconds": round(time.perf_counter() - t0, 1)}


def in_processes(func: Callable[[dict[str, Any]], Any], jobs: list[dict[str, Any]], workers: int,
                 preload: Iterable[str] = ("envs", "datasets_gen.generate")) -> Iterator[Any]:
    """``func(job)`` for each job on ``workers`` processes, yielded as they finish; the first failure
    cancels the jobs not started and is raised. The workers fork from a server that imported the
    modules of ``preload`` once (if this process has not started it yet)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx)
    try:
        for fut in as_completed([pool.submit(func, j) for j in jobs]):
            yield fut.result()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def on_ray(func: Callable[[dict[str, Any]], Any], jobs: list[dict[str, Any]]) -> Iterator[Any]:
    """``func(job)`` for each job as a Ray task of one CPU (inside `ray_session`), yielded as they
    finish; the first failure cancels the others and is raised."""
    ray = import_ray()
    remote = ray.remote(num_cpus=1)(func)
    pending = [remote.remote(j) for j in jobs]
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                yield ray.get(ref)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def build_datasets(configs: list[GenConfig], workers: int = 1, ray: bool = False, ray_address: str | None = None,
                   where: str = "", log: Callable[[str], None] = print,
                   on_done: Callable[[dict[str, Any]], None] | None = None,
                   preload: Iterable[str] = ("envs", "datasets_gen.generate")) -> dict[str, dict[str, Any]]:
    """Build every dataset of ``configs`` (finished ones reused, unfinished ones resumed); ``{task: outcome}``
    (`generate_job`'s), in the order of ``configs``.

    Several unfinished tasks run one per process on ``workers`` processes (or as Ray tasks with
    ``ray``), the longest episodes first; a single one uses the workers on its shards (with ``ray``,
    its shards are Ray tasks). ``on_done`` sees each outcome as it arrives (in this process).
    """
    outcomes = {c.task: finished_outcome(c.task, c.out) for c in configs if is_finished(c.out)}
    todo = [c for c in configs if c.task not in outcomes]
    if outcomes:
        log(f"data: {len(outcomes)} of {len(configs)} datasets exist under {where}, building {len(todo)}")
    # one task at a time uses the workers on its shards; several tasks use one process each
    shard_workers = workers if len(todo) == 1 else 1
    todo.sort(key=lambda c: (-task_order(c.task)[0], c.task))  # the longest episodes first
    jobs = [{"config": asdict(dataclasses.replace(
        c, workers=max(1, min(shard_workers, math.ceil(c.episodes / c.shard_size))), ray=ray and len(todo) == 1,
        ray_address=ray_address if ray and len(todo) == 1 else None))} for c in todo]
    built: list[dict[str, Any]] = []

    def done(r: dict[str, Any]) -> None:
        built.append(r)
        outcomes[r["task"]] = r
        if "skip" in r:
            log(f"skip {r['task']}: {r['skip']}")
        elif not r.get("reused"):
            log(f"data {r['task']}: {r['episodes']} episodes, {r['steps']} steps, {r['kept']} kept "
                f"({r['seconds']:.0f}s) [{len(built)}/{len(jobs)}]")
        if on_done is not None:
            on_done(r)

    t0 = time.perf_counter()
    if ray and jobs:
        with ray_session(workers, ray_address):
            for result in (on_ray(generate_job, jobs) if len(jobs) > 1 else map(generate_job, jobs)):
                done(result)
    elif workers > 1 and len(jobs) > 1:
        for result in in_processes(generate_job, jobs, workers, preload):
            done(result)
    else:
        for j in jobs:
            done(generate_job(j))
    if jobs:
        log(f"data: {len(jobs)} datasets in {time.perf_counter() - t0:.0f}s")
    return {c.task: outcomes[c.task] for c in configs}


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


@dataclass
class SuiteConfig:
    """`gato generate --suite experts`: one expert dataset per task with an expert, DIR/<task>/ under
    --out, filtered as `gato generate` filters (the episodes at 0.8 of the expert return or more),
    with DIR/suite.json (per task: episodes, steps, bytes, seconds, or why skipped). Tasks are spread
    over --workers processes, or Ray tasks with --ray. Rerunning the same command resumes it."""

    suite: str = "experts"
    """The suite: ``experts`` (every task with an expert: the BabyAI levels the bot solves, all Meta-World
    tasks, the SB3 zoo's DMC tasks, the RAM-scripted Atari games)."""
    out: str = "data/experts"
    """Directory of the suite: one dataset per task (DIR/<task>) and DIR/suite.json."""
    tasks: tuple[str, ...] = ()
    """Only these tasks of the suite (a task without an expert is listed as skipped, with the reason)."""
    domain: str | None = None
    """Only the suite's tasks of this domain."""
    episodes_scale: float = 1.0
    """Multiplies the episodes per task of --data-episodes (each task gets at least 1)."""
    data_episodes: dict[str, int] = dataclasses.field(default_factory=lambda: dict(DATA_EPISODES))
    """Expert episodes per task, by domain (e.g. --data-episodes babyai 200 metaworld 100 dmc 20 atari 4)."""
    shard_sizes: dict[str, int] = dataclasses.field(default_factory=lambda: dict(SHARD_SIZE))
    """Episodes per shard (the unit of resumption), by domain."""
    action_noise: dict[str, float] = dataclasses.field(default_factory=lambda: dict(ACTION_NOISE))
    """DART noise injection (`gato generate --action-noise`), by domain (default: DMC 0.3)."""
    max_steps: int | None = None
    """Cap on episode length (counted as truncation; for quick checks)."""
    babyai_min_success: float = 0.5
    """A BabyAI level is in the suite when its bot's measured success (eval/references.json) is at least this."""
    workers: int = 2
    """Processes (or Ray CPUs) building datasets; tasks are spread over them (a single task: over its shards)."""
    ray: bool = False
    """Run the per-task jobs as Ray tasks (a local Ray of --workers CPUs unless --ray-address)."""
    ray_address: str | None = None
    """Ray cluster address (None starts a local one)."""
    force: bool = False
    """Write into an --out that holds another command's files."""


SHAPING = ("suite", "data_episodes", "episodes_scale", "shard_sizes", "action_noise", "max_steps", "babyai_min_success")
"""Options that shape the datasets: a rerun into the same --out must keep them."""


def select_tasks(cfg: SuiteConfig) -> tuple[list[str], dict[str, str]]:
    """The tasks of ``cfg`` to build, and ``{task: why skipped}`` for the others it names (or, without
    --tasks, the suite's left-out BabyAI levels of the selected domain)."""
    from envs.commandline import UsageError

    tasks, left_out = expert_tasks(cfg.babyai_min_success)
    if cfg.domain:
        tasks = [t for t in tasks if domain_of(t) == cfg.domain]
        left_out = {t: why for t, why in left_out.items() if domain_of(t) == cfg.domain}
    if not cfg.tasks:
        return tasks, left_out
    chosen, skipped = [], {}
    for t in dict.fromkeys(cfg.tasks):
        if cfg.domain and domain_of(t) != cfg.domain:
            raise UsageError(f"--tasks {t}: not a task of --domain {cfg.domain}; drop it or the --domain")
        if t in tasks:
            chosen.append(t)
        else:
            skipped[t] = left_out.get(t, NO_EXPERT)
    return chosen, skipped


def check_config(cfg: SuiteConfig) -> tuple[list[str], dict[str, str], list[GenConfig], dict[str, Any]]:
    """Validate ``cfg`` before anything is written; returns the tasks, the skipped ones, their
    `gato generate` configs and the stored suite.json (empty when new)."""
    import envs
    from envs.commandline import (CommandError, UsageError, at_least, changed_options, check_out_dir, check_task,
                                  in_range)

    if cfg.suite not in SUITES:
        known = "; ".join(f"{k} ({v})" for k, v in SUITES.items())
        raise UsageError(f"--suite {cfg.suite!r}: unknown suite; known suites: {known}")
    for t in cfg.tasks:
        check_task(t, "--tasks")
    if cfg.domain is not None and cfg.domain not in envs.DOMAINS:
        raise UsageError(f"--domain {cfg.domain}: unknown domain; the domains are {', '.join(envs.DOMAINS)}")
    if not cfg.episodes_scale > 0:
        raise UsageError(f"--episodes-scale {cfg.episodes_scale}: must be above 0")
    for flag, value in (("--workers", cfg.workers), ("--max-steps", cfg.max_steps)):
        at_least(value, 1, flag)
    in_range(cfg.babyai_min_success, 0.0, 1.0, "--babyai-min-success")
    for flag, table in (("--data-episodes", cfg.data_episodes), ("--shard-sizes", cfg.shard_sizes),
                        ("--action-noise", cfg.action_noise)):
        for domain, value in table.items():
            if domain not in envs.DOMAINS:
                raise UsageError(f"{flag} {domain}: unknown domain; the domains are {', '.join(envs.DOMAINS)}")
            if flag == "--action-noise":
                in_range(value, 0.0, 1.0, f"{flag} {domain}")
            else:
                at_least(value, 1, f"{flag} {domain}")
    if cfg.ray:
        import_ray()
    if not holds_only_datasets(cfg.out):  # a `gato release --data` directory is resumed like a suite
        check_out_dir(cfg.out, SUITE_KIND, force=cfg.force)
    stored: dict[str, Any] = {}
    path = Path(cfg.out) / SUITE_FILE
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except ValueError as e:
            raise CommandError(f"--out {cfg.out}: {path} is not readable JSON ({e}); move it away to start "
                               "anew") from None
        diffs = changed_options(stored.get("options", {}), {k: getattr(cfg, k) for k in SHAPING})
        if diffs:
            shown = "; ".join(f"--{k.replace('_', '-')} was {a!r}, now {b!r}" for k, (a, b) in diffs.items())
            raise CommandError(f"--out {cfg.out} was started with other options ({shown}); rerun with them to "
                               "resume it, or give another --out")
    tasks, skipped = select_tasks(cfg)
    configs = [expert_config(t, n, s, os.path.join(cfg.out, t), cfg.max_steps, action_noise=cfg.action_noise)
               for t, n, s in dataset_plan(tasks, cfg.data_episodes, cfg.episodes_scale, cfg.shard_sizes)]
    check_datasets(configs, force=cfg.force, flag="--out", root=cfg.out)
    return tasks, skipped, configs, stored


def dir_bytes(path: str | os.PathLike) -> int:
    """The sizes of the files under ``path`` added up."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _entry(outcome: dict[str, Any], gen: GenConfig, before: dict[str, Any]) -> dict[str, Any]:
    """suite.json's row of a task from its outcome (a reused dataset keeps the seconds stored for it)."""
    if "skip" in outcome:
        return {"status": "skipped", "why": outcome["skip"]}
    seconds = outcome.get("seconds")
    if outcome.get("reused") and before.get("status") == "done":
        seconds = before.get("seconds")
    return {"status": "done", "path": gen.out, "episodes": outcome.get("episodes"), "kept": outcome.get("kept"),
            "steps": outcome.get("steps"), "bytes": dir_bytes(gen.out), "seconds": seconds,
            "action_noise": gen.action_noise}


def _totals(entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    done = [e for e in entries.values() if e.get("status") == "done"]
    total = {"datasets": len(done), "skipped": sum(e.get("status") == "skipped" for e in entries.values()),
             "pending": sum(e.get("status") == "pending" for e in entries.values())}
    for key in ("episodes", "kept", "steps", "bytes", "seconds"):
        values = [e.get(key) for e in done]
        total[key] = round(sum(v for v in values if v is not None), 1) if key == "seconds" else sum(
            v for v in values if v is not None)
    return total


def run_suite(cfg: SuiteConfig, command: str = "", log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build (or resume) the suite of ``cfg``; returns the contents of its suite.json."""
    from envs.commandline import log as log_line

    log = log or log_line
    tasks, skipped, configs, stored = check_config(cfg)
    before = stored.get("tasks", {})
    entries: dict[str, dict[str, Any]] = dict(before)  # tasks of earlier runs with another --tasks/--domain stay
    for t, why in skipped.items():
        entries[t] = {"status": "skipped", "why": why}
    for gen in configs:
        if entries.get(gen.task, {}).get("status") != "done" or not is_finished(gen.out):
            entries[gen.task] = {"status": "pending", "path": gen.out}
    info = {"format": FORMAT, "suite": cfg.suite, "command": command, "created": stored.get("created") or
            time.strftime("%Y-%m-%d %H:%M:%S"), "options": {k: getattr(cfg, k) for k in SHAPING}, "tasks": entries}
    path = Path(cfg.out) / SUITE_FILE

    def write() -> None:
        info["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
        info["totals"] = _totals(entries)
        info["tasks"] = {t: entries[t] for t in sorted(entries, key=task_order)}
        atomic_write_json(path, info)

    os.makedirs(cfg.out, exist_ok=True)
    write()  # first, so that a rerun after a kill recognizes the directory
    counts = count_by_domain(tasks)
    log(f"suite {cfg.suite}: {len(tasks)} tasks ({', '.join(f'{d} {n}' for d, n in counts.items()) or 'none'})"
        + (f", {len(skipped)} skipped" if skipped else "") + f" under {cfg.out}")
    for t, why in skipped.items():
        log(f"skip {t}: {why}")
    by_task = {g.task: g for g in configs}

    def done(r: dict[str, Any]) -> None:
        entries[r["task"]] = _entry(r, by_task[r["task"]], before.get(r["task"], {}))
        write()

    t0 = time.perf_counter()
    outcomes = build_datasets(configs, workers=cfg.workers, ray=cfg.ray, ray_address=cfg.ray_address,
                              where=cfg.out, log=log, on_done=done)
    for t, r in outcomes.items():  # the reused ones (the built ones were written as they came)
        if entries[t].get("status") != "done" or r.get("reused"):
            entries[t] = _entry(r, by_task[t], before.get(t, {}))
    info["wall_seconds"] = round(time.perf_counter() - t0, 1)
    write()
    return info


def _given(argv: list[str], flag: str) -> str | None:
    """The value of ``flag`` in ``argv`` (``--flag v`` or ``--flag=v``; "" when it has none), or None."""
    for i, arg in enumerate(argv):
        if arg == flag:
            return argv[i + 1] if i + 1 < len(argv) else ""
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> int:
    """`gato generate`: the suite of ``--suite``, else one task's dataset (`datasets_gen.generate.main`)."""
    import shlex

    from envs.commandline import UsageError, parse

    argv = list(sys.argv[1:] if argv is None else argv)
    suite = _given(argv, "--suite")
    if suite is None:
        from datasets_gen.generate import main as generate_main

        return generate_main(argv)
    task = _given(argv, "--task")
    if task is not None:
        raise UsageError(f"--task {task} and --suite {suite} exclude each other: drop --task to build the suite "
                         f"(--tasks {task or 'TASK'} restricts the suite to it), or drop --suite to build one dataset")
    cfg = parse(SuiteConfig, argv, "gato generate")
    info = run_suite(cfg, "gato generate " + shlex.join(argv))
    total = info["totals"]
    print(json.dumps({"suite": cfg.suite, "out": cfg.out, **total, "wall_seconds": info["wall_seconds"],
                      "skipped_tasks": sorted(t for t, e in info["tasks"].items() if e["status"] == "skipped")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
