#!/usr/bin/env bash
# bench/gateway-compare.sh: what a change costs the gateway's hot path.
# Builds cmd/tokenmeter's test binary at two commits (BASE and HEAD) and
# runs BenchmarkGateway's bare-proxy and tokenmeter sub-benchmarks from
# both, interleaved, R times, so that both see the same machine load. For
# each commit it prints the median µs per call, the median added over the
# bare proxy measured in the same run, and allocations per call; then the
# difference HEAD minus BASE. (Issue 12's budget: +10 µs p50.)
#
#   bench/gateway-compare.sh                 # BASE=f343504 (before issue 12), R=7
#   BASE=HEAD~3 R=5 N=3000 bench/gateway-compare.sh
#
# Environment (defaults in brackets):
#   BASE  the commit to compare with                               [f343504]
#   R     interleaved repetitions                                  [7]
#   N     calls per sub-benchmark run (-benchtime Nx)              [2000]
#   OUT   output directory (binaries, raw results)                 [a new /tmp dir]
set -euo pipefail

BASE=${BASE:-f343504}
R=${R:-7}
N=${N:-2000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/tokenmeter-gwcmp.XXXXXX)}
mkdir -p "$OUT"

WT=$OUT/base-tree
git -C "$ROOT" worktree add -q --detach "$WT" "$BASE"
trap 'git -C "$ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || true' EXIT
(cd "$WT" && go test -c -o "$OUT/base.test" ./cmd/tokenmeter)
(cd "$ROOT" && go test -c -o "$OUT/head.test" ./cmd/tokenmeter)

PATTERN='BenchmarkGateway/(json|sse)/(bare-proxy|tokenmeter-sync-normal)$'
for i in $(seq 1 "$R"); do
	# Alternate which commit goes first.
	order="base head"
	[ $((i % 2)) -eq 0 ] && order="head base"
	for v in $order; do
		(cd "$ROOT/cmd/tokenmeter" && "$OUT/$v.test" -test.run '^$' -test.bench "$PATTERN" \
			-test.benchtime "${N}x" -test.benchmem) >"$OUT/$v.$i.txt" 2>&1
	done
done

python3 - "$OUT" "$R" <<'EOF'
import re, statistics, sys
out, reps = sys.argv[1], int(sys.argv[2])
runs = {}
for v in ("base", "head"):
    for i in range(1, reps + 1):
        for line in open(f"{out}/{v}.{i}.txt"):
            m = re.match(r"BenchmarkGateway/(\S+?)-\d+\s+\d+\s+(\d+) ns/op\s+(\d+) B/op\s+(\d+) allocs/op", line)
            if m:
                runs.setdefault((v, m.group(1)), []).append((i, int(m.group(2)) / 1000, int(m.group(4))))
med = lambda xs: statistics.median(xs)
for mode in ("json", "sse"):
    added = {}
    for v in ("base", "head"):
        tm = {i: us for i, us, _ in runs[(v, mode + "/tokenmeter-sync-normal")]}
        bp = {i: us for i, us, _ in runs[(v, mode + "/bare-proxy")]}
        added[v] = [tm[i] - bp[i] for i in tm if i in bp]
        allocs = med([a for _, _, a in runs[(v, mode + "/tokenmeter-sync-normal")]])
        print(f"{mode:4} {v}: tokenmeter {med(tm.values()):7.1f} µs, bare proxy {med(bp.values()):7.1f} µs, "
              f"added {med(added[v]):7.1f} µs (runs {', '.join(f'{a:.0f}' for a in added[v])}), {allocs:.0f} allocs/call")
    print(f"{mode:4} head - base, added µs: {med(added['head']) - med(added['base']):+.1f}")
EOF
echo "raw results in $OUT"
