"""Expert data: RL experts (`train_expert`), recorded episode datasets (`generate`), and their reader.

| module          | what                                                                          |
| --------------- | ----------------------------------------------------------------------------- |
| `train_expert`  | `gato train-expert`: SB3 SAC/PPO/DQN with rl-zoo settings, resumable, zoo     |
| `generate`      | `gato generate`: HDF5 shards, resumable, `--workers`, `--ray`                 |
| `format`        | the on-disk layout (readable with h5py alone)                                 |
| `filtering`     | windowed expert return and the 80% return filter                              |
| `reader`        | `open_dataset(path) -> EpisodeDataset` (lazy, per-shard, window access)       |
| `info`          | `gato info DATASET`                                                           |
| `zoo/<task>/`   | committed SAC experts (`model.zip`, `expert.json`)                            |
"""
