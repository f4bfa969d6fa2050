"""`gato generate`: record a policy's episodes into an HDF5 episode dataset, resumably.

    gato generate --task babyai-goto-red-ball --policy expert --episodes 256 --out data/goto [--workers 2] [--ray]

Episode ``i`` is reset with seed ``seed + i`` and recorded by `policies.rollout.rollout_episodes`
(``record=True``), so its content depends only on (task, policy, seed, i). Episodes are grouped in
shards of ``shard_size`` consecutive indices; a shard is the unit of work (one process or one Ray
task) and of durability: it is written to a temporary file, fsynced, hashed and renamed when
complete, and its sha256 is then added to ``DATASET/SHA256SUMS`` (`datasets_gen.checksums`).
Rerunning the same command keeps the shards that are listed there and whose sha256 matches, and
regenerates the others (missing, unlisted or corrupt, each named), so a killed run resumes with
no episode lost or duplicated and the result equals an uninterrupted run. A dataset written before
checksums has its shards read whole once: those that pass are recorded, the others regenerated.

When all shards exist, ``metadata.json`` is written (see `datasets_gen.format` for the layout): it
holds the per-episode index, returns, the expert return and which episodes the return filter
keeps (`datasets_gen.filtering`). Shards keep every recorded episode; the filter is applied by
the reader, so turning it on or off never requires regenerating.
"""

from __future__ import annotations

import glob
import hashlib
import inspect
import json
import math
import multiprocessing as mp
import os
import shlex
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from datasets_gen import checksums, filtering
from datasets_gen.format import (CONFIG, FORMAT, METADATA, describe_space, episode_name, shard_name,
                                 write_episode)
from envs.atomic import atomic_write_json
from policies.trust import SUMS, fsync_dir, sha256_file, write_sums
from policies import registered_policy_modules

KILL_HOOK_ENV = "GATO_GENERATE_KILL_AT"
"""Test hook: ``"S,K"`` makes the process SIGKILL itself after writing episode K of shard S (in the tmp file)."""


@dataclass
class Config:
    """Record episodes of a policy on a task into an HDF5 dataset directory (`--suite experts` records one
    per task with an expert instead: `gato generate --suite experts --help`)."""

    task: str = ""
    """registry task id, e.g. ``babyai-goto-red-ball``."""
    policy: str = "expert"
    """``expert``, ``random`` or a path to an SB3 ``.zip`` checkpoint."""
    episodes: int = 16
    """episodes to record (before filtering)."""
    out: str = ""
    """dataset directory (default ``data/<task>-<policy>``)."""
    seed: int = 0
    """episode ``i`` resets with ``seed + i``."""
    shard_size: int = 16
    """episodes per shard file (the unit of work and of resumption)."""
    workers: int = 1
    """processes generating shards in parallel."""
    ray: bool = False
    """run shards as Ray tasks (joins ``--ray-address``, or Ray if already initialized, else a local Ray of ``workers`` CPUs)."""
    ray_address: str | None = None
    """Ray cluster address (None starts a local one)."""
    filter: bool = True
    """keep episodes with return >= ``fraction`` * expert return (``--no-filter`` keeps all)."""
    fraction: float = filtering.FRACTION
    """filter threshold as a fraction of the expert return."""
    window: int = filtering.EXPERT_WINDOW
    """episodes per window of the windowed expert return."""
    expert_return: float | None = None
    """expert return to filter against (default: windowed max over this dataset's returns, for non-random policies)."""
    deterministic: bool = True
    """greedy actions for stochastic policies."""
    max_steps: int | None = None
    """optional cap on episode length (counted as truncation)."""
    action_noise: float = 0.0
    """DART noise injection: the env executes the policy's action perturbed (Box: Gaussian noise
    of this std times half the range; Discrete: a random action with this probability), the
    dataset records the policy's own action, so it also covers states off the expert's path,
    labelled with the expert's correction. 0: the expert's own trajectories."""
    force: bool = False
    """write into an --out that holds another command's files (a dataset made with other options is
    always refused: rerun with its options to resume it, or give another --out)."""
    allow_pickle: bool = False
    """load a --policy .zip that is neither pinned in the zoo nor written by gato on this account; SB3
    zips are pickles, so this executes code from the file."""


# Fields whose change alters the recorded content: a rerun into an existing dataset must match them.
IDENTITY = ("task", "policy", "episodes", "seed", "shard_size", "deterministic", "max_steps", "action_noise")


def default_out(cfg: Config) -> str:
    return cfg.out or os.path.join("data", f"{cfg.task}-{Path(cfg.policy).stem}")


def shard_indices(episodes: int, shard_size: int, shard: int) -> list[int]:
    """Episode indices of ``shard``: ``[shard * S, min((shard + 1) * S, episodes))``."""
    return list(range(shard * shard_size, min((shard + 1) * shard_size, episodes)))


def num_shards(episodes: int, shard_size: int) -> int:
    return math.ceil(episodes / shard_size)


# ----------------------------------------------------------------------------- provenance


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the data."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for pkg in ("numpy", "h5py", "gymnasium", "ale-py", "dm-control", "mujoco", "minigrid", "metaworld",
                "procgen2", "stable-baselines3", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _sha(path: str, n: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n]


def policy_version(policy: Any) -> str:
    """``<class> code:<sha of its source file> [ckpt:<sha of its checkpoint>]``."""
    cls = type(policy)
    parts = [f"{cls.__module__}.{cls.__name__}"]
    try:
        parts.append("code:" + _sha(inspect.getsourcefile(cls), 12))
    except (TypeError, OSError):
        pass
    ckpt = getattr(policy, "checkpoint", None)
    if ckpt and os.path.exists(ckpt):
        parts.append("ckpt:" + _sha(ckpt))
    return " ".join(parts)


# ----------------------------------------------------------------------------- one shard


def _kill_hook(shard: int, k: int) -> None:
    spec = os.environ.get(KILL_HOOK_ENV)
    if spec and tuple(int(x) for x in spec.split(",")) == (shard, k):
        os.kill(os.getpid(), signal.SIGKILL)  # a deliberate crash mid-shard (tests only)


def shard_summary(path: str) -> list[dict[str, Any]]:
    """Per-episode index rows of a complete shard (reads attributes only)."""
    with h5py.File(path, "r") as f:
        rows = []
        for name in sorted(f.keys()):
            a = f[name].attrs
            rows.append({"index": int(a["index"]), "seed": int(a["seed"]), "return": float(a["return"]),
                         "length": int(a["length"]), "success": None if a["success"] < 0 else bool(a["success"])})
        return rows


def generate_shard(job: dict[str, Any], shard: int) -> dict[str, Any]:
    """Records shard ``shard`` of the dataset described by ``job`` (the config as a dict).

    Returns:
        ``{"shard": shard, "episodes": [index rows], "steps": n, "seconds": s, "policy_name", "policy_version"}``.
    """
    import envs
    from policies.rollout import rollout_episodes
    from policies import import_policy_modules, make_policy

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import_policy_modules(job.get("policy_modules", ()))
    out, task = job["out"], job["task"]
    path = os.path.join(out, shard_name(shard))
    if os.path.exists(path):
        return {"shard": shard, "episodes": shard_summary(path), "steps": 0, "seconds": 0.0, "skipped": True,
                "sha256": checksums.shard_digest(path)}
    t0 = time.perf_counter()
    env_list = [envs.make(task)]
    policy = make_policy(job["policy"], task, envs=env_list, allow_pickle=job.get("allow_pickle", False))
    version = policy_version(policy)
    name = getattr(policy, "name", job["policy"])
    tmp = f"{path}.tmp{os.getpid()}"
    rows, steps = [], 0
    try:
        with h5py.File(tmp, "w") as f:
            # dataset-wide facts on the shard root; per-episode attributes kept to 5 (each costs ~0.1 ms)
            f.attrs.update(format=FORMAT, task_id=task, shard=shard, policy=job["policy"], policy_name=name,
                           policy_version=version)
            indices = shard_indices(job["episodes"], job["shard_size"], shard)
            for k, i in enumerate(indices):
                r = rollout_episodes(policy, task, [i], job["seed"], record=True, deterministic=job["deterministic"],
                                     max_steps=job["max_steps"], envs=env_list,
                                     action_noise=job.get("action_noise", 0.0))[0]
                success = -1 if r["success"] is None else int(r["success"])
                write_episode(f, i, r["episode"], {
                    "index": i, "seed": r["seed"], "return": r["return"], "length": r["length"], "success": success})
                rows.append({"index": i, "seed": r["seed"], "return": r["return"], "length": r["length"],
                             "success": r["success"]})
                steps += r["length"]
                _kill_hook(shard, k)
            f.attrs.update(first_episode=indices[0], num_episodes=len(indices))
        digest = checksums.shard_digest(tmp)  # fsynced, then hashed: the bytes that get renamed
        os.replace(tmp, path)
        fsync_dir(out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        for env in env_list:
            env.close()
    return {"shard": shard, "episodes": rows, "steps": steps, "seconds": time.perf_counter() - t0,
            "policy_name": name, "policy_version": version, "sha256": digest}


# ----------------------------------------------------------------------------- the whole dataset


def _pid_alive(pid: str) -> bool:
    """Whether the process that owns a tmp shard still runs (then its file is not stale)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return int(pid) != os.getpid()


def _check_identity(out: str, cfg: Config) -> None:
    path = os.path.join(out, CONFIG)
    if not os.path.exists(path):
        return
    old = json.load(open(path))
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}  # options newer than the dataset
    diffs = {k: (old.get(k, defaults[k]), getattr(cfg, k)) for k in IDENTITY
             if old.get(k, defaults[k]) != getattr(cfg, k)}
    if diffs:
        shown = ", ".join(f"{k}: existing {a!r} vs now {b!r}" for k, (a, b) in diffs.items())
        raise ValueError(
            f"{out} already holds a dataset made with other options ({shown}); rerun with the same options "
            "to resume it, or pass another --out"
        )


RAY_OBJECT_STORE = 100 * 1024 * 1024
"""A local Ray's object store: the jobs return small dicts (Ray's default takes GBs of /dev/shm)."""


def import_ray():
    """The ``ray`` module, or `CommandError` saying how to get it."""
    from envs.commandline import CommandError

    try:
        import ray
    except ImportError as e:
        raise CommandError(f"--ray: Ray cannot be imported ({e}); install it with "
                           "`pip install 'ray[default]==2.60.0'` (the version pyproject.toml pins), or drop --ray "
                           "to spread the tasks over processes") from None
    return ray


@contextmanager
def ray_session(workers: int, address: str | None = None):
    """Ray for the jobs: joins ``address``, or the Ray already initialized here, or starts a local Ray
    of ``workers`` CPUs with a small object store; a Ray it started is shut down afterwards."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, object_store_memory=RAY_OBJECT_STORE)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _run_shards(cfg: Config, job: dict[str, Any], pending: list[int]) -> list[dict[str, Any]]:
    from tqdm import tqdm

    results = []
    bar = tqdm(total=len(pending), unit="shard", desc=cfg.task, disable=not pending)

    def done(result: dict[str, Any]) -> None:  # in this process only: one writer of SHA256SUMS
        checksums.record(job["out"], shard_name(result["shard"]), result["sha256"])
        results.append(result)
        bar.update(1)

    if cfg.ray:
        with ray_session(cfg.workers, cfg.ray_address) as ray:
            remote = ray.remote(num_cpus=1)(generate_shard)
            refs = {remote.remote(job, s): s for s in pending}
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    refs.pop(ref)
                    done(ray.get(ref))
    elif cfg.workers > 1:
        ctx = mp.get_context("forkserver")
        with ProcessPoolExecutor(cfg.workers, mp_context=ctx) as pool:
            for fut in as_completed([pool.submit(generate_shard, job, s) for s in pending]):
                done(fut.result())
    else:
        for s in pending:
            done(generate_shard(job, s))
    bar.close()
    return results


def finalize(cfg: Config, out: str, command: str, run_results: list[dict[str, Any]]) -> dict[str, Any]:
    """Writes ``metadata.json`` from the complete shards; returns it."""
    import envs

    n = num_shards(cfg.episodes, cfg.shard_size)
    rows = []
    for s in range(n):
        for row in shard_summary(os.path.join(out, shard_name(s))):
            rows.append({**row, "shard": shard_name(s)})
    rows.sort(key=lambda r: r["index"])
    expected = list(range(cfg.episodes))
    if [r["index"] for r in rows] != expected:
        raise RuntimeError(f"{out}: shards hold episodes {[r['index'] for r in rows]}, expected 0..{cfg.episodes - 1}")
    returns = [r["return"] for r in rows]
    env = envs.make(cfg.task)
    try:
        obs_space, act_space = describe_space(env.observation_space), describe_space(env.action_space)
    finally:
        env.close()

    if cfg.expert_return is not None:
        expert_return, source = float(cfg.expert_return), "given with --expert-return"
    elif cfg.policy != "random":
        expert_return = filtering.windowed_expert_return(returns, cfg.window)
        source = f"highest {min(cfg.window, len(returns))}-episode windowed mean of this dataset's returns"
    else:
        expert_return, source = None, "none: the random policy is no expert (pass --expert-return to filter)"
    enabled = cfg.filter and expert_return is not None
    if enabled:
        keep = filtering.keep_mask(returns, expert_return, cfg.fraction)
    else:
        keep = np.ones(len(returns), bool)
    kept = [r["index"] for r, k in zip(rows, keep) if k]
    policy_info = next((r for r in run_results if "policy_version" in r), None)
    old_meta = os.path.join(out, METADATA)
    if policy_info is None and os.path.exists(old_meta):  # all shards existed: keep the recorded policy info
        old = json.load(open(old_meta))
        policy_info = {"policy_name": old.get("policy_name"), "policy_version": old.get("policy_version")}
    policy_info = policy_info or {}
    meta = {
        "format": FORMAT, "task_id": cfg.task, "domain": envs.task_spec(cfg.task).domain,
        "policy": cfg.policy, "policy_name": policy_info.get("policy_name"),
        "policy_version": policy_info.get("policy_version"), "seed": cfg.seed,
        "seeds": [r["seed"] for r in rows], "deterministic": cfg.deterministic, "max_steps": cfg.max_steps,
        "action_noise": cfg.action_noise, "episodes_recorded": len(rows), "steps_recorded": int(sum(r["length"] for r in rows)),
        "shard_size": cfg.shard_size, "shards": [shard_name(s) for s in range(n)],
        "observation_space": obs_space, "action_space": act_space, "versions": library_versions(),
        "command": command, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "returns": returns, "expert_return": expert_return, "expert_return_source": source,
        "expert_window": cfg.window,
        "filter": {"enabled": enabled, "fraction": cfg.fraction,
                   "threshold": filtering.threshold(expert_return, cfg.fraction) if enabled else None, "kept": kept},
        "episodes": rows,
    }
    atomic_write_json(os.path.join(out, METADATA), meta)
    checksums.record(out, METADATA, sha256_file(os.path.join(out, METADATA)))
    return meta


def pending_shards(cfg: Config, out: str) -> list[int]:
    """The shards to (re)generate: all but those listed in SHA256SUMS whose sha256 matches.

    A shard file that is unlisted (its run was killed between the rename and the record) or
    differs from its sha256 is deleted and regenerated, and named on stderr. A dataset without a
    SHA256SUMS (written before checksums) has each existing shard read whole; those that pass are
    recorded, the others regenerated.
    """
    n = num_shards(cfg.episodes, cfg.shard_size)
    names = [shard_name(s) for s in range(n)]
    try:
        sums = checksums.read_manifest(out)
    except checksums.ManifestError as e:
        print(f"warning: {e}; reading every shard whole instead", file=sys.stderr)
        sums = None
    bad: dict[str, str] = {}
    if sums is None:  # a new dataset, or one written before checksums
        sums = {}
        for s, name in enumerate(names):
            path = os.path.join(out, name)
            if os.path.exists(path):
                idx = shard_indices(cfg.episodes, cfg.shard_size, s)
                why = checksums.structure_check(path, idx[0], len(idx))
                if why is None:
                    sums[name] = sha256_file(path)
                else:
                    bad[name] = why
        if sums:
            print(f"{out}: no {SUMS} (written before shard checksums); {len(sums)} shard(s) read whole and recorded",
                  file=sys.stderr)
    else:
        for name in names:
            path = os.path.join(out, name)
            if name not in sums:
                if os.path.exists(path):
                    bad[name] = f"not listed in {SUMS} (its run stopped before recording it)"
            elif not os.path.exists(path):
                bad[name] = f"listed in {SUMS} but missing"
            elif (why := checksums.check_file(path, sums[name])) is not None:
                bad[name] = why
    for name, why in sorted(bad.items()):
        print(f"{os.path.join(out, name)}: {why}; regenerating it", file=sys.stderr)
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
        sums.pop(name, None)
    write_sums(os.path.join(out, SUMS), {k: v for k, v in sums.items() if k in names or k == METADATA})
    return [s for s, name in enumerate(names) if name not in sums]


def check_policy(policy: str, task: str, allow_pickle: bool = False) -> None:
    """Build ``policy`` for ``task`` once (an expert that does not exist fails here, not in a shard)."""
    import envs
    from envs.commandline import CommandError
    from policies import NoExpertError, make_policy

    env = envs.make(task)
    try:
        make_policy(policy, task, envs=[env], allow_pickle=allow_pickle)
    except NoExpertError as e:
        raise CommandError(f"--policy {policy}: {e}") from None
    finally:
        env.close()


def generate(cfg: Config, command: str = "") -> dict[str, Any]:
    """Records (or resumes) the dataset of ``cfg``; returns its metadata."""
    from envs.commandline import at_least, check_out_dir, check_task, in_range

    # Everything is checked before the first file is written (a refused run leaves nothing behind).
    if not cfg.task:
        raise ValueError("--task is required (`gato tasks` lists the ids); or --suite experts for every task "
                         "with an expert")
    check_task(cfg.task)
    for flag, value in (("--episodes", cfg.episodes), ("--shard-size", cfg.shard_size), ("--workers", cfg.workers),
                        ("--window", cfg.window), ("--max-steps", cfg.max_steps)):
        at_least(value, 1, flag)
    in_range(cfg.fraction, 0.0, 1.0, "--fraction")
    in_range(cfg.action_noise, 0.0, 1.0, "--action-noise")
    out = default_out(cfg)
    check_out_dir(out, "generate", force=cfg.force)
    _check_identity(out, cfg)
    check_policy(cfg.policy, cfg.task, cfg.allow_pickle)
    os.makedirs(out, exist_ok=True)
    atomic_write_json(os.path.join(out, CONFIG), {**asdict(cfg), "out": os.path.abspath(out), "command": command})
    for stale in glob.glob(os.path.join(out, "shard-*.h5.tmp*")):  # left by a killed run
        if not _pid_alive(stale.rsplit(".tmp", 1)[1]):
            os.remove(stale)
    job = {"out": out, "task": cfg.task, "policy": cfg.policy, "episodes": cfg.episodes, "seed": cfg.seed,
           "shard_size": cfg.shard_size, "deterministic": cfg.deterministic, "max_steps": cfg.max_steps,
           "allow_pickle": cfg.allow_pickle, "action_noise": cfg.action_noise,
           "policy_modules": registered_policy_modules()}
    n = num_shards(cfg.episodes, cfg.shard_size)
    pending = pending_shards(cfg, out)
    if len(pending) < n:
        print(f"{out}: {n - len(pending)} of {n} shards exist, generating {len(pending)}", file=sys.stderr)
    results = _run_shards(cfg, job, pending)
    return finalize(cfg, out, command, results)


def main(argv: list[str] | None = None) -> int:
    from envs.commandline import parse

    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse(Config, argv, "gato generate")
    meta = generate(cfg, "gato generate " + shlex.join(argv))
    from datasets_gen.info import summary

    print(json.dumps(summary(default_out(cfg), meta)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
