#!/usr/bin/env bash
# What authorization costs on the 4 KiB GET path: one s3d, one key of the store with a read
# grant on two buckets, one bucket without a policy and one with a 20-statement policy (none of
# which refuses the key, so every statement is evaluated); wrk on presigned SigV4 URLs of a
# 4 KiB object in each, alternating (which goes first alternates too), ROUNDS rounds of SECS
# seconds. Prints each round, the medians and the median of the rounds' policy/none ratios.
#   scripts/access-bench.sh [ROUNDS] [SECS] [S3D]
# Needs wrk (Debian package) and boto3.
set -euo pipefail
ROUNDS=${1:-7}
SECS=${2:-10}
BIN=${3:-"$(cd "$(dirname "$0")/.." && pwd)/target/release/s3d"}
AK=PSBENCHADMINKEY00001
SK=bench-admin-secret-0123456789abcdefghij
WORK=$(mktemp -d -p "${TMPDIR:-/tmp}")
PID=
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
D="$WORK/data"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$("$BIN" --data-dir "$D" key create --name bench)
KAK=$(awk '/^Access key:/ {print $3}' <<<"$out")
KSK=$(awk '/^Secret key:/ {print $3}' <<<"$out")
PREDASTORE_ACCESS_KEY=$AK PREDASTORE_SECRET_KEY=$SK PREDASTORE_LOG=warn \
    "$BIN" --host 127.0.0.1 --port "$PORT" --data-dir "$D" > /dev/null 2>&1 &
PID=$!
for _ in $(seq 100); do curl -s -o /dev/null --cacert "$D/tls/cert.pem" "https://127.0.0.1:$PORT/-/health" && break; sleep 0.1; done

py() {
    python3 - "$@" <<'EOF'
import json, sys, boto3
from botocore.config import Config
what, port, ca, ak, sk = sys.argv[1:6]
c = boto3.client("s3", endpoint_url=f"https://127.0.0.1:{port}", region_name="us-east-1",
                 aws_access_key_id=ak, aws_secret_access_key=sk, verify=ca,
                 config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
if what == "setup":
    for b in ("plain", "policed"):
        c.create_bucket(Bucket=b)
        c.put_object(Bucket=b, Key="k4", Body=b"y" * 4096)
    st = []
    for i in range(10):
        st.append({"Effect": "Deny", "Principal": "*", "Action": ["s3:DeleteObject", "s3:PutObject"],
                   "Resource": f"arn:aws:s3:::policed/locked-{i}/*",
                   "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}})
    for i in range(9):
        st.append({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                   "Resource": f"arn:aws:s3:::policed/public-{i}/*",
                   "Condition": {"StringEquals": {"aws:username": f"viewer-{i}"}}})
    st.append({"Effect": "Deny", "Principal": "*", "Action": "s3:*",
               "Resource": ["arn:aws:s3:::policed", "arn:aws:s3:::policed/*"],
               "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    c.put_bucket_policy(Bucket="policed", Policy=json.dumps({"Version": "2012-10-17", "Statement": st}))
    assert len(json.loads(c.get_bucket_policy(Bucket="policed")["Policy"])["Statement"]) == 20
else:
    print(c.generate_presigned_url("get_object", Params={"Bucket": what, "Key": "k4"}, ExpiresIn=3600))
EOF
}
CA="$D/tls/cert.pem"
py setup "$PORT" "$CA" "$AK" "$SK"
"$BIN" --data-dir "$D" key allow bench plain --read > /dev/null
"$BIN" --data-dir "$D" key allow bench policed --read > /dev/null
URL_PLAIN=$(py plain "$PORT" "$CA" "$KAK" "$KSK")
URL_POLICED=$(py policed "$PORT" "$CA" "$KAK" "$KSK")
for u in "$URL_PLAIN" "$URL_POLICED"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" "$u")
    [ "$code" = 200 ] || { echo "GET through the key answered $code" >&2; exit 1; }
done
rps() { awk '/Requests\/sec/ {print $2}'; }
NONE=()
POL=()
RATIOS=()
run() { SSL_CERT_FILE="$CA" wrk -t2 -c32 -d"${SECS}s" "$1" | rps; }
for r in $(seq "$ROUNDS"); do
    # Alternating which goes first: a drift of the machine within a round favours neither.
    if [ $((r % 2)) = 1 ]; then
        none=$(run "$URL_PLAIN"); pol=$(run "$URL_POLICED")
    else
        pol=$(run "$URL_POLICED"); none=$(run "$URL_PLAIN")
    fi
    RATIOS+=("$(python3 -c "print($pol/$none)")")
    echo "round $r: none=$none policy20=$pol ratio=$(python3 -c "print(round($pol/$none, 3))")"
    NONE+=("$none")
    POL+=("$pol")
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mn=$(echo "${NONE[*]}" | median)
mp=$(echo "${POL[*]}" | median)
mr=$(echo "${RATIOS[*]}" | median)
echo "median: none=$mn policy20=$mp; median of the rounds' policy/none: $(python3 -c "print(round($mr, 3))")"
