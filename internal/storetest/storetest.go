// Package storetest is the conformance suite for tokenmeter.Store
// implementations: every backend runs the same tests through Run, so the
// SQLite ledger and the PostgreSQL one behave alike.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
)

// Opener returns a new, empty store for one test; the suite closes it.
type Opener func(t *testing.T) tokenmeter.Store

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 123456000, time.UTC)

// Event returns a completed event for tests.
func Event(req string, at time.Time, u tokenmeter.Usage) tokenmeter.Event {
	return tokenmeter.Event{
		Key: tokenmeter.EventKey(req, tokenmeter.KindCompleted), RequestKey: req, Kind: tokenmeter.KindCompleted,
		Time: at, Source: tokenmeter.SourceProxy, Provider: "anthropic", Endpoint: "/v1/messages",
		Model: "claude-sonnet-5-5", Principal: "cred:0123456789abcdef", Status: 200, Outcome: tokenmeter.OutcomeOK,
		Usage: u, UsageKnown: true, RawUsage: []byte(`{"input_tokens":1}`), Latency: 1500 * time.Microsecond,
		Cost: 42, CostKnown: true,
	}
}

// Run runs the conformance suite against stores made by open.
func Run(t *testing.T, open Opener) {
	ctx := context.Background()
	mustOpen := func(t *testing.T) tokenmeter.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	scanAll := func(t *testing.T, s tokenmeter.Store) []tokenmeter.Event {
		t.Helper()
		var out []tokenmeter.Event
		if err := s.Scan(ctx, 0, func(ev *tokenmeter.Event) error { out = append(out, *ev); return nil }); err != nil {
			t.Fatalf("Scan: %v", err)
		}
		return out
	}

	t.Run("AppendRoundTrip", func(t *testing.T) {
		s := mustOpen(t)
		in := []tokenmeter.Event{
			Event("r1", t0, tokenmeter.Usage{InputTokens: 10, OutputTokens: 20, CacheWrite5mTokens: 3, CacheWrite1hTokens: 4, CacheReadTokens: 5, ReasoningTokens: 6, WebSearchRequests: 1, WebFetchRequests: 2}),
			Event("r2", t0.Add(time.Second), tokenmeter.Usage{InputTokens: 1}),
		}
		in[1].Provider, in[1].ServiceTier = "openai", "priority"
		if skipped, err := s.Append(ctx, in); err != nil || skipped != 0 {
			t.Fatalf("Append = %d, %v; want 0, nil", skipped, err)
		}
		got := scanAll(t, s)
		if diff := cmp.Diff(in, got); diff != "" {
			t.Errorf("events read back differ from those appended (-appended +read):\n%s", diff)
		}
		if got[0].Seq != 1 || got[1].Seq != 2 || got[1].PrevHash != got[0].Hash || got[0].PrevHash != tokenmeter.GenesisHash {
			t.Errorf("chain not linked: %+v", got)
		}
		for _, ev := range got {
			if h := tokenmeter.ChainHash(&ev); h != ev.Hash {
				t.Errorf("event %d: stored hash %s, recomputed %s", ev.Seq, ev.Hash, h)
			}
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		s := mustOpen(t)
		ev := Event("r1", t0, tokenmeter.Usage{InputTokens: 10})
		if _, err := s.Append(ctx, []tokenmeter.Event{ev, ev}); err != nil {
			t.Fatal(err)
		}
		skipped, err := s.Append(ctx, []tokenmeter.Event{ev, Event("r2", t0, tokenmeter.Usage{})})
		if err != nil || skipped != 1 {
			t.Fatalf("Append(replay, new) = %d, %v; want 1 skipped", skipped, err)
		}
		got := scanAll(t, s)
		if len(got) != 2 || got[1].Seq != 2 || got[1].PrevHash != got[0].Hash {
			t.Fatalf("after replays got %d events (%+v), want 2 chained", len(got), got)
		}
	})

	t.Run("OpenCalls", func(t *testing.T) {
		s := mustOpen(t)
		started := func(req, inst string) tokenmeter.Event {
			return tokenmeter.Event{Key: tokenmeter.EventKey(req, tokenmeter.KindStarted), RequestKey: req,
				Kind: tokenmeter.KindStarted, Time: t0, Source: tokenmeter.SourceProxy, Instance: inst, Provider: "anthropic"}
		}
		progress := started("a", "i1")
		progress.Kind, progress.Key = tokenmeter.KindProgress, tokenmeter.EventKey("a", tokenmeter.KindProgress)
		progress.Usage, progress.UsageKnown = tokenmeter.Usage{InputTokens: 99}, true
		done := Event("b", t0, tokenmeter.Usage{})
		if _, err := s.Append(ctx, []tokenmeter.Event{started("a", "i1"), progress, started("b", "i1"), done, started("c", "i2")}); err != nil {
			t.Fatal(err)
		}
		open, err := s.OpenCalls(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range open {
			got = append(got, fmt.Sprintf("%s/%s/%d", ev.RequestKey, ev.Kind, ev.Usage.InputTokens))
		}
		if diff := cmp.Diff([]string{"a/progress/99", "c/started/0"}, got); diff != "" {
			t.Errorf("OpenCalls(nil) (-want +got):\n%s", diff)
		}
		open, err = s.OpenCalls(ctx, []string{"i2"})
		if err != nil || len(open) != 1 || open[0].RequestKey != "c" {
			t.Errorf("OpenCalls([i2]) = %+v, %v; want call c only", open, err)
		}
	})

	t.Run("Usage", func(t *testing.T) {
		s := mustOpen(t)
		day := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
		a := Event("a", day.Add(10*time.Minute), tokenmeter.Usage{InputTokens: 1, OutputTokens: 2})
		b := Event("b", day.Add(14*time.Minute), tokenmeter.Usage{InputTokens: 10, OutputTokens: 20, CacheReadTokens: 7})
		c := Event("c", day.Add(16*time.Minute), tokenmeter.Usage{InputTokens: 100})
		c.UsageKnown = false
		d := Event("d", day.Add(17*time.Minute), tokenmeter.Usage{InputTokens: 1000})
		d.CostKnown, d.Cost = false, 0
		st := a
		st.Kind, st.Key = tokenmeter.KindStarted, "a/started" // not counted: only completed events are usage
		if _, err := s.Append(ctx, []tokenmeter.Event{st, a, b, c, d}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Usage(ctx, tokenmeter.UsageQuery{Since: day, Until: day.Add(time.Hour), Bucket: 15 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		want := []tokenmeter.UsageBucket{
			{Start: day, Source: "proxy", Provider: "anthropic", Model: "claude-sonnet-5-5", Principal: "cred:0123456789abcdef", Outcome: "ok",
				First: a.Time, Last: b.Time,
				Requests: 2, Usage: tokenmeter.Usage{InputTokens: 11, OutputTokens: 22, CacheReadTokens: 7}, Cost: 84},
			{Start: day.Add(15 * time.Minute), Source: "proxy", Provider: "anthropic", Model: "claude-sonnet-5-5", Principal: "cred:0123456789abcdef", Outcome: "ok",
				First: c.Time, Last: d.Time,
				Requests: 2, Usage: tokenmeter.Usage{InputTokens: 1100}, Cost: 42, UsageUnknown: 1, CostUnknown: 1},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Usage (-want +got):\n%s", diff)
		}
		// The same figures summed from the events, off the rollup grid, and
		// in a single bucket.
		for _, q := range []tokenmeter.UsageQuery{
			{Since: day, Until: day.Add(time.Hour), Bucket: 15 * time.Minute, FromEvents: true},
			{Since: day.Add(-time.Second), Until: day.Add(time.Hour), Bucket: 15 * time.Minute},
		} {
			got, err := s.Usage(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Usage(%+v) (-want +got):\n%s", q, diff)
			}
		}
		for _, fromEvents := range []bool{false, true} {
			got, err = s.Usage(ctx, tokenmeter.UsageQuery{FromEvents: fromEvents})
			if err != nil || len(got) != 1 || got[0].Requests != 4 || got[0].Usage.InputTokens != 1111 || !got[0].Start.IsZero() ||
				!got[0].First.Equal(a.Time) || !got[0].Last.Equal(d.Time) {
				t.Errorf("Usage(one bucket, from events %v) = %+v, %v; want 4 requests, 1111 input, %v..%v", fromEvents, got, err, a.Time, d.Time)
			}
		}
		got, err = s.Usage(ctx, tokenmeter.UsageQuery{Since: day.Add(15 * time.Minute), Bucket: time.Hour})
		if err != nil || len(got) != 1 || got[0].Requests != 2 {
			t.Errorf("Usage(since 00:15) = %+v, %v; want one bucket of 2 requests", got, err)
		}
		if _, err := s.Usage(ctx, tokenmeter.UsageQuery{Bucket: time.Second}); tokenmeter.ErrorCode(err) != tokenmeter.EINVALID {
			t.Errorf("Usage(bucket 1s) error = %v, want EINVALID", err)
		}
	})

	t.Run("UsageBySession", func(t *testing.T) {
		s := mustOpen(t)
		a := Event("a", t0, tokenmeter.Usage{InputTokens: 1})
		b := Event("b", t0.Add(time.Minute), tokenmeter.Usage{InputTokens: 2})
		c := Event("c", t0.Add(2*time.Minute), tokenmeter.Usage{InputTokens: 4})
		a.Session, b.Session, c.Session = "s1", "s1", "s2"
		if _, err := s.Append(ctx, []tokenmeter.Event{a, b, c}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Usage(ctx, tokenmeter.UsageQuery{BySession: true})
		if err != nil {
			t.Fatal(err)
		}
		sums := map[string]int64{}
		for _, g := range got {
			sums[g.Session] += g.Usage.InputTokens
		}
		if diff := cmp.Diff(map[string]int64{"s1": 3, "s2": 4}, sums); diff != "" {
			t.Errorf("Usage by session (-want +got):\n%s", diff)
		}
		if ev := scanAll(t, s); ev[0].Session != "s1" || ev[2].Session != "s2" {
			t.Errorf("sessions did not round-trip: %q %q", ev[0].Session, ev[2].Session)
		}
	})

	t.Run("UsageByTags", func(t *testing.T) {
		s := mustOpen(t)
		a := Event("a", t0, tokenmeter.Usage{InputTokens: 1})
		b := Event("b", t0.Add(time.Minute), tokenmeter.Usage{InputTokens: 2})
		c := Event("c", t0.Add(2*time.Minute), tokenmeter.Usage{InputTokens: 4})
		a.Tags, b.Tags = "ci,nightly", "ci,nightly"
		if _, err := s.Append(ctx, []tokenmeter.Event{a, b, c}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Usage(ctx, tokenmeter.UsageQuery{ByTags: true, Bucket: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		sums := map[string]int64{}
		for _, g := range got {
			sums[g.Tags] += g.Usage.InputTokens
			if g.Session != "" {
				t.Errorf("bucket %+v: a session without BySession", g)
			}
		}
		if diff := cmp.Diff(map[string]int64{"ci,nightly": 3, "": 4}, sums); diff != "" {
			t.Errorf("Usage by tags (-want +got):\n%s", diff)
		}
		if _, err := s.Usage(ctx, tokenmeter.UsageQuery{ByTags: true, BySession: true}); tokenmeter.ErrorCode(err) != tokenmeter.EINVALID {
			t.Errorf("Usage by session and tags at once = %v, want EINVALID", err)
		}
	})

	t.Run("Import", func(t *testing.T) {
		s := mustOpen(t)
		// A call the gateway recorded, with its upstream request id.
		proxied := Event("tmr_1", t0, tokenmeter.Usage{InputTokens: 5})
		proxied.UpstreamRequestID = "req_A"
		if _, err := s.Append(ctx, []tokenmeter.Event{proxied}); err != nil {
			t.Fatal(err)
		}
		imp := func(req, upstream string, in int64) tokenmeter.Event {
			ev := Event(req, t0.Add(time.Minute), tokenmeter.Usage{InputTokens: in})
			ev.Source, ev.UpstreamRequestID = tokenmeter.SourceClaudeCode, upstream
			return ev
		}
		f1 := tokenmeter.ImportFile{Source: tokenmeter.SourceClaudeCode, Path: "/p/a.jsonl", Identity: "1:2:abc", Size: 100,
			ModTime: t0.Truncate(time.Microsecond), Offset: 90, Line: 3, State: `{"x":1}`}
		res, err := s.Import(ctx, []tokenmeter.Event{
			imp("claude-code:m1", "req_A", 5), // the gateway's call: recorded
			imp("claude-code:m2", "req_B", 7), // new
			imp("claude-code:m2", "req_B", 7), // duplicate within the batch
			imp("claude-code:m3", "", 9),      // no request id: new
		}, []tokenmeter.ImportFile{f1})
		if want := (tokenmeter.ImportResult{Added: 2, Duplicates: 1, Recorded: 1}); err != nil || res != want {
			t.Fatalf("Import = %+v, %v; want %+v", res, err, want)
		}
		res, err = s.Import(ctx, []tokenmeter.Event{imp("claude-code:m2", "req_B", 7), imp("claude-code:m3", "", 9)}, nil)
		if want := (tokenmeter.ImportResult{Duplicates: 2}); err != nil || res != want {
			t.Fatalf("re-Import = %+v, %v; want %+v", res, err, want)
		}
		files, err := s.ImportFiles(ctx, tokenmeter.SourceClaudeCode)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]tokenmeter.ImportFile{f1}, files); diff != "" {
			t.Errorf("ImportFiles (-want +got):\n%s", diff)
		}
		f1.Offset, f1.Size = 100, 120
		if _, err := s.Import(ctx, nil, []tokenmeter.ImportFile{f1}); err != nil {
			t.Fatal(err)
		}
		if files, _ := s.ImportFiles(ctx, tokenmeter.SourceClaudeCode); len(files) != 1 || files[0].Offset != 100 {
			t.Errorf("ImportFiles after update = %+v; want offset 100", files)
		}
		if files, _ := s.ImportFiles(ctx, tokenmeter.SourceCodex); len(files) != 0 {
			t.Errorf("ImportFiles(codex) = %+v; want none", files)
		}
		got, err := s.Usage(ctx, tokenmeter.UsageQuery{})
		var total int64
		for _, b := range got {
			total += b.Usage.InputTokens
		}
		if err != nil || total != 5+7+9 {
			t.Errorf("Usage after import: input %d, %v; want %d", total, err, 5+7+9)
		}
		if evs := scanAll(t, s); len(evs) != 3 {
			t.Errorf("ledger holds %d events, want 3", len(evs))
		} else if err := checkChain(evs); err != nil {
			t.Error(err)
		}
	})

	t.Run("ImportRevision", func(t *testing.T) {
		s := mustOpen(t)
		reading := func(output int64, cost tokenmeter.Micros, at time.Time) tokenmeter.Event {
			ev := Event("claude-code:m1", at, tokenmeter.Usage{InputTokens: 10, OutputTokens: output, CacheReadTokens: 100})
			ev.Source, ev.Cost = tokenmeter.SourceClaudeCode, cost
			return ev
		}
		if res, err := s.Import(ctx, []tokenmeter.Event{reading(3, 30, t0)}, nil); err != nil || res.Added != 1 {
			t.Fatalf("first reading: %+v, %v", res, err)
		}
		// A fuller reading, seen later (in another file, a day later by its
		// own clock): the difference is added, in the call's own bucket.
		fuller := reading(250, 300, t0.Add(24*time.Hour))
		fuller.Session, fuller.Project = "resumed-session", "elsewhere" // a copy in another file
		if res, err := s.Import(ctx, []tokenmeter.Event{fuller}, nil); err != nil || res.Revised != 1 || res.Added != 0 {
			t.Fatalf("fuller reading: %+v, %v; want one revision", res, err)
		}
		// The same reading again, a smaller one, or one that is not a
		// superset of what is held: nothing.
		for _, ev := range []tokenmeter.Event{reading(250, 300, t0), reading(100, 100, t0), func() tokenmeter.Event {
			e := reading(400, 400, t0)
			e.Usage.CacheReadTokens = 50
			return e
		}()} {
			if res, err := s.Import(ctx, []tokenmeter.Event{ev}, nil); err != nil || res.Duplicates != 1 || res.Revised != 0 {
				t.Errorf("reading with output %d: %+v, %v; want a duplicate", ev.Usage.OutputTokens, res, err)
			}
		}
		for _, fromEvents := range []bool{false, true} {
			got, err := s.Usage(ctx, tokenmeter.UsageQuery{Bucket: 24 * time.Hour, FromEvents: fromEvents})
			if err != nil || len(got) != 1 {
				t.Fatalf("Usage(from events %v) = %+v, %v; want one bucket", fromEvents, got, err)
			}
			b := got[0]
			if b.Requests != 1 || b.Usage.OutputTokens != 250 || b.Usage.InputTokens != 10 || b.Usage.CacheReadTokens != 100 || b.Cost != 300 ||
				!b.Start.Equal(t0.Truncate(24*time.Hour)) {
				t.Errorf("Usage(from events %v) = %+v; want 1 request, output 250, cost 300 on the call's day", fromEvents, b)
			}
		}
		evs := scanAll(t, s)
		if len(evs) != 2 || evs[1].Kind != tokenmeter.KindRevised || evs[1].Usage.OutputTokens != 247 || !evs[1].Time.Equal(t0.Truncate(time.Microsecond)) ||
			evs[1].Session != evs[0].Session || evs[1].Project != evs[0].Project {
			t.Errorf("events = %+v; want the completed event and a revision of +247 output at the call's time, session and project", evs)
		}
		if err := checkChain(evs); err != nil {
			t.Error(err)
		}
	})

	t.Run("Keys", func(t *testing.T) { runKeys(t, mustOpen(t)) })
	t.Run("Limits", func(t *testing.T) { runLimits(t, mustOpen(t)) })
	RunCounters(t, open)
	t.Run("Calls", func(t *testing.T) { runCalls(t, mustOpen(t)) })
	t.Run("Alerts", func(t *testing.T) { runAlerts(t, mustOpen(t)) })
	t.Run("Reconcile", func(t *testing.T) { runReconcile(t, mustOpen(t)) })
	t.Run("Estimates", func(t *testing.T) { runEstimates(t, mustOpen) })
}

// Key returns a new virtual key named name for tests, with its secret.
func Key(name, project string, created time.Time) (tokenmeter.VirtualKey, string) {
	secret := tokenmeter.NewKeySecret()
	return tokenmeter.VirtualKey{Name: name, Prefix: tokenmeter.KeyDisplayPrefix(secret), Hash: tokenmeter.HashKey(secret),
		Project: project, Created: created}, secret
}

func runKeys(t *testing.T, s tokenmeter.Store) {
	ctx := context.Background()
	wantCode := func(t *testing.T, what string, err error, code string) {
		t.Helper()
		if got := tokenmeter.ErrorCode(err); got != code {
			t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
		}
	}

	a, _ := Key("alice", "proj-a", t0)
	a.Expires = t0.Add(30 * 24 * time.Hour)
	b, _ := Key("ci.build-1", "", t0.Add(time.Minute))
	for _, k := range []tokenmeter.VirtualKey{b, a} {
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatalf("CreateKey(%s): %v", k.Name, err)
		}
	}
	// Round trip, ordered by name; times to the microsecond.
	a.Created, a.Expires = a.Created.Truncate(time.Microsecond), a.Expires.Truncate(time.Microsecond)
	b.Created = b.Created.Truncate(time.Microsecond)
	got, err := s.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tokenmeter.VirtualKey{a, b}, got); diff != "" {
		t.Errorf("Keys() (-want +got):\n%s", diff)
	}
	if k, err := s.KeyByHash(ctx, a.Hash); err != nil || !cmp.Equal(k, a) {
		t.Errorf("KeyByHash(alice) = %+v, %v; want %+v", k, err, a)
	}
	_, err = s.KeyByHash(ctx, tokenmeter.HashKey("tm-unknown"))
	wantCode(t, "KeyByHash(unknown)", err, tokenmeter.ENOTFOUND)

	// Names and secrets are unique; malformed keys are refused.
	dupName, _ := Key("alice", "", t0)
	wantCode(t, "CreateKey(same name)", s.CreateKey(ctx, dupName), tokenmeter.ECONFLICT)
	dupHash, _ := Key("bob", "", t0)
	dupHash.Hash = a.Hash
	wantCode(t, "CreateKey(same hash)", s.CreateKey(ctx, dupHash), tokenmeter.ECONFLICT)
	for _, bad := range []func(*tokenmeter.VirtualKey){
		func(k *tokenmeter.VirtualKey) { k.Name = "" },
		func(k *tokenmeter.VirtualKey) { k.Name = "has space" },
		func(k *tokenmeter.VirtualKey) { k.Hash = "tm-not-a-hash" },
		func(k *tokenmeter.VirtualKey) { k.Prefix = "sk-abc" },
		func(k *tokenmeter.VirtualKey) { k.Created = time.Time{} },
		func(k *tokenmeter.VirtualKey) { k.Project = "a\nb" },
	} {
		k, _ := Key("carol", "", t0)
		bad(&k)
		wantCode(t, fmt.Sprintf("CreateKey(%+v)", k), s.CreateKey(ctx, k), tokenmeter.EINVALID)
	}

	// Revoke: the key is still found by its hash, marked revoked; a second
	// revocation and unknown names are errors.
	at := t0.Add(time.Hour)
	if err := s.RevokeKey(ctx, "ci.build-1", at); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if k, err := s.KeyByHash(ctx, b.Hash); err != nil || !k.Revoked.Equal(at.Truncate(time.Microsecond)) || k.Status(at) != tokenmeter.KeyRevoked {
		t.Errorf("KeyByHash(revoked) = %+v, %v; want it revoked at %v", k, err, at)
	}
	wantCode(t, "RevokeKey(again)", s.RevokeKey(ctx, "ci.build-1", at), tokenmeter.ECONFLICT)
	wantCode(t, "RevokeKey(unknown)", s.RevokeKey(ctx, "nobody", at), tokenmeter.ENOTFOUND)
	dupRevoked, _ := Key("ci.build-1", "", t0)
	wantCode(t, "CreateKey(name of a revoked key)", s.CreateKey(ctx, dupRevoked), tokenmeter.ECONFLICT)

	// Rotate: the old hash is gone, the new one finds the same key.
	secret := tokenmeter.NewKeySecret()
	if err := s.RotateKey(ctx, "alice", tokenmeter.HashKey(secret), tokenmeter.KeyDisplayPrefix(secret), at); err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	_, err = s.KeyByHash(ctx, a.Hash)
	wantCode(t, "KeyByHash(hash before rotation)", err, tokenmeter.ENOTFOUND)
	k, err := s.KeyByHash(ctx, tokenmeter.HashKey(secret))
	if err != nil || k.Name != "alice" || k.Project != "proj-a" || k.Prefix != tokenmeter.KeyDisplayPrefix(secret) ||
		!k.Rotated.Equal(at.Truncate(time.Microsecond)) || !k.Created.Equal(a.Created) || !k.Expires.Equal(a.Expires) {
		t.Errorf("KeyByHash(rotated) = %+v, %v; want alice with the new prefix, rotated at %v, created and expiry kept", k, err, at)
	}
	wantCode(t, "RotateKey(revoked)", s.RotateKey(ctx, "ci.build-1", tokenmeter.HashKey("x"), "tm-x", at), tokenmeter.ECONFLICT)
	wantCode(t, "RotateKey(unknown)", s.RotateKey(ctx, "nobody", tokenmeter.HashKey("x"), "tm-x", at), tokenmeter.ENOTFOUND)
	wantCode(t, "RotateKey(expired)", s.RotateKey(ctx, "alice", tokenmeter.HashKey("y"), "tm-y", a.Expires), tokenmeter.ECONFLICT)
	wantCode(t, "RotateKey(hash taken)", s.RotateKey(ctx, "alice", b.Hash, "tm-y", at), tokenmeter.ECONFLICT)
	wantCode(t, "RotateKey(bad hash)", s.RotateKey(ctx, "alice", "nothex", "tm-y", at), tokenmeter.EINVALID)
	if k, err := s.KeyByHash(ctx, tokenmeter.HashKey(secret)); err != nil || k.Name != "alice" {
		t.Errorf("a refused rotation changed the key: %+v, %v", k, err)
	}
}

func checkChain(evs []tokenmeter.Event) error {
	prev := tokenmeter.GenesisHash
	for i, ev := range evs {
		if ev.Seq != int64(i+1) || ev.PrevHash != prev || tokenmeter.ChainHash(&ev) != ev.Hash {
			return fmt.Errorf("event %d (%s) breaks the chain", i, ev.Key)
		}
		prev = ev.Hash
	}
	return nil
}

func runLimits(t *testing.T, s tokenmeter.Store) {
	ctx := context.Background()
	code := func(t *testing.T, what string, err error, want string) {
		t.Helper()
		if got := tokenmeter.ErrorCode(err); got != want {
			t.Errorf("%s: error %v (code %q), want code %q", what, err, got, want)
		}
	}
	tok := tokenmeter.Limit{Name: "alice-day", Scope: "key:alice", Metric: tokenmeter.MetricTokens, Max: 1000,
		Window: "day 00:00 UTC", Mode: tokenmeter.LimitHard, Created: t0.Truncate(time.Microsecond)}
	cost := tokenmeter.Limit{Name: "all-cost", Scope: "global", Metric: tokenmeter.MetricCost, Max: 500,
		Window: "rolling:1h", Mode: tokenmeter.LimitSoft, Created: t0.Truncate(time.Microsecond)}
	for _, l := range []tokenmeter.Limit{tok, cost} {
		if err := s.SetLimit(ctx, l); err != nil {
			t.Fatalf("SetLimit(%s): %v", l.Name, err)
		}
	}
	// Setting an existing name replaces it and keeps its creation time.
	tok.Max = 900
	changed := tok
	changed.Created = t0.Add(time.Hour)
	if err := s.SetLimit(ctx, changed); err != nil {
		t.Fatal(err)
	}
	got, err := s.Limits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tokenmeter.Limit{tok, cost}, got); diff != "" {
		t.Errorf("Limits() (-want +got):\n%s", diff)
	}
	for _, bad := range []func(*tokenmeter.Limit){
		func(l *tokenmeter.Limit) { l.Name = "" },
		func(l *tokenmeter.Limit) { l.Scope = "team:x" },
		func(l *tokenmeter.Limit) { l.Scope = "key:" },
		func(l *tokenmeter.Limit) { l.Metric = "bytes" },
		func(l *tokenmeter.Limit) { l.Max = 0 },
		func(l *tokenmeter.Limit) { l.Mode = "strict" },
		func(l *tokenmeter.Limit) { l.Window = "" },
	} {
		l := tok
		l.Name = "bad"
		bad(&l)
		code(t, fmt.Sprintf("SetLimit(%+v)", l), s.SetLimit(ctx, l), tokenmeter.EINVALID)
	}
	code(t, "DeleteLimit(unknown)", s.DeleteLimit(ctx, "nobody"), tokenmeter.ENOTFOUND)
	if err := s.DeleteLimit(ctx, "all-cost"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Limits(ctx); len(got) != 1 || got[0].Name != "alice-day" {
		t.Errorf("Limits() after delete = %+v, want alice-day only", got)
	}

	// Reserve: usage in the window + reservations + the new worst case
	// must stay within Max (900).
	ev := Event("done1", t0, tokenmeter.Usage{InputTokens: 100, OutputTokens: 200, CacheReadTokens: 50, CacheWrite5mTokens: 50})
	ev.Principal = "key:alice"
	old := Event("old", t0.Add(-24*time.Hour), tokenmeter.Usage{InputTokens: 5000})
	old.Principal = "key:alice"
	other := Event("bob", t0, tokenmeter.Usage{InputTokens: 5000})
	other.Principal = "key:bob"
	if _, err := s.Append(ctx, []tokenmeter.Event{ev, old, other}); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	checks := []tokenmeter.LimitCheck{{Limit: tok, Since: day}}
	res := func(key string, out int64) tokenmeter.Reservation {
		return tokenmeter.Reservation{RequestKey: key, Instance: "i1", Time: t0, Principal: "key:alice",
			Usage: tokenmeter.Usage{InputTokens: 10, OutputTokens: out}}
	}
	st, ok, err := s.Reserve(ctx, res("r1", 190), checks)
	if err != nil || !ok || len(st) != 1 || st[0].Used != 400 || st[0].Reserved != 0 {
		t.Fatalf("Reserve(r1, 200 of 500 left) = %+v, %v, %v; want ok with used 400, reserved 0", st, ok, err)
	}
	st, ok, err = s.Reserve(ctx, res("r2", 301), checks)
	if err != nil || ok || st[0].Used != 400 || st[0].Reserved != 200 || st[0].Remaining() != 300 {
		t.Fatalf("Reserve(r2, 311 of 300 left) = %+v, %v, %v; want refused with used 400, reserved 200", st, ok, err)
	}
	if _, ok, err = s.Reserve(ctx, res("r2", 290), checks); err != nil || !ok {
		t.Fatalf("Reserve(r2, 300 of 300 left) = %v, %v; want ok", ok, err)
	}
	// Completing r1 replaces its reservation by its usage (50 tokens).
	done := Event("r1", t0.Add(time.Minute), tokenmeter.Usage{InputTokens: 10, OutputTokens: 40})
	done.Principal = "key:alice"
	if _, err := s.Append(ctx, []tokenmeter.Event{done}); err != nil {
		t.Fatal(err)
	}
	if st, ok, _ = s.Reserve(ctx, res("r3", 140), checks); !ok || st[0].Used != 450 || st[0].Reserved != 300 {
		t.Fatalf("Reserve(r3) after r1 completed = %+v, %v; want ok with used 450, reserved 300", st, ok)
	}
	if err := s.ReleaseReservation(ctx, "r3"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ReleaseReservations(ctx, []string{"other"}); err != nil || n != 0 {
		t.Errorf("ReleaseReservations(other) = %d, %v; want 0", n, err)
	}
	if n, err := s.ReleaseReservations(ctx, nil); err != nil || n != 1 {
		t.Errorf("ReleaseReservations(nil) = %d, %v; want 1 (r2)", n, err)
	}
	if st, ok, _ = s.Reserve(ctx, res("r4", 440), checks); !ok || st[0].Reserved != 0 {
		t.Errorf("Reserve(r4) after release = %+v, %v; want ok with nothing reserved", st, ok)
	}
	// Other scopes and metrics count what they select.
	for _, c := range []struct {
		scope  string
		metric tokenmeter.LimitMetric
		want   int64
	}{
		{"global", tokenmeter.MetricRequests, 3},
		{"key:bob", tokenmeter.MetricInputTokens, 5000},
		{"model:claude-sonnet-5-5", tokenmeter.MetricOutputTokens, 240},
		{"model:other", tokenmeter.MetricTokens, 0},
		{"project:", tokenmeter.MetricTokens, -1},
		{"global", tokenmeter.MetricCost, 3 * 42},
	} {
		l := tok
		l.Scope, l.Metric, l.Max = c.scope, c.metric, 1<<40
		st, _, err := s.Reserve(ctx, tokenmeter.Reservation{RequestKey: "x-" + c.scope + string(c.metric), Time: t0}, []tokenmeter.LimitCheck{{Limit: l, Since: day}})
		if c.want < 0 {
			code(t, "Reserve(bad scope)", err, tokenmeter.EINVALID)
			continue
		}
		if err != nil || st[0].Used != c.want {
			t.Errorf("Reserve(%s %s) used = %+v, %v; want %d", c.scope, c.metric, st, err, c.want)
		}
	}
}
