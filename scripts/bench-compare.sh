#!/usr/bin/env bash
# Old commit and new side by side, in one run on this machine (by hand, never from CI):
# `scripts/bench-compare.sh OLD [NEW] [ROUNDS]` builds the engine's criterion benchmarks of
# both commits (the NEW commit's bench file in both trees, so both run the same code against
# their own engine), then runs them alternately ROUNDS times (default 3): put 64/256 MiB, get
# 64/256 MiB, 64 concurrent 4 KiB puts, a 4 KiB get, a 1,000-key list page. Prints each
# benchmark's median of the rounds' criterion estimates, and NEW / OLD (time: below 1 is
# faster), with every round's estimate. BENCH_FILTER overrides the benchmarks' regex.
# BENCH_WORK=DIR keeps the trees, their builds and the raw outputs there for another run (the
# same OLD and NEW); otherwise a temporary directory is removed at the end. Needs ~10 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench-compare.sh OLD [NEW] [ROUNDS]}
new=${2:-HEAD}
rounds=${3:-3}
filter=${BENCH_FILTER:-'engine/(put|get)/(67108864|268435456)$|engine/put_4KiB_x64_concurrent|engine/get_4KiB|engine/list_1000_page'}
if [ -n "${BENCH_WORK:-}" ]; then
    work=$BENCH_WORK
    mkdir -p "$work"
    rm -f "$work"/*.out
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/bench-compare.XXXXXX")
    trap 'git worktree remove --force "$work/old" 2>/dev/null; git worktree remove --force "$work/new" 2>/dev/null; rm -rf "$work"' EXIT
fi
[ -d "$work/old" ] || git worktree add -q --detach "$work/old" "$old"
[ -d "$work/new" ] || git worktree add -q --detach "$work/new" "$new"
cp "$work/new/engine/benches/engine.rs" "$work/old/engine/benches/engine.rs"
for side in old new; do
    (cd "$work/$side" && cargo bench -p predastore-engine --bench engine --no-run >/dev/null 2>&1)
done
bin() { ls -t "$work/$1"/target/release/deps/engine-* | grep -v '\.d$' | head -1; }
for r in $(seq "$rounds"); do
    for side in old new; do
        (cd "$work/$side/engine" && "$(bin "$side")" --bench "$filter" 2>/dev/null) \
            >"$work/$side.$r.out"
    done
done
python3 - "$work" "$rounds" <<'PY'
import sys, re, statistics, collections
work, rounds = sys.argv[1], int(sys.argv[2])
unit = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
t = collections.defaultdict(list)
for side in ("old", "new"):
    for r in range(1, rounds + 1):
        name = None
        for line in open(f"{work}/{side}.{r}.out"):
            m = re.match(r"^(engine/\S+)", line)
            if m:
                name = m.group(1)
            m = re.search(r"time:\s*\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
            if m and name:
                t[(name, side)].append(float(m.group(1)) * unit[m.group(2)])
                name = None
names = sorted({n for n, _ in t})
print(f"{'benchmark':34} {'old (median)':>13} {'new (median)':>13} {'new/old':>8}   rounds old | new (ms)")
for n in names:
    o, w = statistics.median(t[(n, "old")]), statistics.median(t[(n, "new")])
    each = lambda v: " ".join(f"{x*1e3:.4g}" for x in v)
    print(f"{n:34} {o*1e3:10.4g} ms {w*1e3:10.4g} ms {w/o:8.3f}   {each(t[(n, 'old')])} | {each(t[(n, 'new')])}")
PY
