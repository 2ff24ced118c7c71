#!/usr/bin/env bash
# Idle CPU and peak RSS of the real TUI: release binary in tmux (120x40) against a local database
# with the demo catalog applied and 10,000 audit events, left alone for 30 s.
#   bash scripts/tui_idle.sh [postgres://postgres@127.0.0.1:5432]
# Needs tmux, psql and a PostgreSQL server (trust auth). Prints CPU % over the window and VmHWM.
set -euo pipefail
cd "$(dirname "$0")/.."
server="${1:-postgres://postgres@127.0.0.1:5432}"
db="pgshift_tui_idle_$$"
sock="pgshift-idle-$$"
window="${WINDOW_S:-30}"
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

cargo build --release --quiet
bin="$PWD/target/release/pgshift"
psql -q "$server/postgres" -c "CREATE DATABASE $db" >/dev/null
url="$server/$db"
"$bin" --database-url "$url" --migrations migrations up >/dev/null 2>&1
psql -q "$url" -c "INSERT INTO pgshift_events (operator, action, from_revision, to_revision, outcome, duration_ms, detail)
  SELECT 'bench@host', CASE WHEN g % 7 = 0 THEN 'down' ELSE 'up' END, 3, 4,
         CASE WHEN g % 11 = 0 THEN 'failed' ELSE 'ok' END, g % 5000, '{}'::jsonb
  FROM generate_series(1, 10000) g" >/dev/null

tmux -L "$sock" -f /dev/null new-session -d -x 120 -y 40 \
  "env -u NO_COLOR '$bin' --database-url '$url' --migrations migrations"
pid=""
for _ in $(seq 1 100); do
  pid="$(pgrep -n -f "^$bin --database-url $url" || true)"
  [ -n "$pid" ] && tmux -L "$sock" capture-pane -p | grep -q "10001 events\|10000 events" && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "pgshift did not start"; exit 1; }

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz="$(getconf CLK_TCK)"
t0="$(ticks "$pid")"; s0="$(date +%s.%N)"
sleep "$window"
t1="$(ticks "$pid")"; s1="$(date +%s.%N)"
awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s0="$s0" -v s1="$s1" 'BEGIN {
  cpu = (b - a) / hz; wall = s1 - s0;
  printf "idle CPU: %.2f s over %.1f s = %.2f%% of one core\n", cpu, wall, 100 * cpu / wall }'
grep -E "VmHWM|VmRSS" "/proc/$pid/status"
tmux -L "$sock" capture-pane -p | head -3
