package tokenmeter_test

import (
	"math/rand/v2"
	"testing"

	"github.com/tokenmeter/tokenmeter"
)

// TestSumContribution: for events grouped by kind and usage state, the
// contribution of a group's sums (SumContribution) equals the sum of the
// events' own contributions.
func TestSumContribution(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	type state struct {
		kind                     tokenmeter.Kind
		known, estimated, priced bool
	}
	groups := map[state]*struct {
		sum tokenmeter.Event
		n   int64
	}{}
	var want tokenmeter.Contribution
	kinds := []tokenmeter.Kind{tokenmeter.KindStarted, tokenmeter.KindProgress, tokenmeter.KindCompleted, tokenmeter.KindRevised, tokenmeter.KindRetracted}
	for range 2000 {
		ev := tokenmeter.Event{Kind: kinds[rng.IntN(len(kinds))], UsageKnown: rng.IntN(2) == 0, CostKnown: rng.IntN(2) == 0,
			Usage: tokenmeter.Usage{InputTokens: rng.Int64N(100), OutputTokens: rng.Int64N(100), CacheReadTokens: rng.Int64N(10),
				CacheWrite1hTokens: rng.Int64N(10), WebSearchRequests: rng.Int64N(3)},
			Cost: tokenmeter.Micros(rng.Int64N(1000)), Hold: tokenmeter.Hold{Tokens: rng.Int64N(50), Cost: tokenmeter.Micros(rng.Int64N(50))}}
		if !ev.UsageKnown && rng.IntN(2) == 0 {
			ev.Estimate = "a guess"
		}
		if c, ok := ev.Contribution(); ok {
			want.Add(c)
		}
		k := state{ev.Kind, ev.UsageKnown, ev.Estimate != "", ev.CostKnown}
		g := groups[k]
		if g == nil {
			g = &struct {
				sum tokenmeter.Event
				n   int64
			}{sum: tokenmeter.Event{Kind: ev.Kind, UsageKnown: ev.UsageKnown, Estimate: ev.Estimate, CostKnown: ev.CostKnown}}
			groups[k] = g
		}
		g.sum.Usage, g.sum.Cost, g.sum.Hold = g.sum.Usage.Add(ev.Usage), g.sum.Cost+ev.Cost, g.sum.Hold.Add(ev.Hold)
		g.n++
	}
	var got tokenmeter.Contribution
	for _, g := range groups {
		got.Add(tokenmeter.SumContribution(&g.sum, g.n))
	}
	if got != want {
		t.Errorf("sum over groups %+v\nwant (sum over events) %+v", got, want)
	}
}

// TestScopeApplies pins the scope rule that every store and the gateway
// share.
func TestScopeApplies(t *testing.T) {
	for _, c := range []struct {
		scope, principal, project, model string
		want                             bool
	}{
		{"global", "", "", "", true},
		{"key:alice", "key:alice", "", "m", true},
		{"key:alice", "key:alicex", "", "m", false},
		{"key:alice", "cred:alice", "", "m", false},
		{"key:alice", "alice", "", "m", false},
		{"project:web", "key:a", "web", "", true},
		{"project:web", "key:a", "webx", "", false},
		{"model:claude-sonnet-4-5", "", "", "claude-sonnet-4-5", true},
		{"model:claude-sonnet-4-5", "", "", "claude-sonnet-4-5-20250929", true},
		{"model:claude-sonnet-4-5-20250929", "", "", "claude-sonnet-4-5", true},
		{"model:gpt-4o", "", "", "gpt-4o-2024-08-06", true},
		{"model:gpt-4o", "", "", "gpt-4o-mini", false},
		{"model:gpt-4o", "", "", "", false},
		{"team:x", "", "", "", false},
	} {
		if got := tokenmeter.ScopeApplies(c.scope, c.principal, c.project, c.model); got != c.want {
			t.Errorf("ScopeApplies(%q, %q, %q, %q) = %v, want %v", c.scope, c.principal, c.project, c.model, got, c.want)
		}
	}
	if _, err := tokenmeter.CompileScope("project:"); tokenmeter.ErrorCode(err) != tokenmeter.EINVALID {
		t.Errorf("CompileScope(project:) = %v, want EINVALID", err)
	}
}
