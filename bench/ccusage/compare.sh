#!/usr/bin/env bash
# bench/ccusage/compare.sh: run ccusage 20.0.24 and tokenmeter on a Claude
# Code transcript corpus from bench/ccgen, compare both with the corpus's
# ground truth, and time them (see docs/ccusage.md).
#
#   bench/ccusage/compare.sh              # generate a 1M-line corpus, compare
#   bench/ccusage/compare.sh CORPUS_DIR   # reuse a corpus: CORPUS_DIR/projects
#                                         # and CORPUS_DIR/truth.json
#
# Environment (defaults in brackets):
#   R      runs of each timed command; medians are reported           [3]
#   TMR    runs of tokenmeter's import and report                      [R]
#   LINES  lines of a generated corpus                                 [1000000]
#   SEED   seed of a generated corpus                                  [1]
#   END    last day of a generated corpus                              [2026-11-20]
#   OUT    folder for the corpus, reports and timings        [a new /tmp folder]
#   TIMER  auto: GNU time if installed, else bench/ccusage/measure;   [auto]
#          measure: always bench/ccusage/measure
#
# ccusage is installed once with npm into
# ${XDG_CACHE_HOME:-$HOME/.cache}/tokenmeter-bench/ccusage-20.0.24 (20.0.26,
# the latest, has no native package for these machines). Its native binary
# runs with an empty HOME so that only the corpus is read.
#
# Exit status: 0 when tokenmeter matches the truth in every token category
# (or tokenmeter cannot import Claude Code logs yet), 1 when it differs, 2 on
# any other failure.
set -Eeuo pipefail

R=${R:-3}
TMR=${TMR:-$R}
LINES=${LINES:-1000000}
SEED=${SEED:-1}
END=${END:-2026-11-20}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/tokenmeter-ccusage.XXXXXX")}
CCVER=20.0.24
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/tokenmeter-bench/ccusage-$CCVER
BIN=$OUT/bin
mkdir -p "$OUT" "$BIN"
trap 'echo "compare.sh: failed; see $OUT" >&2' ERR

say() { printf '%s\n' "$*" >&2; }

# median prints the median of its arguments (numbers).
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# timed FILE CMD...: run CMD, append "WALL_S MAXRSS_KB USER_S SYS_S" to FILE
# (GNU time also appends a line when CMD fails), and return CMD's exit
# status. GNU time when it is there, else bench/ccusage/measure.
if [ "${TIMER:-auto}" != measure ] && /usr/bin/time -f '%e %M %U %S' -o /dev/null true 2>/dev/null; then
	timed() { local f=$1; shift; /usr/bin/time -f '%e %M %U %S' -a -o "$f" "$@"; }
else
	(cd "$ROOT" && go build -o "$BIN/measure" ./bench/ccusage/measure)
	timed() {
		local f=$1; shift
		"$BIN/measure" -o "$f.one" -- "$@"
		cat "$f.one" >>"$f"
	}
fi

# summary FILE LABEL: print the medians of FILE's runs: wall time, CPU time
# (user + system) and peak RSS.
summary() {
	local f=$1 label=$2 re='^[0-9.]+ [0-9]+ [0-9.]+ [0-9.]+$'
	# shellcheck disable=SC2046
	printf '%-34s %8.2f s wall %8.2f s CPU %6.0f MiB  (%d runs)\n' "$label" \
		"$(median $(awk "/$re/ {print \$1}" "$f"))" \
		"$(median $(awk "/$re/ {print \$3 + \$4}" "$f"))" \
		"$(median $(awk "/$re/ {print \$2 / 1024}" "$f"))" \
		"$(grep -cE "$re" "$f")"
}

# 1. ccusage, installed once outside the repository.
CC=$CACHE/node_modules/@ccusage/ccusage-linux-x64/bin/ccusage
if [ ! -e "$CC" ]; then
	say "installing ccusage@$CCVER into $CACHE"
	mkdir -p "$CACHE"
	npm install --prefix "$CACHE" --no-audit --no-fund --no-save "ccusage@$CCVER" >&2
fi
chmod 755 "$CC" # npm does not keep the mode; the package's launcher sets it too
"$CC" --version >/dev/null

# 2. The corpus.
if [ $# -ge 1 ]; then
	DIR=$(cd "$1" && pwd)
	rm -f "$OUT/time-ccgen"
	[ -d "$DIR/projects" ] || { say "$DIR has no projects/ folder"; exit 2; }
	[ -f "$DIR/truth.json" ] || { say "$DIR has no truth.json (ccgen -truth DIR/truth.json)"; exit 2; }
else
	DIR=$OUT/corpus
	rm -rf "$DIR"
	mkdir -p "$DIR"
	(cd "$ROOT" && go build -o "$BIN/ccgen" ./bench/ccgen)
	say "generating $LINES lines (seed $SEED) into $DIR"
	: >"$OUT/time-ccgen"
	timed "$OUT/time-ccgen" "$BIN/ccgen" -q -out "$DIR" -seed "$SEED" -lines "$LINES" -end "$END" -truth "$DIR/truth.json"
fi
TRUTH=$DIR/truth.json
(cd "$ROOT" && go build -o "$BIN/diff" ./bench/ccusage/diff)
# Read the corpus once so that every tool meets a warm page cache.
find "$DIR/projects" -name '*.jsonl' -exec cat {} + >/dev/null

# 3. ccusage, R times.
say "ccusage $CCVER claude daily, $R runs"
: >"$OUT/time-ccusage"
for _ in $(seq "$R"); do
	home=$(mktemp -d)
	HOME=$home CLAUDE_CONFIG_DIR=$DIR timed "$OUT/time-ccusage" \
		"$CC" claude daily --json --offline --timezone UTC >"$OUT/ccusage.json"
	rm -rf "$home"
done

# 4. tokenmeter, if it can import Claude Code transcripts yet.
TM=$BIN/tokenmeter
TMJSON=
if ! (cd "$ROOT" && go build -o "$TM" ./cmd/tokenmeter) 2>"$OUT/tokenmeter-build.log"; then
	say "tokenmeter does not build (see $OUT/tokenmeter-build.log): comparing ccusage with the truth only"
elif ! "$TM" help 2>&1 | grep -q 'tokenmeter import'; then
	say "tokenmeter has no import command yet: comparing ccusage with the truth only"
else
	# import TIMES DATA LOG: exit status 4 means "imported, with warnings"
	# (the corpus's malformed lines).
	import() {
		local rc=0
		timed "$1" "$TM" import claude-code --dir "$DIR/projects" --data "$2" >"$3" 2>&1 || rc=$?
		if [ "$rc" != 0 ] && [ "$rc" != 4 ]; then
			say "tokenmeter import failed (exit $rc), see $3:"
			tail -5 "$3" >&2
			exit 2
		fi
	}
	say "tokenmeter import claude-code + report daily, $TMR runs"
	: >"$OUT/time-import"; : >"$OUT/time-report"; : >"$OUT/time-reimport"; : >"$OUT/time-rereport"
	for _ in $(seq "$TMR"); do
		data=$OUT/tokenmeter-data
		rm -rf "$data"
		import "$OUT/time-import" "$data" "$OUT/import.log"
		timed "$OUT/time-report" "$TM" report daily --json --tz UTC --data "$data" >"$OUT/tokenmeter.json"
		import "$OUT/time-reimport" "$data" "$OUT/reimport.log"
		timed "$OUT/time-rereport" "$TM" report daily --json --tz UTC --data "$data" >"$OUT/tokenmeter-again.json"
		if ! diff -q <(grep -v generated_at "$OUT/tokenmeter.json") <(grep -v generated_at "$OUT/tokenmeter-again.json") >/dev/null; then
			say "warning: the report changed after a second import of the same files"
		fi
	done
	TMJSON=$OUT/tokenmeter.json
fi

# 5. Compare.
args=(-truth "$TRUTH" -ccusage "$OUT/ccusage.json" -corpus "$DIR")
[ -n "$TMJSON" ] && args+=(-tokenmeter "$TMJSON")
status=0
"$BIN/diff" "${args[@]}" >"$OUT/diff.txt" || status=$?
[ "$status" -le 1 ] || exit 2
sed '/^Per day/,$d' "$OUT/diff.txt"

echo
echo "Timings on $(nproc) CPUs, medians ($DIR):"
if [ -s "$OUT/time-ccgen" ]; then summary "$OUT/time-ccgen" "ccgen (corpus generation)"; fi
summary "$OUT/time-ccusage" "ccusage claude daily"
if [ -n "$TMJSON" ]; then
	summary "$OUT/time-import" "tokenmeter import (first)"
	summary "$OUT/time-report" "tokenmeter report daily"
	summary "$OUT/time-reimport" "tokenmeter import (again, no-op)"
	summary "$OUT/time-rereport" "tokenmeter report daily (again)"
fi
echo
echo "Per-day comparison: $OUT/diff.txt"
exit "$status"
