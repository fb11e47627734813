#!/usr/bin/env bash
# bench/limits.sh: issue 4's performance target. Two tokenmeter serve
# instances on fresh data directories, both called through a virtual key:
# "none" has no limits, "ten" has ten hard limits that apply to every
# request (global, key, project and model scopes; tokens, input and output
# tokens, requests and cost; hour, day, week, month, rolling and 5-hour-block
# windows; maxima no run can reach). bench/loadgen drives them alternately,
# R repetitions, and the script prints the medians, the p50 added by the
# limits and the throughput ratio, each paired within a repetition (see
# docs/benchmarks.md, "Hard limits (issue 4)").
#
#   bench/limits.sh              # R=5, about 2 minutes
#   R=3 D=5 bench/limits.sh      # quicker
#
# Environment (defaults in brackets):
#   R     repetitions; the order of the two gateways alternates     [5]
#   N     sequential requests per one-connection latency run         [3000]
#   C, D  connections and seconds per throughput run on one key      [64, 10]
#   PORT  first of 3 consecutive loopback ports                      [18790]
#   OUT   output directory (binaries, data, logs, results.jsonl)     [a new /tmp dir]
#
# Every load generator run is under `timeout`, and every process started
# here is stopped on exit.
set -euo pipefail

R=${R:-5}
N=${N:-3000}
C=${C:-64}
D=${D:-10}
PORT=${PORT:-18790}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/tokenmeter-limits.XXXXXX)}
BIN=$OUT/bin
LOG=$OUT/log
RES=$OUT/results.jsonl

PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
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

command -v jq >/dev/null || { echo "bench/limits.sh needs jq" >&2; exit 1; }
for p in $PORT $((PORT + 1)) $((PORT + 2)); do
	if port_open "$p"; then
		echo "port 127.0.0.1:$p is in use; set PORT to a free range" >&2
		exit 1
	fi
done
rm -rf "$BIN" "$OUT/data" "$LOG"
mkdir -p "$BIN" "$OUT/data" "$LOG"
: >"$RES"

say "building into $BIN"
(cd "$ROOT" && go build -o "$BIN/tokenmeter" ./cmd/tokenmeter && go build -o "$BIN/loadgen" ./bench/loadgen)
TM=$BIN/tokenmeter
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain -- . ':!bench' ':!*_test.go' ':!*.md' 2>/dev/null)" ]; then commit="$commit+changes"; fi
say "commit $commit, $(nproc) CPUs, R=$R N=$N C=$C D=${D}s, load $(cut -d' ' -f1-3 /proc/loadavg)"

# The provider credential the gateway sends upstream for virtual keys
# (fake-upstream accepts any).
export ANTHROPIC_API_KEY=sk-ant-bench-upstream

UP=http://127.0.0.1:$PORT
"$TM" fake-upstream --listen "127.0.0.1:$PORT" >"$LOG/upstream.log" 2>&1 &
PIDS+=($!)
UP_PID=$!
declare -A URL KEY PID
i=1
for g in none ten; do
	data=$OUT/data/$g
	# The key first, on the data directory serve will open.
	"$TM" keys create --json --name bench --project bench --data "$data" >"$OUT/key-$g.json"
	KEY[$g]=$(jq -r .key "$OUT/key-$g.json")
	if [ "$g" = ten ]; then
		model=claude-sonnet-4-5-20250929 # the model of loadgen's request
		big=1000000000000 dollars=1000000000
		while read -r name args; do
			# shellcheck disable=SC2086 # args holds several words
			"$TM" limits set "$name" $args --mode hard --data "$data"
		done <<EOF
g-tokens-day --scope global --metric tokens --max $big --window day
g-requests-hour --scope global --metric requests --max $big --window hour
g-cost-month --scope global --metric cost_usd --max $dollars --window month
k-tokens-5h --scope key:bench --metric tokens --max $big --window 5h-block
k-requests-rolling --scope key:bench --metric requests --max $big --window rolling:1h
k-cost-week --scope key:bench --metric cost_usd --max $dollars --window week
p-input-day-ny --scope project:bench --metric input_tokens --max $big --window day --reset-at 09:00 --tz America/New_York
p-output-rolling --scope project:bench --metric output_tokens --max $big --window rolling:24h
m-tokens-month --scope model:$model --metric tokens --max $big --window month
m-requests-rolling --scope model:$model --metric requests --max $big --window rolling:5h
EOF
		"$TM" limits list --data "$data" >"$OUT/limits-before.txt"
	fi
	"$TM" serve --listen "127.0.0.1:$((PORT + i))" --data "$data" --upstream "anthropic=$UP" \
		--require-virtual-key >"$LOG/$g.log" 2>&1 &
	PIDS+=($!)
	PID[$g]=$!
	URL[$g]=http://127.0.0.1:$((PORT + i))/anthropic
	i=$((i + 1))
done
wait_port "$PORT"
wait_port $((PORT + 1))
wait_port $((PORT + 2))
PIDLIST="upstream=$UP_PID,none=${PID[none]},ten=${PID[ten]}"

# One request to each: "ten" must answer with a limit header, "none" without.
for g in none ten; do
	h=$(curl -s -o /dev/null -D - -H "x-api-key: ${KEY[$g]}" -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' \
		--data-binary @<("$BIN/loadgen" --mode body) "${URL[$g]}/v1/messages" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-tokenmeter-limit" {print $2}')
	if { [ "$g" = ten ] && [ -z "$h" ]; } || { [ "$g" = none ] && [ -n "$h" ]; }; then
		echo "gateway $g: x-tokenmeter-limit is \"$h\"; the limits are not applied as intended" >&2
		exit 1
	fi
	say "gateway $g answers; tightest limit: ${h:-none}"
done

loadgen() {
	timeout $((D + 120)) "$BIN/loadgen" --pids "$PIDLIST" "$@" >>"$RES" 2>>"$LOG/loadgen.txt" || {
		tail -3 "$LOG/loadgen.txt" >&2
		echo "loadgen $* failed" >&2
		exit 1
	}
	tail -1 "$LOG/loadgen.txt" >&2
}

for rep in $(seq "$R"); do
	say "repetition $rep of $R"
	order=(none ten)
	[ $((rep % 2)) = 0 ] && order=(ten none)
	for g in "${order[@]}"; do
		loadgen --mode latency --label "$g" --rep "$rep" --target "${URL[$g]}" --key "${KEY[$g]}" --n "$N" --warmup 300
	done
	for g in "${order[@]}"; do
		loadgen --mode throughput --label "$g" --rep "$rep" --target "${URL[$g]}" --key "${KEY[$g]}" --c "$C" --d "${D}s" --warmup 256
	done
done
"$TM" limits list --data "$OUT/data/ten" >"$OUT/limits-after.txt"

# Medians, and the paired differences and ratios (within each repetition).
say "summary (medians of $R; results in $RES)"
jq -rs '
	def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	def r(x): (x * 10 | round) / 10;
	def cpu(l): (.proc_cpu_s[l] // 0) / ([.served, 1] | max) * 1e6;
	(map(select(.mode == "latency")) | group_by(.rep)) as $lat
	| (map(select(.mode == "throughput")) | group_by(.rep)) as $thr
	| def pick(g; l): map(select(.label == l))[0];
	  "one connection (sequential)  p50 µs: none \($lat | map(pick(.; "none").p50_us) | median | r(.)), ten \($lat | map(pick(.; "ten").p50_us) | median | r(.))",
	  "                             p99 µs: none \($lat | map(pick(.; "none").p99_us) | median | r(.)), ten \($lat | map(pick(.; "ten").p99_us) | median | r(.))",
	  "  p50 added by ten limits (paired): \($lat | map(pick(.; "ten").p50_us - pick(.; "none").p50_us) | median | r(.)) µs  [per rep: \($lat | map(pick(.; "ten").p50_us - pick(.; "none").p50_us | r(.)) | join(", "))]  target <= 50 µs",
	  "  p99 added by ten limits (paired): \($lat | map(pick(.; "ten").p99_us - pick(.; "none").p99_us) | median | r(.)) µs",
	  "throughput (\($thr[0][0].conns) conns, one key)  req/s: none \($thr | map(pick(.; "none").rps) | median | r(.)), ten \($thr | map(pick(.; "ten").rps) | median | r(.))",
	  "  ten / none (paired): \($thr | map(pick(.; "ten").rps / pick(.; "none").rps * 100) | median | r(.)) %  [per rep: \($thr | map(pick(.; "ten").rps / pick(.; "none").rps * 100 | r(.)) | join(", "))]  target >= 90 %",
	  "  p50 / p99 µs: none \($thr | map(pick(.; "none").p50_us) | median | r(.)) / \($thr | map(pick(.; "none").p99_us) | median | r(.)), ten \($thr | map(pick(.; "ten").p50_us) | median | r(.)) / \($thr | map(pick(.; "ten").p99_us) | median | r(.))",
	  "  gateway CPU µs/request: none \($thr | map(pick(.; "none") | cpu("none")) | median | r(.)), ten \($thr | map(pick(.; "ten") | cpu("ten")) | median | r(.))",
	  "  errors: none \($thr | map(pick(.; "none").errors) | add), ten \($thr | map(pick(.; "ten").errors) | add); other load (median) \(map(select(.mode == "throughput").other_load) | median | r(. * 100)) %"
' "$RES" | tee "$OUT/summary.txt"
