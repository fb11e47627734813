package fakeupstream_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

// t0 is the frozen clock of test servers: 40 seconds into a minute.
var t0 = time.Date(2026, 11, 20, 10, 30, 40, 0, time.UTC)

// mustServe starts a fake upstream with a frozen clock over a real
// transport, closed when the test ends.
func mustServe(t *testing.T) (*fakeupstream.Server, *httptest.Server) {
	t.Helper()
	fs := fakeupstream.New(fakeupstream.Options{Now: func() time.Time { return t0 }})
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	return fs, srv
}

// request is one raw HTTP request to the fake.
type request struct {
	method, path string
	header       map[string]string
	body         string
}

// send sends req and returns the response with its body read. A read
// error (fault=cut) is returned with whatever was read. It is safe to call
// from any goroutine.
func send(srv *httptest.Server, req request) (*http.Response, []byte, error) {
	if req.method == "" {
		req.method = http.MethodPost
	}
	hr, err := http.NewRequest(req.method, srv.URL+req.path, strings.NewReader(req.body))
	if err != nil {
		return nil, nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	for k, v := range req.header {
		hr.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(hr)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// do is send for requests that must get a response; reading its body may
// fail.
func do(t *testing.T, srv *httptest.Server, req request) (*http.Response, []byte, error) {
	t.Helper()
	resp, body, err := send(srv, req)
	if resp == nil {
		t.Fatalf("%s %s: %v", req.method, req.path, err)
	}
	return resp, body, err
}

// mustDo is do for requests that must be read in full.
func mustDo(t *testing.T, srv *httptest.Server, req request) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := do(t, srv, req)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.method, req.path, err)
	}
	return resp, body
}

// event is one server-sent event.
type event struct {
	name string
	data string
}

// parseSSE splits a text/event-stream body into events.
func parseSSE(t *testing.T, body []byte) []event {
	t.Helper()
	var events []event
	var cur event
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur != (event{}) {
				events = append(events, cur)
			}
			cur = event{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	if cur != (event{}) {
		t.Fatalf("stream ends inside an event: %+v", cur)
	}
	return events
}

// names returns the SSE event names of events.
func names(events []event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.name)
	}
	return out
}

// field decodes data as JSON and returns the value at the dotted path, or
// nil.
func field(t *testing.T, data string, path string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// num returns the JSON number at path in data as an int64, or -1 if absent.
func num(t *testing.T, data string, path string) int64 {
	t.Helper()
	f, ok := field(t, data, path).(float64)
	if !ok {
		return -1
	}
	return int64(f)
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// newTestLogger returns a text logger writing to w under mu.
func newTestLogger(mu *sync.Mutex, w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{mu: mu, w: w}, nil))
}
