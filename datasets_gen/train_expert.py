"""Train an RL expert with stable-baselines3, resumably (the command line is `eval.train_expert`).

    gato train-expert --task dmc-cartpole-balance --env-steps 30000 --out runs/experts/dmc-cartpole-balance

Algorithms and hyperparameters per domain (``--algo auto``):

* DMC from state: SAC, rl-baselines3-zoo's MuJoCo SAC settings (``hyperparams/sac.yml``: SB3
  defaults, lr 3e-4, batch 256, tau 0.005, gamma 0.99, [256, 256] MLP, one gradient step per env
  step) with ``learning_starts`` shortened from the zoo's 10,000 to ``min(10000, steps // 10)``
  (at least 1,000) because our budgets are 20k-100k steps, not 1M.
* Atari: PPO with the zoo's Atari settings (8 envs, n_steps 128, 4 epochs, batch 256, lr and clip
  linearly decayed from 2.5e-4 and 0.1, ent 0.01, vf 0.5, CnnPolicy) on the raw ALE env with SB3's
  `AtariWrapper` (noop reset, frame skip 4 with max-pool, 84x84 grey, episodic life, reward clip,
  fire reset) and 4 stacked frames. Evaluation uses the same preprocessing without life loss
  termination and without reward clipping, so the recorded return is the game score.
* BabyAI: PPO with the zoo's MiniGrid settings (8 envs, n_steps 128, batch 64, 10 epochs, lr
  2.5e-4, gae 0.95, clip 0.2, ent 0) on the flat ``discrete`` observation (mission text ignored).
* Procgen: PPO with Cobbe et al. 2019's settings (the zoo has none): lr 5e-4, gamma 0.999, gae 0.95,
  3 epochs, ent 0.01, clip 0.2, n_steps 256, on the 64x64 ``image`` observation (CnnPolicy).

``--hp '{"train_freq": 2}'`` overrides any constructor argument.

Layout of ``--out DIR``: ``ckpt/`` (latest checkpoint: ``model.zip`` and, for SAC/DQN,
``replay_buffer.pkl``; rerunning the same command resumes from it), ``tb/`` (TensorBoard),
``config.json``, and at the end ``model.zip`` + ``expert.json`` (measured return, episodes, seeds,
the exact command). ``--zoo`` also copies those two files into ``policies/zoo/<task>/`` and
pins the zip's sha256 in ``policies/zoo/SHA256SUMS``.

The zips and the replay buffer are pickles (they run code when loaded). Each one this command
writes is recorded in the user's ledger (`policies.trust.remember`), so a resume, or ``--policy
runs/experts/T/model.zip``, loads it without ``--allow-pickle``; anything else needs that flag.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from envs import domain_of
from envs.atomic import atomic_write_json
from datasets_gen.generate import library_versions
from policies import trust
from policies.sb3 import ZOO_DIR, FlatObservation, pin_in_zoo

ATARI_ENV_ID = "ALE/{game}-v5"


@dataclass
class Config:
    """Train one SB3 expert."""

    task: str
    """registry task id, e.g. ``dmc-cartpole-balance``, ``atari-pong``, ``babyai-goto``."""
    env_steps: int = 100_000
    """total environment steps (summed over envs); a resumed run trains up to this number."""
    out: str = ""
    """run directory (default ``runs/experts/<task>``)."""
    algo: Literal["auto", "ppo", "dqn", "sac"] = "auto"
    """``auto`` picks SAC for DMC, PPO otherwise."""
    seed: int = 0
    """training seed; evaluation episodes use seeds ``seed + 10000 + i``."""
    checkpoint_every: int = 10_000
    """env steps between checkpoints (model + replay buffer)."""
    eval_episodes: int = 10
    """episodes of the final deterministic evaluation."""
    eval_max_steps: int | None = None
    """cap on evaluation episode length (for smoke tests; None = the task's own limit)."""
    hp: str = "{}"
    """JSON dict of SB3 constructor overrides, e.g. ``'{"train_freq": 2, "gradient_steps": 1}'``."""
    threads: int = 1
    """torch threads (the machine is shared)."""
    zoo: bool = False
    """copy the final ``model.zip`` + ``expert.json`` into ``policies/zoo/<task>/``."""
    update_references: bool = True
    """write the measured expert return into ``eval/references.json`` (`eval.train_expert` does, after `train`)."""
    progress: bool = True
    """show a tqdm progress bar."""
    force: bool = False
    """write into an --out that holds another command's files."""
    allow_changes: bool = False
    """resume although --algo, --seed, --hp or --eval-max-steps differ from the stored run's."""
    allow_pickle: bool = False
    """resume from a ckpt/ that gato did not write on this account (another machine, an older version):
    model.zip and replay_buffer.pkl are pickles, so this executes code from them."""


# Options whose change does not make a resumed run another run.
RESUMABLE_OPTIONS = ("env_steps", "steps", "checkpoint_every", "eval_episodes", "threads", "zoo", "update_references",
                     "progress", "force", "allow_changes", "allow_pickle", "out", "n_envs", "hyperparameters", "command")


def check_config(cfg: Config) -> tuple[Path, dict[str, Any]]:
    """Validate ``cfg`` before anything is written; returns the run directory and the --hp overrides."""
    from envs.commandline import UsageError, at_least, check_out_dir, check_task, check_unchanged

    check_task(cfg.task)
    for flag, value in (("--env-steps", cfg.env_steps), ("--checkpoint-every", cfg.checkpoint_every),
                        ("--eval-episodes", cfg.eval_episodes), ("--eval-max-steps", cfg.eval_max_steps),
                        ("--threads", cfg.threads)):
        at_least(value, 1, flag)
    try:
        hp = json.loads(cfg.hp)
    except ValueError as e:
        raise UsageError(f"--hp {cfg.hp}: not JSON ({e}); e.g. --hp '{{\"train_freq\": 2}}'") from None
    if not isinstance(hp, dict):
        raise UsageError(f"--hp {cfg.hp}: must be a JSON object of SB3 constructor arguments")
    domain = domain_of(cfg.task)
    if cfg.algo == "sac" and domain != "dmc":
        raise UsageError(f"--algo sac: needs continuous actions; {cfg.task} has discrete ones (use ppo or dqn)")
    if cfg.algo == "dqn" and domain == "dmc":
        raise UsageError(f"--algo dqn: needs discrete actions; {cfg.task} has continuous ones (use sac or ppo)")
    out = Path(cfg.out or f"runs/experts/{cfg.task}")
    if check_out_dir(str(out), "train-expert", force=cfg.force) and (out / "config.json").is_file():
        before = json.loads((out / "config.json").read_text())
        if "steps" in before and "env_steps" not in before:  # the flag's old name
            before["env_steps"] = before.pop("steps")
        now = {**asdict(cfg), "algo": cfg.algo if cfg.algo != "auto" else ("sac" if domain == "dmc" else "ppo")}
        check_unchanged(str(out), before, now, ignore=RESUMABLE_OPTIONS, allow=cfg.allow_changes,
                        command="gato train-expert")
    return out, hp


# ----------------------------------------------------------------------------- envs


def atari_game(task_id: str) -> str:
    """``atari-space-invaders`` -> ``SpaceInvaders`` (the ALE v5 game name)."""
    return "".join(p.capitalize() for p in task_id.split("-", 1)[1].split("-"))


def make_env(task_id: str) -> gym.Env:
    """The Dict-convention env of ``task_id`` from the registry."""
    import envs

    return envs.make(task_id)


def _atari_env(task_id: str, train: bool) -> gym.Env:
    import ale_py
    from stable_baselines3.common.atari_wrappers import AtariWrapper
    from stable_baselines3.common.monitor import Monitor

    gym.register_envs(ale_py)
    env = gym.make(ATARI_ENV_ID.format(game=atari_game(task_id)), frameskip=1, repeat_action_probability=0.25)
    env = Monitor(env)  # below AtariWrapper: records true game scores
    return AtariWrapper(env, terminal_on_life_loss=train, clip_reward=train)


def make_vec_env(task_id: str, n_envs: int, seed: int, train: bool = True):
    """SB3 VecEnv with flat observations for ``task_id``."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    domain = domain_of(task_id)
    if domain == "atari":
        venv = DummyVecEnv([lambda: _atari_env(task_id, train)] * n_envs)
        venv = VecFrameStack(venv, n_stack=4)
    else:
        venv = DummyVecEnv([lambda: Monitor(FlatObservation(make_env(task_id)))] * n_envs)
    venv.seed(seed)
    return venv


# ----------------------------------------------------------------------------- hyperparameters


class _linear:
    """SB3 schedule decaying linearly from ``start`` to 0 (picklable, readable in expert.json)."""

    def __init__(self, start: float):
        self.start = start

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.start

    def __repr__(self) -> str:
        return f"linear({self.start:g})"


def hyperparameters(domain: str, algo: str, steps: int) -> tuple[dict[str, Any], int]:
    """(SB3 constructor kwargs, n_envs) for a domain and algorithm (see the module docstring)."""
    if algo == "sac":
        return dict(
            policy="MlpPolicy", learning_rate=3e-4, buffer_size=max(steps, 1000),
            learning_starts=max(1000, min(10_000, steps // 10)), batch_size=256, tau=0.005, gamma=0.99,
            train_freq=1, gradient_steps=1, policy_kwargs=dict(net_arch=[256, 256]),
        ), 1
    if algo == "dqn":  # rl-zoo Atari DQN, shortened buffer
        return dict(
            policy="CnnPolicy" if domain in ("atari", "procgen") else "MlpPolicy", learning_rate=1e-4,
            buffer_size=min(100_000, max(steps, 1000)), learning_starts=min(100_000, steps // 10),
            batch_size=32, train_freq=4, gradient_steps=1, target_update_interval=1000,
            exploration_fraction=0.1, exploration_final_eps=0.01,
        ), 1
    if domain == "atari":
        return dict(
            policy="CnnPolicy", n_steps=128, n_epochs=4, batch_size=256, learning_rate=_linear(2.5e-4),
            clip_range=_linear(0.1), vf_coef=0.5, ent_coef=0.01,
        ), 8
    if domain == "procgen":
        return dict(
            policy="CnnPolicy", n_steps=256, n_epochs=3, batch_size=512, learning_rate=5e-4, gamma=0.999,
            gae_lambda=0.95, clip_range=0.2, ent_coef=0.01, vf_coef=0.5,
        ), 8
    # BabyAI / MiniGrid, and a generic fallback
    return dict(
        policy="MlpPolicy", n_steps=128, batch_size=64, n_epochs=10, learning_rate=2.5e-4, gae_lambda=0.95,
        gamma=0.99, clip_range=0.2, ent_coef=0.0,
    ), 8


# ----------------------------------------------------------------------------- checkpoints


def _commit_pickle(tmp: Path, path: Path) -> None:
    """Fsync a written pickle, record it in the ledger of files gato wrote (so that resume and
    ``--policy`` may load it without ``--allow-pickle``), then rename it into place."""
    trust.fsync_file(tmp)
    trust.remember(path, trust.sha256_file(tmp))
    os.replace(tmp, path)
    trust.fsync_dir(path.parent)


def _atomic_save_model(model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.zip")
    model.save(str(tmp))
    _commit_pickle(tmp, path)


def _atomic_save_buffer(model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.pkl")
    model.save_replay_buffer(str(tmp))
    _commit_pickle(tmp, path)


def _callbacks(model_dir: Path, every: int, total: int, start: int, progress: bool):
    from stable_baselines3.common.callbacks import BaseCallback

    class Checkpoint(BaseCallback):
        """Saves replay buffer then model (the model's step count says how far the run got)."""

        def __init__(self):
            super().__init__()
            self.last = start
            self.bar = None

        def _on_training_start(self) -> None:
            if progress:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

        def _on_step(self) -> bool:
            n = self.model.num_timesteps
            if self.bar is not None:
                self.bar.update(n - self.bar.n)
            if n - self.last >= every:
                save_checkpoint(self.model, model_dir)
                self.last = n
            return True

        def _on_training_end(self) -> None:
            save_checkpoint(self.model, model_dir)
            if self.bar is not None:
                self.bar.close()

    return Checkpoint()


def save_checkpoint(model, ckpt: Path) -> None:
    """Atomic checkpoint in ``ckpt/``: replay buffer first, then the model."""
    ckpt.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
        _atomic_save_buffer(model, ckpt / "replay_buffer.pkl")
    _atomic_save_model(model, ckpt / "model.zip")


# ----------------------------------------------------------------------------- evaluation


def evaluate(model, task_id: str, episodes: int, seed: int, max_steps: int | None = None) -> tuple[list[float], list[int]]:
    """Deterministic returns of ``episodes`` episodes with seeds ``seed + i`` (true game score on Atari)."""
    domain = domain_of(task_id)
    returns, seeds = [], []
    for i in range(episodes):
        venv = make_vec_env(task_id, 1, seed + i, train=False)
        obs = venv.reset()
        total, done, t = 0.0, False, 0
        while not done and (max_steps is None or t < max_steps):
            t += 1
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, dones, infos = venv.step(action)
            total += float(reward[0])
            done = bool(dones[0])
            if done and domain == "atari":
                # AtariWrapper without life loss: episode end is game over; Monitor saw the true score
                total = float(infos[0]["episode"]["r"]) if "episode" in infos[0] else total
        venv.close()
        returns.append(total)
        seeds.append(seed + i)
    return returns, seeds


# ----------------------------------------------------------------------------- main


def _publish(cfg: Config, out: Path) -> None:
    """With ``--zoo``, copies ``model.zip`` and ``expert.json`` into ``policies/zoo/<task>/``."""
    if cfg.zoo:
        dst = ZOO_DIR / cfg.task
        dst.mkdir(parents=True, exist_ok=True)
        for name in ("model.zip", "expert.json"):
            tmp = dst / f"{name}.tmp"
            shutil.copyfile(out / name, tmp)
            os.replace(tmp, dst / name)
        pin_in_zoo(dst / "model.zip")  # policies/zoo/SHA256SUMS: commit it with the zip
        print(f"copied to {dst}", file=sys.stderr)


def train(cfg: Config, command: str) -> dict[str, Any]:
    """Trains (or resumes) the expert of ``cfg.task`` and returns the content of ``expert.json``."""
    import stable_baselines3 as sb3
    import torch

    out, hp = check_config(cfg)
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    domain = domain_of(cfg.task)
    algo = cfg.algo if cfg.algo != "auto" else ("sac" if domain == "dmc" else "ppo")
    kwargs, n_envs = hyperparameters(domain, algo, cfg.env_steps)
    kwargs.update(hp)
    cls = {"sac": sb3.SAC, "ppo": sb3.PPO, "dqn": sb3.DQN}[algo]
    atomic_write_json(str(out / "config.json"), {**asdict(cfg), "algo": algo,
                                                 "out": os.path.abspath(out), "n_envs": n_envs,
                                                 "hyperparameters": {k: repr(v) for k, v in kwargs.items()},
                                                 "command": command})
    done_path = out / "expert.json"
    if done_path.exists() and (out / "model.zip").exists():
        done = json.loads(done_path.read_text())
        if done.get("steps", 0) >= cfg.env_steps and done.get("episodes") == cfg.eval_episodes:
            print(f"{out} is finished ({done['steps']} steps, return {done['return_mean']:.3f}); nothing to do",
                  file=sys.stderr)
            _publish(cfg, out)
            return done
    venv = make_vec_env(cfg.task, n_envs, cfg.seed)
    ckpt = out / "ckpt"
    if (ckpt / "model.zip").exists():
        # pickles: loaded only if gato wrote them here, or with --allow-pickle (policies.trust)
        data = trust.check_pickle(ckpt / "model.zip", allow_pickle=cfg.allow_pickle, what="SB3 checkpoint")
        model = cls.load(io.BytesIO(data), env=venv, device="cpu", tensorboard_log=str(out / "tb"))
        if (ckpt / "replay_buffer.pkl").exists():
            data = trust.check_pickle(ckpt / "replay_buffer.pkl", allow_pickle=cfg.allow_pickle, what="replay buffer")
            model.load_replay_buffer(io.BytesIO(data))
        print(f"resuming from {ckpt / 'model.zip'} at step {model.num_timesteps}", file=sys.stderr)
    else:
        policy = kwargs.pop("policy")
        model = cls(policy, venv, seed=cfg.seed, device="cpu", tensorboard_log=str(out / "tb"), verbose=0, **kwargs)
    start = model.num_timesteps
    t0 = time.time()
    if start < cfg.env_steps:
        cb = _callbacks(ckpt, cfg.checkpoint_every, cfg.env_steps, start, cfg.progress)
        model.learn(cfg.env_steps - start, callback=cb, reset_num_timesteps=False, tb_log_name="run")
    seconds = time.time() - t0
    venv.close()
    eval_seed = cfg.seed + 10_000
    returns, seeds = evaluate(model, cfg.task, cfg.eval_episodes, eval_seed, cfg.eval_max_steps)
    _atomic_save_model(model, out / "model.zip")
    obs_key = None if domain == "atari" else FlatObservation(make_env(cfg.task)).key
    expert = {
        "task_id": cfg.task, "algo": algo, "obs_key": obs_key, "steps": int(model.num_timesteps),
        "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
        "returns": returns, "episodes": len(returns), "seeds": seeds, "deterministic": True,
        "command": command, "train_seconds_this_run": round(seconds, 1),
        "hyperparameters": {k: repr(v) for k, v in kwargs.items()}, "n_envs": n_envs,
        "versions": library_versions(), "date": time.strftime("%Y-%m-%d"),
    }
    atomic_write_json(str(out / "expert.json"), expert)
    print(json.dumps({k: expert[k] for k in ("task_id", "algo", "steps", "return_mean", "return_std")}))
    _publish(cfg, out)
    return expert
