package tokenmeter

import (
	"strconv"
	"time"
)

// This file holds the rules by which Store.Import corrects what the ledger
// holds for a call when another reading of it turns up: the revision of a
// call whose fuller reading covers what is recorded, and the settlement of
// a gateway call's estimate with the provider's figure. Every store derives
// these events here; only how it reads a call's figures is its own.

// CallSums is what the ledger holds for one call: the sums over its
// completed, revised and retracted events, and the labels of its completed
// event.
type CallSums struct {
	// Events counts the events summed; zero when the call has no
	// completed, revised or retracted event in the ledger.
	Events int64
	Usage  Usage
	Cost   Micros
	// Time is the earliest of their times: the call's own.
	Time time.Time
	// The completed event's labels (empty when it has none).
	Source    Source
	Provider  string
	Model     string
	Principal string
	Project   string
	Session   string
	Outcome   Outcome
}

// RevisionKey returns the key of the revision that brings the call
// requestKey up to usage u. It is derived from the corrected total, so
// re-reading the same figure revises nothing twice.
func RevisionKey(requestKey string, u Usage) string {
	return requestKey + "/revised-" + strconv.FormatInt(u.TotalTokens()+u.WebSearchRequests+u.WebFetchRequests, 10)
}

// SettledKey returns the key of the revision that states the provider's
// figure for the gateway call requestKey when it is settled (see
// Settlement).
func SettledKey(requestKey string) string { return requestKey + "/settled" }

// Revision returns the KindRevised event that brings the call of ev (an
// imported reading whose key is in the ledger already) up to ev's usage,
// and true, when ev's usage covers (see Usage.Covers) what the ledger holds
// for the call, held. The revision carries the difference and belongs
// where the call is counted: at its time, with its completed event's
// source, provider, model, principal, project, session and outcome,
// whichever copy of the call the fuller reading came from.
func Revision(ev *Event, held CallSums) (Event, bool) {
	if held.Events == 0 || !ev.Usage.Covers(held.Usage) {
		return Event{}, false
	}
	rev := *ev
	rev.Seq, rev.PrevHash, rev.Hash = 0, "", ""
	rev.Kind = KindRevised
	rev.Key = RevisionKey(ev.RequestKey, ev.Usage)
	rev.Time = held.Time
	rev.Source, rev.Provider, rev.Model, rev.Principal = held.Source, held.Provider, held.Model, held.Principal
	rev.Project, rev.Session, rev.Outcome = held.Project, held.Session, held.Outcome
	rev.Usage = ev.Usage.Sub(held.Usage)
	rev.Cost = ev.Cost - held.Cost
	return rev, true
}

// Settlement returns the events that settle the gateway's call orig (its
// completed event; retracted says the call was settled already, held is
// what the ledger holds for it) with reading, another record of the same
// call that carries the provider's figure: when orig's usage is estimated
// or unknown and it is not settled yet, a retraction of its figures (see
// Retraction) and a revision stating reading's, both under the gateway's
// call and at its time, so that the call counts once, with the provider's
// figure. Otherwise it returns nil.
func Settlement(orig *Event, retracted bool, held CallSums, reading *Event) []Event {
	if retracted || orig.UsageKnown {
		return nil
	}
	ret := Retraction(orig, held.Usage, held.Cost, orig.Hold)
	rev := *orig
	rev.Seq, rev.PrevHash, rev.Hash = 0, "", ""
	rev.Kind = KindRevised
	rev.Key = SettledKey(orig.RequestKey)
	rev.Usage, rev.RawUsage, rev.UsageKnown = reading.Usage, reading.RawUsage, true
	rev.Cost, rev.CostKnown = reading.Cost, reading.CostKnown
	rev.Estimate, rev.Hold = "", Hold{}
	rev.Reason = "settled by the " + string(reading.Source) + " record of the call"
	rev.Latency, rev.TTFB = 0, 0
	if rev.ResponseID == "" {
		rev.ResponseID = reading.ResponseID
	}
	if rev.UpstreamRequestID == "" {
		rev.UpstreamRequestID = reading.UpstreamRequestID
	}
	return []Event{ret, rev}
}
