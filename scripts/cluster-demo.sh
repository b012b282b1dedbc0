#!/usr/bin/env bash
# A cluster of three s3d nodes on this machine (loopback ports, an etcd of its own, data in a
# temporary directory or DIR): shows how the pieces fit (docs/cluster.md), prints how to reach
# each node, and stops and removes everything on Ctrl-C.
#   scripts/cluster-demo.sh [NODES] [DIR]
# Needs etcd (Debian's etcd-server), curl, python3 and s3d built with cluster mode
# (make build-cluster: target/release/s3d).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODES=${1:-3}
S3D=${S3D:-$ROOT/target/release/s3d}
WORK=${2:-$(mktemp -d -p "${TMPDIR:-/tmp}" predastore-cluster.XXXXXX)}
mkdir -p "$WORK"
# shellcheck source=scripts/lib/cluster.sh
. "$ROOT/scripts/lib/cluster.sh"
trap 'cluster_stop; [ -z "${2:-}" ] && rm -rf "$WORK"' EXIT
"$S3D" cluster --help > /dev/null
cluster_start "$WORK" "$NODES" "$S3D"
env $(node_env "$WORK" 0) "$S3D" cluster status
echo
echo "Three endpoints, one store (keys $CLUSTER_AK / $CLUSTER_SK):"
for i in $(seq 0 $((NODES - 1))); do
    echo "  node-$i: https://127.0.0.1:${S3_PORTS[$i]}  (CA: $WORK/node-$i/tls/cert.pem, log: $WORK/node-$i.log)"
done
cat <<EOT

Try:
  export AWS_ACCESS_KEY_ID=$CLUSTER_AK AWS_SECRET_ACCESS_KEY=$CLUSTER_SK
  AWS_CA_BUNDLE=$WORK/node-0/tls/cert.pem aws --endpoint-url https://127.0.0.1:${S3_PORTS[0]} s3 mb s3://demo
  AWS_CA_BUNDLE=$WORK/node-0/tls/cert.pem aws --endpoint-url https://127.0.0.1:${S3_PORTS[0]} s3 cp /etc/os-release s3://demo/
  AWS_CA_BUNDLE=$WORK/node-1/tls/cert.pem aws --endpoint-url https://127.0.0.1:${S3_PORTS[1]} s3 cp s3://demo/os-release -
  kill ${NODE_PIDS[$((NODES - 1))]}   # stop node-$((NODES - 1)): the others still serve everything

Ctrl-C stops the cluster.
EOT
while kill -0 "$ETCD_PID" 2>/dev/null; do sleep 1; done
