"""`gato train`: train a Gato model on a mixture of datasets.

    gato train --data DATASET [DATASET...] --config gato-small --steps 2000 --seed 0 --out runs/x
    torchrun --nproc_per_node=N -m gato.train --data ... --out runs/x      # DDP (NCCL / gloo)

Rerunning the same command resumes from ``RUN/checkpoints/latest`` exactly (weights, AdamW,
step, and the torch / numpy / python RNG states; the batch of step s is a function of
``(seed, rank, s)``). Logs go to ``RUN/metrics.csv``
(step, loss, per-domain loss, lr, grad norm, tokens/s) and TensorBoard (``RUN/tb``).

Optimizer **[project choice where the paper is silent]**: AdamW, betas (0.9, 0.95), eps 1e-8,
weight decay 0.1 on the weight matrices of linear and convolution layers only; not on biases,
norms, the shared token embedding or the position / action tables (embedding rows are updated
only where used, so decay would shrink rare tokens' rows). Learning rate: linear warm-up to the
peak, then cosine decay to peak / 10 at the last step. Gradient norm clipped to 1.0.

**Time budget.** With ``--time-budget SECONDS`` the schedule follows the wall clock instead of the
step count: warm-up and cosine run over the fraction of the budget spent (summed over resumes, saved
in each checkpoint), and training stops when the budget is spent (``--steps`` is then only a cap). A
busy machine trains fewer steps but still finishes its schedule; an idle one uses all of its budget.

**Loss.** ``--loss-reduction sequence`` (default) averages each sequence's target losses, then the
sequences, so a domain's ``--domain-weights`` share is its share of the gradient whatever the number
of targets in its sequences; ``token`` averages over all targets of the batch. Text inside control
observations (a BabyAI mission) is a target only with ``--observation-text-targets``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist

from gato import checkpoint, data
from gato.batch import TokenBatch
from gato.configs import get_config
from gato.model import GatoModel


@dataclass
class Config:
    """Train a Gato model. Rerun the same command to resume."""

    data: tuple[str, ...]
    """Episode dataset paths, and/or ``module:function`` batch-source factories (see gato.data)."""
    out: str
    """Run directory (checkpoints, metrics.csv, tb/)."""
    config: str = "gato-tiny"
    """Model config name (gato.configs.CONFIGS)."""
    steps: int = 1000
    """Optimizer steps in total (a resumed run continues up to this)."""
    seed: int = 0
    """Seed of weights init, data order and patch-position draws."""
    batch_size: int = 8
    """Sequences per step and process (global batch = batch_size x processes)."""
    sequence_length: int | None = None
    """Slots per sequence; None: the model's max_len."""
    lr: float | None = None
    """Peak learning rate; None: the model config's suggested rate."""
    min_lr_ratio: float = 0.1
    """Cosine decay ends at lr x this (paper: decay by 10x)."""
    warmup_steps: int | None = None
    """Linear warm-up steps; None: 1.5% of steps (paper: 15k of 1M), at least 1."""
    weight_decay: float = 0.1
    """AdamW weight decay on weight matrices (not on norms, biases, embedding tables)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas."""
    eps: float = 1e-8
    """AdamW epsilon."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    ema_decay: float = 0.0
    """**[project choice]** 0: off. Otherwise keep an exponential moving average of the weights
    (per step ``ema <- d ema + (1 - d) w`` with ``d = min(ema_decay, (1 + t) / (10 + t))``, so the
    first steps do not drag the average towards the initial weights). A checkpoint's
    ``model.safetensors``, the weights `gato eval` and the policy load, then holds the average,
    and ``train_weights.safetensors`` the raw weights a resumed run continues from. The average
    of the last ~1 / (1 - d) steps smooths out the step-to-step jitter of the final weights, which a
    closed-loop policy feels more than the loss does."""
    time_budget: float | None = None
    """Seconds of training (wall clock, over all resumes); the schedule follows the share of it spent
    and training ends when it is spent (``steps`` is then a cap). None: the schedule follows ``steps``."""
    checkpoint_minutes: float | None = None
    """Also write a checkpoint every this many minutes of training (None: by steps only)."""
    loss_reduction: str = "sequence"
    """sequence: mean over sequences of their mean target loss (a domain's weight is its gradient
    share); token: mean over every target of the batch."""
    observation_text_targets: bool = False
    """Learn to predict the text inside control observations (a BabyAI mission), as well as actions."""
    domain_weights: dict[str, float] = field(default_factory=dict)
    """Relative sampling weight per domain, e.g. `--domain-weights atari 2 dmc 1`; unnamed domains get 1."""
    prompt_prob: float = 0.25
    """Fraction of episode sequences prefixed with a prompt from another episode of the task."""
    episode_start_prob: float = 0.0
    """Fraction of episode windows cut from the episode's first timestep (the rest at a uniform one)."""
    workers: int = 0
    """Data worker processes building batches ahead (0: in the training process)."""
    verify_data: Literal["quick", "full"] = "quick"
    """Check the datasets' shards at start: quick (each exists, opens and holds its episodes) or
    full (the sha256 of every shard against the dataset's SHA256SUMS; reads every byte)."""
    skip_bad_shards: bool = False
    """Train without the episodes of shards that fail the check (each is named) instead of stopping."""
    log_every: int = 10
    """Steps between CSV / TensorBoard rows."""
    checkpoint_every: int = 500
    """Steps between checkpoints (one is always written at the end)."""
    keep_checkpoints: int = 2
    """Checkpoints kept on disk (oldest deleted first)."""
    device: str = "auto"
    """auto (cuda if available), cpu or cuda."""
    bf16: bool = True
    """bf16 autocast on CUDA (ignored on CPU)."""
    compile: bool = False
    """torch.compile the transformer blocks (CUDA)."""
    threads: int | None = None
    """torch CPU threads per process; None: torch's default."""
    tensorboard: bool = True
    """Write TensorBoard event files to RUN/tb."""
    progress: bool = True
    """Show a tqdm progress bar with ETA (process 0)."""
    force: bool = False
    """Write into an --out that holds another command's files (a dataset, a report, ...)."""
    allow_changes: bool = False
    """Resume although options that shape the run (data, model, seed, batch, schedule) differ from the
    stored ones; the new values apply from the resumed step."""


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or inf; the run stops, its last good checkpoint stays."""


# ---------------------------------------------------------------------------------------------
# Pieces the loop uses
# ---------------------------------------------------------------------------------------------


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Dist:
    """Join the torchrun process group if launched by torchrun (NCCL on CUDA, gloo on CPU)."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return Dist(device=torch.device("cuda" if use_cuda else "cpu"))
    local = int(os.environ["LOCAL_RANK"])
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(),
                torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu"))


def make_optimizer(model: GatoModel, cfg: Config, lr: float) -> torch.optim.AdamW:
    """AdamW with weight decay on linear / convolution weight matrices only (module docstring)."""
    decay = {id(m.weight) for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}
    params = list(model.parameters())
    groups = [{"params": [p for p in params if id(p) in decay], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if id(p) not in decay], "weight_decay": 0.0}]
    fused = next(model.parameters()).is_cuda
    return torch.optim.AdamW(groups, lr=lr, betas=cfg.betas, eps=cfg.eps, fused=fused)


def learning_rate(step: int, peak: float, warmup: int, total: int, min_ratio: float) -> float:
    """LR of update ``step`` (0-based): linear warm-up, then cosine from peak to peak * min_ratio."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def learning_rate_at(spent: float, peak: float, warmup: float, min_ratio: float) -> float:
    """LR when the fraction ``spent`` of a time budget is used: the same warm-up (over the
    fraction ``warmup``) and cosine as `learning_rate`, on the clock instead of the step count."""
    if spent < warmup:
        return peak * max(spent, 0.01 * warmup) / warmup
    progress = min(1.0, (spent - warmup) / max(1e-9, 1.0 - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def check_batch(batch: TokenBatch, vocab: int, max_len: int) -> None:
    """Validate model inputs at the edge; errors quote the bad value."""
    b, length = batch.tokens.shape
    if length > max_len:
        raise ValueError(f"batch of {length} slots exceeds the model's max_len {max_len}")
    if int(batch.tokens.min()) < 0 or int(batch.tokens.max()) >= vocab:
        raise ValueError(f"token ids must be in [0, {vocab}); got [{int(batch.tokens.min())}, {int(batch.tokens.max())}]")
    if int(batch.local_positions.max()) >= 512:
        raise ValueError(f"local position {int(batch.local_positions.max())} >= 512: an observation has "
                         "more than 512 slots")
    if int(batch.is_patch.sum()) != batch.patches.shape[0]:
        raise ValueError(f"{int(batch.is_patch.sum())} patch slots but {batch.patches.shape[0]} patches")


def describe_batch(batch: TokenBatch) -> str:
    per = {d: batch.domains.count(d) for d in sorted(set(batch.domains))}
    return f"{len(batch.domains)} sequences, domains {per}, {int(batch.loss_mask.sum())} targets"


def rng_state() -> dict[str, Any]:
    """The torch / numpy / python RNG states as JSON (data needs none: batches derive from the step)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {"torch": torch.get_rng_state().tolist(),
             "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
             "python": [py_state[0], list(py_state[1]), py_state[2]]}
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    np.random.set_state((state["numpy"][0], np.array(state["numpy"][1], dtype=np.uint32), *state["numpy"][2:]))
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def replica_fingerprints(model: GatoModel, d: Dist) -> list[float]:
    """A checksum of the parameters from every process (equal when DDP keeps them in sync)."""
    with torch.no_grad():
        flat = torch.cat([p.detach().double().flatten() for p in model.parameters()])
        mine = (flat * torch.arange(1, flat.numel() + 1, device=flat.device, dtype=torch.float64).sqrt()).sum()
    if d.world == 1:
        return [mine.item()]
    everyone = [torch.zeros_like(mine) for _ in range(d.world)]
    dist.all_gather(everyone, mine)
    return [x.item() for x in everyone]


class WeightAverage:
    """The exponential moving average of a model's parameters (``Config.ema_decay``)."""

    def __init__(self, model: GatoModel, decay: float):
        self.decay = decay
        self.params = [p.detach().clone() for p in model.parameters()]

    def update(self, model: GatoModel, step: int) -> None:
        """Fold in the weights after update ``step`` (0-based)."""
        d = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self.params, [p.detach() for p in model.parameters()], 1.0 - d)

    def load(self, model: GatoModel) -> None:
        """Start the average from ``model``'s current parameters (those of a resumed average)."""
        torch._foreach_copy_(self.params, [p.detach() for p in model.parameters()])

    @contextlib.contextmanager
    def applied(self, model: GatoModel):
        """Inside the block ``model`` holds the averaged weights; its own come back after."""
        params = [p.detach() for p in model.parameters()]
        own = [p.clone() for p in params]
        torch._foreach_copy_(params, self.params)
        try:
            yield model
        finally:
            torch._foreach_copy_(params, own)


def save_checkpoint(cfg: Config, d: Dist, model: GatoModel, optimizer: torch.optim.Optimizer, step: int,
                    train_seconds: float = 0.0, average: WeightAverage | None = None) -> None:
    """All processes write their RNG state; process 0 writes weights and optimizer, then commits.

    With ``average`` (``ema_decay``), ``model.safetensors`` holds the averaged weights and
    ``train_weights.safetensors`` the raw ones."""
    fingerprints = replica_fingerprints(model, d)
    if len(set(fingerprints)) != 1:
        raise RuntimeError(f"step {step}: parameters differ across processes {fingerprints}")
    if d.main:
        checkpoint.begin(cfg.out, step)
    if d.world > 1:
        dist.barrier()
    ckpt = checkpoint.tmp_dir(cfg.out, step)
    checkpoint.write_json(ckpt / f"rng-rank{d.rank}.json", rng_state())
    if d.world > 1:
        dist.barrier()
    if d.main:
        if average is not None:
            checkpoint.write_weights(ckpt, model, checkpoint.TRAIN_WEIGHTS)
        with average.applied(model) if average is not None else contextlib.nullcontext():
            checkpoint.write_model(ckpt, model, model.config)
        torch.save(optimizer.state_dict(), ckpt / "optimizer.pt")
        checkpoint.write_json(ckpt / "train_config.json", dataclasses.asdict(cfg))
        checkpoint.write_json(ckpt / "state.json", {"step": step, "world_size": d.world, "train_seconds": train_seconds,
                                                     "replica_fingerprints": fingerprints})
        checkpoint.commit(cfg.out, step, cfg.keep_checkpoints)
    if d.world > 1:
        dist.barrier()


class MetricsLog:
    """metrics.csv (rewritten up to the resumed step, then appended) and TensorBoard."""

    def __init__(self, cfg: Config, domains: list[str], start_step: int):
        self.path = Path(cfg.out) / "metrics.csv"
        self.columns = ["step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"] + [f"loss/{d}" for d in domains]
        kept = []
        if self.path.exists():  # drop rows logged after the checkpoint we resume from
            with open(self.path) as f:
                kept = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        tmp = self.path.with_name(".metrics.csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, self.columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(kept)
        os.replace(tmp, self.path)
        self.tb = None
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(Path(cfg.out) / "tb"), purge_step=start_step + 1)

    def write(self, row: dict[str, float]) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and not (isinstance(v, float) and math.isnan(v)):
                    self.tb.add_scalar(k, v, int(row["step"]))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


def train(cfg: Config) -> dict[str, float]:
    """Train (or resume) per ``cfg``; returns the last logged row."""
    d = setup_distributed(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model_config = get_config(cfg.config)
    length = cfg.sequence_length or model_config.max_len
    if length > model_config.max_len:
        raise ValueError(f"--sequence-length {length} exceeds {cfg.config}'s max_len {model_config.max_len}")
    if cfg.loss_reduction not in ("sequence", "token"):
        raise ValueError(f"--loss-reduction must be sequence or token, got {cfg.loss_reduction!r}")
    if cfg.time_budget is not None and cfg.time_budget <= 0:
        raise ValueError(f"--time-budget must be > 0 seconds, got {cfg.time_budget}")
    peak_lr = cfg.lr if cfg.lr is not None else model_config.suggested_lr
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else max(1, round(0.015 * cfg.steps))
    if d.main:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        checkpoint.write_json(Path(cfg.out) / "train_config.json", dataclasses.asdict(cfg))

    # Same init on every process (DDP also broadcasts from process 0); data differs per process.
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    sources = data.build_sources(cfg.data, length, cfg.prompt_prob, cfg.observation_text_targets,
                                 verify=cfg.verify_data, skip_bad_shards=cfg.skip_bad_shards,
                                 episode_start_prob=cfg.episode_start_prob)
    mixture = data.Mixture(sources, length, cfg.domain_weights, seed=(cfg.seed, d.rank))
    model = GatoModel(model_config).to(d.device)
    optimizer = make_optimizer(model, cfg, peak_lr)

    start_step, seconds_before = 0, 0.0
    # the newest checkpoint whose files match its SHA256SUMS (a corrupt `latest` is named and skipped)
    resume = checkpoint.resume_point(cfg.out, quarantine=d.main)
    average = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None
    if resume is not None:
        checkpoint.load_weights(resume, model)  # model.safetensors: the average, if the run kept one
        if average is not None:
            average.load(model)
        if (resume / checkpoint.TRAIN_WEIGHTS).is_file():  # the raw weights training continues from
            checkpoint.load_weights(resume, model, name=checkpoint.TRAIN_WEIGHTS)
        resume_state = checkpoint.read_state(resume)
        checkpoint.check_fingerprints(resume, resume_state, replica_fingerprints(model, d))
        checkpoint.load_optimizer(resume, optimizer, d.device)
        set_rng_state(checkpoint.read_rng(resume, d.rank))
        start_step = resume_state["step"]
        seconds_before = float(resume_state.get("train_seconds", 0.0))
        if d.main:
            before = json.loads((resume / "train_config.json").read_text())
            now = json.loads(json.dumps(dataclasses.asdict(cfg)))
            changed = sorted(k for k in now if before.get(k) != now[k] and k not in RESUMABLE_OPTIONS)
            print(f"resuming {cfg.out} from step {start_step} ({resume.name})"
                  + (f"; options changed since: {changed}" if changed else ""), file=sys.stderr, flush=True)

    trainable: torch.nn.Module = model
    if cfg.compile:
        for block in model.blocks:
            block.compile()
    if d.world > 1:
        trainable = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    autocast = torch.autocast("cuda", torch.bfloat16, enabled=cfg.bf16 and d.device.type == "cuda")
    log = MetricsLog(cfg, mixture.domains, start_step) if d.main else None
    bar = None
    if d.main and cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start_step, desc="train", dynamic_ncols=True)

    model.train()
    sum_keys = ["loss", "grad_norm"] + [f"{k}/{dom}" for dom in mixture.domains
                                                    for k in ("loss_sum", "targets")]
    sums = torch.zeros(len(sum_keys), device=d.device)  # summed over the steps since the last row
    row: dict[str, float] = {}
    t_log, steps_since_log, slots_since_log, t_start = time.perf_counter(), 0, 0, time.perf_counter()
    warmup_fraction = warmup / max(1, cfg.steps) if cfg.warmup_steps is not None else 0.015
    next_timed_checkpoint = (seconds_before + 60 * cfg.checkpoint_minutes) if cfg.checkpoint_minutes else math.inf

    def train_seconds() -> float:
        return seconds_before + time.perf_counter() - t_start

    try:
        batches = data.step_batches(mixture, cfg.batch_size, start_step, cfg.steps, cfg.workers)
        for step, batch in zip(range(start_step, cfg.steps), batches):  # `step` updates done before this one
            if cfg.time_budget is None:
                lr = learning_rate(step, peak_lr, warmup, cfg.steps, cfg.min_lr_ratio)
            else:
                spent = train_seconds() / cfg.time_budget
                if spent >= 1.0 and step == start_step:
                    break  # resumed after the budget was spent: nothing left to train
                # Past the budget mid-run, this step still runs at the final rate: the end-of-step check
                # (agreed by every process) stops the run with a checkpoint of the last update.
                lr = learning_rate_at(min(spent, 1.0), peak_lr, warmup_fraction, cfg.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr

            check_batch(batch, model_config.vocab_size, model_config.max_len)
            with autocast:
                loss, metrics = trainable(batch.to(d.device, non_blocking=True), reduction=cfg.loss_reduction)

            bad = torch.tensor(float(not torch.isfinite(loss)), device=d.device)
            if d.world > 1:
                dist.all_reduce(bad, op=dist.ReduceOp.MAX)  # every process stops together
            if bad.item():
                dump = Path(cfg.out) / f"nonfinite-batch-step{step + 1}-rank{d.rank}.pt"
                torch.save(dataclasses.asdict(batch), dump)
                last = checkpoint.latest(cfg.out)
                raise NonFiniteLoss(
                    f"loss became {loss.item()} at step {step + 1} (process {d.rank}: {describe_batch(batch)}; "
                    f"batch saved to {dump}); the last good checkpoint is {last}")

            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if average is not None:
                average.update(model, step)

            metrics["grad_norm"] = grad_norm
            sums += torch.stack([metrics[k].detach().float() if k in metrics else torch.zeros((), device=d.device)
                                 for k in sum_keys])
            steps_since_log += 1
            slots_since_log += batch.tokens.numel() * d.world
            done = step + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")

            if done % cfg.log_every == 0 or done == cfg.steps:
                if d.world > 1:
                    dist.all_reduce(sums)
                tot = dict(zip(sum_keys, sums.tolist()))
                n_steps = steps_since_log * d.world
                now = time.perf_counter()
                row = {"step": done, "loss": tot["loss"] / n_steps,
                       "lr": lr, "grad_norm": tot["grad_norm"] / n_steps,
                       "tokens_per_s": slots_since_log / (now - t_log), "elapsed_s": now - t_start}
                for dom in mixture.domains:
                    n = tot[f"targets/{dom}"]
                    row[f"loss/{dom}"] = tot[f"loss_sum/{dom}"] / n if n else float("nan")
                if log is not None:
                    log.write(row)
                sums.zero_()
                t_log, steps_since_log, slots_since_log = now, 0, 0

            out_of_time = cfg.time_budget is not None and train_seconds() >= cfg.time_budget
            timed = train_seconds() >= next_timed_checkpoint
            if d.world > 1 and (cfg.time_budget is not None or cfg.checkpoint_minutes):
                flags = torch.tensor([float(out_of_time), float(timed)], device=d.device)
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)  # every process acts at the same step
                out_of_time, timed = bool(flags[0]), bool(flags[1])
            if done % cfg.checkpoint_every == 0 or done == cfg.steps or out_of_time or timed:
                save_checkpoint(cfg, d, model, optimizer, done, train_seconds(), average)
                while next_timed_checkpoint <= train_seconds():
                    next_timed_checkpoint += 60 * cfg.checkpoint_minutes
            if out_of_time:
                break
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
    if d.world > 1:
        dist.destroy_process_group()
    return row


# Options that do not change what a resumed run computes (how fast, how often it logs, how long).
RESUMABLE_OPTIONS = ("steps", "time_budget", "checkpoint_minutes", "workers", "verify_data", "skip_bad_shards",
                     "log_every", "checkpoint_every", "ckpt_every", "keep_checkpoints", "device", "compile", "threads",
                     "tensorboard", "progress", "force", "allow_changes")


def _data_entry(entry: str) -> str:
    """A dataset path made absolute (so `eval` finds it from any directory); ``module:function`` as is."""
    return entry if ":" in entry and not os.path.exists(entry) else os.path.abspath(entry)


def check_config(cfg: Config) -> Config:
    """Validate ``cfg`` at the edge, before anything is written; returns it with absolute data paths.

    Raises:
        UsageError: a value out of range or an unknown model config (exit status 2).
        CommandError: a --data entry that is not a finished dataset, or an --out that belongs to
            another command or holds a run started with other options (exit status 1).
    """
    from envs.commandline import (CommandError, UsageError, at_least, check_out_dir, check_unchanged,
                                  datasets_inside, in_range, out_kind, what_is)

    try:
        model_config = get_config(cfg.config)
    except KeyError as e:
        raise UsageError(f"--config {cfg.config}: {e.args[0]}") from None
    for flag, value, low in (("--steps", cfg.steps, 1), ("--batch-size", cfg.batch_size, 1),
                             ("--sequence-length", cfg.sequence_length, 2), ("--warmup-steps", cfg.warmup_steps, 0),
                             ("--log-every", cfg.log_every, 1), ("--checkpoint-every", cfg.checkpoint_every, 1),
                             ("--keep-checkpoints", cfg.keep_checkpoints, 1), ("--workers", cfg.workers, 0),
                             ("--threads", cfg.threads, 1), ("--grad-clip", cfg.grad_clip, 0.0),
                             ("--weight-decay", cfg.weight_decay, 0.0), ("--eps", cfg.eps, 0.0)):
        at_least(value, low, flag)
    if cfg.lr is not None and not cfg.lr > 0:
        raise UsageError(f"--lr {cfg.lr}: must be above 0")
    if cfg.sequence_length is not None and cfg.sequence_length > model_config.max_len:
        raise UsageError(f"--sequence-length {cfg.sequence_length}: exceeds {cfg.config}'s max_len "
                         f"{model_config.max_len}")
    in_range(cfg.prompt_prob, 0.0, 1.0, "--prompt-prob")
    in_range(cfg.episode_start_prob, 0.0, 1.0, "--episode-start-prob")
    in_range(cfg.min_lr_ratio, 0.0, 1.0, "--min-lr-ratio")
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise UsageError(f"--ema-decay {cfg.ema_decay}: must be in [0, 1) (0: off; 0.99 averages ~100 steps)")
    for i, beta in enumerate(cfg.betas):
        if not 0.0 <= beta < 1.0:
            raise UsageError(f"--betas {' '.join(map(str, cfg.betas))}: each must be in [0, 1)")
    bad_weights = {k: w for k, w in cfg.domain_weights.items() if not w >= 0}
    if bad_weights:
        raise UsageError(f"--domain-weights {bad_weights}: weights must be >= 0")
    if cfg.device not in ("auto", "cpu", "cuda") and not cfg.device.startswith("cuda:"):
        raise UsageError(f"--device {cfg.device}: use auto, cpu or cuda")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise CommandError(f"--device {cfg.device}: CUDA is not available on this machine; use --device cpu")
    for entry in cfg.data:
        if ":" in entry and not os.path.exists(entry):
            continue  # a module:function batch source, resolved by gato.data
        meta = Path(entry) / "metadata.json"
        if not meta.is_file():
            if not Path(entry).exists():
                raise CommandError(f"--data {entry}: no such directory; build it with "
                                   f"`gato generate --task <task> --out {entry}`")
            kind = out_kind(entry)
            if kind in (None, "generate --suite") and datasets_inside(entry):
                raise CommandError(f"--data {entry}: {what_is(entry)}, not one dataset; pass them one by one "
                                   f"(--data {entry}/*)")
            if kind not in (None, "generate", "generate --suite"):
                raise CommandError(f"--data {entry}: {what_is(entry)}, not a dataset; --data takes directories "
                                   "written by `gato generate`")
            raise CommandError(f"--data {entry}: not a finished dataset (no metadata.json); finish it by rerunning "
                               f"its `gato generate` command, or build it with `gato generate --task <task> --out {entry}`")
        try:
            kept = json.loads(meta.read_text())["filter"]["kept"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CommandError(f"--data {entry}: unreadable metadata.json ({e}); regenerate the dataset") from None
        if not kept:
            raise CommandError(f"--data {entry}: the return filter keeps no episode; regenerate it with more "
                               "--episodes or with --no-filter")
        if not cfg.skip_bad_shards:  # the quick shard check, before --out is written (full: when opened)
            from datasets_gen.checksums import verify_dataset

            report = verify_dataset(entry, "quick")
            if not report.ok:
                raise CommandError(f"--data {entry}: {'; '.join(report.lines())}. Rerun the generate command in "
                                   f"{Path(entry) / 'config.json'} to regenerate, or pass --skip-bad-shards")
    cfg = dataclasses.replace(cfg, data=tuple(_data_entry(e) for e in cfg.data))
    if check_out_dir(cfg.out, "train", force=cfg.force):
        stored = Path(cfg.out) / "train_config.json"
        if stored.is_file():
            try:
                before = json.loads(stored.read_text())
            except ValueError as e:
                raise CommandError(f"{stored}: unreadable ({e}); give another --out") from None
            if isinstance(before.get("data"), list):  # runs before absolute paths stored them as given
                before["data"] = [_data_entry(e) for e in before["data"]]
            if "ckpt_every" in before:  # the flag's old name
                before["checkpoint_every"] = before.pop("ckpt_every")
            check_unchanged(cfg.out, before, dataclasses.asdict(cfg), ignore=RESUMABLE_OPTIONS,
                            allow=cfg.allow_changes, command="gato train")
    return cfg


# ---------------------------------------------------------------------------------------------
# The trainer as a stage of a longer command (`gato demo`, `gato release`)
# ---------------------------------------------------------------------------------------------


def stage_schedule(run: Path, state_path: Path, seconds: float, train_steps: int | None, *,
                   checkpoint_minutes: float, log_every: int) -> tuple[float, list[str] | None]:
    """The budget and the `gato train` schedule options of a stage that trains the run ``run``.

    The wall-clock budget is ``seconds`` on the first call, saved as ``train_seconds`` in the JSON
    file ``state_path``: a rerun resumes the same schedule from the run's last checkpoint (the
    trainer counts the seconds already spent). With ``train_steps`` the schedule is that many
    steps instead. Returns ``(budget, options)``; options are None when the run has finished.
    """
    from envs.atomic import atomic_write_json

    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    state.setdefault("train_seconds", round(seconds, 1))
    atomic_write_json(state_path, state)
    budget = float(state["train_seconds"])
    last = checkpoint.latest(run)
    if last is not None:
        done = checkpoint.read_state(last)
        if (train_steps is not None and done["step"] >= train_steps) or (
                train_steps is None and done.get("train_seconds", 0.0) >= budget):
            return budget, None
    if train_steps is not None:
        return budget, ["--steps", str(train_steps), "--checkpoint-every", str(max(5, train_steps // 12)),
                        "--log-every", str(max(1, min(10, train_steps // 20)))]
    return budget, ["--steps", str(10**9), "--time-budget", f"{budget:.1f}", "--checkpoint-every", str(10**9),
                    "--checkpoint-minutes", f"{checkpoint_minutes:g}", "--log-every", str(log_every)]


def run_stage(cmd: list[str], run: Path, log_path: Path, threads: int, timeout: float) -> tuple[int | None, Path]:
    """Run the trainer command ``cmd`` (output appended to ``log_path``) and return its exit status
    (None when the ``timeout`` guard stopped it) and the run's last checkpoint.

    Raises:
        RuntimeError: the trainer failed or left no checkpoint (names the log).
    """
    import subprocess

    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    with open(log_path, "a") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        try:  # the trainer stops itself when its budget is spent; this is a guard
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait()
            rc = None
    last = checkpoint.latest(run)
    if rc not in (0, None) or last is None:
        raise RuntimeError(f"training failed (exit {rc}, checkpoint {last}); see {log_path}")
    return rc, last


def main(argv: list[str] | None = None) -> int:
    from envs.commandline import parse

    cfg = check_config(parse(Config, argv, "gato train"))
    train(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
