package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// ReasonCrashed is the reason recorded on calls closed by Recover.
const ReasonCrashed = "gateway stopped before the call completed; outcome unknown"

// Recover closes every call that a previous process left open: for each, it
// appends a completed event with outcome unknown, carrying the usage known
// from the call's last progress event (the input and cache tokens of
// Anthropic's message_start) as a floor, never as a known figure, so the
// tokens a call is known to have used are never dropped, and the hold of
// the worst case it reserved (from the started or progress event). price
// sets the cost of that floor; it may be nil.
//
// Call it at start-up while no other process writes for the same instances.
// It is idempotent: the completion's key is derived from the call.
func Recover(ctx context.Context, store tokenmeter.Store, instances []string, now time.Time, price func(*tokenmeter.Event)) (int, error) {
	open, err := store.OpenCalls(ctx, instances)
	if err != nil {
		return 0, fmt.Errorf("recover open calls: %w", err)
	}
	if len(open) == 0 {
		return 0, nil
	}
	events := make([]tokenmeter.Event, 0, len(open))
	for _, last := range open {
		ev := last
		ev.Seq, ev.PrevHash, ev.Hash = 0, "", ""
		ev.Kind = tokenmeter.KindCompleted
		ev.Key = tokenmeter.EventKey(ev.RequestKey, tokenmeter.KindCompleted)
		ev.Outcome = tokenmeter.OutcomeUnknown
		ev.Reason = ReasonCrashed
		ev.Latency = now.Sub(last.Time)
		// The call's usage is not known: what its progress event read (the
		// input of Anthropic's message_start) is kept as a floor, and the
		// worst case it reserved under hard limits, which the gateway
		// writes on its started and progress events, stays charged (G5,
		// G8) until a revision settles the call.
		reserved := last.Hold
		ev.UsageKnown, ev.Estimate = false, ""
		if last.Kind == tokenmeter.KindStarted {
			ev.Usage = tokenmeter.Usage{}
		}
		ev.Time = now
		ev.Cost, ev.CostKnown = 0, false
		if price != nil && !ev.Usage.IsZero() {
			price(&ev) // the floor's cost
		}
		ev.Hold = tokenmeter.HoldFor(tokenmeter.Usage{InputTokens: reserved.InputTokens, OutputTokens: reserved.OutputTokens},
			reserved.Cost, ev.Usage, ev.Cost)
		events = append(events, ev)
	}
	if _, err := store.Append(ctx, events); err != nil {
		return 0, fmt.Errorf("record %d calls left open: %w", len(events), err)
	}
	return len(events), nil
}
