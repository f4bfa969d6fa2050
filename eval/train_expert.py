"""`gato train-expert`: train an RL expert and record its measured return as a reference.

    gato train-expert --task dmc-cartpole-balance --env-steps 30000 --out runs/experts/dmc-cartpole-balance

The training (algorithms, hyperparameters, resuming, the ``--out`` layout) is
`datasets_gen.train_expert`; this is its command line, in the top layer because it also writes
the expert's measured return into ``eval/references.json`` (`eval.references.record_trained_expert`,
unless ``--no-update-references``), which the data layer may not import.
"""

from __future__ import annotations

import shlex
import sys

from datasets_gen.train_expert import Config, train
from envs.commandline import parse
from eval.references import record_trained_expert


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse(Config, argv, "gato train-expert")
    expert = train(cfg, "gato train-expert " + shlex.join(argv))
    if cfg.update_references:
        key = record_trained_expert(cfg.task, expert)
        print(f"eval/references.json: {cfg.task}.{key} = {expert['return_mean']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
