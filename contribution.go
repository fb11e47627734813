package tokenmeter

// This file holds the ledger's arithmetic: what each event adds to the
// aggregates every report, limit and alert reads. Every Store computes its
// aggregates (the SQLite store's rollups, a PostgreSQL store's) and its
// limit usage through these functions, so the rules exist once.

// Hold is the part of a call's charge to hard limits that is not in its
// recorded usage: while a call that reserved its worst case has no known
// usage, limits keep charging it the larger of what was recorded (an
// estimate, or what was read before the response was cut) and what it
// reserved, metric by metric. Tokens, InputTokens, OutputTokens and Cost are
// the excess for the tokens, input_tokens, output_tokens and cost_usd
// metrics; requests are never held (the call counts as one request).
type Hold struct {
	Tokens       int64  `json:"tokens"`
	InputTokens  int64  `json:"input_tokens"`
	OutputTokens int64  `json:"output_tokens"`
	Cost         Micros `json:"cost_micros"`
}

// IsZero reports whether h holds nothing.
func (h Hold) IsZero() bool { return h == Hold{} }

// Neg returns -h.
func (h Hold) Neg() Hold {
	return Hold{Tokens: -h.Tokens, InputTokens: -h.InputTokens, OutputTokens: -h.OutputTokens, Cost: -h.Cost}
}

// Add returns h + o.
func (h Hold) Add(o Hold) Hold {
	return Hold{Tokens: h.Tokens + o.Tokens, InputTokens: h.InputTokens + o.InputTokens,
		OutputTokens: h.OutputTokens + o.OutputTokens, Cost: h.Cost + o.Cost}
}

// Of returns the held amount of metric m.
func (h Hold) Of(m LimitMetric) int64 {
	switch m {
	case MetricTokens:
		return h.Tokens
	case MetricInputTokens:
		return h.InputTokens
	case MetricOutputTokens:
		return h.OutputTokens
	case MetricCost:
		return int64(h.Cost)
	}
	return 0
}

// HoldFor returns the hold of a call that reserved (reserved, reservedCost)
// and is recorded with (usage, cost) whose usage is not known: for each
// metric, how much the reservation exceeds the record, never negative.
func HoldFor(reserved Usage, reservedCost Micros, usage Usage, cost Micros) Hold {
	return Hold{
		Tokens:       max(0, reserved.TotalTokens()-usage.TotalTokens()),
		InputTokens:  max(0, reserved.InputTokens-usage.InputTokens),
		OutputTokens: max(0, reserved.OutputTokens-usage.OutputTokens),
		Cost:         max(0, reservedCost-cost),
	}
}

// Contribution is what one event adds to the usage aggregates of its
// bucket and group (see UsageBucket): the sums of usage and cost, the
// counts of requests and of calls in each usage state, and the hold
// charged to limits. Counts may be negative for a retraction.
type Contribution struct {
	Requests        int64
	Usage           Usage
	Cost            Micros
	UsageUnknown    int64
	UsageEstimated  int64
	EstimatedTokens int64
	CostUnknown     int64
	Hold            Hold
}

// Contribution returns what ev adds to the aggregates, and false for the
// kinds that add nothing (started and progress events).
//
//   - A completed event is one request with its usage, cost and hold. It is
//     counted as usage estimated (with its tokens in EstimatedTokens) when
//     it carries an Estimate, as usage unknown when its usage is otherwise
//     not known, and as cost unknown when its usage is known or estimated
//     but it has no price.
//   - A revised event adds its usage and cost (the difference it corrects)
//     and its hold, and counts nothing.
//   - A retracted event carries the negated figures of the call it
//     withdraws (usage, cost, hold) with the original's Estimate,
//     UsageKnown and CostKnown, and takes back the counts the original
//     added, except the request itself.
func (ev *Event) Contribution() (Contribution, bool) {
	var sign int64
	switch ev.Kind {
	case KindCompleted:
		sign = 1
	case KindRetracted:
		sign = -1
	case KindRevised:
		return Contribution{Usage: ev.Usage, Cost: ev.Cost, Hold: ev.Hold}, true
	default:
		return Contribution{}, false
	}
	c := Contribution{Usage: ev.Usage, Cost: ev.Cost, Hold: ev.Hold}
	if ev.Kind == KindCompleted {
		c.Requests = 1
	}
	switch ev.UsageState() {
	case UsageStateEstimated:
		c.UsageEstimated = sign
		c.EstimatedTokens = ev.Usage.TotalTokens() // negative in a retraction
	case UsageStateUnknown:
		c.UsageUnknown = sign
	}
	if ev.UsageState() != UsageStateUnknown && !ev.CostKnown {
		c.CostUnknown = sign
	}
	return c, true
}

// SumContribution returns what n events add to the aggregates when they
// share Kind and usage state (UsageKnown, whether Estimate is empty,
// CostKnown) and sum holds the sums of their Usage, Cost and Hold (with
// that Kind and state): the contribution of the sum, its counts of
// requests and of calls in each state taken n times. It is how a store
// that sums events in SQL, grouped by kind and state, applies the rules of
// Event.Contribution to the groups.
func SumContribution(sum *Event, n int64) Contribution {
	c, ok := sum.Contribution()
	if !ok {
		return Contribution{}
	}
	c.Requests *= n
	c.UsageUnknown *= n
	c.UsageEstimated *= n
	c.CostUnknown *= n
	return c
}

// Add adds o to c.
func (c *Contribution) Add(o Contribution) {
	c.Requests += o.Requests
	c.Usage = c.Usage.Add(o.Usage)
	c.Cost += o.Cost
	c.UsageUnknown += o.UsageUnknown
	c.UsageEstimated += o.UsageEstimated
	c.EstimatedTokens += o.EstimatedTokens
	c.CostUnknown += o.CostUnknown
	c.Hold = c.Hold.Add(o.Hold)
}

// Charge returns what c counts toward a limit of metric m: the metric's
// value of its usage, requests and cost, plus what is held.
func (c Contribution) Charge(m LimitMetric) int64 {
	return m.Of(c.Usage, c.Requests, c.Cost) + c.Hold.Of(m)
}

// Charge returns what bucket b counts toward a limit of metric m (see
// Contribution.Charge).
func (b *UsageBucket) Charge(m LimitMetric) int64 {
	return m.Of(b.Usage, b.Requests, b.Cost) + b.Hold.Of(m)
}

// Retraction returns the KindRetracted event that withdraws the figures of
// the call whose completed event (with its revisions summed into held and
// heldCost) is orig, at the original's time and labels. key is the call's
// request key.
func Retraction(orig *Event, held Usage, heldCost Micros, heldHold Hold) Event {
	r := *orig
	r.Seq, r.PrevHash, r.Hash = 0, "", ""
	r.Kind = KindRetracted
	r.Key = EventKey(orig.RequestKey, KindRetracted)
	r.Usage = Usage{}.Sub(held)
	r.Cost = -heldCost
	r.Hold = heldHold.Neg()
	r.RawUsage = nil
	r.Latency, r.TTFB = 0, 0
	return r
}
