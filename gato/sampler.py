"""Training sequences: L slots cut at timestep boundaries from episodes of several tasks.

`SequenceSampler` draws them (with prompt conditioning) and collates `TokenBatch`es;
`EpisodeSource` is what it reads (`datasets_gen.reader.EpisodeDataset`, or `EpisodeList` in memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from envs import convention as conv
from envs import domain_of
from gato.collate import collate
from gato.observations import episode_to_slots
from gato.slots import SlotArrays


class EpisodeSource(Protocol):
    """The episodes of one task; `datasets_gen.reader.EpisodeDataset` and `EpisodeList` fit it."""

    task_id: str

    def __len__(self) -> int: ...
    def episode_length(self, i: int) -> int: ...
    def window(self, i: int, start: int, stop: int) -> conv.Episode: ...


class EpisodeList:
    """In-memory episodes of one task as an `EpisodeSource`."""

    def __init__(self, episodes: Sequence[conv.Episode]):
        if not episodes:
            raise ValueError("EpisodeList needs at least one episode")
        tasks = {e.task_id for e in episodes}
        if len(tasks) != 1:
            raise ValueError(f"EpisodeList holds one task; got {sorted(tasks)} (make one list per task)")
        self.episodes = list(episodes)
        self.task_id = episodes[0].task_id

    def __len__(self) -> int:
        return len(self.episodes)

    def episode_length(self, i: int) -> int:
        return len(self.episodes[i])

    def window(self, i: int, start: int, stop: int) -> conv.Episode:
        return self.episodes[i].slice(start, stop)


@dataclass
class SamplerConfig:
    """How `SequenceSampler` cuts training sequences."""

    sequence_length: int = 1024
    """L, slots per training sequence (padded with PAD)."""
    prompt_prob: float = 0.25
    """Fraction of sequences prefixed with a prompt from another episode of the same task."""
    prompt_end_prob: float = 0.5
    """Of the prompts, the fraction taken from the end of their episode (the rest start at a uniformly drawn timestep)."""
    prompt_fraction: float = 0.5
    """At most this fraction of L goes to the prompt [project choice; the paper does not say]."""
    episode_start_prob: float = 0.0
    """Fraction of episode windows that start at the episode's first timestep; the rest start at a
    uniformly drawn one [project choice; 0 is the paper's uniform cut]. The closed-loop policy
    always acts from an episode's start, where an expert's actions are largest (an arm approaching
    its goal, a pole being caught), while uniform windows of a 500-step Meta-World episode fall
    mostly into the part where the arm holds still at the goal."""
    seed: int = 0
    """Seed of the sampler's random generator."""


class SequenceSampler:
    """Draws L-slot training sequences from episodes of several tasks and collates `TokenBatch`es.

    Each sequence: pick a task (by ``weights``, default uniform), an episode (proportional to its
    length, so every timestep is equally likely), and a start timestep uniformly; take whole
    timesteps from there until L is filled; if the episode ends first, extend the window back
    in time so that no slots are wasted when the episode is long enough [project choice]. With
    probability ``prompt_prob`` the sequence starts with a prompt: whole timesteps of another
    episode of the same task (the same one if the task has a single episode), from its end
    with probability ``prompt_end_prob``, else from a uniformly drawn timestep; the prompt takes
    at most ``prompt_fraction * L`` slots and the episode window fills the rest. Only the
    timesteps in a window are read and tokenized.

    Example:
        >>> import numpy as np
        >>> from envs.convention import Episode
        >>> ep = Episode("metaworld-reach", {"continuous": np.zeros((50, 39), np.float32)},
        ...              np.zeros((50, 4), np.float32), np.zeros(50), np.zeros(50, bool), np.zeros(50, bool))
        >>> sampler = SequenceSampler([[ep]], SamplerConfig(sequence_length=128, seed=0))
        >>> sampler.batch(2).tokens.shape
        torch.Size([2, 128])
    """

    def __init__(
        self,
        sources: Sequence[EpisodeSource | Sequence[conv.Episode]],
        config: SamplerConfig = SamplerConfig(),
        weights: Sequence[float] | None = None,
    ):
        if not sources:
            raise ValueError("SequenceSampler needs at least one source of episodes")
        self.config = config
        self.sources: list[EpisodeSource] = [
            s if hasattr(s, "window") else EpisodeList(s) for s in sources  # type: ignore[arg-type]
        ]
        self.rng = np.random.default_rng(config.seed)
        w = np.ones(len(self.sources)) if weights is None else np.asarray(weights, np.float64)
        if len(w) != len(self.sources) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be {len(self.sources)} non-negative numbers, not all 0; got {weights}")
        self.weights = w / w.sum()
        self._lengths = [np.array([s.episode_length(i) for i in range(len(s))], np.int64) for s in self.sources]
        for s, lens in zip(self.sources, self._lengths):
            if lens.sum() == 0:
                raise ValueError(f"source {s.task_id!r} has no timesteps")
        self._step_slots: dict[int, int] = {}  # per source: slots of a timestep, text excluded

    def _tokenize(self, si: int, ei: int, start: int, stop: int) -> SlotArrays:
        slots = episode_to_slots(self.sources[si].window(ei, start, stop))
        if si not in self._step_slots and slots.num_timesteps:
            n_text = np.count_nonzero(slots.is_target & ~slots.is_action)
            self._step_slots[si] = max(1, (len(slots) - int(n_text)) // slots.num_timesteps)
        return slots

    def _window(
        self, si: int, ei: int, start: int, budget: int, *, from_end: bool = False, required: bool = True
    ) -> SlotArrays:
        """Whole timesteps of episode ``ei`` filling at most ``budget`` slots.

        Forward from ``start``; extended backwards if the episode ends first. With ``from_end``,
        the last timesteps of the episode. If not even one timestep fits, a ``required`` window
        is an error and an optional one (a prompt) comes back empty.
        """
        t = int(self._lengths[si][ei])
        if si not in self._step_slots:  # learn the per-timestep size from one timestep
            self._tokenize(si, ei, 0, 1)
        k = max(1, budget // self._step_slots[si])  # upper bound on the timesteps that fit (text adds)
        if from_end:
            fwd = self._tokenize(si, ei, max(0, t - k), t).fit(budget, from_end=True)
        else:
            fwd = self._tokenize(si, ei, start, min(t, start + k)).fit(budget)
        if fwd.num_timesteps == 0:
            if not required:
                return fwd
            raise ValueError(
                f"one timestep of {self.sources[si].task_id!r} needs more than {budget} slots; "
                f"raise sequence_length"
            )
        left = budget - len(fwd)
        if not from_end and start > 0 and start + fwd.num_timesteps == t and left >= self._step_slots[si]:
            kb = min(start, left // self._step_slots[si])
            back = self._tokenize(si, ei, start - kb, start).fit(left, from_end=True)
            return SlotArrays.concat([back, fwd])
        return fwd

    def sample(self) -> SlotArrays:
        """One training sequence (at most L slots, unpadded; `collate` pads)."""
        cfg, rng = self.config, self.rng
        si = int(rng.choice(len(self.sources), p=self.weights))
        lens = self._lengths[si]
        ei = int(rng.choice(len(lens), p=lens / lens.sum()))
        parts = []
        budget = cfg.sequence_length
        if rng.random() < cfg.prompt_prob:
            others = np.flatnonzero(lens > 0)
            if len(others) > 1:
                others = others[others != ei]
            pi = int(rng.choice(others))
            prompt_budget = int(cfg.prompt_fraction * cfg.sequence_length)
            if rng.random() < cfg.prompt_end_prob:
                prompt = self._window(si, pi, 0, prompt_budget, from_end=True, required=False)
            else:
                start = int(rng.integers(lens[pi]))
                prompt = self._window(si, pi, start, prompt_budget, required=False)
            parts.append(prompt)
            budget -= len(prompt)
        start = 0 if rng.random() < cfg.episode_start_prob else int(rng.integers(lens[ei]))
        parts.append(self._window(si, ei, start, budget))
        out = SlotArrays.concat(parts)
        out.domain = domain_of(self.sources[si].task_id)
        return out

    def batch(self, batch_size: int):
        """``batch_size`` sequences collated into a `TokenBatch` of shape (B, L)."""
        return collate([self.sample() for _ in range(batch_size)], self.config.sequence_length)
