#!/usr/bin/env bash
# The gateway's CPU on the workloads issue 22 names, beside the thin pass-through floor, in one run.
#   bash bench/run_workloads.sh [cc] [long] [small] [ttft] [features] [pg] [pgpinned]   (default: all)
# cc, long, small and ttft are bench/workloads.py's modes (SQLite); pg runs bench/pg.py when present
# (PostgreSQL at 127.0.0.1:5432, database test); pgpinned runs bench/pg_pinned.sh (the same comparison
# with the gateway alone on core 0, as ../shared/bench lays it out). Loopback only; bounded in count.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
[ -x .venv/bin/python ] && py=.venv/bin/python
modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(long small cc ttft features pg pgpinned)
local_modes=()
run_pg=0
run_pinned=0
for m in "${modes[@]}"; do
  case "$m" in
    pg) run_pg=1 ;;
    pgpinned) run_pinned=1 ;;
    long | small | cc | ttft | features) local_modes+=("$m") ;;
    *) echo "unknown mode: $m (cc long small ttft features pg pgpinned)" >&2; exit 2 ;;
  esac
done
if [ ${#local_modes[@]} -gt 0 ]; then
  "$py" bench/workloads.py --mode "${local_modes[@]}"
fi
if [ $run_pg = 1 ]; then
  if [ -f bench/pg.py ]; then "$py" bench/pg.py; else echo "# pg: bench/pg.py is not in this checkout"; fi
fi
if [ $run_pinned = 1 ]; then bash bench/pg_pinned.sh; fi
