#!/usr/bin/env bash
# The gateway on SQLite and on PostgreSQL laid out as ../shared/bench/run.sh lays it out: the gateway
# alone on core 0; wrk (C, one thread), the nginx mock upstream and PostgreSQL's server on core 1's
# side. bench/pg.py runs everything on both cores with a Python load generator and upstream, so
# there PostgreSQL's CPU is taken from the machine the gateway shares; here it is what a database on
# its own host costs the gateway: its requests/s and its own CPU per request on each backend.
#   bash bench/pg_pinned.sh [ROUNDS=3] [SECONDS=8]
# Needs nginx and wrk (../shared/bench/run.sh installs both), PostgreSQL at 127.0.0.1:5432 (database
# test). Loopback only; bounded: ROUNDS x 2 runs of SECONDS each.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-8}
shared=${SHARED_BENCH:-../shared/bench}
py=${PYTHON:-python3}
[ -x .venv/bin/python ] && py=.venv/bin/python
for tool in nginx wrk taskset psql curl; do
  command -v $tool >/dev/null || { echo "pg_pinned: $tool is missing (bash ../shared/bench/run.sh installs nginx and wrk)" >&2; exit 2; }
done
work=$(mktemp -d)
port=18611
mock=18091
schema=kr_pinned_$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || true; done
  pkill -f -- "--config $work/" 2>/dev/null || true  # a gateway left by a run that failed (started in a subshell)
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/nginx"
sed -e "s#__PORT__#$mock#g" -e "s#__RUNDIR__#$work/nginx#g" "$shared/mock_upstream.conf" >"$work/nginx/nginx.conf"
setsid taskset -c 1 nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" >/dev/null 2>&1 </dev/null &
pids+=($!)

config() {  # config DATABASE_URL
  cat <<EOF
database: $1
admin_key: sk-pinned-admin-$$
providers:
  mock: {api: openai, base_url: "http://127.0.0.1:$mock/v1", api_key: sk-mock}
models:
  mock-chat:
    name: Mock Chat
    maker: Bench
    context_length: 131072
    endpoints:
      - {provider: mock, model: gpt-4o-mini, pricing: {input: 0.15, output: 0.60}, capabilities: [streaming, tools]}
EOF
}

cpu_of() {  # cpu_of PID... -> clock ticks (user + system)
  local t=0
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done  # a pid may be gone
  echo $t
}

one() {  # one BACKEND ROUND -> "backend rps gw_us pg_us"
  local backend=$1 db
  if [ "$backend" = postgres ]; then
    psql -h 127.0.0.1 -U postgres -d test -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null 2>&1
    db="postgresql://postgres@127.0.0.1:5432/test?search_path=$schema"
  else
    rm -f "$work"/bench.db*
    db="sqlite:///$work/bench.db"
  fi
  config "$db" >"$work/$backend.yaml"
  setsid taskset -c 0 "$py" -m keeprouter serve --config "$work/$backend.yaml" --host 127.0.0.1 --port $port \
    >"$work/$backend.log" 2>&1 </dev/null &
  local gw=$!
  pids+=($gw)
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.2; done
  local key
  key=$(curl -s -X POST "http://127.0.0.1:$port/api/v1/keys" -H "Authorization: Bearer sk-pinned-admin-$$" \
    -H 'content-type: application/json' -d '{"name":"bench","limit":1000000}' | "$py" -c 'import json,sys; print(json.load(sys.stdin)["key"])')
  export BENCH_HEADERS="Authorization: Bearer $key"
  taskset -c 1 wrk -t1 -c8 -d2s -s "$shared/chat.lua" "http://127.0.0.1:$port" >/dev/null 2>&1  # warm-up
  local pg0 pg1 g0 g1 out n
  pg0=$(cpu_of $(pgrep -x postgres || true))
  g0=$(cpu_of $gw)
  out=$(taskset -c 1 wrk -t1 -c8 -d"${secs}s" -s "$shared/chat.lua" "http://127.0.0.1:$port" 2>&1)
  g1=$(cpu_of $gw)
  pg1=$(cpu_of $(pgrep -x postgres || true))
  kill -- -"$gw" 2>/dev/null || true
  wait "$gw" 2>/dev/null || true
  n=$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')
  if printf '%s\n' "$out" | grep -q "Non-2xx"; then echo "pg_pinned: $backend answered errors" >&2; exit 1; fi
  "$py" -c "import os; t = os.sysconf('SC_CLK_TCK'); n = $n
print('$backend', round(n / $secs), round(($g1 - $g0) / t / n * 1e6), round(($pg1 - $pg0) / t / n * 1e6))"
}

printf '%-9s %8s %22s %26s\n' backend "req/s" "gateway CPU us/req" "all PostgreSQL CPU us/req"
ratios=()
for r in $(seq 1 "$rounds"); do
  read -r _ s_rps s_gw _ < <(one sqlite "$r")
  read -r _ p_rps p_gw p_pg < <(one postgres "$r")
  printf '%-9s %8s %22s %26s\n' sqlite "$s_rps" "$s_gw" - postgres "$p_rps" "$p_gw" "$p_pg"
  ratios+=("$("$py" -c "print(round($p_rps / $s_rps, 2))")")
done
echo "postgres/sqlite requests/s per round: ${ratios[*]} (median $(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(((rounds + 1) / 2))p"))"
