#!/usr/bin/env bash
# Proof under load: an app (pgbench at a fixed rate, reads + writes on pgbench_accounts) keeps
# running while a long idle-in-transaction session holds a lock on that table and a migration
# ALTERs it. Run once with a plain `psql -f` of the ALTER and once with `pgshift up` (defaults:
# lock_timeout 500ms, 10 attempts, jittered backoff), and once more with --lock-timeout 200ms. Reports app latency during each migration
# (max, p99), failed app transactions, and the attempts pgshift needed.
#
# Scratch database on 127.0.0.1:5432 only (dropped and recreated), loopback traffic only, bounded:
# about 2 x DURATION seconds plus setup.
#
#   scripts/bench_load.sh            # defaults below
#   RATE=300 DURATION=20 scripts/bench_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=127.0.0.1 PORT=5432 USER_=postgres
DB=${DB:-pgshift_bench_safety}
RATE=${RATE:-200}            # app transactions per second (each: one SELECT + one UPDATE)
CLIENTS=${CLIENTS:-8}
DURATION=${DURATION:-20}     # seconds of app traffic per run
SCALE=${SCALE:-5}            # pgbench scale: 500k accounts
BLOCK_AT=${BLOCK_AT:-3}      # the idle transaction starts at this second...
BLOCK_FOR=${BLOCK_FOR:-6}    # ...and ends this many seconds later
MIGRATE_AT=${MIGRATE_AT:-4}  # the migration starts at this second
PGSHIFT=${PGSHIFT:-target/release/pgshift}

URL="postgres://$USER_@$HOST:$PORT/$DB"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PORT" -U "$USER_")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

[ -x "$PGSHIFT" ] || cargo build --release --bin pgshift >&2

echo "setting up $DB (scale $SCALE)..." >&2
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
pgbench -q -i -s "$SCALE" -h "$HOST" -p "$PORT" -U "$USER_" "$DB" >/dev/null 2>&1

cat > "$WORK/app.sql" <<'SQL'
\set aid random(1, 100000 * :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
SQL
mkdir -p "$WORK/migrations"
ALTER="ALTER TABLE pgbench_accounts ADD COLUMN note text;"
printf -- '-- the migration under test\n%s\n' "$ALTER" > "$WORK/migrations/0001_add_note.up.sql"
printf 'ALTER TABLE pgbench_accounts DROP COLUMN note;\n' > "$WORK/migrations/0001_add_note.down.sql"

now_ms() { date +%s%3N; }

# One run: $1 = label, $2... = the migration command.
run() {
  local label=$1; shift
  local logp="$WORK/pgbench_log_$label"
  rm -f "$logp".*
  pgbench -n -M simple -c "$CLIENTS" -j 2 -R "$RATE" -T "$DURATION" -f "$WORK/app.sql" \
    -l --log-prefix="$logp" -h "$HOST" -p "$PORT" -U "$USER_" "$DB" > "$WORK/$label.summary" 2>&1 &
  local bench=$!
  sleep "$BLOCK_AT"
  # The blocker: touches the table, then sits idle in transaction for BLOCK_FOR seconds.
  ( printf 'BEGIN;\nSELECT abalance FROM pgbench_accounts WHERE aid = 1;\n'; sleep "$BLOCK_FOR"; printf 'COMMIT;\n' ) \
    | PGAPPNAME="bench blocker" "${PSQL[@]}" -d "$DB" >/dev/null &
  local blocker=$!
  sleep $((MIGRATE_AT - BLOCK_AT))
  local t0; t0=$(now_ms)
  set +e
  "$@" > "$WORK/$label.out" 2> "$WORK/$label.err"
  local rc=$?
  set -e
  local t1; t1=$(now_ms)
  wait "$blocker"
  wait "$bench" || true
  python3 - "$label" "$t0" "$t1" "$rc" "$WORK/$label.summary" "$WORK/$label.out" "$logp" <<'PY'
import glob, json, sys
label, t0, t1, rc, summary, out, prefix = sys.argv[1:]
t0, t1 = int(t0), int(t1)
lat, failed = [], 0
for path in glob.glob(prefix + ".*"):
    for line in open(path):
        f = line.split()
        # client_id transaction_no time script_no time_epoch time_us [schedule_lag]
        end_ms = int(f[4]) * 1000 + int(f[5]) // 1000
        if f[2] in ("failed", "skipped"):
            failed += 1
            continue
        ms = int(f[2]) / 1000.0
        start_ms = end_ms - ms
        # Transactions that overlapped the migration window.
        if end_ms >= t0 and start_ms <= t1:
            lat.append(ms)
lat.sort()
text = open(summary).read()
aborted = text.count("aborted")
for l in text.splitlines():
    if l.startswith("number of failed transactions"):
        failed += int(l.split(":")[1].split()[0])
p99 = lat[int(len(lat) * 0.99) - 1] if lat else 0.0
attempts = "-"
try:
    doc = json.load(open(out))
    attempts = doc["result"]["steps"][0]["attempts"]
except Exception:
    pass
print(f"| {label} | {rc} | {(t1 - t0) / 1000:.2f} | {attempts} | {len(lat)} | {lat[-1] if lat else 0:.1f} | {p99:.1f} | {failed} | {aborted} |")
PY
}

echo "| run | exit | migration s | attempts | app txns during migration | max latency ms | p99 latency ms | failed txns | aborted clients |"
echo "|---|---|---|---|---|---|---|---|---|"
run psql "${PSQL[@]}" -d "$DB" -c "$ALTER"
"${PSQL[@]}" -d "$DB" -c "ALTER TABLE pgbench_accounts DROP COLUMN note"
run pgshift "$PGSHIFT" --database-url "$URL" --migrations "$WORK/migrations" up --json
"$PGSHIFT" --database-url "$URL" --migrations "$WORK/migrations" down --yes >/dev/null 2>&1
run pgshift_200ms "$PGSHIFT" --database-url "$URL" --migrations "$WORK/migrations" up --json --lock-timeout 200ms
echo >&2
echo "pgshift's progress (stderr) in the pgshift run:" >&2
sed 's/^/  /' "$WORK/pgshift.err" >&2
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
