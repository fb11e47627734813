package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

func TestZZImportSpeed(t *testing.T) {
	if os.Getenv("ZZ") == "" {
		t.Skip()
	}
	db := MustOpenDB(t)
	defer db.Close()
	base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	const n, batch = 240000, 20000
	r := rand.New(rand.NewPCG(1, 2))
	const al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	rid := func(p string, k int) string {
		b := []byte(p)
		for range k {
			b = append(b, al[r.IntN(len(al))])
		}
		return string(b)
	}
	evs := make([]tokenmeter.Event, n)
	for k := range evs {
		rk := "claude-code:" + rid("msg_01", 22)
		evs[k] = tokenmeter.Event{Key: rk + "/completed", RequestKey: rk, Kind: tokenmeter.KindCompleted,
			Time: base.Add(time.Duration(k) * 20 * time.Second), Source: "claude-code", Provider: "anthropic", Endpoint: "/v1/messages",
			Model: "claude-sonnet-4-5-20250929", Project: "/home/user/projects/app", Session: rid("", 36), UpstreamRequestID: rid("req_011C", 20),
			Outcome: "ok", UsageKnown: true, CostKnown: true, Cost: 12345,
			Usage: tokenmeter.Usage{InputTokens: 10, OutputTokens: 300, CacheWrite5mTokens: 2000, CacheReadTokens: 40000}}
	}
	start := time.Now()
	for i := 0; i < n; i += batch {
		if _, err := db.Import(context.Background(), evs[i:i+batch], nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("import %d: %v", n, time.Since(start))
	fmt.Println()
}
