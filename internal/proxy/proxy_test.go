package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
)

// gateRecorder holds every started event's commit until release is
// called, so a test can act while the gateway waits for it.
type gateRecorder struct {
	mu      sync.Mutex
	events  []tokenmeter.Event
	release []func(error)
	waiting chan struct{}
}

func (g *gateRecorder) Submit(ev tokenmeter.Event) *ledger.Pending {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.events = append(g.events, ev)
	if ev.Kind != tokenmeter.KindStarted {
		return ledger.Done(nil)
	}
	p, done := ledger.NewPending()
	g.release = append(g.release, done)
	close(g.waiting)
	return p
}

func (g *gateRecorder) Healthy() bool { return true }

func (g *gateRecorder) completed() []tokenmeter.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []tokenmeter.Event
	for _, ev := range g.events {
		if ev.Kind == tokenmeter.KindCompleted {
			out = append(out, ev)
		}
	}
	return out
}

// TestClientLeavesDuringStartCommit: a client that goes away while the
// gateway waits for the started record must be recorded as cancelled, not
// mistaken for a ledger failure (which left the call open until restart).
func TestClientLeavesDuringStartCommit(t *testing.T) {
	for _, durability := range []string{DurabilityStrict, DurabilityNormal} {
		t.Run(durability, func(t *testing.T) {
			var upstreamCalls atomic.Int32
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				upstreamCalls.Add(1)
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"id":"msg_1","model":"m","usage":{"input_tokens":3,"output_tokens":4}}`)
			}))
			defer up.Close()
			u, _ := url.Parse(up.URL)
			rec := &gateRecorder{waiting: make(chan struct{})}
			p := New([]Route{{Name: "anthropic", Prefix: "/anthropic", Wire: Anthropic, Upstream: u}}, rec, slog.New(slog.DiscardHandler))
			p.Durability = durability

			ctx, cancel := context.WithCancel(context.Background())
			req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/anthropic/v1/messages", strings.NewReader(`{"model":"m","max_tokens":5,"messages":[]}`))
			w := httptest.NewRecorder()
			served := make(chan struct{})
			go func() {
				defer close(served)
				p.ServeHTTP(w, req)
			}()
			<-rec.waiting
			if durability == DurabilityNormal {
				// Let the upstream answer while the start is still committing.
				for i := 0; i < 200 && upstreamCalls.Load() == 0; i++ {
					time.Sleep(5 * time.Millisecond)
				}
			}
			cancel()
			time.Sleep(20 * time.Millisecond)
			rec.mu.Lock()
			rec.release[0](nil)
			rec.mu.Unlock()
			<-served

			done := rec.completed()
			if len(done) != 1 {
				t.Fatalf("%d completions recorded, want 1 (the call must not stay open)", len(done))
			}
			if done[0].Outcome != tokenmeter.OutcomeCancelled {
				t.Errorf("recorded outcome %q (%s), want cancelled", done[0].Outcome, done[0].Reason)
			}
			if durability == DurabilityStrict && upstreamCalls.Load() != 0 {
				t.Errorf("strict durability forwarded a request whose client had left")
			}
			if w.Code == http.StatusServiceUnavailable {
				t.Errorf("client departure answered as a ledger failure (503)")
			}
		})
	}
}
