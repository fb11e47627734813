package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// Issue 12: exact at the edges. Each test reproduces one of the issue's
// findings against what fake-upstream BILLED (its billing account), not
// against what the gateway happened to see: the ledger holds at least what
// was billed for every call, or marks the call estimated or unknown (never
// a known figure below the bill), and under hard limits what the upstream
// billed never exceeds the limit.

// edges is a gateway with virtual keys in front of a fake upstream whose
// billing account the test reads.
type edges struct {
	gw  *gateway
	tap *credTap
}

func newEdges(t *testing.T) *edges {
	t.Helper()
	gw, tap := keysGateway(t, nil, nil)
	return &edges{gw: gw, tap: tap}
}

// limit sets a hard limit with a day window that does not reset during the
// test.
func (e *edges) limit(t *testing.T, name, scope, metric, max string) {
	t.Helper()
	reset := time.Now().UTC().Add(12 * time.Hour).Truncate(15 * time.Minute)
	if _, stderr, err := run(t, "limits", "set", name, "--scope", scope, "--metric", metric, "--max", max,
		"--window", "day", "--reset-at", reset.Format("15:04"), "--tz", "UTC", "--mode", "hard", "--data", e.gw.Config.Data); err != nil {
		t.Fatalf("limits set %s: %v %s", name, err, stderr)
	}
	// A running gateway reads its limits again once its cached list is
	// older than limits.DefaultCacheTTL.
	time.Sleep(limits.DefaultCacheTTL + 100*time.Millisecond)
}

// bills returns the fake's bills by call id (its request id, which the
// ledger records as the upstream request id), waiting for background work
// to be billed.
func (e *edges) bills(t *testing.T) (map[string]fakeupstream.Bill, fakeupstream.BillingTotals) {
	t.Helper()
	var rep fakeupstream.BillingReport
	for range 500 {
		if rep = e.tap.fake.Billing(0); rep.PendingBackground == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := map[string]fakeupstream.Bill{}
	for _, b := range rep.Bills {
		prev := out[b.CallID]
		b.Billed = b.Billed.Add(prev.Billed) // a background entry adds to its create call's
		b.CostMicros += prev.CostMicros
		out[b.CallID] = b
	}
	return out, rep.Totals
}

// ledgerByUpstream returns the ledger's figure for each upstream call: the
// completed event with its revisions and retractions summed, by upstream
// request id, and the state of its usage.
func (e *edges) ledgerByUpstream(t *testing.T) map[string]tokenmeter.Event {
	t.Helper()
	// A call the client cut is recorded when the gateway notices, which
	// can be after the client has moved on: wait for every call to end and
	// its record to be written.
	for i := 0; (e.gw.proxy.InFlight() > 0 || e.gw.writer.QueueDepth() > 0) && i < 1000; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	byCall := map[string]*tokenmeter.Event{}
	var order []string
	err := e.gw.store.Scan(context.Background(), 0, func(ev *tokenmeter.Event) error {
		switch ev.Kind {
		case tokenmeter.KindCompleted:
			c := *ev
			byCall[ev.RequestKey] = &c
			order = append(order, ev.RequestKey)
		case tokenmeter.KindRevised, tokenmeter.KindRetracted:
			c := byCall[ev.RequestKey]
			if c == nil {
				return nil
			}
			c.Usage, c.Cost, c.Hold = c.Usage.Add(ev.Usage), c.Cost+ev.Cost, c.Hold.Add(ev.Hold)
			if ev.Kind == tokenmeter.KindRevised && ev.UsageKnown {
				c.UsageKnown, c.Estimate = true, ""
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]tokenmeter.Event{}
	for _, k := range order {
		if c := byCall[k]; c.UpstreamRequestID != "" {
			out[c.UpstreamRequestID] = *c
		}
	}
	return out
}

// checkBilled fails for every billed call the ledger records with a known
// figure below the bill, or not at all.
func (e *edges) checkBilled(t *testing.T) {
	t.Helper()
	bills, _ := e.bills(t)
	ledger := e.ledgerByUpstream(t)
	for id, b := range bills {
		if b.Billed.IsZero() {
			continue
		}
		ev, ok := ledger[id]
		switch {
		case !ok:
			t.Errorf("upstream call %s (%s %s) billed %+v and is not in the ledger", id, b.Method, b.Path, b.Billed)
		case ev.UsageKnown && (ev.Usage.InputTokens+ev.Usage.CacheReadTokens+ev.Usage.CacheWriteTokens() < b.Billed.PromptTokens() ||
			ev.Usage.OutputTokens < b.Billed.OutputTokens):
			t.Errorf("upstream call %s (%s %s) billed %+v; the ledger knows %+v (a known figure below the bill)", id, b.Method, b.Path, b.Billed, ev.Usage)
		}
	}
}

// send posts body on path with the virtual key and extra headers, and
// returns the response with its body.
func (e *edges) send(t *testing.T, key, path string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.gw.URL()+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if strings.HasPrefix(path, "/anthropic") {
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
	} else {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// cutStream sends an Anthropic stream and closes it after reading n
// content_block_delta events; it returns the gateway's status.
func (e *edges) cutStream(t *testing.T, key, body string, n int) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.gw.URL()+"/anthropic/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	sc := bufio.NewScanner(resp.Body)
	for seen := 0; seen < n && sc.Scan(); {
		if sc.Text() == "event: content_block_delta" {
			seen++
		}
	}
	return resp.StatusCode
}

// TestEdgeCutStreams (item 1): a client that reads 200 deltas of a stream
// and leaves has the tokens generated until then billed; the ledger
// records the call as estimated, at least what was billed, never as a
// known output of 1. Under a 100-token hard output limit, cut calls cannot
// deliver more than the limit: each keeps charging its reservation.
func TestEdgeCutStreams(t *testing.T) {
	e := newEdges(t)
	free := createKey(t, e.gw.Config.Data, "--name", "free")
	capped := createKey(t, e.gw.Config.Data, "--name", "capped")
	body := `{"model":"claude-sonnet-5-5","max_tokens":1000,"stream":true,"messages":[{"role":"user","content":"go [[fake output=400 delay=3ms]]"}]}`
	for range 3 {
		if st := e.cutStream(t, free, body, 200); st != http.StatusOK {
			t.Fatalf("status %d", st)
		}
	}
	e.checkBilled(t)
	bills, _ := e.bills(t)
	for id, ev := range e.ledgerByUpstream(t) {
		b := bills[id]
		if ev.UsageState() != tokenmeter.UsageStateEstimated || ev.Usage.OutputTokens < b.Billed.OutputTokens || ev.Usage.InputTokens != b.Billed.InputTokens {
			t.Errorf("cut call %s: ledger %s %+v (%s), billed %+v; want an estimate of at least the billed output with the exact input",
				id, ev.UsageState(), ev.Usage, ev.Estimate, b.Billed)
		}
	}

	e.limit(t, "out", "key:capped", "output_tokens", "100")
	before := e.tap.fake.Billing(0).Totals.Billed.OutputTokens
	capBody := strings.Replace(body, `"max_tokens":1000`, `"max_tokens":50`, 1)
	capBody = strings.Replace(capBody, "output=400", "output=50", 1)
	refused := 0
	for range 6 {
		if st := e.cutStream(t, capped, capBody, 25); st == http.StatusTooManyRequests {
			refused++
		} else if st != http.StatusOK {
			t.Fatalf("status %d", st)
		}
	}
	_, totals := e.bills(t)
	if delivered := totals.Billed.OutputTokens - before; delivered > 100 || refused == 0 {
		t.Errorf("six cut calls under a 100-token output limit: upstream billed %d output tokens, %d refused; want at most 100 and some refused", delivered, refused)
	}
}

// TestEdgeBackground (item 2): a Responses `background: true` request is
// refused under a hard limit (its work is billed later, unbounded by any
// reservation); without one it is recorded as usage unknown, and a poll of
// the response through the gateway settles it with the billed figure.
func TestEdgeBackground(t *testing.T) {
	e := newEdges(t)
	capped := createKey(t, e.gw.Config.Data, "--name", "capped")
	free := createKey(t, e.gw.Config.Data, "--name", "free")
	e.limit(t, "tok", "key:capped", "tokens", "10000")
	bg := `{"model":"gpt-5","background":true,"max_output_tokens":9000,"input":"work [[fake output=9000 background_delay=50ms]]"}`
	for range 5 {
		if resp, body := e.send(t, capped, "/openai/v1/responses", nil, []byte(bg)); resp.StatusCode != http.StatusForbidden {
			t.Errorf("background under a hard limit: %d %s; want 403", resp.StatusCode, body)
		}
	}
	if _, totals := e.bills(t); totals.Billed.TotalTokens() != 0 {
		t.Errorf("refused background calls billed %+v upstream", totals.Billed)
	}

	resp, body := e.send(t, free, "/openai/v1/responses", nil, []byte(bg))
	var created struct{ ID, Status string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &created) != nil || created.ID == "" {
		t.Fatalf("background create: %d %s", resp.StatusCode, body)
	}
	ev := e.gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
	if ev.UsageKnown || ev.UsageState() == tokenmeter.UsageStateKnown {
		t.Errorf("background create recorded with known usage %+v; want unknown until it is read back", ev.Usage)
	}
	// Poll through the gateway until the response completes.
	for i := 0; ; i++ {
		req, _ := http.NewRequest(http.MethodGet, e.gw.URL()+"/openai/v1/responses/"+created.ID, nil)
		req.Header.Set("Authorization", "Bearer "+free)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		var st struct{ Status string }
		json.Unmarshal(b, &st)
		if st.Status == "completed" {
			break
		}
		if i > 200 {
			t.Fatalf("response %s never completed: %s", created.ID, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.checkBilled(t)
	bills, _ := e.bills(t)
	got := e.ledgerByUpstream(t)[ev.UpstreamRequestID]
	if b := bills[ev.UpstreamRequestID]; !got.UsageKnown || got.Usage != b.Billed {
		t.Errorf("background call after its poll: ledger %+v (known %v), billed %+v; want the billed figure, known", got.Usage, got.UsageKnown, b.Billed)
	}
	// However often it was polled, the work counts once.
	if total := ledgerTotal(t, e); total != bills[ev.UpstreamRequestID].Billed {
		t.Errorf("ledger total %+v after the polls; want the background work once, %+v", total, bills[ev.UpstreamRequestID].Billed)
	}
}

// ledgerTotal sums the ledger's usage.
func ledgerTotal(t *testing.T, e *edges) tokenmeter.Usage {
	t.Helper()
	bs, err := e.gw.store.Usage(context.Background(), tokenmeter.UsageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var u tokenmeter.Usage
	for _, b := range bs {
		u = u.Add(b.Usage)
	}
	return u
}

// gz compresses b.
func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// utf16LE encodes s as UTF-16LE with a BOM.
func utf16LE(s string) []byte {
	out := []byte{0xff, 0xfe}
	for _, u := range utf16.Encode([]rune(s)) {
		out = binary.LittleEndian.AppendUint16(out, u)
	}
	return out
}

// TestEdgeEncodedBodies (item 3): bodies the gateway must decode to read
// (gzip, a BOM, UTF-16) are metered from their decoded form: a small gzip
// body holding a large prompt is held to a token limit, cost and model
// limits see the model, and the ledger records the call's usage.
func TestEdgeEncodedBodies(t *testing.T) {
	e := newEdges(t)
	tok := createKey(t, e.gw.Config.Data, "--name", "tok")
	money := createKey(t, e.gw.Config.Data, "--name", "money")
	free := createKey(t, e.gw.Config.Data, "--name", "free")
	e.limit(t, "tok", "key:tok", "tokens", "50000")
	e.limit(t, "money", "key:money", "cost_usd", "0.01")
	e.limit(t, "opus", "model:claude-opus-4-5", "requests", "1")

	big := `{"model":"claude-sonnet-5-5","max_tokens":100,"messages":[{"role":"user","content":"` + strings.Repeat("a ", 300_000) + `"}]}`
	small := gz([]byte(big))
	if len(small) > 4096 {
		t.Fatalf("the gzip body is %d bytes; want a small one", len(small))
	}
	resp, body := e.send(t, tok, "/anthropic/v1/messages", map[string]string{"Content-Encoding": "gzip"}, small)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a %d-byte gzip body of %d bytes under a 50k-token limit: %d %s; want 429", len(small), len(big), resp.StatusCode, body)
	}
	dear := `{"model":"claude-opus-4-5","max_tokens":32000,"messages":[{"role":"user","content":"hi [[fake output=5]]"}]}`
	for name, enc := range map[string]struct {
		hdr  map[string]string
		body []byte
	}{
		"gzip":   {map[string]string{"Content-Encoding": "gzip"}, gz([]byte(dear))},
		"bom":    {nil, append([]byte{0xef, 0xbb, 0xbf}, dear...)},
		"utf-16": {nil, utf16LE(dear)},
	} {
		if resp, body := e.send(t, money, "/anthropic/v1/messages", enc.hdr, enc.body); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("%s body of a $2+ worst case under a $0.01 limit: %d %s; want 429", name, resp.StatusCode, body)
		}
	}
	admitted := 0
	for _, b := range [][]byte{gz([]byte(dear)), append([]byte{0xef, 0xbb, 0xbf}, dear...), utf16LE(dear)} {
		hdr := map[string]string{}
		if b[0] == 0x1f {
			hdr["Content-Encoding"] = "gzip"
		}
		resp, body := e.send(t, free, "/anthropic/v1/messages", hdr, b)
		if resp.StatusCode == http.StatusOK {
			admitted++
		} else if resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("model-limited call: %d %s", resp.StatusCode, body)
		}
	}
	if admitted != 1 {
		t.Errorf("%d calls admitted under a model: limit of 1 request; want 1", admitted)
	}
	e.checkBilled(t)
	for id, ev := range e.ledgerByUpstream(t) {
		if ev.Model != "claude-opus-4-5" || !ev.UsageKnown || !ev.CostKnown || ev.Cost == 0 {
			t.Errorf("encoded call %s recorded as model %q, usage known %v, cost %v known %v; want its model and priced usage", id, ev.Model, ev.UsageKnown, ev.Cost, ev.CostKnown)
		}
	}
}

// TestEdgeLargeFrame (item 4): a Responses stream whose terminal frame
// echoes a large instructions field (over the gateway's 1 MiB frame size)
// is metered exactly, as is the same reply as one JSON body.
func TestEdgeLargeFrame(t *testing.T) {
	e := newEdges(t)
	key := createKey(t, e.gw.Config.Data, "--name", "k")
	instr := strings.Repeat("Follow the house style. ", 55_000) // about 1.3 MB
	for _, stream := range []bool{true, false} {
		body, _ := json.Marshal(map[string]any{"model": "gpt-5", "stream": stream, "instructions": instr,
			"input": "hi [[fake output=30]]"})
		resp, b := e.send(t, key, "/openai/v1/responses", nil, body)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("Follow the house style.")) {
			t.Fatalf("stream %v: %d, %d bytes; want 200 with the instructions echoed", stream, resp.StatusCode, len(b))
		}
	}
	e.checkBilled(t)
	bills, _ := e.bills(t)
	for id, ev := range e.ledgerByUpstream(t) {
		if b := bills[id]; !ev.UsageKnown || ev.Usage != b.Billed || b.Billed.InputTokens < 250_000 {
			t.Errorf("call %s (stream %v): ledger %+v known %v; billed %+v; want the billed figure, known", id, ev.Stream, ev.Usage, ev.UsageKnown, b.Billed)
		}
	}
}

// TestEdgeChoices (item 5): Chat Completions n multiplies the worst case.
func TestEdgeChoices(t *testing.T) {
	e := newEdges(t)
	key := createKey(t, e.gw.Config.Data, "--name", "k")
	e.limit(t, "out", "key:k", "output_tokens", "10000")
	resp, body := e.send(t, key, "/openai/v1/chat/completions", nil,
		[]byte(`{"model":"gpt-5","n":8,"max_completion_tokens":5000,"messages":[{"role":"user","content":"hi [[fake output=5000]]"}]}`))
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("n=8 × 5,000 under a 10,000 output limit: %d %s; want 429", resp.StatusCode, body)
	}
	resp, body = e.send(t, key, "/openai/v1/chat/completions", nil,
		[]byte(`{"model":"gpt-5","n":2,"max_completion_tokens":3000,"messages":[{"role":"user","content":"hi [[fake output=3000]]"}]}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("n=2 × 3,000: %d %s", resp.StatusCode, body)
	}
	_, totals := e.bills(t)
	if totals.Billed.OutputTokens != 6000 {
		t.Errorf("upstream billed %d output tokens; want 6000 (two choices)", totals.Billed.OutputTokens)
	}
	e.checkBilled(t)
}

// TestEdgeModelAliases (item 6): a model: limit named by the canonical
// model holds requests that name its aliases.
func TestEdgeModelAliases(t *testing.T) {
	e := newEdges(t)
	key := createKey(t, e.gw.Config.Data, "--name", "k")
	e.limit(t, "opus4", "model:claude-opus-4", "requests", "2")
	e.limit(t, "sonnet37", "model:claude-3-7-sonnet-latest", "requests", "1")
	admitted := map[string]int{}
	for _, model := range []string{"claude-opus-4-0", "claude-opus-4-20250514", "claude-opus-4-0", "claude-opus-4",
		"claude-3-7-sonnet-latest", "claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest"} {
		resp, body := e.send(t, key, "/anthropic/v1/messages", nil,
			[]byte(`{"model":"`+model+`","max_tokens":20,"messages":[{"role":"user","content":"hi [[fake output=3]]"}]}`))
		switch resp.StatusCode {
		case http.StatusOK:
			admitted[limitsFamily(model)]++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("%s: %d %s", model, resp.StatusCode, body)
		}
	}
	if admitted["opus"] != 2 || admitted["sonnet"] != 1 {
		t.Errorf("admitted %v; want 2 claude-opus-4 and 1 claude-3-7-sonnet calls (aliases and snapshots are one model)", admitted)
	}
	out, _, err := run(t, "limits", "list", "--json", "--data", e.gw.Config.Data)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Limits []struct {
			Name string
			Used int64
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("limits list --json: %v\n%s", err, out)
	}
	for _, l := range list.Limits {
		if want := map[string]int64{"opus4": 2, "sonnet37": 1}[l.Name]; l.Used != want {
			t.Errorf("limit %s shows %d used; want %d", l.Name, l.Used, want)
		}
	}
}

func limitsFamily(model string) string {
	if strings.Contains(model, "opus") {
		return "opus"
	}
	return "sonnet"
}

// TestEdgeUnpricedModel: a cost limit refuses a model it cannot price.
func TestEdgeUnpricedModel(t *testing.T) {
	e := newEdges(t)
	key := createKey(t, e.gw.Config.Data, "--name", "k")
	e.limit(t, "money", "key:k", "cost_usd", "5")
	resp, body := e.send(t, key, "/openai/v1/chat/completions", nil,
		[]byte(`{"model":"mystery-model-9","max_completion_tokens":10,"messages":[{"role":"user","content":"hi"}]}`))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "no price") {
		t.Errorf("an unpriced model under a cost limit: %d %s; want 403 saying it has no price", resp.StatusCode, body)
	}
}

// TestHostileClients runs every shape at once, concurrently, through one
// key under hard token and cost limits: whatever the clients do, the
// upstream never bills more than the limits, and every billed call is in
// the ledger at or above its bill (or marked estimated or unknown).
func TestHostileClients(t *testing.T) {
	e := newEdges(t)
	key := createKey(t, e.gw.Config.Data, "--name", "h")
	const maxTokens, maxCost = 60_000, "0.60"
	e.limit(t, "tok", "key:h", "tokens", fmt.Sprint(maxTokens))
	e.limit(t, "money", "key:h", "cost_usd", maxCost)
	shapes := []func(){
		func() { // cut stream
			e.cutStream(t, key, `{"model":"claude-sonnet-5-5","max_tokens":800,"stream":true,"messages":[{"role":"user","content":"go [[fake output=800 delay=2ms]]"}]}`, 40)
		},
		func() { // background
			e.send(t, key, "/openai/v1/responses", nil, []byte(`{"model":"gpt-5","background":true,"input":"x [[fake output=9000]]"}`))
		},
		func() { // a small gzip body with a large prompt
			big := `{"model":"claude-sonnet-5-5","max_tokens":100,"messages":[{"role":"user","content":"` + strings.Repeat("b ", 100_000) + `"}]}`
			e.send(t, key, "/anthropic/v1/messages", map[string]string{"Content-Encoding": "gzip"}, gz([]byte(big)))
		},
		func() { // n choices
			e.send(t, key, "/openai/v1/chat/completions", nil, []byte(`{"model":"gpt-5","n":8,"max_completion_tokens":900,"messages":[{"role":"user","content":"hi [[fake output=900]]"}]}`))
		},
		func() { // an alias
			e.send(t, key, "/anthropic/v1/messages", nil, []byte(`{"model":"claude-opus-4-0","max_tokens":300,"messages":[{"role":"user","content":"hi [[fake output=300]]"}]}`))
		},
		func() { // unmetered endpoints
			e.send(t, key, "/openai/v1/images/generations", nil, []byte(`{"model":"gpt-image-1","prompt":"a cat"}`))
			e.send(t, key, "/openai/v1/completions", nil, []byte(`{"model":"gpt-3.5-turbo-instruct","prompt":"hi"}`))
		},
		func() { // a streamed chat completion read to the end
			e.send(t, key, "/openai/v1/chat/completions", nil, []byte(`{"model":"gpt-5","stream":true,"max_completion_tokens":400,"messages":[{"role":"user","content":"hi [[fake output=400]]"}]}`))
		},
		func() { // a terminal frame over 1 MiB
			body, _ := json.Marshal(map[string]any{"model": "gpt-5", "stream": true, "max_output_tokens": 50,
				"instructions": strings.Repeat("Be brief. ", 110_000), "input": "hi [[fake output=50]]"})
			e.send(t, key, "/openai/v1/responses", nil, body)
		},
		func() { // a BOM body
			e.send(t, key, "/anthropic/v1/messages", nil, append([]byte{0xef, 0xbb, 0xbf}, `{"model":"claude-haiku-5-5","max_tokens":600,"messages":[{"role":"user","content":"hi [[fake output=600]]"}]}`...))
		},
	}
	var wg sync.WaitGroup
	for round := range 12 {
		for i, shape := range shapes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = round
				_ = i
				shape()
			}()
		}
	}
	wg.Wait()
	_, totals := e.bills(t)
	maxMicros, _ := limits.ParseMax(tokenmeter.MetricCost, maxCost)
	if totals.Billed.TotalTokens() > maxTokens || int64(totals.CostMicros) > maxMicros {
		t.Errorf("hostile clients under hard limits of %d tokens and $%s: the upstream billed %d tokens and %v",
			maxTokens, maxCost, totals.Billed.TotalTokens(), totals.CostMicros)
	}
	if totals.Billed.TotalTokens() == 0 {
		t.Errorf("nothing was billed: the test sent nothing through")
	}
	e.checkBilled(t)
	t.Logf("billed %d tokens, %v, over %d entries", totals.Billed.TotalTokens(), totals.CostMicros, totals.Entries)
}
