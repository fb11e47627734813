package main

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// TestShutdownCutsLongStreams closes the gateway while a long stream is
// open: after the grace period the stream is cut, and the call is recorded
// as cancelled with the usage seen so far rather than left open.
func TestShutdownCutsLongStreams(t *testing.T) {
	up, _ := newUpstream(t)
	gw := startGateway(t, up.URL, nil)
	body := `{"model":"claude-haiku-5-5","max_tokens":500,"stream":true,"messages":[{"role":"user","content":"[[fake output=400 delay=50ms input=77]]"}]}`
	resp, err := http.Post(gw.URL()+"/anthropic/v1/messages", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get(HeaderRequestIDForTest)
	sc := bufio.NewScanner(resp.Body)
	for i := 0; i < 3 && sc.Scan(); i++ {
	}
	go func() {
		for sc.Scan() {
		}
		resp.Body.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := gw.Close(ctx); err == nil || !strings.Contains(err.Error(), "cut at shutdown") {
		t.Errorf("Close with a stream still open = %v; want an error saying requests were cut", err)
	}
	// Reopen the ledger read-only: the call must be complete, not open.
	db, err := openLedgerReadOnly(gw.Config.Data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev, ok := completedEvents(t, db, nil)[id]
	if !ok {
		t.Fatalf("call %s cut at shutdown has no completion", id)
	}
	if ev.Outcome != tokenmeter.OutcomeCancelled || ev.Usage.InputTokens != 77 {
		t.Errorf("call cut at shutdown recorded as %s (%s) with usage %+v; want cancelled with input 77", ev.Outcome, ev.Reason, ev.Usage)
	}
}
