package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenmeter/tokenmeter"
)

// TestPassThrough checks what the upstream receives: every client header
// and the query string, the body unchanged, tokenmeter's own headers
// removed; and that endpoints without usage are counted as requests.
func TestPassThrough(t *testing.T) {
	type seen struct {
		Method, Path, RawPath, Query, Body string
		Header                             http.Header
	}
	got := make(chan seen, 10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		if len(r.TransferEncoding) > 0 {
			h.Set("Transfer-Encoding", strings.Join(r.TransferEncoding, ","))
		}
		got <- seen{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, string(b), h}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_echo")
		w.Write([]byte(`{"data":[],"has_more":false}`))
	}))
	defer up.Close()
	gw := startGateway(t, up.URL, nil)

	body := `{"model":"claude-haiku-5-5","max_tokens":5,"messages":[]}`
	req, _ := http.NewRequest(http.MethodPost, gw.URL()+"/anthropic/v1/messages?beta=true&x=1", strings.NewReader(body))
	for k, v := range map[string]string{
		"X-Api-Key": "sk-ant-pass", "Anthropic-Version": "2023-06-01", "Anthropic-Beta": "oauth-2025-04-20,context-1m-2025-08-07",
		"Authorization": "Bearer sk-ant-oat01-x", "X-Claude-Code-Session-Id": "sess-1", "User-Agent": "claude-cli/2.1 (external, cli)",
		"X-Tokenmeter-Project": "p1", "X-Tokenmeter-Tags": "a,b", "Openai-Organization": "org-1",
	} {
		req.Header.Set(k, v)
	}
	req.Header.Add("Anthropic-Beta", "second-header")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s := <-got
	if s.Path != "/v1/messages" || s.Query != "beta=true&x=1" || s.Body != body || s.Method != "POST" {
		t.Errorf("upstream saw %s %s?%s body %q; want POST /v1/messages?beta=true&x=1 with the body unchanged", s.Method, s.Path, s.Query, s.Body)
	}
	for k, want := range map[string]string{
		"X-Api-Key": "sk-ant-pass", "Anthropic-Version": "2023-06-01", "Authorization": "Bearer sk-ant-oat01-x",
		"X-Claude-Code-Session-Id": "sess-1", "User-Agent": "claude-cli/2.1 (external, cli)", "Openai-Organization": "org-1",
	} {
		if v := s.Header.Get(k); v != want {
			t.Errorf("upstream header %s = %q, want %q", k, v, want)
		}
	}
	if betas := s.Header.Values("Anthropic-Beta"); len(betas) != 2 || betas[0] != "oauth-2025-04-20,context-1m-2025-08-07" {
		t.Errorf("anthropic-beta reached upstream as %q; want both headers verbatim", betas)
	}
	for k := range s.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-tokenmeter") || strings.EqualFold(k, "X-Forwarded-For") {
			t.Errorf("upstream received %s: tokenmeter's own headers must be stripped, and nothing added", k)
		}
	}
	ev := gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
	if ev.Project != "p1" || ev.Tags != "a,b" || ev.Principal != "cred:"+tokenHash("sk-ant-pass") || ev.Session != "sess-1" {
		t.Errorf("recorded project %q tags %q principal %q session %q", ev.Project, ev.Tags, ev.Principal, ev.Session)
	}

	// Endpoints without usage pass through and count as requests only.
	for _, path := range []string{"/anthropic/v1/models", "/openai/v1/models?limit=5", "/openai/v1/models/ft%2Fmine"} {
		resp, err := http.Get(gw.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s := <-got
		if te := s.Header.Get("Transfer-Encoding"); te != "" || s.Body != "" {
			t.Errorf("GET %s reached upstream with a body (%q, transfer-encoding %q)", path, s.Body, te)
		}
		if resp.StatusCode != 200 || !json.Valid(b) || s.Method != "GET" {
			t.Errorf("GET %s: %d %s (upstream saw %s %s)", path, resp.StatusCode, b, s.Method, s.Path)
		}
		if strings.Contains(path, "%2F") && s.RawPath != "/v1/models/ft%2Fmine" {
			t.Errorf("GET %s reached upstream as raw path %q, want the client's escaping kept", path, s.RawPath)
		}
		ev := gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
		if ev.Outcome != tokenmeter.OutcomeOK || !ev.UsageKnown || !ev.Usage.IsZero() || !strings.HasPrefix(ev.Endpoint, "/v1/models") {
			t.Errorf("GET %s recorded as %+v; want ok with zero usage", path, ev)
		}
	}
}
