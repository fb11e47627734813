package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// buildBinary builds tokenmeter once per test binary run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tokenmeter-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tokenmeter")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// child is a `tokenmeter serve` process.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(t *testing.T, bin, addr, data, upstream string) *child {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data", data,
		"--upstream", "anthropic="+upstream, "--upstream", "openai="+upstream, "--log-level", "warn")
	logf, err := os.OpenFile(filepath.Join(data, "..", "serve.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for range 500 {
		if r, err := http.Get("http://" + addr + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return &child{cmd: cmd, addr: addr}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatalf("serve did not become healthy")
	return nil
}

// outcome is what one client saw of one call.
type outcome struct {
	id   string // gateway call id, if the response headers arrived
	full bool   // the whole response arrived
	kind string
}

var crashRequests = []struct{ kind, path, body string }{
	{"anthropic-stream", "/anthropic/v1/messages", `{"model":"claude-haiku-5-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"[[fake output=20 delay=4ms cache_read=30]] %d"}]}`},
	{"anthropic-json", "/anthropic/v1/messages", `{"model":"claude-haiku-5-5","max_tokens":100,"messages":[{"role":"user","content":"[[fake output=20 ttfb=20ms]] %d"}]}`},
	{"chat-stream", "/openai/v1/chat/completions", `{"model":"gpt-5","stream":true,"messages":[{"role":"user","content":"[[fake output=20 delay=3ms]] %d"}]}`},
	{"responses-stream", "/openai/v1/responses", `{"model":"gpt-5","stream":true,"input":"[[fake output=20 delay=3ms]] %d"}`},
}

func doCrashCall(client *http.Client, base string, n int) outcome {
	rq := crashRequests[n%len(crashRequests)]
	o := outcome{kind: rq.kind}
	req, _ := http.NewRequest(http.MethodPost, base+rq.path, strings.NewReader(fmt.Sprintf(rq.body, n)))
	req.Header.Set("x-api-key", "sk-ant-crash-test")
	resp, err := client.Do(req)
	if err != nil {
		return o
	}
	defer resp.Body.Close()
	o.id = resp.Header.Get(HeaderRequestIDForTest)
	if resp.StatusCode != 200 {
		return o
	}
	if !strings.HasSuffix(rq.kind, "stream") {
		b, err := io.ReadAll(resp.Body)
		o.full = err == nil && json.Valid(b)
		return o
	}
	sc := bufio.NewScanner(resp.Body)
	terminal := false
	for sc.Scan() {
		line := sc.Text()
		if line == "event: message_stop" || line == "data: [DONE]" || line == "event: response.completed" {
			terminal = true
		}
	}
	o.full = terminal && sc.Err() == nil
	return o
}

// TestCrashSafety (G1, G2) runs serve as a child process under concurrent
// load, kills it with SIGKILL at random moments, restarts it, and checks
// that every response a client received in full is in the ledger exactly
// once, and every call the client saw start is complete or outcome unknown.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it repeatedly; skipped with -short")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	up, _ := newUpstream(t)
	root := t.TempDir()
	data := filepath.Join(root, "data")
	addr := freePort(t)
	cycles := 20
	if v, err := strconv.Atoi(os.Getenv("TOKENMETER_CRASH_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var all []outcome
	var mu sync.Mutex
	seq := 0
	for cycle := range cycles {
		c := startChild(t, bin, addr, data, up.URL)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
				for ctx.Err() == nil {
					mu.Lock()
					seq++
					n := seq*8 + w
					mu.Unlock()
					o := doCrashCall(client, "http://"+c.addr, n)
					mu.Lock()
					all = append(all, o)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond)
		c.cmd.Process.Signal(syscall.SIGKILL)
		c.cmd.Wait()
		stop()
		wg.Wait()
		t.Logf("cycle %d: killed after %d calls so far", cycle, len(all))
	}
	// A last, clean run recovers the calls the final kill left open.
	c := startChild(t, bin, addr, data, up.URL)
	c.cmd.Process.Signal(syscall.SIGTERM)
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM", err)
	}

	db := sqlite.NewDB(filepath.Join(data, LedgerFile))
	db.ReadOnly = true
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := completedEvents(t, db, nil)
	open, err := db.OpenCalls(context.Background(), nil)
	if err != nil || len(open) != 0 {
		t.Errorf("after recovery %d calls are still open (%v)", len(open), err)
	}
	full, cut, unknown := 0, 0, 0
	for _, o := range all {
		if o.id == "" {
			continue // never reached the client: nothing promised
		}
		ev, ok := got[o.id]
		switch {
		case o.full:
			full++
			if !ok {
				t.Errorf("%s call %s reached the client in full but is not in the ledger", o.kind, o.id)
			} else if ev.Outcome != tokenmeter.OutcomeOK || !ev.UsageKnown || ev.Usage.OutputTokens != 20 {
				t.Errorf("%s call %s reached the client in full but is recorded as %s, usage %+v (%s)", o.kind, o.id, ev.Outcome, ev.Usage, ev.Reason)
			}
		default:
			cut++
			if !ok {
				t.Errorf("%s call %s was cut and is not in the ledger", o.kind, o.id)
			} else if ev.Outcome != tokenmeter.OutcomeOK && ev.Outcome != tokenmeter.OutcomeUnknown {
				t.Errorf("%s call %s was cut by the crash but recorded as %s (%s)", o.kind, o.id, ev.Outcome, ev.Reason)
			}
			if ev.Outcome == tokenmeter.OutcomeUnknown {
				unknown++
			}
		}
	}
	t.Logf("%d calls: %d received in full, %d cut (%d recorded outcome unknown), %d completed events in the ledger", len(all), full, cut, unknown, len(got))
	if full == 0 || cut == 0 {
		t.Errorf("load produced %d full and %d cut calls; the test needs both to prove anything", full, cut)
	}
	if res, err := ledger.Verify(context.Background(), db); err != nil {
		t.Errorf("verify after %d crashes: %v", cycles, err)
	} else {
		t.Logf("verify: %d events chained", res.Events)
	}
}
