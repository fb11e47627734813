package fakeupstream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	openaisdk "github.com/openai/openai-go/v3"
	openaioption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

// billed reads the billing account over HTTP, as an out-of-process test
// does.
func billed(t *testing.T, srv *httptest.Server, since int64) fakeupstream.BillingReport {
	t.Helper()
	resp, body := mustDo(t, srv, request{method: http.MethodGet, path: fmt.Sprintf("%s?since=%d", fakeupstream.BillingPath, since)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", fakeupstream.BillingPath, resp.StatusCode, body)
	}
	var rep fakeupstream.BillingReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("GET %s: %v: %s", fakeupstream.BillingPath, err, body)
	}
	return rep
}

// billOf waits until the billing account has the entry of kind for the
// call with request id callID, and returns it.
func billOf(t *testing.T, srv *httptest.Server, callID, kind string) fakeupstream.Bill {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, b := range billed(t, srv, 0).Bills {
			if b.CallID == callID && b.Kind == kind {
				return b
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s bill for %s after 10s", kind, callID)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cutRoutes are streams with their text-delta events, to be read in part.
var cutRoutes = []struct {
	name, path, body string
	header           map[string]string
	isDelta          func(e event) bool
}{
	{"Messages", "/v1/messages", `{"model":"claude-sonnet-5-5","max_tokens":5000,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{"anthropic-version": "2023-06-01"},
		func(e event) bool { return e.name == "content_block_delta" }},
	{"Chat", "/v1/chat/completions", `{"model":"gpt-5.4","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
		nil, func(e event) bool { return strings.Contains(e.data, `"content":" `) }},
	{"Responses", "/v1/responses", `{"model":"gpt-5.4","stream":true,"input":"hi"}`,
		nil, func(e event) bool { return e.name == "response.output_text.delta" }},
	{"Completions", "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","max_tokens":5000,"stream":true,"prompt":"hi"}`,
		nil, func(e event) bool { return strings.Contains(e.data, `"text":" `) }},
}

// TestBillingCutStream reads 200 text deltas of a paced stream and leaves:
// the fake bills the input in full and the output generated until then,
// about 200 tokens, not the 1000 planned.
func TestBillingCutStream(t *testing.T) {
	const read, planned, reasoning = 200, 1000, 30
	for _, rt := range cutRoutes {
		t.Run(rt.name, func(t *testing.T) {
			calls := make(chan fakeupstream.Call, 1)
			fs := fakeupstream.New(fakeupstream.Options{Now: func() time.Time { return t0 }, Observe: func(c fakeupstream.Call) { calls <- c }})
			srv := httptest.NewServer(fs)
			t.Cleanup(srv.Close)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hr, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+rt.path, strings.NewReader(rt.body))
			if err != nil {
				t.Fatal(err)
			}
			hr.Header.Set(fakeupstream.DirectiveHeader, fmt.Sprintf("output=%d reasoning=%d delay=5ms", planned, reasoning))
			for k, v := range rt.header {
				hr.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			callID := resp.Header.Get("request-id") + resp.Header.Get("x-request-id")
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(nil, 1<<20)
			deltas := 0
			var cur event
			for deltas < read && sc.Scan() {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, "event: "):
					cur.name = strings.TrimPrefix(line, "event: ")
				case strings.HasPrefix(line, "data: "):
					cur.data = strings.TrimPrefix(line, "data: ")
				case line == "":
					if rt.isDelta(cur) {
						deltas++
					}
					cur = event{}
				}
			}
			if deltas != read {
				t.Fatalf("read %d deltas, want %d (%v)", deltas, read, sc.Err())
			}
			cancel()
			resp.Body.Close()

			var call fakeupstream.Call
			select {
			case call = <-calls:
			case <-time.After(10 * time.Second):
				t.Fatal("Observe not called 10s after the client left")
			}
			full, err := fakeupstream.ExpectedBilled(rt.path, hr.Header.Get(fakeupstream.DirectiveHeader), []byte(rt.body))
			if err != nil {
				t.Fatal(err)
			}
			if full.OutputTokens != planned+reasoning {
				t.Fatalf("ExpectedBilled output = %d, want %d", full.OutputTokens, planned+reasoning)
			}
			got := call.Billed
			if got.InputTokens != full.InputTokens {
				t.Errorf("billed input = %d, want all of it, %d", got.InputTokens, full.InputTokens)
			}
			// Written is at least what was read; the client left long
			// before the last of the 1000 words (5ms apart) was due.
			if got.OutputTokens < reasoning+read || got.OutputTokens >= full.OutputTokens {
				t.Errorf("billed output = %d, want at least %d (reasoning + deltas read) and less than the %d planned", got.OutputTokens, reasoning+read, full.OutputTokens)
			}
			if got.ReasoningTokens != reasoning {
				t.Errorf("billed reasoning = %d, want %d", got.ReasoningTokens, reasoning)
			}
			if call.Usage != full || call.RequestID != callID {
				t.Errorf("Call.Usage = %+v (want the planned %+v), RequestID %q (want %q)", call.Usage, full, call.RequestID, callID)
			}

			t.Logf("read %d deltas: billed %d output tokens (%d reasoning) of %d planned", read, got.OutputTokens, got.ReasoningTokens, full.OutputTokens)

			// The endpoint says the same.
			b := billOf(t, srv, callID, fakeupstream.BillCall)
			if b.Billed != got || b.Planned != full || !b.Stopped || b.Seq != call.BillSeq || !b.Stream || b.Status != 200 {
				t.Errorf("bill = %+v, want billed %+v of planned %+v, stopped, seq %d", b, got, full, call.BillSeq)
			}
			if rep := billed(t, srv, 0); rep.Totals.Billed != got || rep.Totals.Entries != 1 {
				t.Errorf("totals = %+v, want one entry of %+v", rep.Totals, got)
			}
		})
	}
}

// TestBillingStreamFaults: a stream ended by a fault bills what was
// generated; one read in full or broken by fault=malformed bills all.
func TestBillingStreamFaults(t *testing.T) {
	body := fmt.Sprintf(chatBody, `,"stream":true`)
	in := fakeupstream.InputTokens([]byte(body))
	tests := []struct {
		directive  string
		wantOutput int64
	}{
		{"output=10", 10},
		{"output=10 fault=malformed", 10},
		{"output=10 fault=cut after=4", 3},             // role chunk and three words
		{"output=10 fault=error_event after=6", 5},     // role chunk and five words
		{"output=10 reasoning=7 fault=cut after=1", 0}, // the role chunk only
		{"output=10 reasoning=7 fault=cut after=2", 8}, // reasoning, then one word
	}
	for _, tt := range tests {
		t.Run(tt.directive, func(t *testing.T) {
			_, srv := mustServe(t)
			resp, _, _ := do(t, srv, request{path: "/v1/chat/completions", body: body, header: map[string]string{fakeupstream.DirectiveHeader: tt.directive}})
			b := billOf(t, srv, resp.Header.Get("x-request-id"), fakeupstream.BillCall)
			if b.Billed.InputTokens != in || b.Billed.OutputTokens != tt.wantOutput {
				t.Errorf("billed %+v, want input %d, output %d", b.Billed, in, tt.wantOutput)
			}
			if b.Stopped != (tt.wantOutput < b.Planned.OutputTokens) {
				t.Errorf("stopped = %t with %d of %d output billed", b.Stopped, b.Billed.OutputTokens, b.Planned.OutputTokens)
			}
		})
	}
}

// TestBillingErrorsAndJSON: errors bill nothing; a JSON reply bills in
// full, even when cut or when the client leaves before it is written.
func TestBillingErrorsAndJSON(t *testing.T) {
	chat := fmt.Sprintf(chatBody, "")
	full, err := fakeupstream.ExpectedBilled("/v1/chat/completions", "", []byte(chat))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		req    request
		want   tokenmeter.Usage
		status int
	}{
		{"JSON", request{path: "/v1/chat/completions", body: chat}, full, 200},
		{"JSONCut", request{path: "/v1/chat/completions", body: chat, header: map[string]string{fakeupstream.DirectiveHeader: "fault=cut"}}, full, 200},
		{"InjectedStatus", request{path: "/v1/chat/completions", body: chat, header: map[string]string{fakeupstream.DirectiveHeader: "status=529"}}, tokenmeter.Usage{}, 529},
		{"ErrorEvent", request{path: "/v1/chat/completions", body: chat, header: map[string]string{fakeupstream.DirectiveHeader: "fault=error_event"}}, tokenmeter.Usage{}, 500},
		{"BadBody", request{path: "/v1/chat/completions", body: `{"model":`}, tokenmeter.Usage{}, 400},
		{"NoModel", request{path: "/v1/responses", body: `{"input":"hi"}`}, tokenmeter.Usage{}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := mustServe(t)
			resp, _, _ := do(t, srv, tt.req)
			b := billOf(t, srv, resp.Header.Get("x-request-id"), fakeupstream.BillCall)
			if b.Billed != tt.want || b.Status != tt.status || resp.StatusCode != tt.status {
				t.Errorf("bill %+v (status %d, response %d), want billed %+v, status %d", b.Billed, b.Status, resp.StatusCode, tt.want, tt.status)
			}
		})
	}

	t.Run("ClientLeftBeforeJSON", func(t *testing.T) {
		calls := make(chan fakeupstream.Call, 1)
		srv := httptest.NewServer(fakeupstream.New(fakeupstream.Options{Observe: func(c fakeupstream.Call) { calls <- c }}))
		t.Cleanup(srv.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(chat))
		hr.Header.Set(fakeupstream.DirectiveHeader, "ttfb=10s")
		if resp, err := srv.Client().Do(hr); err == nil {
			resp.Body.Close()
			t.Fatal("request with ttfb=10s answered within 50ms")
		}
		select {
		case c := <-calls:
			if c.Status != 0 || c.Billed != full {
				t.Errorf("call status %d billed %+v, want 0 and the full %+v (the work was done)", c.Status, c.Billed, full)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Observe not called")
		}
	})

	t.Run("FreeRoutes", func(t *testing.T) {
		_, srv := mustServe(t)
		mustDo(t, srv, request{path: "/v1/messages/count_tokens", body: "{}"})
		mustDo(t, srv, request{method: http.MethodGet, path: "/v1/models"})
		if rep := billed(t, srv, 0); len(rep.Bills) != 0 || rep.LastSeq != 0 {
			t.Errorf("free routes billed: %+v", rep)
		}
	})
}

// TestBillingAccount: since, the bounded window, totals, and concurrent
// calls (run it with -race).
func TestBillingAccount(t *testing.T) {
	fs := fakeupstream.New(fakeupstream.Options{Now: func() time.Time { return t0 }, BillingWindow: 5})
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	const calls = 12
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(chatBody, fmt.Sprintf(`,"stream":%t,"user":"[[fake output=%d]]"`, i%2 == 0, i+1))
			if _, _, err := send(srv, request{path: "/v1/chat/completions", body: body}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	rep := billed(t, srv, 0)
	if rep.LastSeq != calls || len(rep.Bills) != 5 || rep.Missed != calls-5 || rep.Totals.Entries != calls {
		t.Fatalf("report: last %d, %d bills, missed %d, %d entries; want %d, 5, %d, %d", rep.LastSeq, len(rep.Bills), rep.Missed, rep.Totals.Entries, calls, calls-5, calls)
	}
	var output int64
	for i := range calls {
		output += int64(i + 1)
	}
	if rep.Totals.Billed.OutputTokens != output || rep.Totals.CostMicros <= 0 || rep.Totals.Unpriced != 0 {
		t.Errorf("totals = %+v, want %d output tokens, priced", rep.Totals, output)
	}
	for i, b := range rep.Bills {
		if b.Seq != calls-4+int64(i) || !b.CostKnown || b.CostMicros <= 0 {
			t.Errorf("bill %d: seq %d cost %d known %t, want seq %d, priced", i, b.Seq, b.CostMicros, b.CostKnown, calls-4+int64(i))
		}
	}
	if rep := billed(t, srv, calls-2); len(rep.Bills) != 2 || rep.Missed != 0 || rep.Bills[0].Seq != calls-1 {
		t.Errorf("since=%d: %d bills from %d, missed %d; want the last 2", calls-2, len(rep.Bills), rep.Bills[0].Seq, rep.Missed)
	}
	if rep := billed(t, srv, calls); len(rep.Bills) != 0 || rep.Bills == nil {
		t.Errorf("since=last: bills %v, want an empty list", rep.Bills)
	}
	if got := fs.Billing(0); !cmp.Equal(got.Totals, rep.Totals) {
		t.Errorf("Billing(0).Totals = %+v, endpoint's %+v", got.Totals, rep.Totals)
	}
	for _, bad := range []string{"-1", "x", "1e3"} {
		resp, body := mustDo(t, srv, request{method: http.MethodGet, path: fakeupstream.BillingPath + "?since=" + bad})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("since=%s: status %d, want 400: %s", bad, resp.StatusCode, body)
		}
	}
	if fs.Requests() != calls {
		t.Errorf("Requests() = %d, want %d: billing reads are not requests", fs.Requests(), calls)
	}
}

// TestBillingResponsesSDK cuts a Responses stream read through the
// official SDK.
func TestBillingResponsesSDK(t *testing.T) {
	rec := mustServeRecorded(t)
	client := openAIClient(rec)
	var resp *http.Response
	stream := client.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
		Model: "gpt-5.4",
		Input: responses.ResponseNewParamsInputUnion{OfString: openaisdk.String("tell me [[fake output=2000 delay=5ms]]")},
	}, openaioption.WithResponseInto(&resp))
	deltas := 0
	for deltas < 50 && stream.Next() {
		if stream.Current().Type == "response.output_text.delta" {
			deltas++
		}
	}
	stream.Close()
	sent := rec.lastBody()
	b := billOf(t, rec.srv, resp.Header.Get("x-request-id"), fakeupstream.BillCall)
	if b.Billed.OutputTokens < 50 || b.Billed.OutputTokens >= 2000 || b.Billed.InputTokens != fakeupstream.InputTokens(sent) {
		t.Errorf("billed %+v after 50 of 2000 deltas, want input in full and 50 <= output < 2000", b.Billed)
	}
	if b.ResponseID != "resp_"+resp.Header.Get("x-request-id")[4:] {
		t.Errorf("response id %q", b.ResponseID)
	}
}

// TestAdminReportsBilled: the usage report counts what a cut stream
// billed, not what it planned.
func TestAdminReportsBilled(t *testing.T) {
	_, srv := mustServe(t)
	body := fmt.Sprintf(chatBody, `,"stream":true`)
	resp, _, _ := do(t, srv, request{path: "/v1/chat/completions", body: body,
		header: map[string]string{fakeupstream.DirectiveHeader: "output=40 fault=cut after=11", "Authorization": "Bearer sk-user"}})
	billOf(t, srv, resp.Header.Get("x-request-id"), fakeupstream.BillCall) // the call has ended
	_, report := mustDo(t, srv, request{method: http.MethodGet,
		path:   fmt.Sprintf("/v1/organization/usage/completions?start_time=%d&bucket_width=1d", t0.Add(-time.Hour).Unix()),
		header: map[string]string{"Authorization": "Bearer sk-admin"}})
	var rep struct {
		Data []struct {
			Results []struct {
				OutputTokens int64 `json:"output_tokens"`
				Requests     int64 `json:"num_model_requests"`
			} `json:"results"`
		} `json:"data"`
	}
	if err := json.Unmarshal(report, &rep); err != nil {
		t.Fatalf("%v: %s", err, report)
	}
	var out, n int64
	for _, d := range rep.Data {
		for _, r := range d.Results {
			out += r.OutputTokens
			n += r.Requests
		}
	}
	if out != 10 || n != 1 {
		t.Errorf("usage report: %d output tokens in %d requests, want the 10 billed in 1: %s", out, n, report)
	}
}
