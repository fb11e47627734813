package tokenmeter

import (
	"testing"
	"time"
)

// TestChainHashStable pins the canonical form: a change to ChainHash that
// alters the hash of an existing event would make every ledger written
// before it fail verification.
func TestChainHashStable(t *testing.T) {
	ev := &Event{Seq: 7, PrevHash: GenesisHash, Key: "k/completed", RequestKey: "k", Kind: KindCompleted, Time: time.UnixMicro(1764400000123456),
		Source: SourceProxy, Instance: "i", Provider: "anthropic", Endpoint: "/v1/messages", Model: "m", Stream: true, Principal: "cred:x",
		Project: "p", Tags: "a,b", UpstreamRequestID: "req", Status: 200, Outcome: OutcomeOK, Reason: "r",
		Usage: Usage{1, 2, 3, 4, 5, 6, 7, 8}, UsageKnown: true, RawUsage: []byte(`{"x":1}`), Latency: 1500 * time.Microsecond,
		TTFB: 99 * time.Microsecond, Cost: 42, CostKnown: true}
	if got, want := ChainHash(ev), "e83fa891912a0be6ad04dc18df1274636620d8ea5524d6efc5356f8a8d52c10f"; got != want {
		t.Errorf("ChainHash (v1 event) = %s, want %s", got, want)
	}
	ev.Session = "s"
	if got, want := ChainHash(ev), "b32985a51080eee998eeb491e62691469af51480f4c5c3328dcc78183eb3e36e"; got != want {
		t.Errorf("ChainHash (with session) = %s, want %s", got, want)
	}
}

func BenchmarkChainHash(b *testing.B) {
	ev := &Event{Seq: 7, PrevHash: GenesisHash, Key: "claude-code:msg_01ABCDEFGHIJKLMNOPQRSTUV/completed", RequestKey: "claude-code:msg_01ABCDEFGHIJKLMNOPQRSTUV",
		Kind: KindCompleted, Time: time.Now(), Source: SourceClaudeCode, Provider: "anthropic", Model: "claude-sonnet-4-5-20250929",
		Usage: Usage{InputTokens: 10, OutputTokens: 300, CacheReadTokens: 40000}, UsageKnown: true, CostKnown: true, Cost: 1234}
	for b.Loop() {
		ChainHash(ev)
	}
}
