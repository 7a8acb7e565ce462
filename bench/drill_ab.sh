#!/usr/bin/env bash
# Times one stored storm's drill with the code at REV and with the working tree, in turn:
#   bash bench/drill_ab.sh REV STORM [RUNS]
# Both use this checkout's virtualenv, broker, caches and Prism (start them with `suibou infra up`);
# REV's code is put in a temporary git worktree and imported first through PYTHONPATH.
# Prints the wall time of each `suibou drill STORM --no-report` and the alert messages it counted.
set -euo pipefail
rev=${1:?usage: drill_ab.sh REV STORM [RUNS]}
storm=${2:?usage: drill_ab.sh REV STORM [RUNS]}
runs=${3:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
old=$(mktemp -d)
trap 'git -C "$here" worktree remove --force "$old" >/dev/null 2>&1 || true' EXIT
git -C "$here" worktree add -q --detach "$old" "$rev"
home=${SUIBOU_HOME:-$here/.suibou}
for run in $(seq "$runs"); do
  for side in "$rev" working-tree; do
    dir=$here
    [ "$side" = "$rev" ] && dir=$old
    log=$(mktemp)
    start=$(date +%s.%N)
    (cd "$dir" && PYTHONPATH=$dir SUIBOU_HOME=$home "$here/.venv/bin/python" -m suibou drill "$storm" --no-report \
      --drill-id "ab-$run-$(date +%s%N)" >"$log" 2>&1)
    end=$(date +%s.%N)
    printf '%s run %s: %.1f s, %s\n' "$side" "$run" "$(echo "$end - $start" | bc)" \
      "$(grep -o '[0-9]* alert messages' "$log" | head -1)"
    rm -f "$log"
  done
done
