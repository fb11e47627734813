package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// runCalls checks RecentCalls: newest first, completed events only,
// filters, paging and the limit.
func runCalls(t *testing.T, s tokenmeter.Store) {
	ctx := context.Background()
	var in []tokenmeter.Event
	for i := range 10 {
		ev := Event("c"+string(rune('0'+i)), t0.Add(time.Duration(i)*time.Second), tokenmeter.Usage{InputTokens: int64(i)})
		if i%2 == 1 {
			ev.Model, ev.Principal = "gpt-5", "key:alice"
		}
		if i == 9 {
			ev.Outcome, ev.Status = tokenmeter.OutcomeError, 500
		}
		in = append(in, ev)
	}
	// Two calls at the same instant, a started event and a revision: the
	// latter two are not calls.
	same := Event("same", t0.Add(5*time.Second), tokenmeter.Usage{})
	started := in[0]
	started.Kind, started.Key, started.RequestKey, started.Time = tokenmeter.KindStarted, "x/started", "x", t0.Add(time.Hour)
	revised := in[1]
	revised.Kind, revised.Key, revised.Time = tokenmeter.KindRevised, "c1/revised", t0.Add(time.Hour)
	if _, err := s.Append(ctx, append(in, same, started, revised)); err != nil {
		t.Fatal(err)
	}
	ids := func(evs []tokenmeter.Event) []string {
		out := []string{}
		for _, ev := range evs {
			out = append(out, ev.RequestKey)
		}
		return out
	}
	eq := func(a, b []string) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	for _, tc := range []struct {
		name string
		q    tokenmeter.CallQuery
		want []string
	}{
		{"All", tokenmeter.CallQuery{}, []string{"c9", "c8", "c7", "c6", "same", "c5", "c4", "c3", "c2", "c1", "c0"}},
		{"Limit", tokenmeter.CallQuery{Limit: 3}, []string{"c9", "c8", "c7"}},
		{"Model", tokenmeter.CallQuery{Model: "gpt-5"}, []string{"c9", "c7", "c5", "c3", "c1"}},
		{"PrincipalOutcome", tokenmeter.CallQuery{Principal: "key:alice", Outcome: tokenmeter.OutcomeError}, []string{"c9"}},
		{"Provider", tokenmeter.CallQuery{Provider: "openai"}, []string{}},
		{"Project", tokenmeter.CallQuery{Project: "none"}, []string{}},
		{"Before", tokenmeter.CallQuery{Before: t0.Add(2 * time.Second)}, []string{"c1", "c0"}},
		{"Since", tokenmeter.CallQuery{Since: t0.Add(8 * time.Second)}, []string{"c9", "c8"}},
	} {
		got, err := s.RecentCalls(ctx, tc.q)
		if err != nil {
			t.Fatalf("RecentCalls(%+v): %v", tc.q, err)
		}
		if g := ids(got); !eq(g, tc.want) {
			t.Errorf("%s: RecentCalls(%+v) = %v; want %v", tc.name, tc.q, g, tc.want)
		}
	}
	// Paging through calls that share a time: (time, seq) is the cursor.
	var pages []string
	q := tokenmeter.CallQuery{Limit: 2}
	for range 20 {
		page, err := s.RecentCalls(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages = append(pages, ids(page)...)
		last := page[len(page)-1]
		q.Before, q.BeforeSeq = last.Time, last.Seq
	}
	if want := []string{"c9", "c8", "c7", "c6", "same", "c5", "c4", "c3", "c2", "c1", "c0"}; !eq(pages, want) {
		t.Errorf("paging by 2 = %v; want %v", pages, want)
	}
	got, err := s.RecentCalls(ctx, tokenmeter.CallQuery{Limit: 1})
	if err != nil || len(got) != 1 || got[0].Usage.InputTokens != 9 || got[0].Cost != 42 || got[0].Latency != 1500*time.Microsecond {
		t.Errorf("RecentCalls(limit 1) = %+v, %v; want c9 with its usage, cost and latency", got, err)
	}
	if n := (tokenmeter.CallQuery{Limit: 5000}).EffectiveLimit(); n != tokenmeter.MaxCallLimit {
		t.Errorf("EffectiveLimit(5000) = %d; want %d", n, tokenmeter.MaxCallLimit)
	}
}
