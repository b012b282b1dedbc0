# A cluster of s3d nodes on this machine's loopback, for scripts/cluster-demo.sh and
# scripts/cluster-bench.sh (sourced): an etcd of its own, N nodes each with its own data
# directory, S3 port and shard port, made a cluster with `s3d cluster init` and `join`.
# Needs etcd (Debian's etcd-server), curl, python3, and s3d built with cluster mode
# (make build-cluster).
#   cluster_start WORK NODES S3D   — starts everything; sets ETCD_PID, NODE_PIDS, S3_PORTS
#   cluster_stop                   — stops what cluster_start started
#   cluster_fill WORK MIB SRC      — bucket `data` through node 0, MIB of 64 MiB objects
#                                    (fresh bytes each, staged in SRC)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

CLUSTER_AK=${CLUSTER_AK:-PSDEMOACCESSKEY00001}
CLUSTER_SK=${CLUSTER_SK:-demo-secret-key-0123456789abcdefghijklmn}
ETCD_PID=
NODE_PIDS=()
S3_PORTS=()

# node_env WORK I: the variables of node I.
node_env() {
    echo "PREDASTORE_DATA_DIR=$1/node-$2 PREDASTORE_HOST=127.0.0.1 PREDASTORE_PORT=${S3_PORTS[$2]}" \
        "PREDASTORE_TLS_NAMES=127.0.0.1 PREDASTORE_ACCESS_KEY=$CLUSTER_AK PREDASTORE_SECRET_KEY=$CLUSTER_SK" \
        "PREDASTORE_CLUSTER_ID=demo PREDASTORE_NODE_ID=node-$2 PREDASTORE_ETCD=$ETCD_URL" \
        "PREDASTORE_CLUSTER_LISTEN=127.0.0.1:${SHARD_PORTS[$2]} PREDASTORE_CLUSTER_ADVERTISE=127.0.0.1:${SHARD_PORTS[$2]}" \
        "PREDASTORE_LOG=${PREDASTORE_LOG:-warn}"
}

cluster_start() {
    local work=$1 nodes=$2 s3d=$3 i
    local client peer
    client=$(free_port) peer=$(free_port)
    ETCD_URL="http://127.0.0.1:$client"
    etcd --name=demo --data-dir="$work/etcd" \
        --listen-client-urls="$ETCD_URL" --advertise-client-urls="$ETCD_URL" \
        --listen-peer-urls="http://127.0.0.1:$peer" --initial-advertise-peer-urls="http://127.0.0.1:$peer" \
        --initial-cluster="demo=http://127.0.0.1:$peer" \
        --max-txn-ops=10000 --max-request-bytes=8388608 --quota-backend-bytes=$((8 << 30)) \
        --auto-compaction-retention=1h \
        > "$work/etcd.log" 2>&1 &
    ETCD_PID=$!
    for _ in $(seq 100); do curl -sf "$ETCD_URL/health" | grep -q '"health":"true"' && break; sleep 0.1; done
    SHARD_PORTS=()
    for i in $(seq 0 $((nodes - 1))); do S3_PORTS[i]=$(free_port); SHARD_PORTS[i]=$(free_port); done
    env $(node_env "$work" 0) "$s3d" cluster init > /dev/null
    for i in $(seq 0 $((nodes - 1))); do env $(node_env "$work" "$i") "$s3d" cluster join > /dev/null; done
    for i in $(seq 0 $((nodes - 1))); do
        env $(node_env "$work" "$i") "$s3d" > "$work/node-$i.log" 2>&1 &
        NODE_PIDS[i]=$!
    done
    for i in $(seq 0 $((nodes - 1))); do
        for _ in $(seq 200); do
            curl -s -o /dev/null --cacert "$work/node-$i/tls/cert.pem" "https://127.0.0.1:${S3_PORTS[$i]}/-/health" && break
            sleep 0.1
        done
    done
}

cluster_stop() {
    local p
    for p in "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "$ETCD_PID" ]; then kill "$ETCD_PID" 2>/dev/null || true; wait "$ETCD_PID" 2>/dev/null || true; fi
    NODE_PIDS=() ETCD_PID=
}

cluster_fill() {
    local work=$1 mib=$2 src=$3 i
    local c=(curl -sS --fail --cacert "$work/node-0/tls/cert.pem" --aws-sigv4 "aws:amz:us-east-1:s3"
        --user "$CLUSTER_AK:$CLUSTER_SK" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
    "${c[@]}" -X PUT "https://127.0.0.1:${S3_PORTS[0]}/data" > /dev/null
    # Fresh bytes each: identical data would be deduplicated.
    for i in $(seq 1 $((mib / 64))); do
        head -c $((64 << 20)) /dev/urandom > "$src"
        "${c[@]}" -T "$src" -o /dev/null "https://127.0.0.1:${S3_PORTS[0]}/data/obj$i"
    done
}
