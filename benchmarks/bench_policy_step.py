"""The closed-loop policy step on CPU against a plain static-cache decoder of the same shape.

For gato-small (`gato.configs`) at batch 1 and 8 and two step shapes,

- ``metaworld``: 39 continuous observation tokens + separator, then 4 continuous action tokens
  (``Box(-1, 1, (4,))``), 44 slots per step, 4 forwards (41 slots: the previous step's last
  action token + observation + separator, then 3 single action tokens);
- ``breakout``: an 80x80x3 image (25 patches) + separator, then 1 discrete action token
  (``Discrete(4)``), 27 slots per step, 1 forward (the previous action token + 26 slots),

it times, in the same run and interleaved step by step (the machine is shared):

- ``policy``: the whole `GatoPolicy.act` step (tokenizing, window bookkeeping, sampling,
  detokenizing) in steady state: the context starts as the prompt (the first whole timesteps of
  a demonstration, at most half the context, as `make_gato_policy` builds it), every row has
  slid twice before timing starts, and the timed steps are whole window cycles: the time per
  step is their mean, so the re-prefills are amortized over the steps between them;
- ``model``: `GatoModel.decode` of the same slots (inputs prebuilt once, the action token written
  into them in place, argmax over the legal ids between forwards); when a row is full the cache
  length is set back to where a slide leaves it, without recomputing anything;
- ``plain``: a decoder written here in plain PyTorch, no project code: a token embedding, the same
  number of pre-norm blocks (LayerNorm, fused QKV projection, SDPA over a preallocated KV cache,
  a GEGLU feed-forward of the same inner width), the same heads and width, the same forwards per
  step over the same cache lengths (set back like ``model`` when full), argmax over the legal ids.
  Image patches are plain token slots here: the patch encoder is part of what the policy pays.

``policy / plain`` is the target (<= 1.3, docs/results.md "Policy step vs a plain decoder");
``model / plain`` splits it into the model's part and the policy's own. ``--slide-keep`` takes
several values to show the window option's effect: a slide re-encodes the kept timesteps, so a
smaller fraction re-prefills fewer slots, less often. Breakout-shaped steps play frames of
atari-breakout (random actions) by default, ``--images random`` uniform noise (no patch ever
repeats: the worst case for the policy's patch features).

The three sides take turns step by step (each goes first equally often) over ``--cycles`` whole
window cycles (one slide per env row each), so other processes disturb them alike. Times are the
CPU time of this process (one torch thread: the time the step itself took, less sensitive than
wall-clock time to other processes), the mean per step; the ratios are of those, with the
interquartile range of the per-cycle ratios as the measurement's spread. Wall-clock ratios and
every cycle are in the JSON. The load average (``os.getloadavg``) is printed before and after and
stored beside every row.

    nice -n 19 .venv/bin/python benchmarks/bench_policy_step.py [--cycles 16] [--threads 1]
        [--batches 1 8] [--shapes metaworld breakout] [--slide-keep 0.5 0.25 0] [--images breakout]
        [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from _common import json_path, write_json

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# shape: (observation space kind, observation tokens, action tokens)
SHAPES = {"metaworld": ("continuous", 39, 4), "breakout": ("image", 25, 1)}
IMAGE_SIZE = 80  # Atari frames: 80x80x3 = 5 x 5 patches of 16x16
BREAKOUT_ACTIONS = 4


# ---------------------------------------------------------------------------------------------
# The plain decoder (no project code)
# ---------------------------------------------------------------------------------------------


class PlainBlock(nn.Module):
    def __init__(self, width: int, heads: int, head_dim: int, hidden: int):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * heads * head_dim, bias=False)
        self.proj = nn.Linear(heads * head_dim, width, bias=False)
        self.norm2 = nn.LayerNorm(width)
        self.ffw_in = nn.Linear(width, 2 * hidden, bias=False)
        self.ffw_out = nn.Linear(hidden, width, bias=False)

    def forward(self, x, k_cache, v_cache, start: int, mask):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k_cache[:, :, start:start + t] = k
        v_cache[:, :, start:start + t] = v
        y = F.scaled_dot_product_attention(q, k_cache[:, :, :start + t], v_cache[:, :, :start + t], attn_mask=mask)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, -1))
        value, gate = self.ffw_in(self.norm2(x)).chunk(2, dim=-1)
        return x + self.ffw_out(value * F.gelu(gate))


class PlainDecoder(nn.Module):
    """Token embedding + pre-norm blocks + a static (B, H, S, hd) KV cache shared by all rows."""

    def __init__(self, vocab: int, width: int, layers: int, heads: int, head_dim: int, hidden: int,
                 capacity: int, batch: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        self.blocks = nn.ModuleList(PlainBlock(width, heads, head_dim, hidden) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        shape = (batch, heads, capacity, head_dim)
        self.k = [torch.zeros(shape) for _ in range(layers)]
        self.v = [torch.zeros(shape) for _ in range(layers)]
        self.length = 0

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        start = self.length
        mask = None
        if t > 1:  # causal with an offset: query i sees keys <= start + i
            mask = torch.arange(start + t)[None, :] <= (start + torch.arange(t))[:, None]
        x = self.embedding(tokens)
        for block, k, v in zip(self.blocks, self.k, self.v):
            x = block(x, k, v, start, mask)
        self.length = start + t
        return self.norm(x)


# ---------------------------------------------------------------------------------------------
# The three sides
# ---------------------------------------------------------------------------------------------


def _spaces(shape: str):
    import gymnasium as gym

    kind, n_obs, n_act = SHAPES[shape]
    if kind == "image":
        obs = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)})
        return obs, gym.spaces.Discrete(BREAKOUT_ACTIONS)
    obs = gym.spaces.Dict({"continuous": gym.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)})
    return obs, gym.spaces.Box(-1, 1, (n_act,), np.float32)


IMAGES = "breakout"  # --images: "breakout" (frames of the game) or "random" (uniform noise)
_FRAMES: dict[str, np.ndarray] = {}


def breakout_frames(n: int = 640) -> np.ndarray:
    """(n, 80, 80, 3) consecutive frames of atari-breakout under random actions (seed 0)."""
    if "breakout" not in _FRAMES:
        import envs

        env = envs.make("atari-breakout")
        rng = np.random.default_rng(0)
        obs, _ = env.reset(seed=0)
        frames = []
        while len(frames) < n:
            frames.append(obs["image"])
            obs, _, term, trunc, _ = env.step(int(rng.integers(BREAKOUT_ACTIONS)))
            if term or trunc:
                obs, _ = env.reset()
        env.close()
        _FRAMES["breakout"] = np.stack(frames)
    return _FRAMES["breakout"]


def _observations(shape: str, batch: int, n: int, seed: int) -> list[dict]:
    """``n`` steps of observations for ``batch`` envs (env ``j`` plays its own stretch of frames)."""
    rng = np.random.default_rng(seed)
    if SHAPES[shape][0] == "image":
        if IMAGES == "random":
            return [{"image": rng.integers(0, 256, (batch, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)}
                    for _ in range(n)]
        frames = breakout_frames()
        offset = int(rng.integers(len(frames)))
        return [{"image": frames[(offset + t + 61 * np.arange(batch)) % len(frames)]} for t in range(n)]
    return [{"continuous": rng.normal(size=(batch, SHAPES[shape][1])).astype(np.float32)} for _ in range(n)]


def make_policy(config: str, shape: str, slide_keep: float):
    """A randomly initialized `GatoPolicy` with a prompt of the first timesteps of a demonstration."""
    from envs.convention import Episode
    from gato import sequence as sq
    from gato.configs import get_config
    from gato.model import GatoModel
    from gato.policy import PROMPT_SLOTS, GatoPolicy

    torch.manual_seed(0)
    model = GatoModel(get_config(config)).eval()
    obs_space, act_space = _spaces(shape)
    task = "atari-breakout" if shape == "breakout" else "metaworld-reach"
    t = 64
    if shape == "breakout" and IMAGES == "breakout":
        obs = {"image": breakout_frames()[:t]}
    else:
        obs = _observations(shape, t, 1, seed=7)[0]  # t observations as one batch: the episode's
    rng = np.random.default_rng(0)
    actions = (rng.integers(0, BREAKOUT_ACTIONS, t) if shape == "breakout"
               else rng.uniform(-1, 1, (t, SHAPES[shape][2])).astype(np.float32))
    ep = Episode(task, obs, actions, np.zeros(t), np.zeros(t, bool), np.zeros(t, bool))
    prompt = sq.episode_to_slots(ep, action_space=act_space).fit(min(PROMPT_SLOTS, model.config.max_len // 2))
    return GatoPolicy(model, task, obs_space, act_space, prompt, slide_keep=slide_keep)


def slide_lengths(pi) -> tuple[int, int]:
    """(cache length right after a slide, slots per step) of ``pi``'s window in steady state."""
    p = len(pi.prompt)
    step = pi.step_slots - 1  # observation + separator + action tokens
    needed = step + 1  # `_make_room`'s need: the next step and the previous step's pending token
    budget = int(pi.slide_keep * (pi.capacity - p - needed))
    return p + (budget // step) * step, step


class PolicySide:
    """`GatoPolicy.act`, steady state (window sliding), observations pregenerated."""

    def __init__(self, pi, batch: int):
        self.pi, self.batch = pi, batch
        self.obs = _observations(pi_shape(pi), batch, 512, seed=1)
        self.state = pi.initial_state(batch, seed=0)
        self.t = 0
        start = np.ones(batch, bool)
        while self.state.num_slides < 2 * batch:  # every row has slid twice: steady state
            self.step(start)
            start = np.zeros(batch, bool)

    def step(self, start=None) -> None:
        start = np.zeros(self.batch, bool) if start is None else start
        _, self.state = self.pi.act(self.obs[self.t % len(self.obs)], self.state, start)
        self.t += 1


def pi_shape(pi) -> str:
    return "breakout" if pi.obs_spec.image_shape is not None else "metaworld"


class ModelSide:
    """`GatoModel.decode` of the policy's slots (prebuilt), argmax over the legal ids."""

    def __init__(self, pi, batch: int):
        from gato import sequence as sq

        self.model, self.ranges = pi.model, pi.ranges
        self.keep, self.step_len = slide_lengths(pi)
        a = pi.num_action_tokens
        obs = {k: v[0] for k, v in _observations(pi_shape(pi), 1, 1, seed=2)[0].items()}
        first = sq.SlotArrays.concat([sq.action_slots(np.array([self.ranges[-1][0]]), a - 1),
                                      sq.encode_observation(obs, pi.obs_spec)])
        self.first = sq.collate([first] * batch)
        self.act = [sq.collate([sq.action_slots(np.array([self.ranges[k][0]]), k)] * batch) for k in range(a)]
        self.cache = self.model.new_cache(batch, capacity=pi.capacity)
        self.cache.lengths[:] = self.keep
        self.capacity = pi.capacity

    @torch.inference_mode()
    def step(self) -> None:
        if int(self.cache.lengths.max()) + self.step_len > self.capacity:
            self.cache.lengths[:] = self.keep
        a = len(self.ranges)
        hidden, _ = self.model.decode(self.first, self.cache)
        for k in range(a):
            lo, hi = self.ranges[k]
            tok = lo + self.model.logits(hidden[:, -1], vocab_range=(lo, hi)).argmax(-1)
            if k + 1 < a:
                self.act[k + 1].tokens[:, 0] = tok
                hidden, _ = self.model.decode(self.act[k + 1], self.cache)
            else:
                self.first.tokens[:, 0] = tok  # fed with the next observation


class PlainSide:
    """The plain decoder over the same slot counts and cache lengths."""

    def __init__(self, pi, batch: int):
        cfg = pi.model.config
        torch.manual_seed(0)
        self.dec = PlainDecoder(cfg.vocab_size, cfg.width, cfg.num_layers, cfg.num_heads, cfg.head_dim,
                                cfg.ffw_hidden, pi.capacity, batch).eval()
        self.ranges = pi.ranges
        self.keep, self.step_len = slide_lengths(pi)
        self.capacity = pi.capacity
        n_first = pi.step_slots - pi.num_action_tokens  # pending token + observation + separator
        self.first = torch.randint(32000, 33024, (batch, n_first))
        self.dec.length = self.keep

    @torch.inference_mode()
    def step(self) -> None:
        if self.dec.length + self.step_len > self.capacity:
            self.dec.length = self.keep
        w = self.dec.embedding.weight
        a = len(self.ranges)
        hidden = self.dec(self.first)
        for k in range(a):
            lo, hi = self.ranges[k]
            tok = lo + F.linear(hidden[:, -1], w[lo:hi]).argmax(-1)
            if k + 1 < a:
                hidden = self.dec(tok[:, None])
            else:
                self.first[:, 0] = tok


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def measure(config: str, shape: str, batch: int, slide_keep: float, cycles: int) -> dict:
    """Time the three sides over ``cycles`` window cycles, interleaved step by step."""
    pi = make_policy(config, shape, slide_keep)
    sides = {"policy": PolicySide(pi, batch), "model": ModelSide(pi, batch), "plain": PlainSide(pi, batch)}
    keep, step_len = slide_lengths(pi)
    per_cycle = max(1, (pi.capacity - keep) // step_len)  # steps between two slides of a row
    names = list(sides)
    for _ in range(2):  # warm-up
        for side in sides.values():
            side.step()
    cpu = {k: np.zeros(cycles) for k in names}  # per cycle, ms
    wall = {k: np.zeros(cycles) for k in names}
    slides0, steps0 = sides["policy"].state.num_slides, sides["policy"].t
    for c in range(cycles):
        for i in range(per_cycle):
            shift = (c * per_cycle + i) % len(names)  # each side goes first as often as the others
            for k in names[shift:] + names[:shift]:
                c0, t0 = time.process_time(), time.perf_counter()
                sides[k].step()
                cpu[k][c] += (time.process_time() - c0) * 1e3
                wall[k][c] += (time.perf_counter() - t0) * 1e3
    pol = sides["policy"]
    slides_per_step = (pol.state.num_slides - slides0) / max(1, pol.t - steps0) / batch
    n = cycles * per_cycle
    out = {"config": config, "shape": shape, "batch": batch, "slide_keep": slide_keep,
           "context": pi.capacity, "prompt_slots": len(pi.prompt), "slots_per_step": step_len,
           "kept_after_slide": keep - len(pi.prompt), "steps_per_cycle": per_cycle, "cycles": cycles,
           "slides_per_row_step": round(slides_per_step, 3)}
    for k in names:
        out[f"{k}_cpu_ms"] = round(float(cpu[k].sum()) / n, 3)
    for k in names:
        out[f"{k}_wall_ms"] = round(float(wall[k].sum()) / n, 3)
    for a in ("policy", "model"):
        out[f"{a}_over_plain"] = round(float(cpu[a].sum() / cpu["plain"].sum()), 3)
        q1, q3 = np.percentile(cpu[a] / cpu["plain"], [25, 75])  # spread of the per-cycle ratios
        out[f"{a}_over_plain_iqr"] = [round(float(q1), 3), round(float(q3), 3)]
        out[f"{a}_over_plain_wall"] = round(float(wall[a].sum() / wall["plain"].sum()), 3)
    out["cycles_cpu_ms"] = {k: [round(float(x), 3) for x in v] for k, v in cpu.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="gato-small")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--slide-keep", type=float, nargs="+", default=[0.5],
                    help="GatoPolicy slide_keep values to time (each its own row)")
    ap.add_argument("--images", default="breakout", choices=["breakout", "random"],
                    help="Breakout-shaped observations: frames of the game (atari-breakout, random actions) "
                         "or uniform noise (no patch repeats)")
    ap.add_argument("--cycles", type=int, default=16,
                    help="window cycles timed (one slide per env row each), interleaved step by step")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out", default=None, help="JSON output (default $OUT/bench_policy_step.json if $OUT is set)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    global IMAGES
    IMAGES = args.images
    load0 = os.getloadavg()
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} on {os.cpu_count()} CPUs; "
          f"torch threads {torch.get_num_threads()}", flush=True)
    rows = []
    print("ms per step: CPU time of this process, mean over whole window cycles (the policy's re-prefills "
          "amortized); ratios of those, with the interquartile range of the per-cycle ratios; "
          "'wall': policy/plain in wall-clock time", flush=True)
    head = (f"{'shape':<10}{'batch':>6}{'keep':>6}{'slides/step':>12}{'policy ms':>11}{'model ms':>10}"
            f"{'plain ms':>10}{'policy/plain':>20}{'model/plain':>20}{'wall':>6}{'load':>6}")
    print(head, flush=True)
    for shape in args.shapes:
        for batch in args.batches:
            for keep in args.slide_keep:
                r = measure(args.config, shape, batch, keep, args.cycles)
                r["load_1min"] = round(os.getloadavg()[0], 2)
                rows.append(r)
                pq, mq = r["policy_over_plain_iqr"], r["model_over_plain_iqr"]
                print(f"{shape:<10}{batch:>6}{keep:>6.2f}{r['slides_per_row_step']:>12.3f}{r['policy_cpu_ms']:>11.2f}"
                      f"{r['model_cpu_ms']:>10.2f}{r['plain_cpu_ms']:>10.2f}"
                      f"{r['policy_over_plain']:>8.2f} [{pq[0]:.2f}-{pq[1]:.2f}]"
                      f"{r['model_over_plain']:>8.2f} [{mq[0]:.2f}-{mq[1]:.2f}]"
                      f"{r['policy_over_plain_wall']:>6.2f}{r['load_1min']:>6.1f}", flush=True)
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}", flush=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), "threads": args.threads, "config": args.config, "images": args.images,
            "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in load1]}
    out = json_path(args.out, "bench_policy_step.json")
    if out:
        write_json(out, {"meta": meta, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
