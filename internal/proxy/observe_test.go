package proxy

import (
	"net/http"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/counters"
)

// chanObserver is a CounterObserver with a bounded queue that never
// blocks, as counters.Watcher's is.
type chanObserver chan counters.Observation

func (c chanObserver) Observe(o counters.Observation) {
	select {
	case c <- o:
	default:
	}
}

func observeFixture() (*Proxy, *call, *http.Response) {
	p := New(nil, nil, nil)
	u, _ := url.Parse("http://upstream")
	c := &call{p: p, rt: &route{Route: Route{Name: Anthropic, Wire: Anthropic, Upstream: u}}}
	req, _ := http.NewRequest("POST", "http://upstream/v1/messages", nil)
	req.Header.Set("X-Api-Key", "sk-ant-api03-observe-test-0123456789-WXYZ")
	resp := &http.Response{StatusCode: 200, Header: http.Header{}, Request: req}
	for _, n := range []string{"requests", "tokens", "input-tokens", "output-tokens"} {
		resp.Header.Set("anthropic-ratelimit-"+n+"-limit", "2400000")
		resp.Header.Set("anthropic-ratelimit-"+n+"-remaining", "2399000")
		resp.Header.Set("anthropic-ratelimit-"+n+"-reset", "2026-11-30T10:01:00Z")
	}
	for _, n := range []string{"5h", "7d"} {
		resp.Header.Set("anthropic-ratelimit-unified-"+n+"-utilization", "0.38")
		resp.Header.Set("anthropic-ratelimit-unified-"+n+"-reset", "1777500000")
		resp.Header.Set("anthropic-ratelimit-unified-"+n+"-status", "allowed")
	}
	resp.Header.Set("Request-Id", "req_1")
	resp.Header.Set("Content-Type", "application/json")
	return p, c, resp
}

// TestObserve: the observer gets the rate-limit headers, the status and
// the credential's hash (never the secret), the hint once a minute.
func TestObserve(t *testing.T) {
	p, c, resp := observeFixture()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	p.Now = func() time.Time { return now }
	obs := make(chanObserver, 10)
	p.Counters = obs
	for range 3 {
		p.observe(c, resp)
	}
	now = now.Add(CredentialNoteInterval)
	p.observe(c, resp)
	secret := resp.Request.Header.Get("X-Api-Key")
	var notes []bool
	for range 4 {
		o := <-obs
		notes = append(notes, o.NoteCredential)
		if o.Credential.ID != tokenmeter.CredentialID(secret) || o.Credential.ID != CredentialHash(secret) || o.Status != 200 || len(o.Headers) != 18 {
			t.Fatalf("observation %+v", o)
		}
		if o.NoteCredential && o.Credential.Hint != "sk-ant-api03...WXYZ" {
			t.Errorf("hint %q", o.Credential.Hint)
		}
		for _, h := range o.Headers {
			if h.Value == secret {
				t.Errorf("the secret was handed on in %s", h.Name)
			}
		}
	}
	if want := []bool{true, false, false, true}; !equalBools(notes, want) {
		t.Errorf("NoteCredential %v, want %v", notes, want)
	}
	// A full queue drops: observe returns at once.
	full := make(chanObserver)
	p.Counters = full
	done := make(chan struct{})
	go func() { p.observe(c, resp); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("observe blocked on a full observer")
	}
}

func equalBools(a, b []bool) bool {
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

// BenchmarkObserve is what the counter watch adds to the response path:
// copying the rate-limit headers, hashing the credential and queueing the
// observation (counters.Watcher drains it on its own goroutine). It
// reports the median.
func BenchmarkObserve(b *testing.B) {
	p, c, resp := observeFixture()
	obs := make(chanObserver, counters.DefaultQueueSize)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the watcher's goroutine, draining
		for {
			select {
			case <-obs:
			case <-stop:
				return
			}
		}
	}()
	p.Counters = obs
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		p.observe(c, resp)
		d = append(d, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
}
