package ledgerrules

import (
	"context"

	"github.com/tokenmeter/tokenmeter"
)

// Batch is a store's side of one Append or Import: a transaction that
// holds the chain's head, so that nothing else extends the chain while it
// runs.
type Batch interface {
	// Insert seals ev as the next event of the chain (tokenmeter.Seal) and
	// stores it, unless an event with ev.Key is in the ledger (stored
	// earlier in this batch included); it reports whether ev was stored.
	Insert(ctx context.Context, ev *tokenmeter.Event) (bool, error)
	// Recorded returns the request key of the call the gateway recorded
	// with ev's UpstreamRequestID, or else with its ResponseID (events of
	// SourceProxy, this batch's included), or "" when there is none.
	Recorded(ctx context.Context, ev *tokenmeter.Event) (string, error)
	// Sums returns what the ledger holds for the call requestKey.
	Sums(ctx context.Context, requestKey string) (tokenmeter.CallSums, error)
	// Completed returns the completed event of the call requestKey and
	// whether the call was retracted (settled); ok is false while the call
	// has no completed event.
	Completed(ctx context.Context, requestKey string) (ev tokenmeter.Event, retracted, ok bool, err error)
}

// Result is what Write did with a batch.
type Result struct {
	tokenmeter.ImportResult
	// Counted are the events stored that add to the aggregates
	// (completed, revised, retracted), in the order stored; Rollup holds
	// their sums per 15-minute row.
	Counted []*tokenmeter.Event
	Rollup  Sums
	// Released are the request keys of the proxied calls completed: their
	// reservations end with the commit.
	Released []string
	// Stored says some event was stored: the chain moved.
	Stored bool
}

// Write decides, event by event and in order, what each of events
// becomes, through b, by the rules of tokenmeter.Store's Append (imported
// false) and Import (imported true):
//
//   - an imported reading of a call the gateway recorded (see
//     Batch.Recorded) is counted as recorded, and settles the gateway's
//     call when its usage was estimated or unknown (tokenmeter.Settlement);
//   - an event whose key is in the ledger is a duplicate, unless it is an
//     imported completed reading that covers what the ledger holds for the
//     call: then a revision (tokenmeter.Revision) is stored;
//   - anything else is stored.
//
// Events not stored are left unsealed. The caller commits b, with the
// rollups (Result.Rollup and its Days) and the end of the released
// reservations, only when Write returns nil.
func Write(ctx context.Context, b Batch, events []tokenmeter.Event, imported bool) (Result, error) {
	res := Result{Rollup: make(Sums)}
	counted := func(e *tokenmeter.Event) {
		if _, ok := e.Contribution(); ok {
			res.Rollup.Add(e)
			res.Counted = append(res.Counted, e)
		}
	}
	// derive stores an event the ledger derives (a revision, a
	// retraction); false when its key is in the ledger already.
	derive := func(e *tokenmeter.Event) (bool, error) {
		ok, err := b.Insert(ctx, e)
		if err != nil || !ok {
			e.Seq, e.PrevHash, e.Hash = 0, "", ""
			return false, err
		}
		res.Stored = true
		counted(e)
		return true, nil
	}
	for i := range events {
		ev := &events[i]
		if imported && (ev.UpstreamRequestID != "" || ev.ResponseID != "") {
			gw, err := b.Recorded(ctx, ev)
			if err != nil {
				return res, err
			}
			if gw != "" {
				res.Recorded++
				ev.Seq, ev.PrevHash, ev.Hash = 0, "", ""
				derived, err := settlement(ctx, b, gw, ev)
				if err != nil {
					return res, err
				}
				added := false
				for j := range derived {
					ok, err := derive(&derived[j])
					if err != nil {
						return res, err
					}
					added = added || ok
				}
				if added {
					res.Settled++
				}
				continue
			}
		}
		ok, err := b.Insert(ctx, ev)
		if err != nil {
			return res, err
		}
		if !ok {
			ev.Seq, ev.PrevHash, ev.Hash = 0, "", ""
			if !imported || ev.Kind != tokenmeter.KindCompleted {
				res.Duplicates++
				continue
			}
			held, err := b.Sums(ctx, ev.RequestKey)
			if err != nil {
				return res, err
			}
			rev, ok := tokenmeter.Revision(ev, held)
			if ok {
				if ok, err = derive(&rev); err != nil {
					return res, err
				}
			}
			if !ok {
				res.Duplicates++
				continue
			}
			res.Revised++
			continue
		}
		res.Added++
		res.Stored = true
		counted(ev)
		if ev.Kind == tokenmeter.KindCompleted && ev.Source == tokenmeter.SourceProxy {
			res.Released = append(res.Released, ev.RequestKey)
		}
	}
	return res, nil
}

// settlement returns the events that settle the gateway's call gw with
// the imported reading ev (see tokenmeter.Settlement); none while the call
// is open.
func settlement(ctx context.Context, b Batch, gw string, ev *tokenmeter.Event) ([]tokenmeter.Event, error) {
	orig, retracted, ok, err := b.Completed(ctx, gw)
	if err != nil || !ok || retracted || orig.UsageKnown {
		return nil, err
	}
	held, err := b.Sums(ctx, gw)
	if err != nil {
		return nil, err
	}
	return tokenmeter.Settlement(&orig, retracted, held, ev), nil
}
