#!/bin/bash
# Fleet benchmark: N databases (default 200) cloned from one template on the local server.
#  1. `pgshift fleet status GROUP --parallel 16`, ROUNDS times: wall time (median), peak RSS.
#  2. `pgshift fleet up GROUP --parallel 16 --yes` of 5 trivial migrations vs the same work done by
#     16 parallel `pgshift up --target X` processes (xargs -P16), interleaved, ROUNDS times each,
#     every database reset to base in between: medians and their ratio; peak RSS of `fleet up`.
# Usage: scripts/bench_fleet.sh            (N=200 ROUNDS=3 SERVER=postgres://postgres@127.0.0.1:5432;
#        STATUS_ONLY=1 stops after the fleet status rounds)
# Creates databases named pgshift_bench_fleet_<pid>_*, and drops them at the end (also on error).
set -euo pipefail
N=${N:-200}
ROUNDS=${ROUNDS:-3}
SERVER=${SERVER:-postgres://postgres@127.0.0.1:5432}
BIN=$(realpath "${PGSHIFT_BIN:-target/release/pgshift}")
PREFIX=pgshift_bench_fleet_$$
WORK=$(mktemp -d)
export PGSHIFT_DATA_DIR=$WORK/state
export PGOPTIONS="-c client_min_messages=warning"
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 "$SERVER/postgres" "$@"; }
names() { seq -f "${PREFIX}_%03g" 1 "$N"; }

cleanup() {
    names | xargs -P 16 -I{} psql -X -q "$SERVER/postgres" -c "DROP DATABASE IF EXISTS {} WITH (FORCE)" >/dev/null 2>&1 || true
    psql -X -q "$SERVER/postgres" -c "DROP DATABASE IF EXISTS ${PREFIX}_tmpl" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/migrations"
for i in 1 2 3 4 5; do
    echo "CREATE TABLE bench_t$i (id int);" >"$WORK/migrations/000${i}_t$i.up.sql"
    echo "DROP TABLE bench_t$i;" >"$WORK/migrations/000${i}_t$i.down.sql"
done
psql_admin -c "CREATE DATABASE ${PREFIX}_tmpl"
names | xargs -P 10 -I{} psql -X -q -v ON_ERROR_STOP=1 "$SERVER/postgres" -c "CREATE DATABASE {} TEMPLATE ${PREFIX}_tmpl"
{
    for db in $(names); do
        printf '[targets.%s]\nurl = "%s/%s"\ngroups = ["bench"]\nmigrations = "%s"\n' \
            "$db" "$SERVER" "$db" "$WORK/migrations"
    done
} >"$WORK/fleet.toml"
cd "$WORK"
P=("$BIN" --config "$WORK/fleet.toml")

reset_all() {
    names | xargs -P 16 -I{} psql -X -q -v ON_ERROR_STOP=1 "$SERVER/{}" -c \
        "DROP TABLE IF EXISTS bench_t1, bench_t2, bench_t3, bench_t4, bench_t5; DROP TABLE IF EXISTS refinery_schema_history, pgshift_events" >/dev/null
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
rss_mib() { awk '/Maximum resident set size/ {printf "%.1f", $6 / 1024}' "$1"; }

echo "== fleet status over $N databases (--parallel 16), $ROUNDS rounds"
: >"$WORK/status.ms"
for r in $(seq "$ROUNDS"); do
    t0=$(now_ms)
    /usr/bin/time -v -o "$WORK/status.time" "${P[@]}" fleet status bench --parallel 16 >/dev/null || test $? -eq 10
    t1=$(now_ms)
    echo $((t1 - t0)) | tee -a "$WORK/status.ms"
done
echo "fleet status median: $(median <"$WORK/status.ms") ms, peak RSS $(rss_mib "$WORK/status.time") MiB"

if [ -n "${STATUS_ONLY:-}" ]; then exit 0; fi
echo "== fleet up (5 migrations x $N databases, --parallel 16) vs 16 parallel 'pgshift up', $ROUNDS rounds"
: >"$WORK/fleet.ms"
: >"$WORK/procs.ms"
for r in $(seq "$ROUNDS"); do
    reset_all
    t0=$(now_ms)
    /usr/bin/time -v -o "$WORK/up.time" "${P[@]}" fleet up bench --parallel 16 --yes >"$WORK/up.out" 2>"$WORK/up.err"
    t1=$(now_ms)
    grep -q "$N done" "$WORK/up.out" || { cat "$WORK/up.out" "$WORK/up.err"; exit 1; }
    echo "fleet up: $((t1 - t0)) ms (peak RSS $(rss_mib "$WORK/up.time") MiB)"
    echo $((t1 - t0)) >>"$WORK/fleet.ms"
    rss=$(rss_mib "$WORK/up.time")
    echo "$rss" >>"$WORK/fleet.rss"
    reset_all
    t0=$(now_ms)
    names | xargs -P 16 -I{} "${P[@]}" --target {} up >/dev/null 2>&1
    t1=$(now_ms)
    echo "16 x pgshift up: $((t1 - t0)) ms"
    echo $((t1 - t0)) >>"$WORK/procs.ms"
done
f=$(median <"$WORK/fleet.ms")
p=$(median <"$WORK/procs.ms")
echo "fleet up median: $f ms; 16 parallel pgshift up median: $p ms; ratio $(awk -v f="$f" -v p="$p" 'BEGIN {printf "%.2f", f / p}')x; fleet up peak RSS max $(sort -n "$WORK/fleet.rss" | tail -1) MiB"
