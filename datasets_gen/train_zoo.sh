#!/usr/bin/env bash
# Trains the committed DMC SAC zoo, one task at a time, niced, one torch thread (shared 2-core machine).
# Rerunning resumes every unfinished run from its checkpoint (a finished run is only re-evaluated).
# Budgets and measured returns: README "Expert data".
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
GATO="${GATO:-.venv/bin/gato}"
TASKS="dmc-cartpole-balance:15000 dmc-point-mass-easy:20000 dmc-ball-in-cup-catch:40000 dmc-walker-stand:40000
dmc-cartpole-swingup:40000 dmc-finger-spin:40000 dmc-reacher-easy:40000"
for item in $TASKS; do
  task="${item%%:*}"; steps="${item##*:}"
  nice -n 10 "$GATO" train-expert --task "$task" --steps "$steps" --out "runs/experts/$task" --zoo --no-progress \
    || echo "FAILED $task"
done
