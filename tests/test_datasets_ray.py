"""`gato generate --ray`: shards as Ray tasks on a local 2-CPU Ray with a small object store."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from datasets_gen.generate import Config, generate  # noqa: E402
from datasets_gen.reader import open_dataset  # noqa: E402

pytestmark = pytest.mark.slow  # starting Ray takes ~20-40 s on the shared 2-core machine


def test_ray_shards_equal_in_process(tmp_path):
    base = dict(task="babyai-goto-red-ball", policy="random", episodes=4, shard_size=2, seed=11)
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024 * 1024, log_to_driver=False)
    try:
        generate(Config(**base, out=str(tmp_path / "ray"), ray=True), "test")
    finally:
        ray.shutdown()
    generate(Config(**base, out=str(tmp_path / "local")), "test")
    a, b = open_dataset(str(tmp_path / "ray")), open_dataset(str(tmp_path / "local"))
    assert len(a) == len(b) == 4
    for i in range(4):
        ea, eb = a.episode(i), b.episode(i)
        np.testing.assert_array_equal(ea.actions, eb.actions)
        np.testing.assert_array_equal(ea.observations["discrete"], eb.observations["discrete"])
