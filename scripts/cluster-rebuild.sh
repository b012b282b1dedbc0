#!/usr/bin/env bash
# The time to rebuild a lost node: a 3-node cluster on this machine's loopback
# (scripts/lib/cluster.sh) takes SIZE_MIB of objects through node 0; node 2 is then lost with
# its disks, replaced by an empty one under the same name (`s3d cluster join`), and `s3d heal`
# on it rebuilds its shards from the other two. Prints the heal's report (what it read and
# wrote) and the time per GB of objects stored, ROUNDS times.
#   scripts/cluster-rebuild.sh [SIZE_MIB] [ROUNDS]
# Needs etcd, curl, python3 and s3d built with cluster mode (make build-cluster).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MIB=${1:-1024}
ROUNDS=${2:-3}
S3D=${S3D:-$ROOT/target/release/s3d}
# shellcheck source=scripts/lib/cluster.sh
. "$ROOT/scripts/lib/cluster.sh"
WORK=
SRC=/dev/shm/predastore-rebuild-$$.bin
trap 'cluster_stop; rm -rf "$WORK" "$SRC"' EXIT
for r in $(seq "$ROUNDS"); do
    WORK=$(mktemp -d -p "${TMPDIR:-/tmp}" predastore-rebuild.XXXXXX)
    cluster_start "$WORK" 3 "$S3D"
    cluster_fill "$WORK" "$SIZE_MIB" "$SRC"
    kill "${NODE_PIDS[2]}"; wait "${NODE_PIDS[2]}" 2>/dev/null || true
    rm -rf "$WORK/node-2"
    env $(node_env "$WORK" 2) "$S3D" cluster join > /dev/null
    env $(node_env "$WORK" 2) "$S3D" > "$WORK/node-2.log" 2>&1 &
    NODE_PIDS[2]=$!
    for _ in $(seq 200); do
        curl -s -o /dev/null --cacert "$WORK/node-2/tls/cert.pem" "https://127.0.0.1:${S3_PORTS[2]}/-/health" && break
        sleep 0.1
    done
    sync
    start=$(date +%s.%N)
    rep=$(env $(node_env "$WORK" 2) "$S3D" heal)
    end=$(date +%s.%N)
    echo "round $r: $rep"
    python3 -c "import sys; t = $end - $start; gb = $SIZE_MIB * 1048576 / 1e9; print(f'  heal took {t:.1f} s: {t / gb:.1f} s per GB of objects stored ({gb / t * 1000:.0f} MB of objects per second)')"
    cluster_stop
    rm -rf "$WORK"
done
