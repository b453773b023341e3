#!/usr/bin/env bash
# make demo: the local stack, then the whole pipeline on a simulated fleet.
# Steps that a later issue builds still answer "not implemented yet" (exit 3);
# the demo says so and goes on, and fails on any other error.
set -uo pipefail
cd "$(dirname "$0")/.."
config=${1:-conf/demo.yaml}
etl=.venv/bin/etl

"$etl" --config "$config" stack up || exit 1
missing=()
for step in simulate discover preprocess train infer export; do
  echo "== etl $step"
  args=()
  [ "$step" = simulate ] && args=(--days "${DEMO_DAYS:-1}" --seed 7)
  "$etl" --config "$config" "$step" "${args[@]}"
  rc=$?
  if [ "$rc" = 3 ]; then missing+=("$step"); continue; fi
  [ "$rc" = 0 ] || { echo "demo: etl $step failed (exit $rc)" >&2; exit "$rc"; }
done
echo "== etl status"
"$etl" --config "$config" status
if [ ${#missing[@]} -gt 0 ]; then
  echo "demo: not built yet: ${missing[*]} (see the open issues)"
fi
