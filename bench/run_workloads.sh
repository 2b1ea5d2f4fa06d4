#!/usr/bin/env bash
# The gateway's CPU on the workloads issue 22 names, beside the thin pass-through floor, in one run.
#   bash bench/run_workloads.sh [cc] [long] [small] [ttft] [features] [pg]     (default: all of them)
# cc, long, small and ttft are bench/workloads.py's modes (SQLite); pg runs bench/pg.py when present
# (PostgreSQL at 127.0.0.1:5432, database test). Everything listens on 127.0.0.1; bounded in count.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
[ -x .venv/bin/python ] && py=.venv/bin/python
modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(long small cc ttft features pg)
local_modes=()
run_pg=0
for m in "${modes[@]}"; do
  case "$m" in
    pg) run_pg=1 ;;
    long | small | cc | ttft | features) local_modes+=("$m") ;;
    *) echo "unknown mode: $m (cc long small ttft features pg)" >&2; exit 2 ;;
  esac
done
if [ ${#local_modes[@]} -gt 0 ]; then
  "$py" bench/workloads.py --mode "${local_modes[@]}"
fi
if [ $run_pg = 1 ]; then
  if [ -f bench/pg.py ]; then "$py" bench/pg.py; else echo "# pg: bench/pg.py is not in this checkout"; fi
fi
