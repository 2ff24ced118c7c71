#!/bin/sh
# Cost of TLS per connection: N runs of `pgshift status --json` with sslmode=disable vs require,
# alternating, against a server that offers TLS (default: the local one on 127.0.0.1:5432).
# Usage: scripts/bench_tls_connect.sh [URL_WITHOUT_QUERY] [N]
set -eu
URL=${1:-postgres://postgres@127.0.0.1:5432/postgres}
N=${2:-30}
BIN=${PGSHIFT_BIN:-target/release/pgshift}
for mode in disable require disable require; do
    start=$(date +%s%N)
    i=0
    while [ "$i" -lt "$N" ]; do
        "$BIN" --database-url "$URL?sslmode=$mode" --migrations migrations status --json >/dev/null
        i=$((i + 1))
    done
    end=$(date +%s%N)
    echo "$mode $(( (end - start) / (N * 1000000) )) ms/run"
done
