#!/usr/bin/env bash
# What the metadata of a cluster costs in etcd, measured: a 3-node cluster on this machine's
# loopback takes 4 KiB objects (distinct keys, wrk on presigned URLs for DURATION seconds, in
# bucket `small` of scripts/lib/presign.py) and
# then large objects (LARGE_MIB MiB in 4 MiB chunks); after each phase etcd's history is
# compacted and its database defragmented, and its key count and bytes in use are read from
# its /metrics. Prints bytes per small object and per chunk, from which docs/cluster.md works
# out where etcd's quota stops the design.
#   scripts/cluster-metadata.sh [DURATION] [LARGE_MIB]
# Needs etcd, curl, wrk, python3 with boto3, and s3d built with cluster mode
# (make build-cluster).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${1:-10}
LARGE_MIB=${2:-1024}
S3D=${S3D:-$ROOT/target/release/s3d}
WORK=$(mktemp -d -p "${TMPDIR:-/tmp}" predastore-cmeta.XXXXXX)
SRC=/dev/shm/predastore-cmeta-$$.bin
# shellcheck source=scripts/lib/cluster.sh
. "$ROOT/scripts/lib/cluster.sh"
trap 'cluster_stop; rm -rf "$WORK" "$SRC"' EXIT

cat > "$WORK/many.lua" <<EOT
local paths = {}
for line in io.lines("$WORK/many") do paths[#paths + 1] = line end
local i = 0
request = function()
    i = i % #paths + 1
    return wrk.format("PUT", paths[i], nil, string.rep("x", 4096))
end
EOT

# etcd's keys and bytes in use after compacting its history and defragmenting it.
etcd_size() {
    local rev
    rev=$(curl -sf -X POST "$ETCD_URL/v3/kv/range" -d '{"key":"AA=="}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
    curl -sf -X POST "$ETCD_URL/v3/kv/compaction" -d "{\"revision\":\"$rev\",\"physical\":true}" > /dev/null
    curl -sf -X POST "$ETCD_URL/v3/maintenance/defragment" -d '{}' > /dev/null
    curl -sf "$ETCD_URL/metrics" | awk '
        /^etcd_debugging_mvcc_keys_total / {k=$2}
        /^etcd_mvcc_db_total_size_in_use_in_bytes / {u=$2}
        END {printf "%d %d\n", k, u}'
}

count_objects() { # BUCKET
    python3 - "$1" "${S3_PORTS[0]}" "$WORK/cluster/node-0/tls/cert.pem" "$CLUSTER_AK" "$CLUSTER_SK" <<'EOT'
import boto3, sys
b, port, ca, ak, sk = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=f"https://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id=ak, aws_secret_access_key=sk, verify=ca)
print(sum(p.get("KeyCount", 0) for p in s3.get_paginator("list_objects_v2").paginate(Bucket=b)))
EOT
}

mkdir -p "$WORK/cluster"
cluster_start "$WORK/cluster" 3 "$S3D"
PORT=${S3_PORTS[0]} CA="$WORK/cluster/node-0/tls/cert.pem"
C=(curl -sS --fail --cacert "$CA" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$CLUSTER_AK:$CLUSTER_SK"
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
python3 "$ROOT/scripts/lib/presign.py" setup "$PORT" "$CA" "$CLUSTER_AK" "$CLUSTER_SK"
"${C[@]}" -X PUT "https://127.0.0.1:$PORT/large" > /dev/null
read -r k0 b0 < <(etcd_size)
echo "empty cluster: keys=$k0 bytes_in_use=$b0"

python3 "$ROOT/scripts/lib/presign.py" MANY "$PORT" "$CA" "$CLUSTER_AK" "$CLUSTER_SK" > "$WORK/many"
SSL_CERT_FILE="$CA" wrk -t2 -c32 -d"${DURATION}s" -s "$WORK/many.lua" "https://127.0.0.1:$PORT" > /dev/null
small=$(($(count_objects small) - 1))
read -r k1 b1 < <(etcd_size)
echo "after $small objects of 4 KiB: keys=$k1 bytes_in_use=$b1"

for i in $(seq "$((LARGE_MIB / 256))"); do
    head -c $((256 << 20)) /dev/urandom > "$SRC"
    "${C[@]}" -T "$SRC" -o /dev/null "https://127.0.0.1:$PORT/large/part-$i"
done
chunks=$((LARGE_MIB / 4))
read -r k2 b2 < <(etcd_size)
echo "after $LARGE_MIB MiB of large objects ($chunks chunks): keys=$k2 bytes_in_use=$b2"

python3 - "$small" "$chunks" "$k0" "$b0" "$k1" "$b1" "$k2" "$b2" <<'EOT'
import sys
small, chunks, k0, b0, k1, b1, k2, b2 = map(int, sys.argv[1:])
per_small = (b1 - b0) / small
per_chunk = (b2 - b1) / chunks
print(f"per 4 KiB object (inline): {per_small:.0f} bytes in etcd, {(k1 - k0) / small:.2f} keys")
print(f"per 4 MiB chunk of a large object: {per_chunk:.0f} bytes in etcd, {(k2 - k1) / chunks:.2f} keys")
quota = 8 << 30
print(f"an 8 GiB etcd quota holds ~{quota / per_small / 1e6:.1f} M small objects, "
      f"or ~{quota / per_chunk / 1e6:.1f} M chunks = {quota / per_chunk * 4 / 1024 / 1024:.0f} TiB of large objects")
EOT
