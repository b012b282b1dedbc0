#!/usr/bin/env bash
# Rebalance's speed, per GB of objects stored: a 3-node cluster on this machine's loopback
# (scripts/lib/cluster.sh) takes SIZE_MIB of objects through node 0; then a fourth node joins
# (`s3d cluster join`, start) and the time until `s3d cluster status` shows no chunk left on an
# older layout generation is taken; then node 1 is killed (-9) and removed
# (`s3d cluster remove`) and the time until its shards are rebuilt on the other three is
# taken. Rebalance runs unthrottled here (PREDASTORE_REBALANCE_RATE_MB=0). ROUNDS times.
#   scripts/cluster-rebalance.sh [SIZE_MIB] [ROUNDS]
# Needs etcd, curl, python3 and s3d built with cluster mode (make build-cluster).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MIB=${1:-1024}
ROUNDS=${2:-3}
S3D=${S3D:-$ROOT/target/release/s3d}
# shellcheck source=scripts/lib/cluster.sh
. "$ROOT/scripts/lib/cluster.sh"
export PREDASTORE_REBALANCE_RATE_MB=0 PREDASTORE_LOG=info
WORK=
SRC=/dev/shm/predastore-rebalance-$$.bin
trap 'cluster_stop; rm -rf "$WORK" "$SRC"' EXIT

# balanced NODE GENERATION: waits until the status through NODE shows every chunk on GENERATION.
balanced() {
    local status
    while :; do
        status=$(env $(node_env "$WORK" "$1") "$S3D" cluster status 2>/dev/null || true)
        if grep -q "layout: generation $2," <<<"$status" &&
            grep -q "rebalance: 0 chunk(s) on older generations" <<<"$status"; then
            return
        fi
        sleep 0.2
    done
}

per_gb() { python3 -c "import sys; print(f'{float(sys.argv[1]) / (int(sys.argv[2]) / 1024 * 1.073741824):.1f}')" "$1" "$SIZE_MIB"; }

for r in $(seq "$ROUNDS"); do
    WORK=$(mktemp -d -p "${TMPDIR:-/tmp}" predastore-rebalance.XXXXXX)
    cluster_start "$WORK" 3 "$S3D"
    cluster_fill "$WORK" "$SIZE_MIB" "$SRC"
    balanced 0 1
    sync

    # A fourth node joins.
    S3_PORTS[3]=$(free_port) SHARD_PORTS[3]=$(free_port)
    start=$(date +%s.%N)
    env $(node_env "$WORK" 3) "$S3D" cluster join > /dev/null
    env $(node_env "$WORK" 3) "$S3D" > "$WORK/node-3.log" 2>&1 &
    NODE_PIDS[3]=$!
    balanced 0 2
    join_s=$(echo "$(date +%s.%N) - $start" | bc -l)
    sync

    # Node 1 is lost for good and removed: its shards are rebuilt on nodes 0, 2 and 3.
    kill -9 "${NODE_PIDS[1]}"; wait "${NODE_PIDS[1]}" 2>/dev/null || true
    start=$(date +%s.%N)
    env $(node_env "$WORK" 0) "$S3D" cluster remove node-1 > /dev/null
    balanced 0 3
    remove_s=$(echo "$(date +%s.%N) - $start" | bc -l)
    printf 'round %s: %s MiB stored; join: %.1f s (%s s per GB); remove of a lost node: %.1f s (%s s per GB)\n' \
        "$r" "$SIZE_MIB" "$join_s" "$(per_gb "$join_s")" "$remove_s" "$(per_gb "$remove_s")"
    grep -h "rebalance to layout" "$WORK"/node-*.log | sed 's/^/    /' || true
    cluster_stop
    [ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
    WORK=
done
