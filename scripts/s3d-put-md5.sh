#!/usr/bin/env bash
# A large PUT through s3d over TLS against one core's MD5 (the ETag: the slowest unavoidable
# step of a put), for one or more s3d binaries side by side in the same run, and the first PUT
# into a new store against the same PUT repeated. Each round and binary:
#   - a new store: its first 1 GiB PUT ("first"), then two more ("repeat", the median);
#   - another new store, right after 4 GiB of memory were written and freed ("first_touched"):
#     this VM hands freed memory back to the host (virtio-balloon free page reporting), and a
#     page touched for the first time after that costs a host fault; memory freed a moment ago
#     has not been handed back yet;
#   - MD5 of 1 GiB on one core (the md-5 crate, as the engine uses it: examples/load's limits).
#   scripts/s3d-put-md5.sh [ROUNDS] BIN [BIN...]
# Needs a release build: cargo build --release -p s3d -p predastore-engine --examples --bins
set -euo pipefail
ROUNDS=${1:-3}
shift || true
BINS=("$@")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ ${#BINS[@]} -gt 0 ] || BINS=("$ROOT/target/release/s3d")
LOAD=${LOAD:-$ROOT/target/release/examples/load}
AK=PSLOADACCESSKEY00001
SK=load-secret-key-0123456789abcdefghijklmn
WORK=$(mktemp -d -p "${TMPDIR:-/tmp}")
SRC=/dev/shm/predastore-put-$$.bin
PID=
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK" "$SRC" /dev/shm/predastore-touch-$$' EXIT
head -c $((1024 * 1024 * 1024)) /dev/urandom > "$SRC"

start() { # BIN DIR: starts s3d, sets PID and PORT
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$1" --host 127.0.0.1 --port "$PORT" --data-dir "$2" --access-key $AK --secret-key $SK > /dev/null 2>&1 &
    PID=$!
    for _ in $(seq 100); do curl -s -o /dev/null --cacert "$2/tls/cert.pem" "https://127.0.0.1:$PORT/-/health" && break; sleep 0.1; done
    curl -sS --fail --cacert "$2/tls/cert.pem" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X PUT "https://127.0.0.1:$PORT/bench" > /dev/null
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
put() { # DIR KEY: MB/s of one 1 GiB PUT
    curl -sS --fail --cacert "$1/tls/cert.pem" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$SRC" -o /dev/null -w '%{speed_upload}' \
        "https://127.0.0.1:$PORT/bench/$2" | awk '{printf "%.1f", $1 / 1e6}'
}
touch_memory() { head -c $((4096 * 1024 * 1024)) /dev/zero > /dev/shm/predastore-touch-$$; rm /dev/shm/predastore-touch-$$; }
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A FIRST REPEAT TOUCHED
MD5S=
for r in $(seq "$ROUNDS"); do
    md5=$(env -u LOAD_NO_LIMITS "$LOAD" "$WORK/md5" 1024 | tr ' ' '\n' | sed -n 's/^md5_MBps=//p')
    rm -rf "$WORK/md5"
    MD5S+="$md5 "
    for b in "${BINS[@]}"; do
        D="$WORK/s$r"; sleep 5  # what the last step freed goes back to the host
        start "$b" "$D"
        first=$(put "$D" o1); rep1=$(put "$D" o2); rep2=$(put "$D" o3)
        stop; rm -rf "$D"
        start "$b" "$D"; touch_memory
        touched=$(put "$D" o1)
        stop; rm -rf "$D"
        echo "round $r $b: md5_MBps=$md5 first=$first repeat=$rep1,$rep2 first_touched=$touched"
        FIRST[$b]+="$first " REPEAT[$b]+="$rep1 $rep2 " TOUCHED[$b]+="$touched "
    done
done
m=$(echo "$MD5S" | median)
echo "median md5_MBps=$m"
for b in "${BINS[@]}"; do
    f=$(echo "${FIRST[$b]}" | median) p=$(echo "${REPEAT[$b]}" | median) t=$(echo "${TOUCHED[$b]}" | median)
    echo "median $b: first=$f repeat=$p first_touched=$t" \
        "repeat/md5=$(python3 -c "print('%.2f' % ($p / $m))") first/repeat=$(python3 -c "print('%.2f' % ($f / $p))")" \
        "first_touched/repeat=$(python3 -c "print('%.2f' % ($t / $p))")"
done
