package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
	"github.com/tokenmeter/tokenmeter/internal/report"
)

// TestServeBounds runs serve twice, configured by flags and by a config
// file, with a named upstream whose base URL ends in /v1 (as provider docs
// write it), --max-in-flight 1 and --request-read-timeout 2s:
//   - the /v1 is dropped at start with a log line, and a call to
//     /groq/v1/chat/completions reaches the upstream's /v1/chat/completions
//     and is metered (before, /v1/v1/..., or unmetered without the /v1);
//   - a path with %2e%2e segments is refused with 400 through the whole
//     server, unrecorded;
//   - a stalled body holds the only slot (503 with retry-after for the
//     next request) until it gets 408.
func TestServeBounds(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	fake := fakeupstream.New(fakeupstream.Options{Observe: func(c fakeupstream.Call) {
		mu.Lock()
		paths = append(paths, c.Path)
		mu.Unlock()
	}})
	up := httptest.NewServer(fake)
	defer up.Close()

	file := filepath.Join(t.TempDir(), "serve.yaml")
	cfgData := t.TempDir()
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata: %s\nupstreams:\n  groq: %s/v1/\n  openai: %s\nmax_in_flight: 1\nrequest_read_timeout: 2s\n", cfgData, up.URL, up.URL)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	flagData := t.TempDir()
	for _, tc := range []struct {
		name string
		data string
		args []string
	}{
		{"flags", flagData, []string{"serve", "--listen", "127.0.0.1:0", "--data", flagData, "--upstream", "groq=" + up.URL + "/v1",
			"--upstream", "openai=" + up.URL, "--max-in-flight", "1", "--request-read-timeout", "2s"}},
		{"config file", cfgData, []string{"serve", "--config", file}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			stdout, stderr := &syncBuffer{}, &syncBuffer{}
			done := make(chan error, 1)
			go func() { done <- Run(ctx, tc.args, strings.NewReader(""), stdout, stderr) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("serve: %v\n%s", err, stderr.String())
				}
			}()
			var base string
			waitFor(t, "serve to listen", func() bool {
				_, rest, ok := strings.Cut(stdout.String(), "gateway on ")
				base, _, _ = strings.Cut(rest, ",")
				return ok && strings.HasPrefix(base, "http://")
			})
			if log := stderr.String(); !strings.Contains(log, "upstream base URL ends in /v1") || !strings.Contains(log, "route=groq") {
				t.Errorf("no log line about the stripped /v1:\n%s", log)
			}
			if !strings.Contains(stdout.String(), "/groq/* -> "+up.URL+"\n") {
				t.Errorf("serve lists the groq upstream as:\n%s", stdout)
			}

			mu.Lock()
			paths = nil
			mu.Unlock()
			resp, b := post(t, base+"/groq/v1/chat/completions", map[string]string{"Authorization": "Bearer gsk-client"},
				`{"model":"llama-test","messages":[{"role":"user","content":"[[fake output=10 input=20]] hi"}]}`)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("groq call: %d %s", resp.StatusCode, b)
			}
			mu.Lock()
			if len(paths) != 1 || paths[0] != "/v1/chat/completions" {
				t.Errorf("upstream paths %q, want /v1/chat/completions", paths)
			}
			mu.Unlock()

			resp, b = post(t, base+"/openai/v1/%2e%2e/%2e%2e/admin", map[string]string{"Authorization": "Bearer sk-client"}, `{"model":"x"}`)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "dot segment") {
				t.Errorf("%%2e%%2e path: %d %s, want 400", resp.StatusCode, b)
			}

			// One slot: a stalled body holds it, the next request gets 503.
			// The stalled request may lose the race for the slot to the
			// probe (then it is refused at once): try again.
			var conn net.Conn
			calls := 1 // recorded: the groq call above and probes that passed
			for attempt := 0; ; attempt++ {
				c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				fmt.Fprintf(c, "POST /groq/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mo")
				time.Sleep(300 * time.Millisecond)
				resp, b = post(t, base+"/groq/v1/chat/completions", map[string]string{"Authorization": "Bearer gsk-client"}, `{"model":"m","messages":[]}`)
				if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
					conn = c
					break
				}
				if resp.StatusCode == http.StatusOK {
					calls++
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				lost, err := http.ReadResponse(bufio.NewReader(c), nil)
				t.Logf("attempt %d: probe %d; stalled request answered %v %v", attempt, resp.StatusCode, lost, err)
				if attempt == 5 {
					t.Fatalf("with one slot held: %d %s, want 503 with retry-after", resp.StatusCode, b)
				}
				c.Close()
			}
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			stalled, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil || stalled.StatusCode != http.StatusRequestTimeout {
				t.Errorf("stalled body: %v %v, want 408", stalled, err)
			}

			out, _, err := run(t, "report", "daily", "--json", "--data", tc.data)
			if err != nil {
				t.Fatalf("report: %v", err)
			}
			var rep report.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			if tot := rep.Totals; tot.Requests != int64(calls) || tot.InputTokens < 20 || tot.OutputTokens < 10 || tot.UsageUnknown != 0 {
				t.Errorf("ledger totals %+v; want %d calls, metered (the first: 20 in, 10 out), and nothing refused", tot, calls)
			}
		})
	}
}

func TestUpstreamBase(t *testing.T) {
	for _, c := range []struct {
		in, want string
		stripped bool
	}{
		{"https://api.groq.com/openai/v1", "https://api.groq.com/openai", true},
		{"https://api.groq.com/openai/v1/", "https://api.groq.com/openai", true},
		{"https://openrouter.ai/api/v1", "https://openrouter.ai/api", true},
		{"https://api.openai.com/v1", "https://api.openai.com", true},
		{"https://api.openai.com", "https://api.openai.com", false},
		{"https://api.groq.com/openai/", "https://api.groq.com/openai", false},
		{"https://example.com/v1beta/openai", "https://example.com/v1beta/openai", false},
		{"https://example.com/xv1", "https://example.com/xv1", false},
	} {
		u, stripped, err := UpstreamBase(c.in)
		if err != nil || u.String() != c.want || stripped != c.stripped {
			t.Errorf("UpstreamBase(%q) = %v, %v, %v; want %s, %v", c.in, u, stripped, err, c.want, c.stripped)
		}
	}
}
