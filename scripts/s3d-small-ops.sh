#!/usr/bin/env bash
# 4 KiB GET and PUT request rates through s3d over TLS (wrk on presigned SigV4 URLs), for one
# or more s3d binaries side by side in the same run (e.g. before and after a change):
#   scripts/s3d-small-ops.sh [ROUNDS] BIN [BIN...]
# Needs wrk (Debian package) and boto3. Prints one line per binary and round, then medians.
set -euo pipefail
ROUNDS=${1:-3}
shift
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=("$(cd "$(dirname "$0")/.." && pwd)/target/release/s3d")
AK=PSLOADACCESSKEY00001
SK=load-secret-key-0123456789abcdefghijklmn
WORK=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
PID=
cat > "$WORK/put.lua" <<'EOF'
wrk.method = "PUT"
wrk.body = string.rep("x", 4096)
EOF

presign() { # METHOD PORT CA
    python3 - "$1" "$2" "$3" <<EOF
import sys, boto3
from botocore.config import Config
m, port, ca = sys.argv[1], sys.argv[2], sys.argv[3]
c = boto3.client("s3", endpoint_url=f"https://127.0.0.1:{port}", region_name="us-east-1",
                 aws_access_key_id="$AK", aws_secret_access_key="$SK", verify=ca,
                 config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
if m == "setup":
    c.create_bucket(Bucket="small")
    c.put_object(Bucket="small", Key="k4", Body=b"y" * 4096)
else:
    op = "get_object" if m == "GET" else "put_object"
    print(c.generate_presigned_url(op, Params={"Bucket": "small", "Key": "k4" if m == "GET" else "p4"}, ExpiresIn=3600))
EOF
}

rps() { awk '/Requests\/sec/ {print $2}'; }

declare -A GETS PUTS
for r in $(seq "$ROUNDS"); do
    for b in "${BINS[@]}"; do
        PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        D="$WORK/d$r-$(basename "$b")"
        PREDASTORE_ACCESS_KEY=$AK PREDASTORE_SECRET_KEY=$SK PREDASTORE_LOG=warn \
            "$b" --host 127.0.0.1 --port "$PORT" --data-dir "$D" > /dev/null 2>&1 &
        PID=$!
        for _ in $(seq 100); do curl -s -o /dev/null --cacert "$D/tls/cert.pem" "https://127.0.0.1:$PORT/-/health" && break; sleep 0.1; done
        presign setup "$PORT" "$D/tls/cert.pem"
        get=$(SSL_CERT_FILE="$D/tls/cert.pem" wrk -t2 -c32 -d10s "$(presign GET "$PORT" "$D/tls/cert.pem")" | rps)
        put=$(SSL_CERT_FILE="$D/tls/cert.pem" wrk -t2 -c32 -d10s -s "$WORK/put.lua" "$(presign PUT "$PORT" "$D/tls/cert.pem")" | rps)
        kill "$PID"; wait "$PID" 2>/dev/null || true
        echo "round $r $b: get_4KiB_rps=$get put_4KiB_rps=$put"
        GETS[$b]+="$get "
        PUTS[$b]+="$put "
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for b in "${BINS[@]}"; do
    echo "median $b: get_4KiB_rps=$(echo "${GETS[$b]}" | median) put_4KiB_rps=$(echo "${PUTS[$b]}" | median)"
done
