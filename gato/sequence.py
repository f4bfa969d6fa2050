"""Timesteps, episodes and training sequences as slots: the sequence layer in one import.

The layer's jobs live in one module each; this module re-exports their public names so that
callers write ``from gato import sequence as sq`` (docs/spec.md "Sequence layout"):

| module               | job                                                                         |
| -------------------- | --------------------------------------------------------------------------- |
| `gato.slots`         | `SlotArrays`, the numpy container of a run of slots                         |
| `gato.spaces`        | `ObservationSpec`, `ActionSpec`; the action codec `encode_action`,          |
|                      | `decode_action`, `action_token_ranges`                                      |
| `gato.observations`  | `encode_observation` (`_batch`: N envs), `action_slots`, `episode_to_slots` |
|                      | (the layout)                                                                |
| `gato.collate`       | `collate` -> `TokenBatch`; `segments_to_slots`, `text_sequence`,            |
|                      | `image_text_sequence` (vision-language and text)                            |
| `gato.sampler`       | `SamplerConfig`, `SequenceSampler`, `EpisodeList`, `EpisodeSource`          |

Example:
    >>> import numpy as np
    >>> from envs.convention import Episode
    >>> ep = Episode("dmc-toy", {"continuous": np.zeros((2, 1), np.float32)},
    ...              np.array([[1.0], [-1.0]], np.float32), np.zeros(2), np.zeros(2, bool), np.zeros(2, bool))
    >>> s = episode_to_slots(ep)
    >>> s.tokens.tolist()  # obs 0.0 -> 32512, separator, action 1.0 -> 33023; then step 2
    [32512, 34048, 33023, 32512, 34048, 32000]
    >>> s.local_positions.tolist()  # observation index; -1 at the separator; the action's dimension
    [0, -1, 0, 0, -1, 0]
    >>> b = collate([s], length=8)
    >>> b.targets[0].tolist()  # the next slot's token; PAD where there is none
    [34048, 33023, 32512, 34048, 32000, 34049, 34049, 34049]
    >>> b.loss_mask[0].int().tolist()  # only slots whose next slot is an action token
    [0, 1, 0, 0, 1, 0, 0, 0]
"""

from __future__ import annotations

from gato.collate import collate, image_text_sequence, segments_to_slots, text_sequence
from gato.observations import action_slots, encode_observation, encode_observation_batch, episode_to_slots
from gato.sampler import EpisodeList, EpisodeSource, SamplerConfig, SequenceSampler
from gato.slots import LOCAL_POSITIONS, PATCH_DIM, SlotArrays, fit_range
from gato.spaces import ActionSpec, ObservationSpec, action_token_ranges, decode_action, encode_action

__all__ = [
    "LOCAL_POSITIONS", "PATCH_DIM", "ActionSpec", "EpisodeList", "EpisodeSource", "ObservationSpec",
    "SamplerConfig", "SequenceSampler", "SlotArrays", "action_slots", "action_token_ranges", "collate",
    "decode_action", "encode_action", "encode_observation", "encode_observation_batch", "episode_to_slots",
    "fit_range", "image_text_sequence",
    "segments_to_slots", "text_sequence",
]
