"""Closed-loop control speed of the Gato policy.

CPU (default; needs the envs):

1. control-step latency (ms) of `GatoPolicy.act` with and without the KV cache, for a
   Meta-World-shaped task (39 continuous observations + separator, 4 action tokens: 44 slots per
   step) with a 1024-slot... (model max_len) context filled by a prompt and recent steps;
2. env steps/s of batched rollouts (`policies.rollout`) with 1, 8 and 32 envs on ``--task``, next to
   the random policy on the same envs in the same run.

``--gpu`` (needs only torch, numpy, safetensors: runs on a bare GPU machine): control-step latency
of gato-79m and gato-1.18b at batch 1 and 32 in bf16, a step being 40 observation tokens then 4
action tokens decoded one at a time (as the closed-loop policy decodes them), through

- ``eager``: `GatoModel.decode` itself (the policy's path), and
- ``graphs``: the same blocks (`Block.decode`) over a static full-capacity mask, captured as two
  CUDA graphs (observation chunk, one action token); the embedding runs eagerly outside the graph
  (it looks up patch slots with a data-dependent ``nonzero``).

Prints a table and writes JSON to ``$OUT`` (or ``--out``).

    python benchmarks/bench_control.py [--configs gato-small gato-79m] [--steps 20]
    python benchmarks/bench_control.py --gpu [--configs gato-79m gato-1.18b]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch
from _common import json_path, write_json

OBS_TOKENS, ACTION_TOKENS = 40, 4  # the GPU step of the anchor: 40 observation + 4 action tokens


# ---------------------------------------------------------------------------------------------
# GPU (or CPU with --gpu --device cpu): model-level decode latency, no envs
# ---------------------------------------------------------------------------------------------


def _token_slots(tokens: torch.Tensor, action: bool):
    """(B, T) token slots as a `gato.model.Slots` (no patches)."""
    from gato.model import Slots

    b, t = tokens.shape
    dev = tokens.device
    local = torch.full((b, t), -1, dtype=torch.long, device=dev) if action else \
        torch.arange(t, device=dev).expand(b, t).contiguous()
    return Slots(tokens, torch.zeros(b, t, dtype=torch.bool, device=dev),
                 torch.zeros(0, 768, device=dev), torch.zeros(b, t, 4, dtype=torch.long, device=dev),
                 local, torch.full((b, t), action, dtype=torch.bool, device=dev))


@torch.inference_mode()
def decode_latency(name: str, batch: int, graphs: bool, device: str, steps: int = 40,
                   dtype: torch.dtype = torch.bfloat16) -> dict:
    """ms per control step (40 observation tokens + 4 action tokens) of ``name`` at ``batch``."""
    from gato.configs import get_config
    from gato.model import GatoModel

    cfg = get_config(name)
    with torch.device(device):
        model = GatoModel(cfg)
    model = model.to(dtype).eval()
    lo, hi = 32000, 33024
    cap = cfg.max_len
    cache = model.new_cache(batch)
    obs = torch.randint(32000, 33024, (batch, OBS_TOKENS), device=device)
    obs_slots = _token_slots(obs, False)
    act_slots = _token_slots(torch.full((batch, 1), 32512, device=device), True)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    if not graphs:
        def control_step() -> None:
            if int(cache.lengths.max()) + OBS_TOKENS + ACTION_TOKENS > cap:
                cache.reset()
            h, _ = model.decode(obs_slots, cache)
            tok = model.logits(h[:, -1], (lo, hi)).argmax(-1)
            for _ in range(ACTION_TOKENS - 1):
                act_slots.tokens[:, 0] = lo + tok
                h, _ = model.decode(act_slots, cache)
                tok = model.logits(h[:, -1], (lo, hi)).argmax(-1)
            act_slots.tokens[:, 0] = lo + tok
            model.decode(act_slots, cache)  # the last action token joins the context
    else:
        rows = torch.arange(batch, device=device)
        key_pos = torch.arange(cap, device=device)
        x_obs = torch.zeros(batch, OBS_TOKENS, cfg.width, device=device, dtype=dtype)
        x_act = torch.zeros(batch, 1, cfg.width, device=device, dtype=dtype)
        p_obs = torch.zeros(batch, OBS_TOKENS, dtype=torch.long, device=device)
        p_act = torch.zeros(batch, 1, dtype=torch.long, device=device)

        def trunk(x, pos):  # static shapes: attend over the whole capacity with a causal mask
            mask = (key_pos[None, None, :] <= pos[:, :, None])[:, None]  # (B, 1, T, S)
            for i, block in enumerate(model.blocks):
                x = block.decode(x, cache.keys[i], cache.values[i], rows, pos, mask)
            return model.logits(model.final_norm(x[:, -1]), (lo, hi)).argmax(-1)

        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                trunk(x_obs, p_obs), trunk(x_act, p_act)
        torch.cuda.current_stream().wait_stream(stream)
        g_obs, g_act = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.cuda.graph(g_obs):
            out_obs = trunk(x_obs, p_obs)
        with torch.cuda.graph(g_act):
            out_act = trunk(x_act, p_act)
        t_pos = [0]

        def control_step() -> None:
            t = t_pos[0] if t_pos[0] + OBS_TOKENS + ACTION_TOKENS <= cap else 0
            x_obs.copy_(model.embed(obs_slots))
            p_obs.copy_(torch.arange(t, t + OBS_TOKENS, device=device).expand(batch, -1))
            g_obs.replay()
            tok = out_obs
            for i in range(ACTION_TOKENS):
                act_slots.tokens[:, 0] = lo + tok
                x_act.copy_(model.embed(act_slots))
                p_act.fill_(t + OBS_TOKENS + i)
                g_act.replay()
                tok = out_act
            t_pos[0] = t + OBS_TOKENS + ACTION_TOKENS

    for _ in range(5):
        control_step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        control_step()
    sync()
    ms = (time.perf_counter() - t0) / steps * 1e3
    params = sum(p.numel() for p in model.parameters())
    return {"config": name, "params_m": round(params / 1e6), "batch": batch, "cuda_graphs": graphs,
            "dtype": str(dtype).replace("torch.", ""), "control_step_ms": round(ms, 3),
            "hz_per_env": round(1e3 / ms, 1), "env_steps_per_s": round(batch * 1e3 / ms)}


def run_gpu(args) -> list[dict]:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for name in args.configs or ["gato-79m", "gato-1.18b"]:
        for batch in (1, 32):
            for graphs in ((False, True) if device.startswith("cuda") else (False,)):
                try:
                    r = decode_latency(name, batch, graphs, device, steps=args.steps,
                                       dtype=torch.bfloat16 if device.startswith("cuda") else torch.float32)
                except Exception as e:  # report and go on (e.g. out of memory)
                    r = {"config": name, "batch": batch, "cuda_graphs": graphs, "error": repr(e)[:300]}
                print(json.dumps(r), flush=True)
                rows.append(r)
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
    return rows


# ---------------------------------------------------------------------------------------------
# CPU: GatoPolicy step latency (cache vs none) and batched rollouts with real envs
# ---------------------------------------------------------------------------------------------


def _policy(name: str, use_cache: bool, task_like: str = "metaworld"):
    """A randomly initialized GatoPolicy on a Meta-World-shaped task, with a half-context prompt."""
    import gymnasium as gym

    from envs.convention import Episode
    from gato import sequence as sq
    from gato.configs import get_config
    from gato.model import GatoModel
    from gato.policy import GatoPolicy

    torch.manual_seed(0)
    model = GatoModel(get_config(name)).eval()
    obs_space = gym.spaces.Dict({"continuous": gym.spaces.Box(-np.inf, np.inf, (39,), np.float32)})
    act_space = gym.spaces.Box(-1, 1, (4,), np.float32)
    t = 64
    rng = np.random.default_rng(0)
    ep = Episode("metaworld-reach", {"continuous": rng.normal(size=(t, 39)).astype(np.float32)},
                 rng.uniform(-1, 1, (t, 4)).astype(np.float32), np.zeros(t), np.zeros(t, bool), np.zeros(t, bool))
    prompt = sq.episode_to_slots(ep).fit(model.config.max_len // 2)
    return GatoPolicy(model, "metaworld-reach", obs_space, act_space, prompt, use_cache=use_cache)


def step_latency(name: str, use_cache: bool, batch: int, steps: int) -> dict:
    """ms per `act` at steady state: the context is first filled to its sliding regime."""
    pi = _policy(name, use_cache)
    rng = np.random.default_rng(1)
    state = pi.initial_state(batch, 0)
    room = pi.capacity - len(pi.prompt)
    warm = max(2, room // 44)  # steps that fill the window after the prompt
    times = []
    for t in range(warm + steps):
        obs = {"continuous": rng.normal(size=(batch, 39)).astype(np.float32)}
        t0 = time.perf_counter()
        _, state = pi.act(obs, state, np.full(batch, t == 0))
        if t >= warm:
            times.append(time.perf_counter() - t0)
    ms = 1e3 * float(np.median(times))
    return {"config": name, "kv_cache": use_cache, "batch": batch, "context": pi.capacity,
            "prompt_slots": len(pi.prompt), "step_ms_median": round(ms, 2),
            "step_ms_mean": round(1e3 * float(np.mean(times)), 2), "slides": state.num_slides, "steps": steps}


def rollout_speed(task: str, name: str, num_envs: int, episodes_per_env: int = 1, max_steps: int = 50) -> dict:
    """Env steps/s of a batched Gato rollout vs the random policy on the same envs."""
    import envs
    from policies.rollout import rollout
    from gato import sequence as sq
    from gato.configs import get_config
    from gato.model import GatoModel
    from policies import make_policy
    from gato.policy import GatoPolicy

    env_list = [envs.make(task) for _ in range(num_envs)]
    try:
        torch.manual_seed(0)
        model = GatoModel(get_config(name)).eval()
        ep = rollout("random", task, 1, seed=0, max_steps=8, record=True).episodes[0]
        prompt = sq.episode_to_slots(ep, action_space=env_list[0].action_space).fit(model.config.max_len // 2)
        gato = GatoPolicy(model, task, env_list[0].observation_space, env_list[0].action_space, prompt)
        out = {"task": task, "config": name, "num_envs": num_envs, "max_steps": max_steps}
        for label, pi in (("gato", gato), ("random", make_policy("random", task, envs=env_list))):
            r = rollout(pi, task, num_envs * episodes_per_env, seed=0, num_envs=num_envs, envs=env_list,
                        max_steps=max_steps)
            out[f"{label}_steps_per_s"] = r.metadata["steps_per_s"]
        out["gato_vs_random"] = round(out["gato_steps_per_s"] / out["random_steps_per_s"], 3)
        return out
    finally:
        for env in env_list:
            env.close()


def run_cpu(args) -> list[dict]:
    rows = []
    for name in args.configs or ["gato-small", "gato-79m"]:
        for use_cache in (True, False) if name in args.uncached else (True,):
            r = step_latency(name, use_cache, 1, args.steps)
            print(json.dumps(r), flush=True)
            rows.append(r)
        if name in args.uncached:
            ratio = rows[-1]["step_ms_median"] / rows[-2]["step_ms_median"]
            print(f"{name}: KV cache speed-up x{ratio:.1f}", flush=True)
    for n in (1, 8, 32):
        r = rollout_speed(args.task, args.rollout_config, n, max_steps=args.rollout_steps)
        print(json.dumps(r), flush=True)
        rows.append(r)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpu", action="store_true", help="model-level decode latency of large configs (no envs)")
    ap.add_argument("--device", default=None, help="--gpu device (default cuda if available)")
    ap.add_argument("--configs", nargs="*", default=None, help="model configs to time")
    ap.add_argument("--steps", type=int, default=20, help="timed control steps")
    ap.add_argument("--uncached", nargs="*", default=["gato-tiny", "gato-small"],
                    help="configs also timed without the KV cache (gato-79m recomputing 1024 slots 5x per "
                         "step takes minutes per step on 2 CPU cores)")
    ap.add_argument("--task", default="dmc-cartpole-balance", help="task of the batched rollouts (CPU)")
    ap.add_argument("--rollout-config", default="gato-small", help="model of the batched rollouts (CPU)")
    ap.add_argument("--rollout-steps", type=int, default=40, help="steps per rollout episode (CPU)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out", default=None, help="JSON output (default $OUT/bench_control.json if $OUT is set)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = run_gpu(args) if args.gpu else run_cpu(args)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "machine": platform.machine(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "threads": args.threads}
    out = json_path(args.out, "bench_control.json")
    if out:
        write_json(out, {"meta": meta, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
