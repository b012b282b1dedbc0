#!/usr/bin/env bash
# Sequential write through the mount against the engine's own put, interleaved N times in one
# run (this machine is noisy: compare medians, not single runs). Each round: a fresh 1 GiB file
# written by fio on the mount (1 MiB blocks, fsync at end), then `examples/load` putting 1 GiB.
#   scripts/mount-write-vs-put.sh [ROUNDS] [SIZE_MIB]
# Needs: root, fuse3, fio, and a release build:
#   cargo build --release -p mountd -p predastore-engine --examples --bins
set -euo pipefail
ROUNDS=${1:-5}
SIZE=${2:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d -p /work 2>/dev/null || mktemp -d)
MNT=$WORK/mnt; mkdir -p "$MNT"
"$BIN/mountd" --data-dir "$WORK/data" "$MNT" > "$WORK/mountd.out" 2> "$WORK/mountd.log" &
PID=$!
trap 'fusermount3 -u "$MNT" 2>/dev/null || true; kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do grep -q " $MNT " /proc/self/mounts && break; sleep 0.1; done
mkdir "$MNT/fio"
for r in $(seq "$ROUNDS"); do
    rm -f "$MNT/fio/seqw.0.0"; sync
    m=$(fio --name=seqw --directory="$MNT/fio" --rw=write --bs=1M --size="${SIZE}M" \
        --ioengine=psync --numjobs=1 --end_fsync=1 --output-format=json 2>/dev/null |
        python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"]/1e6))')
    e=$("$BIN/examples/load" "$WORK/engine" "$SIZE" | tr ' ' '\n' | sed -n 's/^put_MBps=//p')
    rm -rf "$WORK/engine"
    echo "round $r: mount write $m MB/s, engine put $e MB/s, ratio $(python3 -c "print('%.2f' % ($m/$e))")"
done
