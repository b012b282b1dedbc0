#!/usr/bin/env bash
# A 3-node cluster on this machine against the single-node server, in the same run: one large
# object's PUT and GET (curl, SigV4, TLS) and 4 KiB request rates (wrk on presigned URLs, 2
# threads, 32 connections, 10 s): GET of one key, PUT of one key (every writer on the same
# key) and PUT of distinct keys (each request its own), through node 0 of the cluster and
# through the single node. The cluster's nodes share this machine's cores and disk, so the ratio is the cost of the
# network hop (loopback), the shard service and etcd — not a cluster's capacity.
#   scripts/cluster-bench.sh [SIZE_MIB] [ROUNDS]
# Needs etcd, curl, wrk, python3 with boto3, and s3d built with cluster mode
# (make build-cluster).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MIB=${1:-256}
ROUNDS=${2:-3}
S3D=${S3D:-$ROOT/target/release/s3d}
WORK=$(mktemp -d -p "${TMPDIR:-/tmp}" predastore-cbench.XXXXXX)
SRC=/dev/shm/predastore-cbench-$$.bin
# shellcheck source=scripts/lib/cluster.sh
. "$ROOT/scripts/lib/cluster.sh"
SINGLE_PID=
trap 'cluster_stop; [ -n "$SINGLE_PID" ] && kill $SINGLE_PID 2>/dev/null; rm -rf "$WORK" "$SRC"' EXIT

cat > "$WORK/put.lua" <<'EOT'
wrk.method = "PUT"
wrk.body = string.rep("x", 4096)
EOT
# Distinct keys: each request the next of the presigned URLs in $WORK/many (a path per line).
cat > "$WORK/many.lua" <<EOT
local paths = {}
for line in io.lines("$WORK/many") do paths[#paths + 1] = line end
local i = 0
request = function()
    i = i % #paths + 1
    return wrk.format("PUT", paths[i], nil, string.rep("x", 4096))
end
EOT
presign() { python3 "$ROOT/scripts/lib/presign.py" "$1" "$2" "$3" "$CLUSTER_AK" "$CLUSTER_SK"; } # METHOD PORT CA
rps() { awk '/Requests\/sec/ {print $2}'; }
mbps() { echo "$1 / 1000000" | bc -l; }

# measure NAME PORT CA ROUND: one line of results for the server at PORT.
measure() {
    local name=$1 port=$2 ca=$3 r=$4
    local C=(curl -sS --fail --cacert "$ca" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$CLUSTER_AK:$CLUSTER_SK"
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
    [ "$r" = 1 ] && { "${C[@]}" -X PUT "https://127.0.0.1:$port/load" > /dev/null; presign setup "$port" "$ca"; }
    # Fresh content every upload: identical data would be deduplicated.
    head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$SRC"
    local put get g4 p4 d4
    put=$("${C[@]}" -T "$SRC" -o /dev/null -w '%{speed_upload}' "https://127.0.0.1:$port/load/obj$r")
    get=$("${C[@]}" -o /dev/null -w '%{speed_download}' "https://127.0.0.1:$port/load/obj$r")
    g4=$(SSL_CERT_FILE="$ca" wrk -t2 -c32 -d10s "$(presign GET "$port" "$ca")" | rps)
    p4=$(SSL_CERT_FILE="$ca" wrk -t2 -c32 -d10s -s "$WORK/put.lua" "$(presign PUT "$port" "$ca")" | rps)
    presign MANY "$port" "$ca" > "$WORK/many"
    d4=$(SSL_CERT_FILE="$ca" wrk -t2 -c32 -d10s -s "$WORK/many.lua" "https://127.0.0.1:$port" | rps)
    printf '%s round %s: put_MBps=%.1f get_MBps=%.1f get_4KiB_rps=%s put_4KiB_same_key_rps=%s put_4KiB_distinct_keys_rps=%s\n' \
        "$name" "$r" "$(mbps "$put")" "$(mbps "$get")" "$g4" "$p4" "$d4"
}

SPORT=$(free_port)
PREDASTORE_ACCESS_KEY=$CLUSTER_AK PREDASTORE_SECRET_KEY=$CLUSTER_SK PREDASTORE_LOG=warn \
    "$S3D" --host 127.0.0.1 --port "$SPORT" --data-dir "$WORK/single" > "$WORK/single.log" 2>&1 &
SINGLE_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null --cacert "$WORK/single/tls/cert.pem" "https://127.0.0.1:$SPORT/-/health" && break; sleep 0.1; done
mkdir -p "$WORK/cluster"
cluster_start "$WORK/cluster" 3 "$S3D"
echo "size_mib=$SIZE_MIB rounds=$ROUNDS nodes=3 (loopback, one machine)"
for r in $(seq "$ROUNDS"); do
    # Alternate which goes first: the page cache and the disk's state favour neither.
    if [ $((r % 2)) = 1 ]; then
        measure single "$SPORT" "$WORK/single/tls/cert.pem" "$r"
        measure cluster "${S3_PORTS[0]}" "$WORK/cluster/node-0/tls/cert.pem" "$r"
    else
        measure cluster "${S3_PORTS[0]}" "$WORK/cluster/node-0/tls/cert.pem" "$r"
        measure single "$SPORT" "$WORK/single/tls/cert.pem" "$r"
    fi
done | tee "$WORK/results"
python3 - "$WORK/results" <<'EOT'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name = line.split()[0]
    for k, v in re.findall(r"(\w+)=([\d.]+)", line):
        rows.setdefault(name, {}).setdefault(k, []).append(float(v))
for k in ["put_MBps", "get_MBps", "get_4KiB_rps", "put_4KiB_same_key_rps", "put_4KiB_distinct_keys_rps"]:
    s, c = statistics.median(rows["single"][k]), statistics.median(rows["cluster"][k])
    print(f"median {k}: single={s:.1f} cluster={c:.1f} cluster/single={c / s:.2f}")
EOT
