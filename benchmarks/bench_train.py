"""Training throughput of the Gato model against a plain PyTorch decoder, measured in the same run.

CPU (default): a small shape (gato-small: 4 blocks, width 128, L=256), three variants, steps
interleaved so that machine load hits them alike:

- ``reference``: a plain pre-norm decoder written here (same blocks, GEGLU, shared embedding)
  computing full-vocabulary logits at every slot, masked cross-entropy;
- ``gato, logits everywhere``: our model with every slot a target, i.e. the same work
  (target: >= 0.9x the reference's tokens/s);
- ``gato, logits at targets``: our model on a realistic mask (``--target-fraction``), which
  computes the 34,178-way output only at target slots: the speed-up over the line above.

GPU (``--gpu``): tokens/s and MFU of gato-79m / gato-364m / gato-1.18b at L=1024, bf16 autocast,
fused AdamW, eager and ``torch.compile`` (blocks), batch 32 / 16 / 8 (what fits one GPU
for each size). MFU counts the FLOPs the step needs: 6 x non-embedding
parameters + 6 x vocab x width x target fraction (the logits) + 12 x layers x L x heads x
head_dim (attention) per token, against ``--peak-tflops`` (H200 bf16 dense: 989). Only torch and
numpy are imported (no gymnasium): it runs on a bare GPU machine with the repo's ``gato/``.

    nice -n 10 python benchmarks/bench_train.py            # CPU table
    python benchmarks/bench_train.py --gpu --out $OUT      # GPU table + JSON
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from _common import write_json

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from gato.batch import TokenBatch  # noqa: E402
from gato.configs import CONFIGS, GatoConfig  # noqa: E402
from gato.model import GatoModel  # noqa: E402

PAD = 34049


class RefBlock(nn.Module):
    def __init__(self, c: GatoConfig):
        super().__init__()
        self.h, self.hd = c.num_heads, c.head_dim
        self.ln1, self.ln2 = nn.LayerNorm(c.width), nn.LayerNorm(c.width)
        self.qkv = nn.Linear(c.width, 3 * c.num_heads * c.head_dim, bias=False)
        self.proj = nn.Linear(c.num_heads * c.head_dim, c.width, bias=False)
        self.up = nn.Linear(c.width, 2 * c.ffw_hidden, bias=False)
        self.down = nn.Linear(c.ffw_hidden, c.width, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.h, self.hd).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, -1))
        a, g = self.up(self.ln2(x)).chunk(2, -1)
        return x + self.down(a * F.gelu(g))


class RefDecoder(nn.Module):
    """Plain pre-norm decoder, shared embedding, full-vocabulary logits at every slot."""

    def __init__(self, c: GatoConfig):
        super().__init__()
        self.emb = nn.Embedding(c.vocab_size, c.width)
        self.blocks = nn.ModuleList(RefBlock(c) for _ in range(c.num_layers))
        self.ln = nn.LayerNorm(c.width)
        for p in self.parameters():  # GPT-2 init (N(0, 1) embeddings make the softmax denormal-slow)
            if p.ndim == 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, batch: TokenBatch):
        x = self.emb(batch.tokens)
        for blk in self.blocks:
            x = blk(x)
        logits = F.linear(self.ln(x).flatten(0, 1), self.emb.weight)  # (B*L, V), a tied nn.Linear head
        targets = batch.targets.masked_fill(~batch.loss_mask, -100)
        return F.cross_entropy(logits.float(), targets.flatten(), ignore_index=-100), {}


def token_batch(b: int, length: int, target_fraction: float, device, seed: int = 0) -> TokenBatch:
    """Token-only batch (no patches); a ``target_fraction`` of slots are targets, evenly spread."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(32000, 34048, (b, length), generator=g)
    every = max(1, round(1 / target_fraction))
    loss_mask = torch.zeros(b, length, dtype=torch.bool)
    loss_mask[:, every - 1::every] = True
    loss_mask[:, -1] = False
    return TokenBatch(tokens, torch.zeros(b, length, dtype=torch.bool), torch.zeros(0, 768),
                      torch.zeros(b, length, 4, dtype=torch.long), torch.arange(length).remainder(64).repeat(b, 1),
                      loss_mask.clone(), torch.roll(tokens, -1, 1), loss_mask, ["bench"] * b).to(device)


def make_step(model: nn.Module, batch: TokenBatch, device: str, bf16: bool, compile_: bool):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=device == "cuda")
    if compile_:
        for blk in model.blocks:
            blk.compile()

    def step():
        with torch.autocast(device, torch.bfloat16, enabled=bf16):
            loss, _ = model(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_steps(steps: dict, n: int, device: str) -> dict[str, float]:
    """Median seconds per step of each variant, steps interleaved round-robin."""
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(n):
        for k, step in steps.items():
            sync(device)
            t = time.perf_counter()
            step()
            sync(device)
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def cpu(args) -> list[dict]:
    torch.set_num_threads(args.threads)
    cfg = dataclasses.replace(CONFIGS[args.config], max_len=args.length)
    tf = args.target_fraction
    torch.manual_seed(0)
    variants = {
        "reference (full logits)": (RefDecoder(cfg), token_batch(args.batch, args.length, tf, "cpu")),
        "gato, logits everywhere": (GatoModel(cfg), token_batch(args.batch, args.length, 1.0, "cpu")),
        f"gato, logits at targets ({tf:.0%})": (GatoModel(cfg), token_batch(args.batch, args.length, tf, "cpu")),
    }
    steps = {k: make_step(m, b, "cpu", False, False) for k, (m, b) in variants.items()}
    time_steps(steps, 2, "cpu")  # warm-up
    med = time_steps(steps, args.steps, "cpu")
    tokens = args.batch * args.length
    ref = med["reference (full logits)"]
    rows = []
    for k, s in med.items():
        rows.append({"variant": k, "tokens_per_s": round(tokens / s), "ratio_vs_reference": round(ref / s, 3)})
    same = rows[1]["tokens_per_s"] / rows[0]["tokens_per_s"]
    speedup = rows[2]["tokens_per_s"] / rows[1]["tokens_per_s"]
    print(f"CPU, {args.config} shape (L={args.length}, batch {args.batch}, {args.threads} thread(s)), "
          f"median of {args.steps} interleaved steps")
    print(f"{'variant':<34}{'tokens/s':>10}{'vs reference':>14}")
    for r in rows:
        print(f"{r['variant']:<34}{r['tokens_per_s']:>10,}{r['ratio_vs_reference']:>13.2f}x")
    print(f"same work: {same:.2f}x the reference (target >= 0.90); logits only at targets: {speedup:.2f}x")
    return rows


def flops_per_token(c: GatoConfig, length: int, target_fraction: float) -> float:
    inner = c.num_heads * c.head_dim
    block = 3 * c.width * inner + inner * c.width + 3 * c.width * c.ffw_hidden
    return (6 * c.num_layers * block + 6 * c.vocab_size * c.width * target_fraction
            + 12 * c.num_layers * length * inner)


def gpu(args) -> list[dict]:
    dev = args.device
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    length = args.length or 1024
    rows = []
    for spec in args.sizes.split(","):
        name, batch = spec.split(":")
        cfg, batch = dataclasses.replace(CONFIGS[name], max_len=length), int(batch)
        for tf in sorted({1.0, args.target_fraction}, reverse=True):
            for compile_ in (False, True):
                row = {"config": name, "batch": batch, "L": length, "target_fraction": tf, "compiled": compile_}
                model = None
                try:
                    torch.manual_seed(0)
                    model = GatoModel(cfg).to(dev)
                    step = make_step(model, token_batch(batch, length, tf, dev), dev, True, compile_)
                    time_steps({"s": step}, 3, dev)
                    s = time_steps({"s": step}, args.steps, dev)["s"]
                    tok_s = batch * length / s
                    row.update(tokens_per_s=round(tok_s),
                               mfu=round(flops_per_token(cfg, length, tf) * tok_s / (args.peak_tflops * 1e12), 3))
                    if dev == "cuda":
                        row["mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
                except Exception as e:  # keep measuring the other sizes
                    row["error"] = repr(e)[:300]
                print(json.dumps(row), flush=True)
                rows.append(row)
                del model
                if dev == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gpu", action="store_true", help="measure the published sizes on CUDA")
    p.add_argument("--config", default="gato-small", help="CPU: model shape")
    p.add_argument("--length", type=int, default=None, help="slots per sequence (CPU: 256, GPU: 1024)")
    p.add_argument("--batch", type=int, default=4, help="CPU: sequences per step")
    p.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    p.add_argument("--threads", type=int, default=1, help="CPU threads")
    p.add_argument("--target-fraction", type=float, default=0.2,
                   help="fraction of slots that are targets (DMC-like ~0.2, Atari ~0.04)")
    p.add_argument("--sizes", default="gato-79m:32,gato-364m:16,gato-1.18b:8",
                   help="GPU mode: config:batch list (batches as in the anchor)")
    p.add_argument("--device", default="cuda", help="GPU mode device (cpu only to smoke-test the path)")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="GPU bf16 dense peak for MFU")
    p.add_argument("--out", default=os.environ.get("OUT"), help="directory for bench_train.json")
    args = p.parse_args(argv)
    if not args.gpu:
        args.length = args.length or 256
    rows = gpu(args) if args.gpu else cpu(args)
    if args.out:
        write_json(os.path.join(args.out, "bench_train.json"),
                   {"args": vars(args), "rows": rows, "date": time.strftime("%Y-%m-%d")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
