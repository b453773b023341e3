#!/usr/bin/env bash
# make demo: the local stack, a simulated fleet, the whole pipeline, a report.
#
# 1. `etl stack up`: PostgreSQL, Kafka, S3 (moto) and MLflow on loopback;
# 2. one simulated day of the demo fleet (conf/demo.yaml), announced on Kafka;
# 3. `etl run`: discover, preprocess, train (the demo config trains after half a
#    machine-day per type), infer, export to the results PostgreSQL;
# 4. the next hour arrives: another `etl run`, the recurring tick;
# 5. `etl report`: a summary here and reports/<pipeline>/index.html.
# Rerunning it is safe: the same files are recognised and nothing is written twice.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-conf/demo.yaml}
etl=.venv/bin/etl
days=${DEMO_DAYS:-1}
started=$(date +%s)

step() { echo; echo "== $*"; }

step "etl stack up"
"$etl" --config "$config" stack up
step "etl simulate: ${days} day(s) of the demo fleet"
"$etl" --config "$config" simulate --days "$days" --seed 7 >/dev/null
step "etl run: discover, preprocess, train, infer, export"
"$etl" --config "$config" run >/dev/null
start_date=$(.venv/bin/python -c "
import sys; from datetime import datetime, time, timedelta
from etl.config import load_config
day = load_config(sys.argv[1]).pipeline.start_date
print((datetime.combine(day, time()) + timedelta(days=float(sys.argv[2]))).isoformat())
" "$config" "$days")
step "etl simulate: the next hour, from ${start_date}"
"$etl" --config "$config" simulate --days 0.0416667 --seed 8 --start "$start_date" >/dev/null
step "etl run: the recurring tick"
"$etl" --config "$config" run >/dev/null
step "etl status"
"$etl" --config "$config" status
step "etl report"
"$etl" --config "$config" report
echo
echo "demo: done in $(( $(date +%s) - started )) s"
