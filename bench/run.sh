#!/usr/bin/env bash
# bench/run.sh: measure tokenmeter serve against fake-upstream called directly
# and against a bare httputil.ReverseProxy (the floor), on this machine, and
# write the figures to bench/out/ (see docs/benchmarks.md).
#
#   bench/run.sh                 # R=5 repetitions, about 8 minutes
#   R=3 bench/run.sh             # quicker
#
# Environment (defaults in brackets):
#   R        repetitions of every measurement; medians are reported   [5]
#   N        sequential requests per one-connection latency run        [3000]
#   C, D     connections and seconds per saturation run                [64, 10]
#   STREAMS  concurrent open streams for the memory figure             [1000]
#   HOLD     seconds the streams are held open                         [15]
#   PIN      none: every process may use every CPU;                    [none]
#            split: servers on CPU 1, the load generator on CPU 0
#   WRK      auto: also cross-check saturation once (5 s) with wrk if  [auto]
#            it is installed; 0: skip
#   QUIET    before each measurement, wait while processes outside the [0.15]
#            benchmark keep the machine busier than this fraction...
#   QUIET_BUDGET  ...but never more than this many seconds in total    [90]
#   PORT     first of 7 consecutive loopback ports to use              [18780]
#
# Targets, all on 127.0.0.1: fake-upstream itself ("upstream"), the bare
# proxy ("bare"), and three tokenmeter serve instances: --sync normal
# ("normal", the default), --sync full ("full") and --durability strict
# ("strict"). Each has its own data directory under bench/out/data.
#
# Every loop is bounded in count and time, every load generator run is under
# `timeout`, and every process started here is stopped on exit.
set -euo pipefail

R=${R:-5}
N=${N:-3000}
C=${C:-64}
D=${D:-10}
STREAMS=${STREAMS:-1000}
HOLD=${HOLD:-15}
PIN=${PIN:-none}
WRK=${WRK:-auto}
PORT=${PORT:-18780}
QUIET=${QUIET:-0.15}
QUIET_BUDGET=${QUIET_BUDGET:-90}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out
BIN=$OUT/bin
DATA=$OUT/data
IDS=$OUT/ids
LOG=$OUT/log
RES=$OUT/results.jsonl
HUMAN=$OUT/results.txt

case $PIN in
none) SRV=() LG=() ;;
split) SRV=(taskset -c 1) LG=(taskset -c 0) ;;
*) echo "PIN must be none or split" >&2; exit 2 ;;
esac

PIDS=()
cleanup() {
	local pid alive i
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for i in $(seq 50); do
		alive=0
		for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "== $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
	local i
	for i in $(seq 100); do
		port_open "$1" && return 0
		sleep 0.1
	done
	echo "nothing listens on 127.0.0.1:$1 after 10s; see $LOG" >&2
	exit 1
}

# start NAME CMD...: starts CMD in the background (pinned by $SRV), logging to
# $LOG/NAME.log; sets LAST_PID.
start() {
	local name=$1
	shift
	"${SRV[@]}" "$@" >"$LOG/$name.log" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# busy: prints the fraction of the machine busy over the next second.
busy() {
	local a b
	a=$(head -1 /proc/stat)
	sleep 1
	b=$(head -1 /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN {
		split(a, x); split(b, y)
		for (i = 2; i <= 9; i++) { d = y[i] - x[i]; t += d; if (i != 5 && i != 6) u += d }
		printf "%.2f", (t > 0 ? u / t : 0)
	}'
}

# quiet: the machine may be shared (other builds, tests); wait, within the
# budget, until it is mostly idle before a measurement. Our servers are idle
# between measurements, so whatever is busy is someone else.
QUIET_USED=0
quiet() {
	local b
	while [ "$QUIET_USED" -lt "$QUIET_BUDGET" ]; do
		b=$(busy)
		awk -v b="$b" -v q="$QUIET" 'BEGIN { exit !(b > q) }' || return 0
		[ "$QUIET_USED" = 0 ] && echo "   machine busy ($b) with other work; waiting (budget ${QUIET_BUDGET}s)" >&2
		QUIET_USED=$((QUIET_USED + 1))
	done
}

kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

for tool in go jq taskset; do
	command -v "$tool" >/dev/null || { echo "bench/run.sh needs $tool (apt-get install -y jq util-linux)" >&2; exit 1; }
done
command -v sqlite3 >/dev/null || echo "sqlite3 not found: completeness falls back to report totals (apt-get install -y sqlite3 for the per-request check)" >&2

for p in $(seq "$PORT" $((PORT + 6))); do
	if port_open "$p"; then
		echo "port 127.0.0.1:$p is in use; set PORT to a free range" >&2
		exit 1
	fi
done

rm -rf "$OUT"
mkdir -p "$BIN" "$DATA" "$IDS" "$LOG"
: >"$RES"
: >"$HUMAN"

say "building"
(cd "$ROOT" && go build -o "$BIN/tokenmeter" ./cmd/tokenmeter &&
	go build -o "$BIN/bareproxy" ./bench/bareproxy &&
	go build -o "$BIN/loadgen" ./bench/loadgen &&
	go build -o "$BIN/summarize" ./bench/summarize)

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
# The commit measured; "+changes" when files that go into the binaries
# differ from it (bench/, tests and Markdown do not count).
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain -- . ':!bench' ':!*_test.go' ':!*.md' 2>/dev/null)" ]; then commit="$commit+changes"; fi
printf '{"mode":"machine","cpu":"%s","nproc":%d,"kernel":"%s","go_version":"%s","commit":"%s","pin":"%s","params":"R=%s N=%s C=%s D=%ss STREAMS=%s HOLD=%ss","started":"%s","loadavg":"%s"}\n' \
	"$cpu" "$(nproc)" "$(uname -sr)" "$(go version | awk '{print $3}')" "$commit" "$PIN" "$R" "$N" "$C" "$D" "$STREAMS" "$HOLD" \
	"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES"

UP_PORT=$PORT BARE_PORT=$((PORT + 1))
declare -A TM_PORT=([normal]=$((PORT + 2)) [full]=$((PORT + 3)) [strict]=$((PORT + 4)))
declare -A TM_FLAGS=([normal]="--sync normal" [full]="--sync full" [strict]="--durability strict")
declare -A PID URL

say "starting fake-upstream, bare proxy and three tokenmeter serve instances (pinning: $PIN)"
start upstream "$BIN/tokenmeter" fake-upstream --listen "127.0.0.1:$UP_PORT"
PID[upstream]=$LAST_PID URL[upstream]=http://127.0.0.1:$UP_PORT
start bare "$BIN/bareproxy" --listen "127.0.0.1:$BARE_PORT" --upstream "${URL[upstream]}"
PID[bare]=$LAST_PID URL[bare]=http://127.0.0.1:$BARE_PORT
for m in normal full strict; do
	# shellcheck disable=SC2086 # TM_FLAGS holds two words
	start "$m" "$BIN/tokenmeter" serve --listen "127.0.0.1:${TM_PORT[$m]}" --data "$DATA/$m" \
		--upstream "anthropic=${URL[upstream]}" --upstream "openai=${URL[upstream]}" ${TM_FLAGS[$m]}
	PID[$m]=$LAST_PID URL[$m]=http://127.0.0.1:${TM_PORT[$m]}/anthropic
done
wait_port "$UP_PORT"
wait_port "$BARE_PORT"
for m in normal full strict; do wait_port "${TM_PORT[$m]}"; done
PIDLIST="upstream=${PID[upstream]},bare=${PID[bare]},normal=${PID[normal]},full=${PID[full]},strict=${PID[strict]}"

# loadgen ARGS...: one bounded load generator run; JSON to $RES, human line
# to the terminal and $HUMAN.
loadgen() {
	local tmp=$OUT/.loadgen.err
	if ! timeout $((D + 120)) "${LG[@]}" "$BIN/loadgen" --pids "$PIDLIST" "$@" >>"$RES" 2>"$tmp"; then
		cat "$tmp" >&2
		echo "loadgen $* failed" >&2
		exit 1
	fi
	tee -a "$HUMAN" <"$tmp" >&2
}

TARGETS=(upstream bare normal full strict)
for rep in $(seq "$R"); do
	say "repetition $rep of $R"
	# Rotate the order every repetition so no target always runs first.
	for i in "${!TARGETS[@]}"; do
		t=${TARGETS[$(((i + rep - 1) % ${#TARGETS[@]}))]}
		quiet
		loadgen --mode latency --label "$t" --rep "$rep" --target "${URL[$t]}" --n "$N" --warmup 300 \
			--ids "$IDS/$t-lat-$rep.txt"
		quiet
		loadgen --mode throughput --label "$t" --rep "$rep" --target "${URL[$t]}" --c "$C" --d "${D}s" --warmup 256 \
			--ids "$IDS/$t-thr-$rep.txt"
	done
done

# Optional cross-check: the same saturation test with wrk, a C load generator
# that costs less CPU per request than Go's client.
if [ "$WRK" != 0 ] && command -v wrk >/dev/null && command -v sqlite3 >/dev/null; then
	say "cross-check with wrk"
	"$BIN/loadgen" --mode body >"$OUT/body.json"
	cat >"$OUT/post.lua" <<EOF
wrk.method = "POST"
local f = io.open("$OUT/body.json", "r"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Anthropic-Version"] = "2023-06-01"
wrk.headers["X-Api-Key"] = "sk-ant-bench-not-a-real-key"
wrk.headers["X-Fake-Upstream"] = "output=12"
EOF
	for t in "${TARGETS[@]}"; do
		quiet
		timeout 60 "${LG[@]}" wrk -t2 -c"$C" -d5s --latency -s "$OUT/post.lua" "${URL[$t]}/v1/messages" >"$LOG/wrk-$t.txt" 2>&1 || true
		awk -v t="$t" '
			function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return v*1000; if (v ~ /s$/) return v*1000000; return v }
			/^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) }
			/Non-2xx/ { non = $NF } /^Requests\/sec/ { rps = $2 }
			END { printf "{\"mode\":\"wrk\",\"label\":\"%s\",\"rep\":1,\"rps\":%s,\"p50_us\":%s,\"p99_us\":%s,\"non2xx\":%d}\n", t, rps+0, p50+0, p99+0, non+0 }
		' "$LOG/wrk-$t.txt" | tee -a "$RES" >&2
	done
fi

# Completeness: kill each gateway with SIGKILL (no graceful flush), then check
# that every response the load generator received in full with status 200
# has its completed row, and that no call was completed twice.
say "completeness: SIGKILL the gateways, then count ledger rows"
for m in normal full strict; do
	kill -KILL "${PID[$m]}"
	wait "${PID[$m]}" 2>/dev/null || true
	db=$DATA/$m/ledger.db
	cat "$IDS/$m"-thr-*.txt >"$IDS/$m-thr.all"
	cat "$IDS/$m"-*-*.txt >"$IDS/$m-all.all"
	verify=$("$BIN/tokenmeter" verify --data "$DATA/$m" >"$LOG/verify-$m.txt" 2>&1 && echo ok || echo FAILED)
	if command -v sqlite3 >/dev/null; then
		sqlite3 -readonly "$db" <<EOF | tee -a "$RES" >&2
CREATE TEMP TABLE thr(id TEXT);
CREATE TEMP TABLE alls(id TEXT);
.import $IDS/$m-thr.all thr
.import $IDS/$m-all.all alls
CREATE TEMP TABLE done AS SELECT request_key AS id, count(*) AS n FROM events WHERE kind = 'completed' GROUP BY request_key;
CREATE INDEX temp.done_id ON done(id);
SELECT json_object(
  'mode', 'completeness', 'label', '$m', 'method', 'request ids vs events (sqlite3)', 'verify', '$verify',
  'served_throughput', (SELECT count(*) FROM thr),
  'missing_throughput', (SELECT count(*) FROM thr WHERE id NOT IN (SELECT id FROM done)),
  'served_all', (SELECT count(*) FROM alls),
  'missing_all', (SELECT count(*) FROM alls WHERE id NOT IN (SELECT id FROM done)),
  'duplicates', (SELECT count(*) FROM done WHERE n > 1),
  'completed_rows', (SELECT count(*) FROM events WHERE kind = 'completed'),
  'not_ok', (SELECT count(*) FROM events WHERE kind = 'completed' AND outcome != 'ok'),
  'unfinished', (SELECT count(*) FROM events s WHERE kind = 'started'
                 AND NOT EXISTS (SELECT 1 FROM done d WHERE d.id = s.request_key)));
EOF
	else
		# Without sqlite3: compare the report's request count with every
		# response the load generator got from this gateway, warm-ups included.
		want=$(jq -s --arg m "$m" '[.[] | select(.label == $m and (.mode == "latency" or .mode == "throughput")) | .served + .warmup] | add' "$RES")
		got=$("$BIN/tokenmeter" report daily --json --data "$DATA/$m" | jq '.totals.requests')
		printf '{"mode":"completeness","label":"%s","method":"report totals.requests vs responses (no sqlite3)","verify":"%s","served_throughput":%d,"missing_throughput":%d,"served_all":%d,"missing_all":%d,"completed_rows":%d}\n' \
			"$m" "$verify" "$(cat "$IDS/$m-thr.all" | wc -l)" 0 "$want" $((want > got ? want - got : 0)) "$got" | tee -a "$RES" >&2
	fi
done

# Memory: a fresh gateway (defaults) and, for comparison, a fresh bare proxy,
# each holding $STREAMS streams open for $HOLD seconds while the upstream
# sends one event a second.
say "memory: $STREAMS open streams for ${HOLD}s"
MEM_PORT=$((PORT + 5)) MEMBARE_PORT=$((PORT + 6))
start mem "$BIN/tokenmeter" serve --listen "127.0.0.1:$MEM_PORT" --data "$DATA/mem" \
	--upstream "anthropic=${URL[upstream]}" --upstream "openai=${URL[upstream]}"
PID[mem]=$LAST_PID
start membare "$BIN/bareproxy" --listen "127.0.0.1:$MEMBARE_PORT" --upstream "${URL[upstream]}"
PID[membare]=$LAST_PID
wait_port "$MEM_PORT"
wait_port "$MEMBARE_PORT"
for m in normal bare; do
	if [ "$m" = normal ]; then pid=${PID[mem]} url=http://127.0.0.1:$MEM_PORT/anthropic; else pid=${PID[membare]} url=http://127.0.0.1:$MEMBARE_PORT; fi
	# One request first, so the baseline includes a warmed-up process.
	"$BIN/loadgen" --mode latency --n 10 --warmup 0 --target "$url" >/dev/null 2>&1
	base=$(kib "$pid" VmRSS)
	timeout $((HOLD + 60)) "${LG[@]}" "$BIN/loadgen" --mode streams --label "$m" --target "$url" --c "$STREAMS" \
		--d "${HOLD}s" --delay 1s --output 200 --pids "mem=$pid,upstream=${PID[upstream]}" >"$OUT/streams-$m.json" 2>"$LOG/streams-$m.err" &
	lg=$!
	maxrss=0
	for i in $(seq $((HOLD + 60))); do
		kill -0 "$lg" 2>/dev/null || break
		rss=$(kib "$pid" VmRSS)
		[ "${rss:-0}" -gt "$maxrss" ] && maxrss=$rss
		sleep 1
	done
	wait "$lg" || { cat "$LOG/streams-$m.err" >&2; exit 1; }
	cat "$LOG/streams-$m.err" | tee -a "$HUMAN" >&2
	hwm=$(kib "$pid" VmHWM)
	sleep 2
	after=$(kib "$pid" VmRSS)
	rows=0
	if [ "$m" = normal ] && command -v sqlite3 >/dev/null; then
		# The cancelled streams must all be recorded; give the ledger up to 10s.
		for i in $(seq 20); do
			rows=$(sqlite3 -readonly "$DATA/mem/ledger.db" "SELECT count(*) FROM events WHERE kind = 'completed' AND stream = 1")
			[ "$rows" -ge "$STREAMS" ] && break
			sleep 0.5
		done
	fi
	jq -c --arg l "$m" --argjson s "$STREAMS" --argjson b "$base" --argjson mx "$maxrss" --argjson h "$hwm" \
		--argjson a "$after" --argjson r "$rows" \
		'{mode:"memory", label:$l, streams:$s, open:(.open // 0), first_event:(.first_event // 0), errors:.errors,
		  error_sample:(.error_sample // ""), baseline_kib:$b, max_rss_kib:$mx, hwm_kib:$h, after_kib:$a, rows:$r}' \
		"$OUT/streams-$m.json" | tee -a "$RES" >&2
done

printf '{"mode":"quiet","seconds":%d,"budget":%d}\n' "$QUIET_USED" "$QUIET_BUDGET" >>"$RES"
"$BIN/summarize" "$RES" | tee "$OUT/summary.md"
