package counters

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// traffic makes the rate-limit headers of a busy subscription credential
// behind the gateway: Anthropic's four per-minute limits as the token
// buckets they are (refilled continuously at limit per minute, remaining
// rounded to 1,000, reset when full again), each call 3,000 tokens, and the
// unified 5-hour, 7-day and summary headers, 20 headers in all.
type traffic struct {
	t0        time.Time
	last      time.Time
	remaining float64
}

const bucketLimit = 2_400_000

func (tr *traffic) headers(now time.Time, h http.Header) {
	if tr.last.IsZero() {
		tr.remaining = bucketLimit
	} else {
		tr.remaining = min(bucketLimit, tr.remaining+bucketLimit*now.Sub(tr.last).Minutes())
	}
	tr.last = now
	tr.remaining = max(0, tr.remaining-3000)
	sec := now.Sub(tr.t0)
	rem := int64(tr.remaining+500) / 1000 * 1000
	refill := now.Add(time.Duration((bucketLimit - tr.remaining) / bucketLimit * float64(time.Minute))).UTC().Truncate(time.Second).Format(time.RFC3339)
	for _, n := range []string{"requests", "tokens", "input-tokens", "output-tokens"} {
		h.Set("anthropic-ratelimit-"+n+"-limit", "2400000")
		h.Set("anthropic-ratelimit-"+n+"-remaining", strconv.FormatInt(rem, 10))
		h.Set("anthropic-ratelimit-"+n+"-reset", refill)
	}
	start5h := tr.t0.Add(sec / (5 * time.Hour) * 5 * time.Hour)
	util := float64(now.Sub(start5h)) / float64(5*time.Hour) * 0.9
	h.Set("anthropic-ratelimit-unified-5h-utilization", strconv.FormatFloat(util, 'f', 2, 64))
	h.Set("anthropic-ratelimit-unified-5h-reset", strconv.FormatInt(start5h.Add(5*time.Hour).Unix(), 10))
	h.Set("anthropic-ratelimit-unified-5h-status", "allowed")
	h.Set("anthropic-ratelimit-unified-7d-utilization", strconv.FormatFloat(0.3+sec.Hours()/(24*30), 'f', 2, 64))
	h.Set("anthropic-ratelimit-unified-7d-reset", strconv.FormatInt(now.Truncate(time.Hour).Add(7*24*time.Hour).Unix(), 10))
	h.Set("anthropic-ratelimit-unified-7d-status", "allowed")
	h.Set("anthropic-ratelimit-unified-status", "allowed")
	h.Set("anthropic-ratelimit-unified-reset", strconv.FormatInt(start5h.Add(5*time.Hour).Unix(), 10))
	h.Set("anthropic-ratelimit-unified-representative-claim", "five_hour")
	h.Set("request-id", "req_0123456789")
	h.Set("content-type", "application/json")
}

// BenchmarkCapture measures what the counter watch costs per response:
// copying the rate-limit headers off the response (on the response path)
// and parsing, detecting and compacting them (on the watcher's goroutine).
// It reports the median (p50) of each part.
func BenchmarkCapture(b *testing.B) {
	tr := &traffic{t0: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	w := NewWatcher(nil, nil)
	w.stored = make(map[seriesKey]tokenmeter.Sample)
	resp := http.Header{}
	onPath := make([]time.Duration, 0, b.N)
	offPath := make([]time.Duration, 0, b.N)
	const cred = "cred:0123456789abcdef"
	b.ResetTimer()
	for i := range b.N {
		now := tr.t0.Add(time.Duration(i) * 100 * time.Millisecond)
		tr.headers(now, resp)
		t1 := time.Now()
		hs := Select(resp)
		t2 := time.Now()
		for _, s := range Parse(hs, now, "anthropic", cred) {
			if len(w.Detector.Sample(s)) == 0 {
				w.keep(s, false)
			}
		}
		w.Detector.Status(now, "anthropic", cred, 200, "")
		t3 := time.Now()
		onPath = append(onPath, t2.Sub(t1))
		offPath = append(offPath, t3.Sub(t2))
	}
	b.StopTimer()
	med := func(d []time.Duration) float64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[len(d)/2].Nanoseconds())
	}
	b.ReportMetric(med(onPath), "p50-copy-ns")
	b.ReportMetric(med(offPath), "p50-parse-detect-ns")
}

// BenchmarkSamplesDiskSize simulates a gateway at 10 responses a second
// with the headers of traffic, through the watcher's compaction into a
// SQLite ledger, and reports the database size after each simulated day
// and the 30-day figure. TOKENMETER_BENCH_DAYS sets how many days are
// simulated (default 1); with fewer than 30 the 30-day size is
// extrapolated from the last day's growth, the first day's including the
// empty ledger (compaction keeps a bounded number of samples per series
// and minute, so growth is linear). It also reports the anomalies found:
// steady traffic must raise none.
func BenchmarkSamplesDiskSize(b *testing.B) {
	days := 1
	if v, err := strconv.Atoi(os.Getenv("TOKENMETER_BENCH_DAYS")); err == nil && v > 0 {
		days = v
	}
	for range b.N {
		path := filepath.Join(b.TempDir(), "ledger.db")
		db := sqlite.NewDB(path)
		if err := db.Open(); err != nil {
			b.Fatal(err)
		}
		tr := &traffic{t0: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
		w := NewWatcher(db, nil)
		w.Retention = 0
		w.stored = make(map[seriesKey]tokenmeter.Sample)
		w.Log = discard()
		ctx := context.Background()
		resp := http.Header{}
		var sizes []int64
		kept := 0
		for d := range days {
			for i := range 864_000 {
				now := tr.t0.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*100*time.Millisecond)
				tr.headers(now, resp)
				w.process(ctx, Observation{Time: now, Provider: "anthropic", Status: 200, Headers: Select(resp),
					Credential: tokenmeter.Credential{ID: "cred:0123456789abcdef"}})
				if len(w.pending) >= maxBatch {
					kept += len(w.pending)
					w.flush(ctx)
				}
			}
			kept += len(w.pending)
			w.flush(ctx)
			sizes = append(sizes, dbSize(b, db, path))
		}
		anomalies, err := db.Anomalies(ctx, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		db.Close()
		b.ReportMetric(float64(len(anomalies)), "anomalies")
		last := sizes[len(sizes)-1]
		perDay := sizes[0]
		if len(sizes) > 1 {
			perDay = last - sizes[len(sizes)-2]
		}
		month := last + int64(30-days)*perDay
		b.ReportMetric(float64(kept)/float64(days), "samples/day")
		b.ReportMetric(float64(perDay)/(1<<20), "MiB/day")
		b.ReportMetric(float64(month)/(1<<20), "MiB/30days")
	}
}

func dbSize(b *testing.B, db *sqlite.DB, path string) int64 {
	b.Helper()
	// Close and reopen: the final checkpoint moves the WAL into the file.
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	*db = *sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func BenchmarkParse(b *testing.B) {
	tr := &traffic{t0: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	h := http.Header{}
	tr.headers(tr.t0, h)
	hs := Select(h)
	b.ReportAllocs()
	for b.Loop() {
		Parse(hs, tr.t0, "anthropic", "cred:0123456789abcdef")
	}
}
