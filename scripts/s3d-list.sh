#!/usr/bin/env bash
# One ListObjectsV2 page of 1,000 keys through s3d, end to end as a client sees it: curl
# (--aws-sigv4, a new connection per request) over TLS and over plain HTTP, from a bucket of
# 1,000 keys and from one of KEYS keys (default 1,000,000: first page, and a page from the
# middle). The engine's own page time comes from `examples/load DIR keys N` in the same run.
#   scripts/s3d-list.sh [REPEATS] [KEYS]
# Prints each case's median total time and its TLS handshake and first-byte times.
# Needs a release build: cargo build --release -p s3d -p predastore-engine --examples --bins
set -euo pipefail
REPEATS=${1:-21}
KEYS=${2:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
AK=PSLISTACCESSKEY00001
SK=list-secret-key-0123456789abcdefghijklmn
WORK=$(mktemp -d -p /work 2>/dev/null || mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

fill() { # DIR N: bucket `keys` with N one-byte objects (the engine directly, 64 writers)
    "$BIN/examples/load" "$1" keys "$2" | sed 's/^/  engine: /'
}
serve() { # DIR PORT [--insecure-http]
    "$BIN/s3d" --host 127.0.0.1 --port "$2" --data-dir "$1" --access-key $AK --secret-key $SK \
        "${@:3}" > "$1.out" 2> "$1.log" &
    PIDS+=($!)
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return
        sleep 0.05
    done
    echo "s3d did not start" >&2; exit 1
}
time_list() { # URL CA: medians over REPEATS requests of the whole curl run (process start to
    # exit, as `time curl` shows it) and of curl's own total, handshake and first-byte times
    python3 - "$REPEATS" "$1" "$2" "$AK:$SK" <<'PY'
import statistics as st, subprocess, sys, time
n, url, ca, user = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
cmd = ["curl", "-s", "-o", "/dev/null", "--fail", "--aws-sigv4", "aws:amz:us-east-1:s3",
       "-H", "x-amz-content-sha256: " + EMPTY_SHA256,
       "--user", user, "-w", "%{time_appconnect} %{time_starttransfer} %{time_total}", url]
if ca:
    cmd[1:1] = ["--cacert", ca]
rows = []
for _ in range(n):
    t = time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows.append([time.monotonic() - t] + list(map(float, out.split())))
med = lambda i: st.median(r[i] for r in rows) * 1000
print("curl run %.2f ms; request %.2f ms (handshake %.2f, first byte %.2f); %d runs"
      % (med(0), med(3), med(1), med(2), n))
PY
}

echo "filling: 1,000 keys"; fill "$WORK/small" 1000
echo "filling: $KEYS keys"; fill "$WORK/big" "$KEYS"
P1=$(free_port); serve "$WORK/small" "$P1"
P2=$(free_port); serve "$WORK/big" "$P2"
P3=$(free_port); serve "$WORK/small" "$P3" --insecure-http 2>/dev/null || true
CA1=$WORK/small/tls/cert.pem
CA2=$WORK/big/tls/cert.pem
MID=d08%2F
EMPTY=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
# Warm up: the first request of a process maps the store.
curl -s --fail -o /dev/null -H "x-amz-content-sha256: $EMPTY" --cacert "$CA1" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" "https://127.0.0.1:$P1/keys?list-type=2"
curl -s --fail -o /dev/null -H "x-amz-content-sha256: $EMPTY" --cacert "$CA2" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" "https://127.0.0.1:$P2/keys?list-type=2"
echo "1,000 of 1,000 keys, TLS:        $(time_list "https://127.0.0.1:$P1/keys?list-type=2&max-keys=1000" "$CA1")"
echo "1,000 of 1,000 keys, plain HTTP: $(time_list "http://127.0.0.1:$P3/keys?list-type=2&max-keys=1000" "")"
echo "first 1,000 of $KEYS keys, TLS:  $(time_list "https://127.0.0.1:$P2/keys?list-type=2&max-keys=1000" "$CA2")"
echo "1,000 from the middle, TLS:      $(time_list "https://127.0.0.1:$P2/keys?list-type=2&max-keys=1000&start-after=${MID}" "$CA2")"
