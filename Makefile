# Everyday targets; .ci/run is what CI runs.
FUZZTIME ?= 20s

.PHONY: build test check fuzz bench

build:
	go build -o tokenmeter ./cmd/tokenmeter

test:
	go test -race ./...

check:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	go vet ./...

# A short run of every fuzz target; new interesting inputs land in the Go
# cache. Copy the ones worth keeping into the package's testdata/fuzz/.
fuzz:
	go test -run=^$$ -fuzz=FuzzFrame -fuzztime=$(FUZZTIME) ./internal/sse/
	go test -run=^$$ -fuzz=FuzzMeter -fuzztime=$(FUZZTIME) ./internal/anthropic/
	go test -run=^$$ -fuzz=FuzzParseRequest -fuzztime=$(FUZZTIME) ./internal/anthropic/
	go test -run=^$$ -fuzz=FuzzMeter -fuzztime=$(FUZZTIME) ./internal/openai/
	go test -run=^$$ -fuzz=FuzzParseRequest -fuzztime=$(FUZZTIME) ./internal/openai/
	go test -run=^$$ -fuzz=FuzzStripNullUsage -fuzztime=$(FUZZTIME) ./internal/openai/
	go test -run=^$$ -fuzz=FuzzEachMember -fuzztime=$(FUZZTIME) ./internal/jsonscan/
	go test -run=^$$ -fuzz=FuzzRelay -fuzztime=$(FUZZTIME) ./internal/proxy/
	go test -run=^$$ -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./internal/pricing/
	go test -run=^$$ -fuzz=FuzzExpectedUsage -fuzztime=$(FUZZTIME) ./internal/fakeupstream/
	go test -run=^$$ -fuzz=FuzzLine -fuzztime=$(FUZZTIME) ./internal/importer/claudecode/
	go test -run=^$$ -fuzz=FuzzLine -fuzztime=$(FUZZTIME) ./internal/importer/codex/
	go test -run=^$$ -fuzz=FuzzParseHook -fuzztime=$(FUZZTIME) ./internal/status/

bench:
	go test -run=^$$ -bench=. -benchmem ./...
