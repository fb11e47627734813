package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

// TestFakeUpstreamBilling runs `tokenmeter fake-upstream` as a user does and
// reads what it billed over HTTP, as an out-of-process test does.
func TestFakeUpstreamBilling(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"fake-upstream", "--listen", "127.0.0.1:0", "--billing-window", "2"}, strings.NewReader(""), out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fake-upstream: %v", err)
		}
	})
	addr := regexp.MustCompile(`http://127\.0\.0\.1:\d+`)
	deadline := time.Now().Add(10 * time.Second)
	for !addr.MatchString(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("fake-upstream printed no address: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	base := addr.FindString(out.String())
	if !strings.Contains(out.String(), fakeupstream.BillingPath) {
		t.Errorf("start-up line does not name %s: %q", fakeupstream.BillingPath, out.String())
	}

	for _, output := range []string{"3", "5", "7"} {
		resp, err := http.Post(base+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"gpt-5.4","messages":[{"role":"user","content":"[[fake input=100 output=`+output+`]]"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(base + fakeupstream.BillingPath + "?since=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep fakeupstream.BillingReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Bills) != 2 || rep.Missed != 1 || rep.LastSeq != 3 || rep.Totals.Billed.InputTokens != 300 || rep.Totals.Billed.OutputTokens != 15 {
		t.Errorf("billing report %+v; want the last 2 of 3 bills kept, totals 300 in, 15 out", rep)
	}
}

func TestFakeUpstreamBadBillingWindow(t *testing.T) {
	_, stderr, err := run(t, "fake-upstream", "--listen", "127.0.0.1:0", "--billing-window", "0")
	if err == nil || !strings.Contains(err.Error()+stderr, "--billing-window") {
		t.Errorf("--billing-window 0: err %v, stderr %q; want a usage error naming the flag", err, stderr)
	}
}
