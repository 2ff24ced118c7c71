#!/usr/bin/env bash
# A/B of two pgshift binaries: `up` of N trivial migrations (as in benches/migrate.rs), each run on
# a fresh database, interleaved A, B, A, B... so machine noise hits both; prints medians and B/A.
#   scripts/bench_ab_migrate.sh OLD_BINARY NEW_BINARY [N=1000] [RUNS=7]
# Server: BENCH_DATABASE_URL, else postgres@127.0.0.1:5432.
set -euo pipefail
a=$1 b=$2 n=${3:-1000} runs=${4:-7}
server=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
db=pgshift_ab_$$
dir=$(mktemp -d)
trap 'rm -rf "$dir"; psql -X -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
mkdir -p "$dir/migrations"
for i in $(seq 1 "$n"); do
  f=$(printf '%04d_t_%d' "$i" "$i")
  echo "CREATE TABLE t_$i (id serial primary key, v text);" >"$dir/migrations/$f.up.sql"
  echo "DROP TABLE t_$i;" >"$dir/migrations/$f.down.sql"
done
run() { # binary -> seconds
  psql -X -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
  local t0 t1
  t0=$(date +%s.%N)
  PGSHIFT_DATA_DIR="$dir/state" "$1" up --database-url "$server/$db" --migrations "$dir/migrations" >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
ta=() tb=()
for _ in $(seq 1 "$runs"); do
  ta+=("$(run "$a")")
  tb+=("$(run "$b")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ma=$(median "${ta[@]}") mb=$(median "${tb[@]}")
echo "A ($a): ${ta[*]} -> median $ma s"
echo "B ($b): ${tb[*]} -> median $mb s"
echo "B/A = $(echo "scale=3; $mb / $ma" | bc)"
