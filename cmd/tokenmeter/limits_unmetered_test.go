package main

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestHardLimitUnmeteredEndpoints (G5, G8): a POST whose usage the gateway
// cannot read (message batches, images, audio, a legacy completion without
// max_tokens) is refused while a hard limit applies to the caller, since no
// reservation could hold it; free endpoints (token counting) and reads
// pass, and callers without a hard limit are forwarded as before, recorded
// with their usage (legacy completions are metered) or with usage unknown,
// never as a known zero.
func TestHardLimitUnmeteredEndpoints(t *testing.T) {
	gw, tap := keysGateway(t, nil, nil)
	capped := createKey(t, gw.Config.Data, "--name", "capped")
	free := createKey(t, gw.Config.Data, "--name", "free")
	if _, stderr, err := run(t, "limits", "set", "cap", "--scope", "key:capped", "--metric", "tokens", "--max", "1000000",
		"--window", "day", "--tz", "UTC", "--mode", "hard", "--data", gw.Config.Data); err != nil {
		t.Fatalf("limits set: %v %s", err, stderr)
	}
	send := func(method, path, key string) (*http.Response, []byte) {
		t.Helper()
		h := map[string]string{"anthropic-version": "2023-06-01"}
		if path[1] == 'a' {
			h["x-api-key"] = key
		} else {
			h["Authorization"] = "Bearer " + key
		}
		if method == http.MethodGet {
			req, _ := http.NewRequest(method, gw.URL()+path, nil)
			for k, v := range h {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp, nil
		}
		return post(t, gw.URL()+path, h, `{"model":"claude-haiku-5-5","input":"x","messages":[{"role":"user","content":"hi"}],"requests":[]}`)
	}
	for _, path := range []string{"/anthropic/v1/messages/batches", "/openai/v1/images/generations", "/openai/v1/audio/speech", "/openai/v1/completions"} {
		before := len(tap.headers())
		resp, body := send(http.MethodPost, path, capped)
		var shape map[string]any
		if resp.StatusCode != http.StatusForbidden || json.Unmarshal(body, &shape) != nil || shape["error"] == nil {
			t.Errorf("POST %s with a hard limit: %d %s; want 403 in the provider's error shape", path, resp.StatusCode, body)
		}
		if len(tap.headers()) != before {
			t.Errorf("POST %s with a hard limit reached the upstream", path)
		}
		resp, body = send(http.MethodPost, path, free)
		if resp.StatusCode == http.StatusForbidden {
			t.Errorf("POST %s without a hard limit: %d %s; want it forwarded", path, resp.StatusCode, body)
		}
		if resp.StatusCode < 400 {
			if ev := gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest)); ev.UsageKnown && ev.Usage.IsZero() {
				t.Errorf("POST %s (%d) recorded with usage known %v, cost known %v (%+v): an unmetered billable call must not be a known zero",
					path, resp.StatusCode, ev.UsageKnown, ev.CostKnown, ev.Usage)
			}
		}
	}
	if resp, body := send(http.MethodPost, "/anthropic/v1/messages/count_tokens", capped); resp.StatusCode != http.StatusOK {
		t.Errorf("count_tokens with a hard limit: %d %s; want 200 (it costs nothing)", resp.StatusCode, body)
	}
	if resp, _ := send(http.MethodGet, "/anthropic/v1/models", capped); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/models with a hard limit: %d; want 200", resp.StatusCode)
	}
	if resp, body := callWith(t, gw, "anthropic", capped, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("a metered call with a hard limit: %d %s; want 200", resp.StatusCode, body)
	}
}
