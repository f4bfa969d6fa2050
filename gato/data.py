"""Training data: a weighted mixture of batch sources, collated into `TokenBatch`es.

A **batch source** is anything with

- ``domain: str``, the name its losses are logged under (``"atari"``, ``"vision-language"``...);
- ``sample(batch_size, rng: np.random.Generator) -> list[gato.slots.SlotArrays]``, that many
  sequences of at most ``sequence_length`` slots each (unpadded), drawn with ``rng`` only.

Episode datasets become one `EpisodeDatasetSource` per domain (all tasks of that domain, each task
equally likely, cut into sequences by `gato.sequence.SequenceSampler`). Other sources (vision-
language, text) plug in through a ``module:function`` data spec: ``gato train --data
my.module:make_source`` calls ``make_source(sequence_length=L)`` and takes the `BatchSource` (or
list of them) it returns. The built-in ``gato.data:synthetic_source`` is a learnable toy for
smoke tests and benchmarks.

`Mixture` draws each sequence's source with the per-domain weights (equal by default) and collates
the batch. The batch of step s comes from a generator seeded with ``(seed, rank, s)``, so a resumed
run sees the same data with no saved data state, and DataLoader workers (`step_batches`) can build
batches ahead of the training loop.
"""

from __future__ import annotations

import importlib
import os
from collections import defaultdict
from typing import Any, Iterator, Protocol, Sequence

import numpy as np

from envs import domain_of
from envs.convention import Episode
from gato import sequence as seq
from gato.batch import TokenBatch


class BatchSource(Protocol):
    """A stream of training sequences of one domain (see the module docstring)."""

    domain: str

    def sample(self, batch_size: int, rng: np.random.Generator) -> list[seq.SlotArrays]: ...


class EpisodeDatasetSource:
    """The episode datasets of one domain, cut into L-slot sequences with prompt conditioning.

    The targets are the action tokens; text inside observations (a BabyAI mission) is a target
    too only with ``observation_text_targets``.
    """

    def __init__(self, domain: str, datasets: Sequence[seq.EpisodeSource], sequence_length: int,
                 prompt_prob: float = 0.25, observation_text_targets: bool = False,
                 episode_start_prob: float = 0.0):
        self.domain = domain
        self.observation_text_targets = observation_text_targets
        self.sampler = seq.SequenceSampler(list(datasets), seq.SamplerConfig(
            sequence_length=sequence_length, prompt_prob=prompt_prob, episode_start_prob=episode_start_prob))

    def sample(self, batch_size: int, rng: np.random.Generator) -> list[seq.SlotArrays]:
        # SequenceSampler draws from its public `rng`; point it at the step's generator so that
        # the batch depends on (seed, step) only.
        self.sampler.rng = rng
        out = [self.sampler.sample() for _ in range(batch_size)]
        if not self.observation_text_targets:  # only the actions are learned
            for s in out:
                s.is_target = s.is_target & s.is_action
        return out


class Mixture:
    """Draws batches from several sources with per-domain weights.

    The batch of a given step is a pure function of ``(seed, step)``: its generator is seeded
    with both. Resuming needs no data state, and worker processes can build batches ahead
    (`step_batches`) without changing them.

    Args:
        sources: one or more batch sources; their domains must be distinct.
        sequence_length: L, the padded length of every batch.
        domain_weights: relative weight per domain; a domain not named gets 1.0 (equal shares).
        seed: an int or a sequence such as ``(seed, rank)``.
    """

    def __init__(self, sources: Sequence[BatchSource], sequence_length: int,
                 domain_weights: dict[str, float] | None = None, seed: int | Sequence[int] = 0):
        domains = [s.domain for s in sources]
        if not sources:
            raise ValueError("no data sources: pass at least one --data DATASET")
        if len(set(domains)) != len(domains):
            raise ValueError(f"two sources share a domain in {domains}; merge them into one source")
        weights = dict(domain_weights or {})
        unknown = sorted(set(weights) - set(domains))
        if unknown:
            raise ValueError(f"--domain-weights names {unknown}, which no --data source provides "
                             f"(domains: {sorted(domains)})")
        w = np.array([float(weights.get(d, 1.0)) for d in domains])
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"domain weights must be >= 0 and not all 0, got {dict(zip(domains, w))}")
        self.sources = list(sources)
        self.probabilities = w / w.sum()
        self.sequence_length = sequence_length
        self.seed = [seed] if isinstance(seed, int) else list(seed)
        self.next_step = 0  # for `next_batch`

    @property
    def domains(self) -> list[str]:
        return [s.domain for s in self.sources]

    def batch(self, step: int, batch_size: int) -> TokenBatch:
        """The batch of ``step``: each source's count is multinomial in its domain weight."""
        rng = np.random.default_rng([*self.seed, step])
        counts = rng.multinomial(batch_size, self.probabilities)
        sequences, domains = [], []
        for source, n in zip(self.sources, counts):
            if n:
                drawn = source.sample(int(n), rng)
                sequences += drawn
                domains += [source.domain] * len(drawn)
        return seq.collate(sequences, self.sequence_length, domains)


    def next_batch(self, batch_size: int) -> TokenBatch:
        """The batch of the next step (``next_step``, counting from 0), for loops without a step."""
        self.next_step += 1
        return self.batch(self.next_step - 1, batch_size)


class _StepBatches:
    """Map-style dataset: item i is the batch of step ``start + i`` (for DataLoader workers)."""

    def __init__(self, mixture: Mixture, batch_size: int, start: int, stop: int):
        self.mixture, self.batch_size, self.start, self.stop = mixture, batch_size, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> TokenBatch:
        return self.mixture.batch(self.start + i, self.batch_size)


def step_batches(mixture: Mixture, batch_size: int, start: int, stop: int, workers: int = 0) -> Iterator[TokenBatch]:
    """The batches of steps ``[start, stop)`` in order, built by ``workers`` processes ahead of use."""
    if workers == 0:
        return (mixture.batch(s, batch_size) for s in range(start, stop))
    from torch.utils.data import DataLoader

    return iter(DataLoader(_StepBatches(mixture, batch_size, start, stop), batch_size=None,
                           shuffle=False, num_workers=workers, prefetch_factor=4))


def open_datasets(paths: Sequence[str], *, verify: str = "quick", skip_bad_shards: bool = False) -> list[Any]:
    """Open episode datasets with `datasets_gen.reader.open_dataset`; errors name the bad path.

    ``verify`` and ``skip_bad_shards`` go to `open_dataset`: each dataset's shards are checked
    before training (quickly by default) and a bad one stops the run unless skipped.
    """
    if not paths:
        return []
    try:
        from datasets_gen.reader import open_dataset
    except ImportError as e:
        raise RuntimeError(f"cannot read episode datasets {list(paths)}: datasets_gen.reader is "
                           f"not available ({e})") from e
    out = []
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"dataset {path!r} does not exist (build it with `gato generate`)")
        try:
            ds = open_dataset(path, verify=verify, skip_bad_shards=skip_bad_shards)
        except Exception as e:
            raise ValueError(f"dataset {path!r} is unreadable: {type(e).__name__}: {e}") from e
        if len(ds) == 0 or not any(ds.episode_length(i) for i in range(len(ds))):
            raise ValueError(f"dataset {path!r} holds no timesteps (0 usable episodes)")
        out.append(ds)
    return out


def build_sources(specs: Sequence[str], sequence_length: int, prompt_prob: float = 0.25,
                  observation_text_targets: bool = False, *, verify: str = "quick",
                  skip_bad_shards: bool = False, episode_start_prob: float = 0.0) -> list[BatchSource]:
    """Turn ``--data`` specs into batch sources (``observation_text_targets``: see `EpisodeDatasetSource`).

    A spec is an episode dataset path, or ``module:function`` naming a source factory called
    as ``function(sequence_length=L)`` that returns a `BatchSource` or a list of them. Episode
    datasets are grouped into one source per domain.
    """
    sources: list[BatchSource] = []
    paths = []
    for spec in specs:
        if ":" in spec and not os.path.exists(spec):
            module, _, func = spec.partition(":")
            try:
                factory = getattr(importlib.import_module(module), func)
            except (ImportError, AttributeError) as e:
                raise ValueError(f"data spec {spec!r}: cannot import {func!r} from {module!r} ({e})") from e
            made = factory(sequence_length=sequence_length)
            sources += list(made) if isinstance(made, (list, tuple)) else [made]
        else:
            paths.append(spec)
    by_domain: dict[str, list[Any]] = defaultdict(list)
    for ds in open_datasets(paths, verify=verify, skip_bad_shards=skip_bad_shards):
        by_domain[domain_of(ds.task_id)].append(ds)
    sources += [EpisodeDatasetSource(d, dss, sequence_length, prompt_prob, observation_text_targets,
                                     episode_start_prob) for d, dss in sorted(by_domain.items())]
    return sources


# ---------------------------------------------------------------------------------------------
# A learnable toy source (smoke tests, benchmarks, the distributed test)
# ---------------------------------------------------------------------------------------------


def synthetic_episodes(task_id: str, episodes: int = 8, steps: int = 12, seed: int = 0) -> list[Episode]:
    """Toy episodes whose action is a function of the observation.

    ``synthetic-copy``: 4 continuous observations, the action copies the first two (Box(2)).
    ``synthetic-pixels``: a 16x32 image, the action is 1 if the right patch is brighter (Discrete).
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(episodes):
        if task_id == "synthetic-copy":
            obs = {"continuous": rng.uniform(-1, 1, (steps, 4)).astype(np.float32)}
            actions = obs["continuous"][:, :2].copy()
        elif task_id == "synthetic-pixels":
            image = rng.integers(0, 256, (steps, 16, 32, 3), dtype=np.uint8)
            obs = {"image": image, "discrete": rng.integers(0, 4, (steps, 1))}
            actions = (image[:, :, 16:].mean((1, 2, 3)) > image[:, :, :16].mean((1, 2, 3))).astype(np.int64)
        else:
            raise ValueError(f"unknown synthetic task {task_id!r}; use synthetic-copy or synthetic-pixels")
        out.append(Episode(task_id, obs, actions, np.zeros(steps, np.float32),
                           np.zeros(steps, bool), np.zeros(steps, bool)))
    return out


def synthetic_source(sequence_length: int, pixels: bool = True) -> list[BatchSource]:
    """Two toy domains, ``synthetic`` (continuous copy task) and ``synthetic_pixels`` (images)."""
    copy = EpisodeDatasetSource("synthetic", [seq.EpisodeList(synthetic_episodes("synthetic-copy"))],
                                sequence_length)
    if not pixels:
        return [copy]
    px = EpisodeDatasetSource("synthetic_pixels",
                              [seq.EpisodeList(synthetic_episodes("synthetic-pixels", seed=1))],
                              sequence_length)
    return [copy, px]
