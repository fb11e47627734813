package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenmeter/tokenmeter"
)

// TestStrictDurability checks the promise of --durability strict: when the
// upstream receives a request, the call's started record is already in the
// ledger. In normal durability the same holds by the time the client sees
// the response headers.
func TestStrictDurability(t *testing.T) {
	var gw *gateway
	startedAtUpstream := make(chan bool, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		found := false
		gw.store.Scan(context.Background(), 0, func(ev *tokenmeter.Event) error {
			found = found || (ev.Kind == tokenmeter.KindStarted && ev.Model == "strict-model")
			return nil
		})
		startedAtUpstream <- found
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"msg_1","type":"message","model":"strict-model","usage":{"input_tokens":1,"output_tokens":1}}`)
	}))
	defer up.Close()
	gw = startGateway(t, up.URL, func(s *Serve) { s.Config.Durability = "strict" })
	resp, _ := post(t, gw.URL()+"/anthropic/v1/messages", nil, `{"model":"strict-model","max_tokens":5,"messages":[]}`)
	if !<-startedAtUpstream {
		t.Error("upstream received the request before its started record was in the ledger (strict durability)")
	}
	ev := gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
	if ev.Outcome != tokenmeter.OutcomeOK || ev.Usage.InputTokens != 1 {
		t.Errorf("recorded %+v", ev)
	}

	// Normal durability: by the time the headers reach the client.
	up2, _ := newUpstream(t)
	gw2 := startGateway(t, up2.URL, nil)
	req, _ := http.NewRequest(http.MethodPost, gw2.URL()+"/anthropic/v1/messages", strings.NewReader(`{"model":"claude-haiku-5-5","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"[[fake delay=30ms]]"}]}`))
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	id := resp2.Header.Get(HeaderRequestIDForTest)
	found := false
	gw2.store.Scan(context.Background(), 0, func(ev *tokenmeter.Event) error {
		found = found || (ev.Kind == tokenmeter.KindStarted && ev.RequestKey == id)
		return nil
	})
	if !found {
		t.Error("response headers reached the client before the call's started record was in the ledger")
	}
}
