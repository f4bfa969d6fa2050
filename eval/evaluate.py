"""`gato eval`: a trained Gato checkpoint rolled out closed-loop and scored against the experts.

    gato eval --checkpoint runs/demo/model --tasks babyai-goto-red-ball dmc-cartpole-balance \\
        --episodes 10 --seed 10000 --out reports/eval/report.json [--video reports/eval/videos]
    gato eval --checkpoint RUN --domain metaworld --episodes 10 --out report.json

For each task a `gato.policy.GatoPolicy` (prompted with a demonstration from the task's
expert dataset: ``--prompt-data``, else the checkpoint directory's ``prompts/<task>/`` (a release
carries them), else the checkpoint's training dataset) is rolled out by
`policies.rollout.rollout` on ``--num-envs`` envs at once, episode
``i`` reset with seed ``seed + i`` (default seeds start at 10000, away from the datasets' 0..N-1).
The results go through `eval.report`: ``report.json`` / ``.md`` / ``.png`` beside ``--out``
with expert-normalized scores per task and per domain (rliable aggregates).

What the checkpoint was trained on comes from its saved trainer config (``data``: the dataset
paths, whose ``metadata.json`` name the task). A task of a domain the checkpoint never saw is
evaluated anyway and flagged in the report; a task whose spaces the model cannot represent
raises `UnsupportedTaskError`; a task without a prompt dataset raises `MissingPromptError`
naming the `gato generate` command that builds it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from policies.rollout import RolloutResult, rollout, save_results
from envs import domain_of
from envs.atomic import atomic_path
from gato.policy import (MissingPromptError, PROMPT_SLOTS, generate_command, make_gato_policy,
                         open_prompt_dataset, trained_tasks)

if TYPE_CHECKING:
    from gato.checkpoint import LoadedCheckpoint

HELD_OUT_SEED = 10_000  # datasets record seeds 0..N-1; evaluation starts far from them


@dataclass
class EvalConfig:
    """Evaluate a Gato checkpoint closed-loop on tasks and write the expert-normalized report."""

    checkpoint: str
    """Run directory written by `gato train` (or one of its checkpoint directories)."""
    tasks: tuple[str, ...] = ()
    """Task ids to evaluate (default with no --domain: every task the checkpoint trained on)."""
    domain: str | None = None
    """Evaluate the checkpoint's trained tasks of this domain (all the domain's tasks if it has none)."""
    episodes: int = 10
    """Episodes per task (paper: 50)."""
    seed: int = HELD_OUT_SEED
    """Episode i resets with seed + i."""
    out: str = "report.json"
    """Report JSON path; report .md and .png are written beside it, rollout results as <stem>.results.json."""
    video: str | None = None
    """Directory for one GIF per task (episode 0), rendered with the env's rgb_array renderer."""
    prompt_data: tuple[str, ...] = ()
    """Expert datasets for prompts (matched to tasks by their metadata); default: the training datasets."""
    prompt_slots: int = PROMPT_SLOTS
    """Prompt length in slots (capped at half the model's context)."""
    prompt_from_end: bool = False
    """Take the prompt from the end of the demonstration instead of its start."""
    num_envs: int = 8
    """Envs stepped together (one batched policy call per step)."""
    discrete_decoding: str | None = None
    """How discrete action tokens are drawn: sample or argmax (None: the policy's measured default)."""
    continuous_decoding: str | None = None
    """How continuous action tokens are drawn: sample, argmax, mean or median (None: the measured default)."""
    temperature: float = 1.0
    """Softmax temperature of sample decoding."""
    fire_on_reset: bool = True
    """Atari: the env presses FIRE after a reset and each lost life (``envs.make(..., fire_on_reset=True)``),
    as DQN-style evaluations do; --no-fire-on-reset leaves the serve to the policy."""
    slide: str = "reprefill"
    """How the context window slides when full: reprefill (exact) or drop (cut the cache in place)."""
    max_steps: int | None = None
    """Optional cap on episode length (counted as truncation)."""
    device: str = "cpu"
    """Torch device of the model."""
    threads: int | None = None
    """torch CPU threads; None keeps torch's default."""
    reps: int = 2000
    """Bootstrap replications of the report's confidence intervals."""
    force: bool = False
    """Replace report files at --out that another evaluation wrote."""
    progress: bool = True
    """Show a progress bar per task (episodes) on stderr."""


def report_paths(out: str) -> list[str]:
    """The files `write_eval_report` writes for ``--out`` (``x.json`` -> ``x.md``, ``x.png``, ``x.results.json``)."""
    stem = Path(out).name[: -len(".json")] if out.endswith(".json") else Path(out).name
    folder = os.path.dirname(os.path.abspath(out))
    return [os.path.join(folder, stem + ext) for ext in (".json", ".md", ".png", ".results.json")]


def check_config(cfg: EvalConfig) -> EvalConfig:
    """Validate ``cfg`` before the model is loaded or a file written; creates the output directory.

    Raises:
        UsageError: a value out of range, an unknown task or domain (exit status 2).
        CommandError: a missing checkpoint or prompt dataset, or report files of another evaluation
            at ``--out`` without ``--force`` (exit status 1).
    """
    import envs
    from envs.commandline import (UsageError, at_least, changed_options, check_dir, check_out_files, check_task,
                          check_writable_parent)

    check_dir(cfg.checkpoint, "--checkpoint", "run directory")
    for task_id in cfg.tasks:
        check_task(task_id, "--tasks")
    if cfg.tasks and cfg.domain:
        raise UsageError("give --tasks or --domain, not both")
    if cfg.domain is not None and cfg.domain not in envs.DOMAINS:
        raise UsageError(f"--domain {cfg.domain}: unknown; the domains are {', '.join(envs.DOMAINS)}")
    for flag, value in (("--episodes", cfg.episodes), ("--num-envs", cfg.num_envs), ("--max-steps", cfg.max_steps),
                        ("--prompt-slots", cfg.prompt_slots), ("--reps", cfg.reps), ("--threads", cfg.threads)):
        at_least(value, 1, flag)
    if not cfg.temperature > 0:
        raise UsageError(f"--temperature {cfg.temperature}: must be above 0")
    if cfg.slide not in ("reprefill", "drop"):
        raise UsageError(f"--slide {cfg.slide}: use reprefill or drop")
    for path in cfg.prompt_data:
        check_dir(path, "--prompt-data", "dataset directory")
    now = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("force", "progress", "threads", "device")}

    def same(path: Path) -> bool:  # an identical rerun may replace its own report
        try:
            stored = json.loads(Path(report_paths(cfg.out)[0]).read_text())["extra"]["evaluation"]["config"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return not changed_options(stored, now)

    check_out_files(report_paths(cfg.out), force=cfg.force, same=same)
    if cfg.video:
        check_writable_parent(os.path.join(cfg.video, "x.gif"), "--video")
    os.makedirs(os.path.dirname(os.path.abspath(cfg.out)), exist_ok=True)  # before the rollouts, not after
    return cfg


def decoding_option(cfg: EvalConfig) -> dict[str, str]:
    """The Gato policy's ``decoding`` from ``--discrete-decoding`` / ``--continuous-decoding``."""
    given = {"discrete": cfg.discrete_decoding, "continuous": cfg.continuous_decoding}
    return {kind: mode for kind, mode in given.items() if mode is not None}


def resolve_tasks(cfg: EvalConfig, trained: dict[str, str]) -> list[str]:
    """The task ids to evaluate (see `EvalConfig.tasks` / `domain`)."""
    if cfg.tasks and cfg.domain:
        raise ValueError("give --tasks or --domain, not both")
    if cfg.tasks:
        return list(cfg.tasks)
    if cfg.domain:
        mine = [t for t in trained if domain_of(t) == cfg.domain]
        if mine:
            return mine
        import envs

        return list(envs.task_ids(cfg.domain))
    if not trained:
        raise ValueError(f"checkpoint {cfg.checkpoint} records no training datasets; name the tasks with --tasks")
    return list(trained)


def prompt_datasets(paths: Sequence[str]) -> dict[str, str]:
    """``{task_id: path}`` of explicitly given prompt datasets (read from their metadata)."""
    out = {}
    for p in paths:
        meta = Path(p) / "metadata.json"
        if not meta.is_file():
            raise MissingPromptError(f"--prompt-data {p!r} is not a finished dataset (no metadata.json); "
                                     f"build it with `gato generate --task <task> --policy expert --out {p}`")
        out[json.loads(meta.read_text())["task_id"]] = str(p)
    return out


BUNDLED_PROMPTS = "prompts"
"""A checkpoint directory's folder of prompt datasets, one per task (``<checkpoint>/prompts/<task>/``;
`gato release` writes them, so that a release evaluates without the training data)."""


def bundled_prompts(checkpoint: str) -> dict[str, str]:
    """``{task_id: path}`` of the finished prompt datasets in ``<checkpoint>/prompts/`` (empty if none)."""
    root = Path(checkpoint) / BUNDLED_PROMPTS
    if not root.is_dir():
        return {}
    return prompt_datasets([str(p) for p in sorted(root.iterdir()) if (p / "metadata.json").is_file()])


def find_prompt_dataset(task_id: str, given: dict[str, str], trained: dict[str, str]) -> str:
    """The prompt dataset of ``task_id``: given (``--prompt-data``, then the checkpoint's bundled
    ``prompts/``), else trained on, else ``data/<task>-expert``."""
    for source in (given, trained):
        if task_id in source and (Path(source[task_id]) / "metadata.json").is_file():
            return source[task_id]
    default = os.path.join("data", f"{task_id}-expert")
    if (Path(default) / "metadata.json").is_file():
        return default
    raise MissingPromptError(
        f"no prompt dataset for task {task_id!r} (looked at --prompt-data, the checkpoint's prompts/ and training "
        f"datasets and {default}); build it with `{generate_command(task_id)}`")


def env_options(task_id: str, fire_on_reset: bool = True) -> dict[str, Any]:
    """The evaluation's ``envs.make`` options of a task: Atari presses FIRE on reset if asked."""
    return {"fire_on_reset": True} if fire_on_reset and domain_of(task_id) == "atari" else {}


def record_video(policy, task_id: str, seed: int, path: str, max_steps: int | None = None,
                 max_frames: int = 300, fps: int = 15) -> str:
    """Roll out one episode (seed ``seed``) rendering ``rgb_array`` frames, and write a GIF.

    Frames come from the env's renderer (the observation's ``image`` when it cannot render);
    at most ``max_frames`` frames, evenly strided, each downscaled to at most 256 pixels high.
    """
    import envs
    import imageio.v2 as imageio

    env = envs.make(task_id, render_mode="rgb_array")
    frames = []
    try:
        obs, _ = env.reset(seed=seed)
        state = policy.initial_state(1, seed)
        start = np.ones(1, bool)
        for t in range(max_steps or 100_000):
            frame = env.render()
            if frame is None and "image" in obs:
                frame = obs["image"]
            if frame is not None:
                frames.append(np.asarray(frame, np.uint8))
            batch = {k: ([v] if k == "text" else np.asarray(v)[None]) for k, v in obs.items()}
            action, state = policy.act(batch, state, start)
            start[:] = False
            obs, _, term, trunc, _ = env.step(action[0])
            if term or trunc:
                break
    finally:
        env.close()
    if not frames:
        raise RuntimeError(f"{task_id}: no frames to write (the env renders nothing and has no image)")
    stride = max(1, len(frames) // max_frames)
    frames = frames[::stride]
    h = frames[0].shape[0]
    if h > 256:
        k = int(np.ceil(h / 256))
        frames = [f[::k, ::k] for f in frames]
    with atomic_path(path, suffix=".gif") as tmp:
        imageio.mimsave(tmp, frames, duration=1000 / fps, loop=0)
    return path


def evaluate(cfg: EvalConfig, loaded: LoadedCheckpoint | None = None,
             log=print) -> tuple[list[RolloutResult], dict[str, Any]]:
    """Roll out the checkpoint on the tasks; returns the results and what the report must flag.

    Args:
        cfg: the evaluation config.
        loaded: the checkpoint, already loaded (else loaded from ``cfg.checkpoint``).
        log: where progress lines go.

    Returns:
        ``(results, info)``: one `RolloutResult` per task; ``info`` holds ``trained_tasks``,
        ``trained_domains``, ``unseen_domain_tasks`` and per-task ``seconds``.
    """
    import envs
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if loaded is None:
        from gato import checkpoint as ckpt

        loaded = ckpt.load(cfg.checkpoint, device=cfg.device)
    model, train_config = loaded.model, loaded.train_config
    trained = trained_tasks(train_config)
    domains = sorted({domain_of(t) for t in trained})
    given = {**bundled_prompts(cfg.checkpoint), **prompt_datasets(cfg.prompt_data)}
    tasks = resolve_tasks(cfg, trained)
    name = f"gato:{Path(cfg.checkpoint).name}"
    results, unseen, seconds = [], [], {}
    for task_id in tasks:
        domain = domain_of(task_id)
        if domain not in domains:
            unseen.append(task_id)
            log(f"note: {task_id} is from domain {domain!r}, which checkpoint {cfg.checkpoint} never saw "
                f"(trained on {domains}); evaluating it anyway, flagged in the report")
        prompt = find_prompt_dataset(task_id, given, trained)
        t0 = time.perf_counter()
        options = env_options(task_id, cfg.fire_on_reset)
        env_list = [envs.make(task_id, **options) for _ in range(min(cfg.num_envs, cfg.episodes))]
        try:
            policy = make_gato_policy(task_id, env_list, model=model, train_config=train_config,
                                      prompt_episodes=open_prompt_dataset(prompt, task_id),
                                      prompt_slots=cfg.prompt_slots,
                                      prompt_from_end=cfg.prompt_from_end, temperature=cfg.temperature,
                                      decoding=decoding_option(cfg),
                                      slide=cfg.slide, name=name)
            from envs.commandline import progress

            with progress(cfg.episodes, f"eval {task_id}", cfg.progress, unit="episode") as bar:
                r = rollout(policy, task_id, cfg.episodes, cfg.seed, num_envs=len(env_list), envs=env_list,
                            max_steps=cfg.max_steps, on_episode=lambda _: bar.update())
        finally:
            for env in env_list:
                env.close()
        seconds[task_id] = round(time.perf_counter() - t0, 1)
        r.metadata["prompt_dataset"] = prompt
        r.metadata["prompt_slots"] = len(policy.prompt)
        results.append(r)
        sr = "" if r.success_rate is None else f", success {100 * r.success_rate:.0f}%"
        log(f"{task_id:32s} mean return {r.mean_return:10.3f}{sr} ({seconds[task_id]:.0f}s, "
            f"{r.metadata['steps_per_s']:.0f} steps/s)")
        if cfg.video:
            path = os.path.join(cfg.video, f"{task_id}.gif")
            record_video(policy, task_id, cfg.seed, path, cfg.max_steps)
            log(f"  video: {path}")
    info = {"checkpoint": cfg.checkpoint, "checkpoint_step": loaded.step, "trained_tasks": sorted(trained),
            "trained_domains": domains, "unseen_domain_tasks": unseen, "seconds": seconds}
    return results, info


def unseen_section(info: dict[str, Any]) -> tuple[str, str]:
    """The report section flagging tasks of domains the checkpoint never trained on."""
    body = (f"Checkpoint `{info['checkpoint']}` (step {info.get('checkpoint_step')}) trained on "
            f"{len(info['trained_tasks'])} tasks of domains {info['trained_domains']}.\n\n")
    if info["unseen_domain_tasks"]:
        body += "Tasks from domains it never saw (evaluated, zero-shot):\n\n"
        body += "\n".join(f"- {t}" for t in info["unseen_domain_tasks"])
    else:
        body += "Every evaluated task is from a domain it trained on."
    return "Checkpoint coverage", body


def write_eval_report(results: Sequence[RolloutResult], out: str, info: dict[str, Any],
                      extra_sections: Sequence[tuple[str, str]] = (), extra: dict[str, Any] | None = None,
                      reps: int = 2000):
    """`eval.report` JSON / Markdown / PNG named after ``out`` (``x.json`` -> ``x.md``, ``x.png``).

    Tasks without a usable reference are listed in the report, not fatal. Returns the `Report`
    and the written paths.
    """
    from eval.report import build_report, write_report

    report = build_report(results, reps=reps, skip_unscorable=True)
    out_dir = os.path.dirname(os.path.abspath(out))
    paths = write_report(report, out_dir, extra_sections=[unseen_section(info), *extra_sections],
                         extra={"evaluation": info, **(extra or {})})
    stem = Path(out).name[: -len(".json")] if out.endswith(".json") else Path(out).name
    if stem != "report":
        for k, p in list(paths.items()):
            target = os.path.join(out_dir, stem + os.path.splitext(p)[1])
            os.replace(p, target)
            paths[k] = target
    save_results(os.path.join(out_dir, f"{stem}.results.json"), results, config=info)
    return report, paths


def main(argv: list[str] | None = None) -> int:
    from eval.report import format_domain_table, format_task_table
    from envs.commandline import log, parse

    cfg = check_config(parse(EvalConfig, argv, "gato eval"))
    results, info = evaluate(cfg, log=log)
    info["config"] = {k: v for k, v in dataclasses.asdict(cfg).items()
                      if k not in ("force", "progress", "threads", "device")}
    report, paths = write_eval_report(results, cfg.out, info, reps=cfg.reps)
    print()
    print(format_domain_table(report))
    print()
    print(format_task_table(report))
    for policy, task, why in report.unscored:
        print(f"not scored: {task}: {why}")
    print(f"\nwrote {', '.join(paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
