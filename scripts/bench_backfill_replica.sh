#!/bin/sh
# The backfill benchmark with one streaming replica attached: a throwaway primary (initdb, its own
# port) and a standby made with `pg_basebackup -R` (cluster_name r1), then
# `REPLICA=1 cargo bench --bench backfill` against the primary. The third scenario is then
# `--ignore-replica-lag`: defaults vs it is the replica-lag throttle's cost.
#
#   ROUNDS=5 scripts/bench_backfill_replica.sh        (ROWS=1000000 by default)
#
# Runs the servers as `postgres` when root. Both are stopped and deleted on exit.
set -eu
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
DIR=$(mktemp -d /tmp/pgshift-bench-replica.XXXXXX)
PRIMARY_PORT=${PRIMARY_PORT:-54391}
STANDBY_PORT=${STANDBY_PORT:-54392}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR"; fi
cleanup() {
    as_pg "$BIN/pg_ctl" -D "$DIR/standby" -m fast stop >/dev/null 2>&1 || true
    as_pg "$BIN/pg_ctl" -D "$DIR/primary" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM
as_pg "$BIN/initdb" -D "$DIR/primary" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
as_pg "$BIN/pg_ctl" -D "$DIR/primary" -l "$DIR/primary.log" -w start \
    -o "-p $PRIMARY_PORT -c listen_addresses=127.0.0.1 -k $DIR -c wal_level=replica -c max_wal_senders=5"
as_pg "$BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$DIR/standby" -R -X stream --checkpoint=fast
as_pg "$BIN/pg_ctl" -D "$DIR/standby" -l "$DIR/standby.log" -w start \
    -o "-p $STANDBY_PORT -c listen_addresses=127.0.0.1 -k $DIR -c cluster_name=r1 -c wal_receiver_status_interval=1s"
for _ in $(seq 1 60); do
    state=$(psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -Atc \
        "SELECT state FROM pg_stat_replication WHERE application_name = 'r1'" postgres || true)
    [ "$state" = streaming ] && break
    sleep 0.5
done
echo "replica r1 is ${state:-not streaming}" >&2
TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PRIMARY_PORT/postgres" REPLICA=1 \
    ROUNDS="${ROUNDS:-5}" ROWS="${ROWS:-1000000}" cargo bench --bench backfill
