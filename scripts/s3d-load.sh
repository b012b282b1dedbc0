#!/usr/bin/env bash
# End-to-end load run: PUT and GET one large object through s3d (TLS, SigV4 via curl), next to
# the engine alone (examples/load.rs) on the same machine in the same run.
#   scripts/s3d-load.sh [SIZE_MIB] [ROUNDS]
# Needs a release build: cargo build --release -p s3d -p predastore-engine --examples --bins
set -euo pipefail
SIZE_MIB=${1:-1024}
ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d -p "${TMPDIR:-/tmp}")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
AK=PSLOADACCESSKEY00001
SK=load-secret-key-0123456789abcdefghijklmn
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

# The source file lives in memory so that reading it costs nothing.
SRC=/dev/shm/predastore-load-$$.bin
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$SRC"
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK" "$SRC"' EXIT

PORT2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/s3d" --host 127.0.0.1 --port "$PORT" --data-dir "$WORK/s3d" --access-key $AK --secret-key $SK \
    > "$WORK/s3d.out" 2> "$WORK/s3d.log" &
PID=$!
# The same server without TLS, to separate the cost of TLS from that of the S3 layer.
"$BIN/s3d" --host 127.0.0.1 --port "$PORT2" --data-dir "$WORK/s3d-plain" --access-key $AK --secret-key $SK \
    --insecure-http > "$WORK/plain.out" 2> "$WORK/plain.log" &
PID2=$!
trap 'kill $PID $PID2 2>/dev/null || true; rm -rf "$WORK" "$SRC"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null --cacert "$WORK/s3d/tls/cert.pem" "https://127.0.0.1:$PORT/-/health" && break; sleep 0.1; done
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT2/-/health" && break; sleep 0.1; done
C=(curl -sS --fail --cacert "$WORK/s3d/tls/cert.pem" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK"
   -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
"${C[@]}" -X PUT "https://127.0.0.1:$PORT/load" > /dev/null
"${C[@]}" -X PUT "http://127.0.0.1:$PORT2/load" > /dev/null

echo "size_mib=$SIZE_MIB rounds=$ROUNDS"
mb() { echo "$1 / 1000000" | bc -l; }
for r in $(seq "$ROUNDS"); do
    # Fresh content every upload: identical data would be deduplicated and skip the writes.
    head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$SRC"
    put=$("${C[@]}" -T "$SRC" -o /dev/null -w '%{speed_upload}' "https://127.0.0.1:$PORT/load/obj$r")
    get=$("${C[@]}" -o /dev/null -w '%{speed_download}' "https://127.0.0.1:$PORT/load/obj$r")
    head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$SRC"
    pput=$("${C[@]}" -T "$SRC" -o /dev/null -w '%{speed_upload}' "http://127.0.0.1:$PORT2/load/obj$r")
    pget=$("${C[@]}" -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$PORT2/load/obj$r")
    eng=$("$BIN/examples/load" "$WORK/engine$r" "$SIZE_MIB")
    rm -rf "$WORK/engine$r"
    printf 'tls: put_MBps=%.1f get_MBps=%.1f | plain: put_MBps=%.1f get_MBps=%.1f | engine: %s\n' \
        "$(mb "$put")" "$(mb "$get")" "$(mb "$pput")" "$(mb "$pget")" "$eng"
done
echo "s3d (TLS) peak RSS: $(grep VmHWM /proc/$PID/status | awk '{print $2/1024 " MiB"}')"
