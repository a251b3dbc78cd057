#!/usr/bin/env bash
# Designated TIMESTAMP vs TIMESTAMP_NS (docs/benchmarks.md): the same 10M rows
# COPYed into a table of each, then the same queries, median of 5 runs after a
# warm-up. Usage: scripts/bench/designated_ns.sh <tidemark binary> <work dir>
set -euo pipefail
BIN=$(realpath "$1")
HERE=$(dirname "$(realpath "$0")")
mkdir -p "$2" && cd "$2"
[ -f rows.csv ] || python3 "$HERE/designated_ns_rows.py" 10000000 > rows.csv
rm -rf root && mkdir root
"$BIN" serve --root "$PWD/root" --pg-listen 127.0.0.1:54731 --http-listen 127.0.0.1:54732 --ilp-listen "" > server.log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
sleep 3
export PGPASSWORD=quest
P="psql -h 127.0.0.1 -p 54731 -U admin -d tidemark -X -q -At"
for t in us ns; do
  ty=TIMESTAMP; [ $t = ns ] && ty=TIMESTAMP_NS
  $P -c "CREATE TABLE trades_$t (ts $ty, sym SYMBOL, price DOUBLE) TIMESTAMP(ts) PARTITION BY DAY"
  s=$(date +%s.%N)
  $P -c "\\copy trades_$t FROM '$PWD/rows.csv' WITH (FORMAT csv)"
  e=$(date +%s.%N)
  echo "copy $t: $(echo "$e - $s" | bc) s, $(echo "10000000 / ($e - $s)" | bc) rows/s"
done
$P -c "CHECKPOINT" >/dev/null 2>&1 || true
q() {
  local t=$1 sql=$2
  local times=()
  for i in 1 2 3 4 5 6; do
    ms=$($P -c "\\timing on" -c "${sql//@T/trades_$t}" | grep -o "Time: [0-9.]*" | awk '{print $2}')
    times+=("$ms")
  done
  printf '%s\n' "${times[@]:1}" | sort -n | sed -n 3p
}
for sql in \
  "SELECT count(*) FROM @T WHERE ts IN '2026-01-03'" \
  "SELECT count(*), max(price) FROM @T WHERE ts >= '2026-01-05T10:00:00' AND ts < '2026-01-05T11:00:00'" \
  "SELECT ts, avg(price) FROM @T SAMPLE BY 1h" \
  "SELECT sym, price FROM @T LATEST ON ts PARTITION BY sym" \
  "SELECT count(*) FROM @T WHERE price > 150"; do
  echo "$sql | us $(q us "$sql") ms | ns $(q ns "$sql") ms"
done
grep VmHWM /proc/$PID/status
