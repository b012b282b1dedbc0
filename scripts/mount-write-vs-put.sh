#!/usr/bin/env bash
# Sequential write through the mount against the engine's own put, interleaved N times in one
# run (this machine is noisy: compare medians, not single runs). Each round starts from a new
# store on both sides, so that the first write into a new store is measured as well as a
# repeat:
#   - a new mountd on a new data directory: a 1 GiB file written by fio (1 MiB blocks, fsync at
#     end) — the first write into the store — then a second new 1 GiB file (the repeat);
#   - `examples/load` on a new data directory: a 1 GiB put (the first), then another (the repeat).
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
PID=
trap 'fusermount3 -u "$MNT" 2>/dev/null || true; [ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT

fio_write() { # FILE-NAME: MB/s of a fresh sequential write on the mount
    fio --name="$1" --directory="$MNT/fio" --rw=write --bs=1M --size="${SIZE}M" \
        --ioengine=psync --numjobs=1 --end_fsync=1 --output-format=json 2>/dev/null |
        python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"]/1e6))'
}
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
FIRSTS= REPEATS=
mount_side() { # sets mf, mr
    "$BIN/mountd" --data-dir "$WORK/data" "$MNT" > "$WORK/mountd.out" 2> "$WORK/mountd.log" &
    PID=$!
    for _ in $(seq 100); do grep -q " $MNT " /proc/self/mounts && break; sleep 0.1; done
    mkdir "$MNT/fio"
    mf=$(fio_write first); mr=$(fio_write repeat)
    fusermount3 -u "$MNT"; wait "$PID" 2>/dev/null || true; PID=
    rm -rf "$WORK/data"
}
engine_side() { # sets ef, er
    local out
    out=$(LOAD_REPEAT=2 LOAD_NO_LIMITS=1 "$BIN/examples/load" "$WORK/engine" "$SIZE")
    rm -rf "$WORK/engine"
    ef=$(echo "$out" | sed -n 's/^put 1: \([0-9.]*\) MB\/s.*/\1/p')
    er=$(echo "$out" | tr ' ' '\n' | sed -n 's/^put_MBps=//p')
}
# Whichever side runs second gets the memory the first just freed, still mapped by the VM's
# host: the order alternates from round to round.
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then mount_side; engine_side; else engine_side; mount_side; fi
    echo "round $r: first write: mount $mf MB/s, engine $ef MB/s, ratio $(ratio "$mf" "$ef");" \
        "repeat: mount $mr, engine $er, ratio $(ratio "$mr" "$er")"
    FIRSTS+="$(ratio "$mf" "$ef") " REPEATS+="$(ratio "$mr" "$er") "
done
echo "median ratio mount/engine: first write into a new store $(echo "$FIRSTS" | median), repeat $(echo "$REPEATS" | median)"
