package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// VerifyError names the first event at which the chain is broken.
type VerifyError struct {
	Seq     int64  // sequence number of the offending event (or where one is missing)
	Key     string // its idempotency key, if the event exists
	Problem string
}

func (e *VerifyError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("ledger chain broken at event %d (%s): %s", e.Seq, e.Key, e.Problem)
	}
	return fmt.Sprintf("ledger chain broken at event %d: %s", e.Seq, e.Problem)
}

// headReader is implemented by stores that record the chain head apart
// from the events, so a removal at the end of the chain is detectable too.
type headReader interface {
	Head(ctx context.Context) (seq int64, hash string, err error)
}

// VerifyResult summarises a successful verification.
type VerifyResult struct {
	Events int64  // events walked
	Head   string // hash of the last event
}

// Verify walks the whole ledger and recomputes the hash chain. It returns a
// *VerifyError naming the first event that was altered (its hash no longer
// matches its content), removed (a gap in the sequence or a broken link),
// inserted or reordered (a link to the wrong predecessor).
func Verify(ctx context.Context, store tokenmeter.Store) (VerifyResult, error) {
	var res VerifyResult
	// The recorded head is read first: the chain may grow past it while
	// the walk runs, never shrink below it.
	headSeq, headHash := int64(-1), ""
	hr, hasHead := store.(headReader)
	if hasHead {
		var err error
		if headSeq, headHash, err = hr.Head(ctx); err != nil {
			return res, err
		}
	}
	prevSeq, prevHash := int64(0), tokenmeter.GenesisHash
	err := store.Scan(ctx, 0, func(ev *tokenmeter.Event) error {
		switch {
		case ev.Seq != prevSeq+1:
			return &VerifyError{Seq: prevSeq + 1, Problem: fmt.Sprintf("event %d is missing (next present is %d)", prevSeq+1, ev.Seq)}
		case ev.PrevHash != prevHash:
			return &VerifyError{Seq: ev.Seq, Key: ev.Key, Problem: "does not link to the event before it (removed, inserted or reordered)"}
		case tokenmeter.ChainHash(ev) != ev.Hash:
			return &VerifyError{Seq: ev.Seq, Key: ev.Key, Problem: "content does not match its hash (altered)"}
		}
		if ev.Seq == headSeq && ev.Hash != headHash {
			return &VerifyError{Seq: ev.Seq, Key: ev.Key, Problem: "differs from the chain head recorded when it was written (altered or replaced)"}
		}
		prevSeq, prevHash = ev.Seq, ev.Hash
		res.Events++
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Head = prevHash
	if hasHead && headSeq > prevSeq {
		return res, &VerifyError{Seq: prevSeq + 1, Problem: fmt.Sprintf("the recorded chain head is event %d but the ledger ends at event %d (events removed from the end)", headSeq, prevSeq)}
	}
	if err := verifyAggregates(ctx, store); err != nil {
		return res, err
	}
	if c, ok := store.(aggregateChecker); ok {
		problem, err := c.CheckAggregates(ctx)
		if err != nil {
			return res, err
		}
		if problem != "" {
			return res, &VerifyError{Problem: problem}
		}
	}
	return res, nil
}

// aggregateChecker is implemented by stores that keep aggregates beyond
// those Usage answers from (the PostgreSQL store's totals over every group,
// which global limits read): CheckAggregates compares them with the ones
// Usage checks and describes the first difference, "" if there is none.
type aggregateChecker interface {
	CheckAggregates(ctx context.Context) (problem string, err error)
}

// verifyAggregates checks that the usage a store answers from its own
// aggregates equals the sum of the events. A write between the two reads
// can make them differ, so a difference is confirmed by reading again.
//
// Two widths are checked: 15 minutes (the rollups' grid) and a day, which
// a store may answer from coarser aggregates of its own (the SQLite store
// keeps daily rows).
func verifyAggregates(ctx context.Context, store tokenmeter.Store) error {
	for _, width := range []time.Duration{tokenmeter.RollupBucket, 24 * time.Hour} {
		var problem string
		for attempt := 0; attempt < 3; attempt++ {
			fast, err := store.Usage(ctx, tokenmeter.UsageQuery{Bucket: width})
			if err != nil {
				return err
			}
			exact, err := store.Usage(ctx, tokenmeter.UsageQuery{Bucket: width, FromEvents: true})
			if err != nil {
				return err
			}
			if problem = diffBuckets(fast, exact); problem == "" {
				break
			}
		}
		if problem != "" {
			return &VerifyError{Problem: problem}
		}
	}
	return nil
}

func diffBuckets(fast, exact []tokenmeter.UsageBucket) string {
	key := func(b tokenmeter.UsageBucket) tokenmeter.UsageBucket {
		return tokenmeter.UsageBucket{Start: b.Start, Source: b.Source, Provider: b.Provider, Model: b.Model,
			Principal: b.Principal, Project: b.Project, Outcome: b.Outcome, Session: b.Session}
	}
	want := make(map[tokenmeter.UsageBucket]tokenmeter.UsageBucket, len(exact))
	for _, b := range exact {
		want[key(b)] = b
	}
	for _, b := range fast {
		w, ok := want[key(b)]
		delete(want, key(b))
		if !ok || w.Requests != b.Requests || w.Usage != b.Usage || w.Cost != b.Cost || w.UsageUnknown != b.UsageUnknown ||
			w.CostUnknown != b.CostUnknown || w.UsageEstimated != b.UsageEstimated || w.EstimatedTokens != b.EstimatedTokens ||
			w.Hold != b.Hold || !w.First.Equal(b.First) || !w.Last.Equal(b.Last) {
			return fmt.Sprintf("aggregated usage of %s %s/%s at %s (%d requests) does not match its events (%d requests): the aggregates were altered",
				b.Source, b.Provider, b.Model, b.Start.Format(time.RFC3339), b.Requests, w.Requests)
		}
	}
	for k, w := range want {
		return fmt.Sprintf("events of %s %s/%s at %s (%d requests) are missing from the aggregated usage: the aggregates were altered",
			k.Source, k.Provider, k.Model, k.Start.Format(time.RFC3339), w.Requests)
	}
	return ""
}

// IsVerifyError reports whether err is a broken chain (as opposed to an
// error reading the ledger).
func IsVerifyError(err error) bool {
	var ve *VerifyError
	return errors.As(err, &ve)
}
