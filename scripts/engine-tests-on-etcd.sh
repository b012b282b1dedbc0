#!/usr/bin/env bash
# The engine's integration tests with the metadata on etcd instead of LMDB (part of `make test`):
# starts an etcd server of its own (Debian's etcd-server) on free loopback ports in a temporary
# directory, runs the test binaries named below with PREDASTORE_TEST_ETCD pointing at it (their
# `common::config` then opens engines on etcd), stops etcd and removes its directory.
# Extra arguments go to each test binary (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

# The integration tests whose engines keep their metadata through `common::config`. Left out:
# crash and durability (they kill a writer and inspect LMDB's files after it), writeback (the
# window is LMDB's only), etcd_cluster and etcd_limits (they start etcd servers of their own).
TESTS=(objects versions listing drafts large_objects concurrency gc holes compression events lifecycle
    object_lock background)

CARGO=${CARGO:-cargo}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
client="http://127.0.0.1:$(free_port)"
peer="http://127.0.0.1:$(free_port)"
etcd_pid=
cleanup() {
    set +e
    if [ -n "$etcd_pid" ]; then kill "$etcd_pid"; wait "$etcd_pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

# A transaction's operations: a put of a 64-chunk object in these tests references 64 chunk
# records in one transaction, more than etcd's default of 128 with its compares (see
# docs/cluster-plan.md); deployments set the same.
etcd --name=engine-tests --data-dir="$work/data" \
    --listen-client-urls="$client" --advertise-client-urls="$client" \
    --listen-peer-urls="$peer" --initial-advertise-peer-urls="$peer" \
    --initial-cluster="engine-tests=$peer" --max-txn-ops=10000 \
    --max-request-bytes=$((8 * 1024 * 1024)) \
    >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 1 100); do
    if curl -sf "$client/health" | grep -q '"health":"true"'; then break; fi
    sleep 0.1
done
curl -sf "$client/health" | grep -q '"health":"true"' || {
    cat "$work/etcd.log" >&2
    echo "engine-tests-on-etcd: etcd did not start" >&2
    exit 1
}

echo "engine-tests-on-etcd: ${TESTS[*]} against etcd at $client"
# The test binaries `make test` built (the same command and features: nothing is built again),
# run one by one as cargo runs them: from the package's directory.
read -r -a features <<<"${TEST_FEATURES:---features predastore-engine/etcd,predastore-cluster/etcd,s3d/cluster,mountd/cluster}"
mapfile -t bins < <($CARGO test --workspace --lib --tests --benches "${features[@]}" --no-run \
    --message-format=json 2>/dev/null | python3 -c '
import json, sys
want = set(sys.argv[1:])
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    t = m.get("target", {})
    if (m.get("reason") == "compiler-artifact" and m.get("executable")
            and "test" in t.get("kind", []) and t.get("name") in want
            and "predastore-engine" in m.get("package_id", "")):
        print(m["executable"])
' "${TESTS[@]}")
if [ ${#bins[@]} -ne ${#TESTS[@]} ]; then
    echo "engine-tests-on-etcd: found ${#bins[@]} of ${#TESTS[@]} test binaries" >&2
    exit 1
fi
cd engine
for bin in "${bins[@]}"; do
    echo "engine-tests-on-etcd: $(basename "$bin")"
    PREDASTORE_TEST_ETCD="$client" CARGO_MANIFEST_DIR="$PWD" "$bin" "$@"
done
