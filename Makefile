# Everyday targets; .ci/run is what CI runs.
FUZZTIME ?= 20s

.PHONY: build test check fuzz fuzz-list bench

build:
	go build -o tokenmeter ./cmd/tokenmeter

test:
	go test -race ./...

check:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	go vet ./...

# A short run of every fuzz target: each Fuzz function of every package,
# found with go test -list (there is no hand-kept list to forget one in).
# New interesting inputs land in the Go cache; copy the ones worth keeping
# into the package's testdata/fuzz/. FUZZTIME=1x checks that every target builds and
# passes its seed corpus.
FUZZ_LIST = go test -list '^Fuzz' ./...
FUZZ_AWK = awk '/^Fuzz/ { f[n++] = $$1; next } /^ok/ { for (i = 0; i < n; i++) print $$2, f[i]; n = 0 }'

fuzz-list:
	@out=$$($(FUZZ_LIST)) && echo "$$out" | $(FUZZ_AWK)

fuzz:
	@set -e; out=$$($(FUZZ_LIST)); targets=$$(echo "$$out" | $(FUZZ_AWK)); \
	test -n "$$targets" || { echo "make fuzz: no fuzz targets found" >&2; exit 1; }; \
	echo "$$targets" | while read -r pkg fn; do \
		echo "== $$fn ($$pkg)"; \
		go test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) "$$pkg" || exit 1; \
	done

bench:
	go test -run=^$$ -bench=. -benchmem ./...
