package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// tap wraps the fake upstream and keeps, per upstream request id, the exact
// bytes it sent, so tests can compare them with what the client received.
type tap struct {
	fake *fakeupstream.Server

	mu        sync.Mutex
	sent      map[string]*bytes.Buffer
	cancelled map[string]bool // the upstream saw its request context end early
}

func newUpstream(t *testing.T) (*httptest.Server, *tap) {
	t.Helper()
	tp := &tap{fake: fakeupstream.New(fakeupstream.Options{}), sent: map[string]*bytes.Buffer{}, cancelled: map[string]bool{}}
	srv := httptest.NewServer(tp)
	t.Cleanup(srv.Close)
	return srv, tp
}

func (tp *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &tapWriter{ResponseWriter: w, buf: &bytes.Buffer{}}
	defer func() {
		id := w.Header().Get("Request-Id")
		if id == "" {
			id = w.Header().Get("X-Request-Id")
		}
		tp.mu.Lock()
		tp.sent[id] = rec.buf
		if r.Context().Err() != nil {
			tp.cancelled[id] = true
		}
		tp.mu.Unlock()
	}()
	tp.fake.ServeHTTP(rec, r)
}

func (tp *tap) bytes(id string) []byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if b, ok := tp.sent[id]; ok {
		return b.Bytes()
	}
	return nil
}

type tapWriter struct {
	http.ResponseWriter
	buf *bytes.Buffer
}

func (w *tapWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	return w.ResponseWriter.Write(p)
}

func (w *tapWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *tapWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// gateway is a running Serve with a log buffer.
type gateway struct {
	*Serve
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startGateway runs serve in-process against upstream, with a fresh data dir.
func startGateway(t *testing.T, upstream string, edit func(*Serve)) *gateway {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.Upstreams = map[string]string{"anthropic": upstream, "openai": upstream}
	cfg.LogLevel = "debug"
	logs := &syncBuffer{}
	s := &Serve{Config: cfg, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(s)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return &gateway{Serve: s, logs: logs}
}

// completed returns the completed events in the ledger by request key,
// after waiting for the writer to drain (completions of cut calls are
// submitted without waiting).
func (g *gateway) completed(t *testing.T) map[string]tokenmeter.Event {
	t.Helper()
	return completedEvents(t, g.store, g.writer.QueueDepth)
}

func completedEvents(t *testing.T, store *sqlite.DB, depth func() int) map[string]tokenmeter.Event {
	t.Helper()
	for i := 0; depth != nil && depth() > 0 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	out := map[string]tokenmeter.Event{}
	err := store.Scan(context.Background(), 0, func(ev *tokenmeter.Event) error {
		if ev.Kind == tokenmeter.KindCompleted {
			if _, dup := out[ev.RequestKey]; dup {
				t.Errorf("call %s has two completed events", ev.RequestKey)
			}
			out[ev.RequestKey] = *ev
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitCompleted polls until the call id has a completed event.
func (g *gateway) waitCompleted(t *testing.T, id string) tokenmeter.Event {
	t.Helper()
	for range 300 {
		if ev, ok := g.completed(t)[id]; ok {
			return ev
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("call %s never completed in the ledger", id)
	return tokenmeter.Event{}
}

// post sends a raw request through the gateway and returns the response
// with its body read in full.
func post(t *testing.T, url string, hdr map[string]string, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response of POST %s: %v", url, err)
	}
	return resp, b
}

// openLedgerReadOnly opens the ledger in dir read-only, as report does.
func openLedgerReadOnly(dir string) (*sqlite.DB, error) {
	db, _, err := (&ledgerFlags{data: dir, getenv: os.Getenv}).open(true)
	return db, err
}

// newLedger returns a data directory holding an empty ledger, as serve
// leaves it: keys, limits and alerts refuse to create one.
func newLedger(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db := sqlite.NewDB(filepath.Join(dir, LedgerFile))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}
