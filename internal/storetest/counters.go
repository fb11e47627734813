package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
)

// RunCounters checks the CredentialStore and CounterStore parts of Store.
func RunCounters(t *testing.T, open Opener) {
	ctx := context.Background()
	mustOpen := func(t *testing.T) tokenmeter.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}

	t.Run("Credentials", func(t *testing.T) {
		s := mustOpen(t)
		secret := "sk-ant-api03-abcdefghijklmnopqrstuvwxyz-WXYZ"
		c := tokenmeter.CredentialOf("anthropic", secret)
		if c.Hint != "sk-ant-api03...WXYZ" {
			t.Errorf("Hint = %q, want sk-ant-api03...WXYZ", c.Hint)
		}
		c.FirstSeen, c.LastSeen = t0, t0
		if err := s.NoteCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
		later := c
		later.FirstSeen, later.LastSeen = t0.Add(time.Hour), t0.Add(time.Hour)
		if err := s.NoteCredential(ctx, later); err != nil {
			t.Fatal(err)
		}
		earlier := c // an out-of-order note never moves LastSeen back
		earlier.FirstSeen, earlier.LastSeen = t0.Add(time.Minute), t0.Add(time.Minute)
		if err := s.NoteCredential(ctx, earlier); err != nil {
			t.Fatal(err)
		}
		other := tokenmeter.CredentialOf("openai", "sk-short")
		other.LastSeen, other.VirtualKeys = t0, true
		if err := s.NoteCredential(ctx, other); err != nil {
			t.Fatal(err)
		}
		passed := other // the same credential passed through later: still the route's
		passed.VirtualKeys = false
		if err := s.NoteCredential(ctx, passed); err != nil {
			t.Fatal(err)
		}
		got, err := s.Credentials(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []tokenmeter.Credential{
			{ID: c.ID, Provider: "anthropic", Hint: c.Hint, FirstSeen: t0.Truncate(time.Microsecond), LastSeen: t0.Add(time.Hour).Truncate(time.Microsecond)},
			{ID: other.ID, Provider: "openai", Hint: "sk-s...", FirstSeen: t0.Truncate(time.Microsecond), LastSeen: t0.Truncate(time.Microsecond), VirtualKeys: true},
		}
		if want[0].ID > want[1].ID {
			want[0], want[1] = want[1], want[0]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Credentials (-want +got):\n%s", diff)
		}
		if err := s.NoteCredential(ctx, tokenmeter.Credential{ID: secret, LastSeen: t0}); tokenmeter.ErrorCode(err) != tokenmeter.EINVALID {
			t.Errorf("NoteCredential with a secret as id = %v, want EINVALID", err)
		}
	})

	t.Run("Samples", func(t *testing.T) {
		s := mustOpen(t)
		cred := tokenmeter.CredentialID("k1")
		mk := func(at time.Time, counter string, remaining int64) tokenmeter.Sample {
			return tokenmeter.Sample{Time: at, Provider: "anthropic", Credential: cred, Counter: counter,
				Limit: 1000, Remaining: remaining, Utilization: tokenmeter.NoValue, Reset: at.Add(time.Minute).Truncate(time.Second),
				Status: "allowed", Raw: "x: y", Source: tokenmeter.SampleGateway}
		}
		in := []tokenmeter.Sample{
			mk(t0, "anthropic-ratelimit-tokens", 900),
			mk(t0.Add(time.Second), "anthropic-ratelimit-requests", 49),
			mk(t0.Add(2*time.Second), "anthropic-ratelimit-tokens", 800),
			mk(t0.Add(3*time.Hour), "anthropic-ratelimit-tokens", 1000),
		}
		in[1].Reset = time.Time{}
		if err := s.AddSamples(ctx, in); err != nil {
			t.Fatal(err)
		}
		if err := s.AddSamples(ctx, nil); err != nil {
			t.Fatalf("AddSamples(nil) = %v", err)
		}
		for i := range in {
			in[i].Time = in[i].Time.Truncate(time.Microsecond).UTC()
		}
		got, err := s.Samples(ctx, tokenmeter.SampleQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(in, got); diff != "" {
			t.Errorf("Samples (-want +got):\n%s", diff)
		}
		got, _ = s.Samples(ctx, tokenmeter.SampleQuery{Counter: "anthropic-ratelimit-tokens", Since: t0.Add(time.Second), Until: t0.Add(time.Hour)})
		if len(got) != 1 || got[0].Remaining != 800 {
			t.Errorf("Samples by counter and span = %+v, want the one with remaining 800", got)
		}
		got, _ = s.Samples(ctx, tokenmeter.SampleQuery{Credential: cred, Limit: 2})
		if len(got) != 2 || got[0].Remaining != 800 || got[1].Remaining != 1000 {
			t.Errorf("Samples with Limit 2 = %+v, want the latest two, oldest first", got)
		}
		n, err := s.PruneSamples(ctx, t0.Add(time.Hour))
		if err != nil || n != 3 {
			t.Errorf("PruneSamples = %d, %v; want 3, nil", n, err)
		}
		got, _ = s.Samples(ctx, tokenmeter.SampleQuery{})
		if len(got) != 1 {
			t.Errorf("after pruning %d samples are left, want 1", len(got))
		}
	})

	t.Run("Anomalies", func(t *testing.T) {
		s := mustOpen(t)
		a := tokenmeter.Anomaly{Kind: tokenmeter.AnomalyEarlyReset, Provider: "anthropic", Credential: tokenmeter.CredentialID("k1"),
			Counter: "unified-5h", Detected: t0.Add(time.Minute), Start: t0, End: t0.Add(time.Minute),
			Summary: "unified-5h fell from 62% to 3% 3h before its reset", Evidence: json.RawMessage(`{"before":{"utilization":6200}}`)}
		id, err := s.AddAnomaly(ctx, a)
		if err != nil || id <= 0 {
			t.Fatalf("AddAnomaly = %d, %v", id, err)
		}
		again := a
		again.Detected, again.Summary = t0.Add(time.Hour), "seen again"
		if id2, err := s.AddAnomaly(ctx, again); err != nil || id2 != id {
			t.Errorf("AddAnomaly of the same anomaly = %d, %v; want %d (stored once)", id2, err, id)
		}
		b := a
		b.Kind, b.Counter, b.Start, b.Detected, b.Evidence = tokenmeter.AnomalyThrottling, "", t0.Add(2*time.Hour), t0.Add(2*time.Hour), nil
		idb, err := s.AddAnomaly(ctx, b)
		if err != nil || idb == id {
			t.Fatalf("AddAnomaly of another anomaly = %d, %v", idb, err)
		}
		got, err := s.Anomaly(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := a
		want.ID = id
		want.Detected, want.Start, want.End = a.Detected.Truncate(time.Microsecond), a.Start.Truncate(time.Microsecond), a.End.Truncate(time.Microsecond)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Anomaly (-want +got):\n%s", diff)
		}
		if _, err := s.Anomaly(ctx, 9999); tokenmeter.ErrorCode(err) != tokenmeter.ENOTFOUND {
			t.Errorf("Anomaly(9999) = %v, want ENOTFOUND", err)
		}
		list, err := s.Anomalies(ctx, time.Time{})
		if err != nil || len(list) != 2 || list[0].ID != id || list[1].ID != idb || string(list[1].Evidence) != "{}" {
			t.Errorf("Anomalies = %+v, %v; want both, oldest first, the second with evidence {}", list, err)
		}
		if list, _ := s.Anomalies(ctx, t0.Add(time.Hour)); len(list) != 1 || list[0].ID != idb {
			t.Errorf("Anomalies since t0+1h = %+v, want the throttling one", list)
		}
		for _, bad := range []tokenmeter.Anomaly{
			{Start: t0},
			{Kind: "drift"},
			{Kind: "drift", Start: t0, Evidence: json.RawMessage(`[1]`)},
			{Kind: "drift", Start: t0, Evidence: json.RawMessage(`{`)},
		} {
			if _, err := s.AddAnomaly(ctx, bad); tokenmeter.ErrorCode(err) != tokenmeter.EINVALID {
				t.Errorf("AddAnomaly(%+v) = %v, want EINVALID", bad, err)
			}
		}
	})
}
