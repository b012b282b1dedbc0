#!/usr/bin/env bash
# fio on a mountd mount, next to the same jobs on a plain local directory and the engine alone
# (examples/load), in the same run; sequential reads warm and cold (caches dropped). Also the
# ceiling of any FUSE filesystem here (mountd's example fuse_ceiling: reads answered from one
# constant buffer) and what each sequential read costs in CPU seconds per GB (reader + daemon).
#   scripts/mount-fio.sh [SIZE_MIB]
# Needs: root, fuse3, fio, and a release build:
#   cargo build --release -p mountd -p predastore-engine --examples --bins
set -euo pipefail
SIZE=${1:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d -p /work 2>/dev/null || mktemp -d)
MNT=$WORK/mnt; mkdir -p "$MNT" "$WORK/local"
"$BIN/mountd" --data-dir "$WORK/data" "$MNT" > "$WORK/mountd.out" 2> "$WORK/mountd.log" &
PID=$!
CEIL=$WORK/ceiling; mkdir -p "$CEIL"
trap 'fusermount3 -u "$MNT" 2>/dev/null || true; fusermount3 -u "$CEIL" 2>/dev/null || true
      kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do grep -q " $MNT " /proc/self/mounts && break; sleep 0.1; done
mkdir "$MNT/fio"

job() { # name dir rw bs size extra...
    local name=$1 dir=$2 rw=$3 bs=$4 size=$5; shift 5
    fio --name="$name" --directory="$dir" --rw="$rw" --bs="$bs" --size="${size}M" \
        --ioengine=psync --numjobs=1 --output-format=json "$@" 2>/dev/null |
        python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; r=j["read"]; w=j["write"]
print("%.1f MB/s %.0f IOPS" % (max(r["bw_bytes"], w["bw_bytes"])/1e6, max(r["iops"], w["iops"])))'
}
# A sequential read of FILE with the CPU it cost: fio's own and daemon PID's (0: none), per GB.
readcpu() { # file pid
    local c0 c1 out
    c0=$( [ "$2" -gt 0 ] && awk '{print $14+$15}' /proc/$2/stat || echo 0)
    out=$(fio --name=seqr --filename="$1" --rw=read --bs=1M --ioengine=psync --numjobs=1 \
        --output-format=json 2>/dev/null)
    c1=$( [ "$2" -gt 0 ] && awk '{print $14+$15}' /proc/$2/stat || echo 0)
    echo "$out" | python3 -c 'import json,sys
j=json.load(sys.stdin)["jobs"][0]; r=j["read"]; t=r["runtime"]/1e3; gb=r["io_bytes"]/1e9
fio=(j["usr_cpu"]+j["sys_cpu"])/100*t; d=('"$c1"'-'"$c0"')/100
print("%.1f MB/s, CPU %.2f s/GB (reader %.2f, daemon %.2f)" % (r["bw_bytes"]/1e6, (fio+d)/gb, fio/gb, d/gb))'
}
for where in "mount:$MNT/fio" "local:$WORK/local"; do
    n=${where%%:*}; d=${where#*:}
    echo "$n seq write ${SIZE}MiB (1 MiB blocks, fsync at end): $(job seqw "$d" write 1M "$SIZE" --end_fsync=1)"
    echo "$n seq read  ${SIZE}MiB (1 MiB blocks):                $(job seqw "$d" read 1M "$SIZE")"
    [ "$n" = mount ] && echo "$n seq read  ${SIZE}MiB again, CPU per GB:           $(readcpu "$d/seqw.0.0" $PID)"
    # The same read from the disk: every cache (the file's pages, the shards') dropped first.
    echo "$n seq read  ${SIZE}MiB, cold (caches dropped):        $(sync; echo 3 > /proc/sys/vm/drop_caches; job seqw "$d" read 1M "$SIZE")"
    echo "$n 4k rand read  (256 MiB file, 20 s):                $(job rr "$d" randread 4k 256 --runtime=20 --time_based)"
    echo "$n 4k rand write (256 MiB file, 20 s, fsync at end):   $(job rw "$d" randwrite 4k 256 --runtime=20 --time_based --end_fsync=1)"
done
# The ceiling of any FUSE filesystem here: the same read from a mount that does no work.
"$BIN/examples/fuse_ceiling" "$CEIL" "$SIZE" > /dev/null &
CPID=$!
for _ in $(seq 100); do grep -q " $CEIL " /proc/self/mounts && break; sleep 0.1; done
for i in 1 2; do
    echo "FUSE ceiling seq read ${SIZE}MiB (no storage) #$i:    $(readcpu "$CEIL/data" $CPID)"
done
fusermount3 -u "$CEIL"; wait $CPID || true
# The same without the page cache (FOPEN_DIRECT_IO): what FUSE's page-cache path costs.
CEILING_DIRECT_IO=1 "$BIN/examples/fuse_ceiling" "$CEIL" "$SIZE" > /dev/null &
CPID=$!
for _ in $(seq 100); do grep -q " $CEIL " /proc/self/mounts && break; sleep 0.1; done
echo "FUSE ceiling seq read ${SIZE}MiB, direct I/O:         $(readcpu "$CEIL/data" $CPID)"
fusermount3 -u "$CEIL"; wait $CPID || true
echo "engine alone: $("$BIN/examples/load" "$WORK/engine" "$SIZE")"
rm -rf "$WORK/engine"
echo "engine alone, cold get: $(LOAD_COLD_GET=1 "$BIN/examples/load" "$WORK/engine" "$SIZE")"
