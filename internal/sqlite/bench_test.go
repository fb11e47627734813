package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// BenchmarkAppend measures one commit of a batch of events: the cost the
// ledger writer pays per group commit.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			db := MustOpenDB(b)
			defer db.Close()
			ctx := context.Background()
			events := make([]tokenmeter.Event, batch)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for j := range events {
					events[j] = storetest.Event(fmt.Sprintf("r%d-%d", i, j), time.Now(), tokenmeter.Usage{InputTokens: 100, OutputTokens: 20})
				}
				if _, err := db.Append(ctx, events); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
		})
	}
}
