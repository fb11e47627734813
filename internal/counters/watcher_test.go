package counters_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/counters"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

func openDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func obs(at time.Time, remaining string) counters.Observation {
	return counters.Observation{Time: at, Provider: "anthropic", Status: 200,
		Credential: tokenmeter.Credential{ID: cred, Hint: "sk-a..."}, NoteCredential: true,
		Headers: hdrs("anthropic-ratelimit-tokens-limit", "100000", "anthropic-ratelimit-tokens-remaining", remaining,
			"anthropic-ratelimit-tokens-reset", at.Add(30*time.Second).Truncate(time.Second).Format(time.RFC3339))}
}

// TestWatcherCompaction: an unchanged limit and status with a moving
// remaining is kept once a minute; a limit change is kept at once; old
// samples are pruned; Close stores what is queued.
func TestWatcherCompaction(t *testing.T) {
	db := openDB(t)
	clock := now.Add(48 * time.Hour)
	w := counters.NewWatcher(db, slog.New(slog.DiscardHandler))
	w.Now = func() time.Time { return clock }
	w.Retention = 24 * time.Hour
	w.FlushInterval = time.Hour // flushed by Sync and Close only
	w.Open()
	ctx := context.Background()
	old := counters.Observation{Time: now, Provider: "anthropic", Headers: hdrs("x-ratelimit-limit-requests", "5")}
	w.Observe(old)
	for i := range 600 { // 10 minutes, a response a second
		w.Observe(obs(now.Add(time.Hour+time.Duration(i)*time.Second), "9"+string(rune('0'+i%10))+"000"))
	}
	changed := obs(now.Add(time.Hour+601*time.Second), "90000")
	changed.Headers[0].Value = "50000"
	w.Observe(changed)
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := db.Samples(ctx, tokenmeter.SampleQuery{Counter: "anthropic-ratelimit-tokens"})
	if err != nil {
		t.Fatal(err)
	}
	// One a minute for ten minutes, and the limit change.
	if len(got) != 11 || got[len(got)-1].Limit != 50000 {
		t.Errorf("%d samples stored, the last %+v; want 11, the last with limit 50000", len(got), got[len(got)-1])
	}
	creds, _ := db.Credentials(ctx)
	if len(creds) != 1 || creds[0].ID != cred || creds[0].Hint != "sk-a..." {
		t.Errorf("credentials %+v", creds)
	}
	anomalies, _ := db.Anomalies(ctx, time.Time{})
	if len(anomalies) != 1 || anomalies[0].Kind != tokenmeter.AnomalyLimitChanged {
		t.Errorf("anomalies %+v, want the limit change", anomalies)
	}
	w.Close()
	w.Close() // twice is fine
	if n, err := db.PruneSamples(ctx, now.Add(time.Minute)); err != nil || n != 1 {
		t.Errorf("the sample of %s: PruneSamples = %d, %v; want 1 (the watcher prunes hourly, not yet)", now, n, err)
	}
}

// TestWatcherPrunes: the watcher's first tick prunes samples older than
// the retention.
func TestWatcherPrunes(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	if err := db.AddSamples(ctx, []tokenmeter.Sample{sample("old"), with(sample("new"), func(s *tokenmeter.Sample) { s.Time = now.Add(47 * time.Hour) })}); err != nil {
		t.Fatal(err)
	}
	w := counters.NewWatcher(db, slog.New(slog.DiscardHandler))
	w.Now = func() time.Time { return now.Add(48 * time.Hour) }
	w.Retention = 24 * time.Hour
	w.FlushInterval = time.Millisecond
	w.Open()
	defer w.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := db.Samples(ctx, tokenmeter.SampleQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 && got[0].Counter == "new" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("samples %+v: the old one was not pruned", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatcherDrops: Observe on a full queue returns at once and counts.
func TestWatcherDrops(t *testing.T) {
	w := counters.NewWatcher(nil, nil) // not opened: nothing drains
	for range 10 {
		w.Observe(obs(now, "1"))
	}
	if w.Dropped() != 10 {
		t.Errorf("Dropped = %d, want 10", w.Dropped())
	}
}

// TestWatcherSeeds: a restarted watcher compares the first sample of a
// series with the last one stored before, so an early reset during the
// restart is found.
func TestWatcherSeeds(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	reset := now.Add(3 * time.Hour)
	if err := db.AddSamples(ctx, []tokenmeter.Sample{util(now.Add(-time.Minute), "unified-5h", 6000, reset)}); err != nil {
		t.Fatal(err)
	}
	w := counters.NewWatcher(db, slog.New(slog.DiscardHandler))
	w.Now = func() time.Time { return now }
	w.Open()
	w.Observe(counters.Observation{Time: now, Provider: "anthropic", Credential: tokenmeter.Credential{ID: cred},
		Headers: hdrs("anthropic-ratelimit-unified-5h-utilization", "0.01", "anthropic-ratelimit-unified-5h-reset", "1777500000")})
	w.Close()
	list, err := db.Anomalies(ctx, time.Time{})
	if err != nil || len(list) != 1 || list[0].Kind != tokenmeter.AnomalyEarlyReset || !list[0].Start.Equal(now.Add(-time.Minute)) {
		t.Errorf("anomalies %+v, %v; want the early reset against the sample stored before the restart", list, err)
	}
}

// TestWatcherRawOnly: an unknown header whose value changes with every
// response is stored once per heartbeat, not once per response.
func TestWatcherRawOnly(t *testing.T) {
	db := openDB(t)
	w := counters.NewWatcher(db, slog.New(slog.DiscardHandler))
	w.Open()
	for i := range 100 {
		w.Observe(counters.Observation{Time: now.Add(time.Duration(i) * time.Second), Provider: "openai",
			Headers: hdrs("x-ratelimit-nonce", time.Duration(i).String())})
	}
	w.Close()
	got, err := db.Samples(context.Background(), tokenmeter.SampleQuery{Counter: "x-ratelimit-nonce"})
	if err != nil || len(got) != 2 {
		t.Errorf("%d samples (%v), want 2 (at 0 s and 60 s)", len(got), err)
	}
}
