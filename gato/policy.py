"""`GatoPolicy`: a trained Gato checkpoint acting closed-loop behind `policies.base.Policy`.

It lives in `gato` (above `policies` and `datasets_gen`) and registers itself with
`policies.register_policy` under the name ``"gato"`` (and any run directory), so that
`policies.make_policy("gato", ...)` works once this module is imported. The policy itself takes
episodes (an opened dataset) for its prompt; `open_prompt_dataset` is where a path is opened.

Deployment as in docs/spec.md "Deployment": every env's context starts with a **prompt**, a
successful expert demonstration of the same task from its dataset (the first whole timesteps
that fit in ``prompt_slots``, 1024 by default, at most half of the model's context). Each
control step then

1. tokenizes the observation (`gato.sequence.encode_observation`: observation + separator),
2. samples the action tokens one at a time, each restricted to the ids legal for its action
   dimension (`gato.sequence.action_token_ranges`), decoded as ``decoding`` says (below),
3. detokenizes them (`gato.sequence.decode_action`).

Decoding is incremental through the model's KV cache (`GatoModel.decode`): the prompt is
encoded once per policy state and copied into every env's cache row, where it stays (an episode
start only sets the row's length back to the prompt's); a step feeds only the new slots, in one
forward for all envs whose new slots have the same length. An image patch is run through the
patch encoder once per rollout (`PatchFeatures`): the static parts of a frame and the kept
timesteps of a slide reuse the features computed for the same pixels. The last action token of a step is fed together with the next
observation (its hidden state predicts nothing the policy needs), so a one-token action costs
one forward per step.

**Decoding.** ``decoding`` names how a token is drawn from its legal ids, per action type:
``{"discrete": ..., "continuous": ...}``, each one of

- ``"sample"``: softmax at ``temperature`` (Gato samples its actions);
- ``"argmax"``: the most likely id;
- ``"mean"`` (continuous only): the bin nearest the distribution's expectation over the bins;
- ``"median"`` (continuous only): the bin where the distribution's cumulative mass reaches 1/2.

`DEFAULT_DECODING` is the measured choice (docs/results.md, "Decoding"). The policy decodes as its
``decoding`` option says whatever ``act(deterministic=...)`` asks: the option is the decoding.

**Sliding window.** When an env's row has no room for the next step, its context is rebuilt as
prompt + the most recent whole timesteps that fill at most ``slide_keep`` of the room after the
prompt, re-encoded exactly (``slide="reprefill"``, default), or the oldest timesteps are cut out
of the cache in place (``slide="drop"``, cheaper; the kept keys were computed while the dropped
slots were visible, so it approximates re-encoding). Keeping only part of the room means a
re-prefill happens once every few steps rather than at every step. The model has learned
absolute positions, so a re-prefill encodes the kept timesteps again from the prompt's end; they
are fed in the same forward as the row's next observation, together with every row that slides
at that step. Its cost per step is about ``kept / (room - kept)`` of the slots a step feeds
(benchmarks/bench_policy_step.py measures it for several ``slide_keep``).

**State** (`GatoState`) holds everything that changes during a rollout: the KV cache, each env's
context (the exact slots the model has seen, used for re-prefill and by the uncached mode), its
pending action token and its sampling generator. The policy object holds only the model, the
prompt and the spaces. ``use_cache=False`` recomputes the whole context for every token (the
reference the cached path must equal, and the benchmark's "without KV cache").

Example:
    >>> pi = make_gato_policy("dmc-cartpole-balance", checkpoint="runs/demo/model")  # doctest: +SKIP
    >>> state = pi.initial_state(num_envs=4, seed=0)                                  # doctest: +SKIP
    >>> actions, state = pi.act(obs_batch, state, episode_start)                      # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from gato import sequence as sq
from gato import tokenizer as tk
from policies import register_policy
from policies.base import Policy

DECODING_MODES = ("sample", "argmax", "mean", "median")
# Chosen on held-out seeds of the demo suite (docs/results.md, "Decoding").
DEFAULT_DECODING = {"discrete": "sample", "continuous": "mean"}
PROMPT_SLOTS = 1024  # docs/spec.md "Deployment": the first 1024 slots of a demonstration


class UnsupportedTaskError(ValueError):
    """A task whose observation or action spec the checkpoint cannot represent."""


class MissingPromptError(FileNotFoundError):
    """No prompt dataset for a task (the message names the command that builds one)."""


# ---------------------------------------------------------------------------------------------
# Prompts and the checkpoint's training record
# ---------------------------------------------------------------------------------------------


def generate_command(task_id: str) -> str:
    """The command that builds an expert dataset of ``task_id`` (default output directory): with its
    expert where one exists (`policies.has_expert`), else with the search expert of its domain."""
    from policies import has_expert

    policy = "expert" if has_expert(task_id) else "search"
    return f"gato generate --task {task_id} --policy {policy} --episodes 16 --out data/{task_id}-expert"


def trained_tasks(train_config: dict[str, Any] | None) -> dict[str, str]:
    """``{task_id: dataset path}`` of the episode datasets a checkpoint was trained on.

    Read from the trainer's saved config (``data``: dataset paths and ``module:function``
    sources); each dataset's task id comes from its ``metadata.json``. Datasets that no longer
    exist are named by the path's last component (``data/<task>-expert`` -> ``<task>``).
    """
    out: dict[str, str] = {}
    for spec in (train_config or {}).get("data", []) or []:
        spec = str(spec)
        meta = Path(spec) / "metadata.json"
        if meta.is_file():
            with open(meta) as f:
                out[json.load(f)["task_id"]] = spec
        elif ":" not in spec:  # a dataset path that is gone: fall back on its name
            name = Path(spec).name
            out[name[: -len("-expert")] if name.endswith("-expert") else name] = spec
    return out


def trained_domains(train_config: dict[str, Any] | None) -> set[str]:
    """Domains of the checkpoint's episode datasets plus its ``module:function`` sources' names."""
    from envs import domain_of

    domains = {domain_of(t) for t in trained_tasks(train_config)}
    for spec in (train_config or {}).get("data", []) or []:
        if ":" in str(spec) and not os.path.exists(str(spec)):
            domains.add(str(spec))
    return domains


def open_prompt_dataset(path: str | os.PathLike, task_id: str | None = None):
    """Open the expert dataset at ``path`` for a prompt (`datasets_gen.reader.open_dataset`).

    Raises:
        MissingPromptError: the dataset does not exist or is unfinished (names the command that builds it).
    """
    from datasets_gen.reader import open_dataset

    path = str(path)
    if not os.path.isfile(os.path.join(path, "metadata.json")):
        what = task_id or Path(path).name
        raise MissingPromptError(
            f"prompt dataset {path!r} does not exist or is unfinished; build it with "
            f"`{generate_command(what)}` (and pass --prompt-data if you put it elsewhere)")
    return open_dataset(path)


def load_prompt(dataset: Any, max_slots: int, *, from_end: bool = False,
                task_id: str | None = None) -> sq.SlotArrays:
    """The prompt: whole timesteps of the best (highest-return) episode of an expert dataset.

    Args:
        dataset: episodes: an opened `EpisodeDataset` (anything with ``returns``,
            ``episode_length``, ``window`` and ``task_id``); `open_prompt_dataset` opens a path.
        max_slots: at most this many slots (whole timesteps only).
        from_end: take the episode's last timesteps instead of its first.
        task_id: if given, the dataset must be of this task.

    Raises:
        MissingPromptError: the dataset holds no episode.
        ValueError: the dataset is of another task.
    """
    if isinstance(dataset, (str, os.PathLike)):
        raise TypeError(f"load_prompt takes episodes (an opened dataset), not the path {str(dataset)!r}; "
                        "open it with gato.policy.open_prompt_dataset(path)")
    if task_id is not None and dataset.task_id != task_id:
        raise ValueError(f"prompt dataset {getattr(dataset, 'path', dataset)!r} is of task "
                         f"{dataset.task_id!r}, not {task_id!r}")
    if len(dataset) == 0:
        raise MissingPromptError(f"prompt dataset {getattr(dataset, 'path', dataset)!r} keeps no episode; "
                                 f"regenerate it with `{generate_command(dataset.task_id)}`")
    best = int(np.argmax(dataset.returns))
    n = dataset.episode_length(best)
    k = min(n, max(1, max_slots // 2))  # a timestep has at least 2 slots (observation, separator)
    start, stop = (n - k, n) if from_end else (0, k)
    return sq.episode_to_slots(dataset.window(best, start, stop)).fit(max_slots, from_end=from_end)


# ---------------------------------------------------------------------------------------------
# The policy
# ---------------------------------------------------------------------------------------------


@dataclass
class GatoState:
    """Rollout state of a `GatoPolicy` over N envs (explicit: never stored on the policy).

    Attributes:
        cache: the model's KV cache, N rows of ``context`` slots (None when ``use_cache=False``);
            slots ``[0, len(prompt))`` of every row hold the prompt's keys/values.
        prompt_cache: the prompt's keys/values (1 row), copied into every row of ``cache``.
        context: per env, the slots the model has been fed since its episode started, as parts
            (prompt, then observations / action tokens), exactly what its cache row holds.
        steps: per env, the whole timesteps of the current episode that are still in context
            (observation + separator + actions), oldest first; re-prefill keeps a suffix of them.
        pending: per env, the sampled last action token not fed yet (None at episode start).
        rngs: per env, the generator of sampled (non-greedy) action tokens.
        num_slides: how many times a window slid (all envs), for tests and benchmarks.
        patch_features: the patch encoder's outputs of the image patches seen so far
            (`PatchFeatures`; None without the KV cache).
    """

    cache: Any
    prompt_cache: Any
    context: list[list[sq.SlotArrays]]
    steps: list[list[sq.SlotArrays]]
    pending: list[int | None]
    rngs: list[np.random.Generator]
    num_slides: int = 0
    patch_features: "PatchFeatures | None" = None


class PatchFeatures:
    """`GatoModel.patch_encoder` outputs of the patches seen in a rollout, looked up by their pixels.

    The encoder sees one 16x16 patch at a time and is deterministic in eval mode, so a patch whose
    pixels came before (the static parts of a frame, the kept timesteps of a re-prefill) takes the
    features computed then instead of being encoded again. Holds at most ``limit`` patches (all
    are dropped when it is full). The model's weights must not change while it is in use.
    """

    def __init__(self, model, limit: int = 4096):
        self.model, self.limit = model, limit
        self.index: dict[bytes, int] = {}
        self.table: torch.Tensor | None = None  # (rows, D)
        self.encoded = 0  # patches run through the encoder (for tests and benchmarks)

    def __call__(self, patches: np.ndarray) -> torch.Tensor:
        """(P, 768) uint8 patches -> (P, D) encoder outputs, in order."""
        keys = np.ascontiguousarray(patches).view(np.dtype((np.void, patches.shape[1]))).ravel().tolist()  # bytes
        new: dict[bytes, int] = {}  # unseen pixels -> their first index in ``patches``
        for i, k in enumerate(keys):
            if k not in self.index and k not in new:
                new[k] = i
        if new:
            if len(self.index) + len(new) > self.limit:
                self.index.clear()
                new = {}
                for i, k in enumerate(keys):
                    new.setdefault(k, i)
            w = self.model.token_embedding.weight
            x = torch.from_numpy(np.ascontiguousarray(patches[list(new.values())]))
            x = x.mul(float(tk.PATCH_SCALE)).sub_(float(tk.PATCH_SHIFT))  # as `gato.collate.collate`
            feats = self.model.patch_encoder(x.to(w.device, w.dtype))  # (N, D)
            n0 = len(self.index)
            if self.table is None or self.table.shape[0] < n0 + len(new):
                rows = max(256, n0 + len(new), 2 * (0 if self.table is None else self.table.shape[0]))
                table = torch.empty(min(rows, max(self.limit, n0 + len(new))), w.shape[1], device=w.device, dtype=w.dtype)
                if n0:
                    table[:n0] = self.table[:n0]
                self.table = table
            self.table[n0:n0 + len(new)] = feats
            for j, k in enumerate(new):
                self.index[k] = n0 + j
            self.encoded += len(new)
        idx = torch.tensor([self.index[k] for k in keys], device=self.table.device)
        return self.table[idx]


def _rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(None if seed is None else [int(seed), 0x6A70])


def _drop_last_slot(s: sq.SlotArrays) -> sq.SlotArrays:
    """``s`` without its last slot (a token slot, never a patch)."""
    return sq.SlotArrays(s.tokens[:-1], s.is_patch[:-1], s.patches, s.patch_positions[:-1], s.local_positions[:-1],
                    s.is_action[:-1], s.is_target[:-1], np.array([len(s) - 1], np.int64), s.domain)


def _slots_len(parts: Sequence[sq.SlotArrays]) -> int:
    return sum(len(p) for p in parts)


class GatoPolicy(Policy):
    """A Gato model acting on one task, batched over envs (see the module docstring).

    Args:
        model: a `gato.model.GatoModel` (put in eval mode here).
        task_id: registry id of the task.
        observation_space: the env's Dict observation space.
        action_space: the env's ``Discrete(n)`` or ``Box(-1, 1, (n,))`` action space.
        prompt: the demonstration prompt slots (`load_prompt`), or None for no prompt.
        context: slots per env (the KV cache capacity); default the model's ``max_len``.
        temperature: softmax temperature of ``"sample"`` decoding.
        decoding: ``{"discrete": mode, "continuous": mode}`` (module docstring); missing keys take
            `DEFAULT_DECODING`'s.
        use_cache: incremental decoding through the KV cache (False recomputes everything).
        slide: ``"reprefill"`` (exact) or ``"drop"`` (cut the oldest timesteps from the cache).
        slide_keep: fraction of the room after the prompt that a slide keeps for recent timesteps.
        name: the policy's name in reports.

    Raises:
        UnsupportedTaskError: an observation or action space the checkpoint cannot represent
            (unknown keys, too many slots per observation, an action space that is not
            ``Discrete(n <= 1024)`` or a 1-D ``Box``, a step that does not fit the context).
    """

    def __init__(self, model, task_id: str, observation_space: Any, action_space: Any,
                 prompt: sq.SlotArrays | None = None, *, context: int | None = None, temperature: float = 1.0,
                 decoding: dict[str, str] | None = None,
                 use_cache: bool = True, slide: str = "reprefill", slide_keep: float = 0.5,
                 name: str = "gato"):
        self.model = model.eval()
        self.task_id = task_id
        self.name = name
        self.temperature = float(temperature)
        self.decoding = {**DEFAULT_DECODING, **(decoding or {})}
        for kind, mode in self.decoding.items():
            if kind not in DEFAULT_DECODING or mode not in DECODING_MODES:
                raise ValueError(f"decoding {kind}={mode!r}: the kinds are {sorted(DEFAULT_DECODING)} and the "
                                 f"modes {list(DECODING_MODES)}")
        if self.decoding["discrete"] in ("mean", "median"):
            raise ValueError(f"decoding discrete={self.decoding['discrete']!r}: mean and median need ordered "
                             "bins; use sample or argmax for discrete actions")
        if "sample" in self.decoding.values() and self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 for sample decoding, got {temperature}")
        self.use_cache = use_cache
        if slide not in ("reprefill", "drop"):
            raise ValueError(f"slide must be 'reprefill' or 'drop', got {slide!r}")
        if not 0.0 <= slide_keep < 1.0:
            raise ValueError(f"slide_keep must be in [0, 1), got {slide_keep}")
        self.slide, self.slide_keep = slide, slide_keep
        self.capacity = int(context or model.config.max_len)
        if self.capacity > model.config.max_len:
            raise ValueError(f"context {self.capacity} exceeds the model's max_len {model.config.max_len}")
        try:
            self.obs_spec = sq.ObservationSpec.from_space(observation_space)
            self.action_space = action_space
            self.action_kind = sq.ActionSpec.from_space(action_space).kind  # validates the space
        except (ValueError, TypeError) as e:
            raise UnsupportedTaskError(f"task {task_id!r} cannot be represented by this checkpoint: {e}") from e
        self.ranges = sq.action_token_ranges(action_space)  # [(lo, hi)] per action token
        self.num_action_tokens = len(self.ranges)
        vocab = model.config.vocab_size
        if max(hi for _, hi in self.ranges) > vocab:
            raise UnsupportedTaskError(f"task {task_id!r}: action ids up to {max(hi for _, hi in self.ranges)} "
                                       f"exceed the checkpoint's vocabulary of {vocab}")
        self.prompt = prompt if prompt is not None else sq.SlotArrays.empty()
        # One step's slots, with the prompt's mean text length (missions vary per episode;
        # `_make_room` uses each step's real length).
        text_slots = int(np.count_nonzero(self.prompt.is_target & ~self.prompt.is_action)) // max(1, self.prompt.num_timesteps)
        obs_slots = self.obs_spec.num_observation_slots(text_slots)
        if obs_slots > model.config.local_positions:
            raise UnsupportedTaskError(
                f"task {task_id!r}: an observation takes {obs_slots} slots > the {model.config.local_positions} local "
                f"positions of the model (use a smaller image or fewer values)")
        self.step_slots = obs_slots + 1 + self.num_action_tokens + 1  # + separator + actions + pending token
        if len(self.prompt) + self.step_slots > self.capacity:
            raise UnsupportedTaskError(
                f"task {task_id!r}: the prompt ({len(self.prompt)} slots) plus one step ({self.step_slots} slots) "
                f"do not fit the context of {self.capacity} slots (model {model.config.name}); use a shorter "
                f"prompt (prompt_slots) or a model with a longer max_len")

    # ---- helpers -------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.model.token_embedding.weight.device

    def _batch(self, parts: Sequence[sq.SlotArrays], pixels: bool = True):
        """Equal-length slot runs -> model inputs (B, T) on the model's device.

        The same inputs as `gato.collate.collate` (no padding is needed), without its targets;
        ``pixels=False`` leaves the patches out (their encoder outputs are passed to the model).
        """
        from gato.model import Slots

        def stack(name: str) -> torch.Tensor:
            return torch.from_numpy(np.stack([getattr(p, name) for p in parts]))

        if pixels and any(len(p.patches) for p in parts):  # as `gato.collate.collate` scales them
            patches = torch.from_numpy(np.concatenate([p.patches for p in parts]))
            patches = patches.mul(float(tk.PATCH_SCALE)).sub_(float(tk.PATCH_SHIFT))
        else:
            patches = torch.zeros(0, sq.PATCH_DIM)
        batch = Slots(stack("tokens"), stack("is_patch"), patches, stack("patch_positions"),
                      stack("local_positions"), stack("is_action"))
        return batch if self.device.type == "cpu" else batch.to(self.device)

    @torch.inference_mode()
    def _decode(self, state: GatoState, rows: list[int], new: list[sq.SlotArrays]) -> torch.Tensor:
        """Feed ``new[k]`` to env ``rows[k]``; returns the last new slot's hidden state per row (B', D)."""
        for j, s in zip(rows, new):
            state.context[j].append(s)
        if not self.use_cache:  # recompute every row's whole context
            runs = [sq.SlotArrays.concat(state.context[j]) for j in rows]
            batch = sq.collate(runs).to(self.device)
            hidden = self.model.hidden(batch)  # (B', L, D)
            last = torch.tensor([len(r) - 1 for r in runs], device=self.device)
            return hidden[torch.arange(len(rows), device=self.device), last]
        out = torch.empty(len(rows), self.model.config.width, device=self.device)
        by_len: dict[int, list[int]] = {}
        for k, s in enumerate(new):  # rows whose new slots have the same length decode together
            by_len.setdefault(len(s), []).append(k)
        for ks in by_len.values():
            group = [new[k] for k in ks]
            feats = None
            if state.patch_features is not None and any(len(s.patches) for s in group):
                feats = state.patch_features(np.concatenate([s.patches for s in group]))
            cache_rows = [rows[k] for k in ks]
            if cache_rows == list(range(state.cache.batch_size)):
                cache_rows = None  # every row, in order
            hidden, _ = self.model.decode(self._batch(group, pixels=feats is None), state.cache,
                                          rows=cache_rows, patch_features=feats)
            out[ks] = hidden[:, -1].to(out.dtype)
        return out

    def _logits(self, hidden: torch.Tensor, k: int) -> np.ndarray:
        """Logits of action token ``k`` over its legal ids only, (B', hi - lo) float32."""
        lo, hi = self.ranges[k]
        return self.model.logits(hidden, vocab_range=(lo, hi)).float().cpu().numpy()

    def _sample(self, state: GatoState, rows: list[int], hidden: torch.Tensor, k: int) -> np.ndarray:
        """Action token ``k`` of each row, restricted to its legal range, decoded per ``decoding`` (B',) int64."""
        lo, hi = self.ranges[k]
        logits = self._logits(hidden, k)  # (B', hi - lo)
        mode = self.decoding[self.action_kind]
        if mode == "argmax":
            return lo + logits.argmax(-1)
        if mode == "sample":
            gumbel = np.stack([state.rngs[j].gumbel(size=hi - lo) for j in rows])  # Gumbel-max sampling
            return lo + (logits / self.temperature + gumbel).argmax(-1)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        if mode == "mean":
            return lo + np.rint(p @ np.arange(hi - lo, dtype=np.float64)).astype(np.int64)
        return lo + (p.cumsum(-1) < 0.5).sum(-1).clip(max=hi - lo - 1)  # median

    def _start_episode(self, state: GatoState, j: int) -> None:
        state.context[j] = [self.prompt] if len(self.prompt) else []
        state.steps[j] = []
        state.pending[j] = None
        if state.cache is not None:  # slots [0, p) of every row hold the prompt (`initial_state`)
            state.cache.lengths[j] = len(self.prompt)

    def _make_room(self, state: GatoState, j: int, needed: int) -> sq.SlotArrays | None:
        """Slide env ``j``'s window so that ``needed`` more slots fit (module docstring).

        With ``slide="reprefill"`` the row restarts from the prompt and the kept whole timesteps
        are returned: the caller feeds them before the row's new slots, in the same forward as
        every other row that slid at this step. None when nothing is to be fed again.
        """
        used = _slots_len(state.context[j])
        if used + needed <= self.capacity:
            return None
        state.num_slides += 1
        p = len(self.prompt)
        keep_budget = int(self.slide_keep * (self.capacity - p - needed))
        lengths = np.array([len(s) for s in state.steps[j]], np.int64)
        a, _ = sq.fit_range(lengths, keep_budget, from_end=True)
        kept, dropped = state.steps[j][a:], state.steps[j][:a]
        if self.slide == "drop" and state.cache is not None:
            n = sum(len(s) for s in dropped)
            if state.pending[j] is not None and not kept:  # the last step's final token is not cached
                n -= 1
                state.pending[j] = None
            state.cache.drop(torch.tensor([n if r == j else 0 for r in range(state.cache.batch_size)]), start=p)
            state.steps[j] = kept
            state.context[j] = ([self.prompt] if p else []) + kept
            if state.pending[j] is not None:  # the last kept step's final token is still pending
                state.context[j][-1] = _drop_last_slot(kept[-1])
            return None
        # exact: rebuild the row from the prompt and the kept whole timesteps (fed by the caller)
        self._start_episode(state, j)
        state.steps[j] = kept
        return sq.SlotArrays.concat(kept) if kept else None

    # ---- Policy interface ---------------------------------------------------------------------
    @torch.inference_mode()
    def initial_state(self, num_envs: int, seed: int | None = None) -> GatoState:
        cache = prompt_cache = features = None
        p = len(self.prompt)
        if self.use_cache:
            features = PatchFeatures(self.model)
            cache = self.model.new_cache(num_envs, capacity=self.capacity)
            prompt_cache = self.model.new_cache(1, capacity=max(1, p))
            if p:
                feats = features(self.prompt.patches) if len(self.prompt.patches) else None
                self.model.decode(self._batch([self.prompt], pixels=feats is None), prompt_cache,
                                  patch_features=feats)
                # Every row starts with the prompt, and nothing writes slots [0, p) again: an episode
                # start or a slide only sets the row's length back to p.
                for dst, src in ((cache.keys, prompt_cache.keys), (cache.values, prompt_cache.values)):
                    for layer_dst, layer_src in zip(dst, src):
                        layer_dst[:, :, :p] = layer_src[:, :, :p]
        rngs = [_rng(None if seed is None else seed + i) for i in range(num_envs)]
        state = GatoState(cache, prompt_cache, [[] for _ in range(num_envs)], [[] for _ in range(num_envs)],
                          [None] * num_envs, rngs, patch_features=features)
        for j in range(num_envs):
            self._start_episode(state, j)
        return state

    def reseed(self, state: GatoState, env_indices, seeds) -> GatoState:
        for i, s in zip(env_indices, seeds):
            state.rngs[int(i)] = _rng(s)
        return state

    @torch.inference_mode()
    def act(self, obs: dict[str, Any], state: GatoState, episode_start: np.ndarray, *,
            deterministic: bool = True) -> tuple[np.ndarray, GatoState]:
        n = len(state.context)
        episode_start = np.asarray(episode_start, bool)
        if episode_start.shape != (n,):
            raise ValueError(f"episode_start must have shape ({n},), got {episode_start.shape}")
        for j in np.flatnonzero(episode_start):
            self._start_episode(state, int(j))
        # 1. observation (+ the previous step's pending last action token) for every env
        new = []
        obs_parts = sq.encode_observation_batch(obs, self.obs_spec, task_id=self.task_id)
        if len(obs_parts) != n:
            raise ValueError(f"obs holds {len(obs_parts)} observations for {n} envs")
        for j, s in enumerate(obs_parts):
            room = len(s) + self.num_action_tokens + (state.pending[j] is not None)
            refill = self._make_room(state, j, room)
            if state.pending[j] is not None:
                s = sq.SlotArrays.concat([sq.action_slots(np.array([state.pending[j]]), self.num_action_tokens - 1), s])
                state.pending[j] = None
            new.append(s if refill is None else sq.SlotArrays.concat([refill, s]))
        rows = list(range(n))
        hidden = self._decode(state, rows, new)
        # 2. action tokens one at a time, each in its legal range
        tokens = np.empty((n, self.num_action_tokens), np.int64)
        for k in range(self.num_action_tokens):
            tokens[:, k] = self._sample(state, rows, hidden, k)
            if k + 1 < self.num_action_tokens:
                hidden = self._decode(state, rows, [sq.action_slots(tokens[j, k:k + 1], k) for j in rows])
        for j in rows:  # the last token is fed with the next observation
            state.pending[j] = int(tokens[j, -1])
            step = sq.SlotArrays.concat([obs_parts[j], sq.action_slots(tokens[j])])
            step.timestep_lengths = np.array([len(step)], np.int64)
            state.steps[j].append(step)
        return sq.decode_action(tokens, self.action_space), state


# ---------------------------------------------------------------------------------------------
# Construction from a run directory (make_policy("gato", ...))
# ---------------------------------------------------------------------------------------------


def find_checkpoint_run(path: str) -> bool:
    """Whether ``path`` is a Gato run or checkpoint directory."""
    p = Path(path)
    return p.is_dir() and ((p / "checkpoints" / "latest").exists() or (p / "model.safetensors").exists())


def make_gato_policy(task_id: str, envs: Sequence[Any] | None = None, *, checkpoint: str | None = None,
                     model=None, train_config: dict[str, Any] | None = None, prompt_episodes: Any = None,
                     prompt_slots: int = PROMPT_SLOTS, prompt_from_end: bool = False,
                     observation_space: Any = None, action_space: Any = None, device: str = "cpu",
                     **kw: Any) -> GatoPolicy:
    """A `GatoPolicy` for ``task_id`` from a run directory (or an already loaded model).

    Args:
        task_id: registry id.
        envs: wrapped envs (their spaces are used); None builds one with ``envs.make`` to read them.
        checkpoint: run directory (or checkpoint directory) written by `gato train`.
        model, train_config: an already loaded model and its trainer config instead of ``checkpoint``.
        prompt_episodes: the expert episodes of the prompt, an opened dataset (`open_prompt_dataset`);
            default: the checkpoint's own training dataset of this task.
        prompt_slots: prompt length in slots (capped at half of the model's context).
        prompt_from_end: take the prompt from the end of the demonstration.
        observation_space, action_space: the spaces, instead of ``envs``.
        device: where to load the model.
        **kw: `GatoPolicy` options (context, temperature, use_cache, slide, slide_keep, name).

    Raises:
        MissingPromptError: no prompt dataset (names the `gato generate` command that builds it).
        UnsupportedTaskError: see `GatoPolicy`.
    """
    if model is None:
        if checkpoint is None:
            raise ValueError("make_gato_policy needs checkpoint=RUN (a `gato train` run directory) or model=")
        from gato import checkpoint as ckpt

        loaded = ckpt.load(checkpoint, device=device)
        model, train_config = loaded.model, loaded.train_config
        kw.setdefault("name", f"gato:{Path(checkpoint).name}")
    if observation_space is None or action_space is None:
        if envs:
            observation_space, action_space = envs[0].observation_space, envs[0].action_space
        else:
            import envs as envs_mod

            env = envs_mod.make(task_id)
            observation_space, action_space = env.observation_space, env.action_space
            env.close()
    if prompt_episodes is None:
        path = trained_tasks(train_config).get(task_id)
        if path is None:
            raise MissingPromptError(
                f"no prompt dataset for task {task_id!r}: the checkpoint was not trained on it and no "
                f"--prompt-data was given; build one with `{generate_command(task_id)}` and pass it")
        prompt_episodes = open_prompt_dataset(path, task_id)
    budget = min(prompt_slots, model.config.max_len // 2)
    prompt = load_prompt(prompt_episodes, budget, from_end=prompt_from_end, task_id=task_id)
    return GatoPolicy(model, task_id, observation_space, action_space, prompt, **kw)


def build_by_name(name: str, task_id: str, envs: Sequence[Any] | None = None, *,
                  prompt_dataset: str | None = None, **kw: Any) -> GatoPolicy:
    """The `policies.make_policy` builder: ``"gato"`` (with ``checkpoint=RUN``) or a run directory.

    ``prompt_dataset=PATH`` names the prompt's expert dataset (opened here); other keywords go to
    `make_gato_policy`.
    """
    if name != "gato":
        if not find_checkpoint_run(name):
            raise FileNotFoundError(f"Policy directory {name!r} holds no Gato checkpoint (checkpoints/latest).")
        kw.setdefault("checkpoint", name)
    if prompt_dataset is not None:
        kw["prompt_episodes"] = open_prompt_dataset(prompt_dataset, task_id)
    return make_gato_policy(task_id, envs, **kw)


register_policy("gato", build_by_name, matches=os.path.isdir)
