package tokenmeter

import (
	"encoding/json"
	"time"
)

// Kind says which step of a call an event records. Events are append-only;
// the state of a call is the last event appended for its RequestKey.
type Kind string

const (
	// KindStarted is written before (or while) a request is forwarded. A
	// started call with no completion after a crash becomes OutcomeUnknown.
	KindStarted Kind = "started"
	// KindProgress records what a stream has revealed so far (the upstream
	// request id and the input tokens of Anthropic's message_start), so a
	// crash mid-stream still leaves the input that is known to be used.
	KindProgress Kind = "progress"
	// KindCompleted is the one terminal event of a call. Usage and cost in
	// reports come from completed events only.
	KindCompleted Kind = "completed"
	// KindRevised corrects a completed call's usage upwards when a later,
	// larger reading of it turns up (an importer that finds the final line
	// of a response after importing an earlier copy of it). It carries the
	// difference, category by category, and the original's Time; reports
	// add it to the call's usage and cost but do not count it as a request.
	// Its key is derived from the corrected total, so re-reading the same
	// line revises nothing twice.
	KindRevised Kind = "revised"
	// KindRetracted withdraws the figures a completed call was recorded
	// with (its usage, cost, usage state and hold, all negated) because the
	// provider's own figure has turned up for a call whose usage was
	// estimated or unknown. It is always followed, in the same commit, by a
	// KindRevised event that states the provider's figure, so the call's
	// usage becomes exactly that figure and it counts once (see
	// Event.Contribution). Like a revision it carries the original's Time
	// and labels and is not a request.
	KindRetracted Kind = "retracted"
)

// Outcome says how a completed call ended.
type Outcome string

const (
	OutcomeOK        Outcome = "ok"        // the response reached the client in full
	OutcomeError     Outcome = "error"     // the upstream answered with an error status or error event
	OutcomeCancelled Outcome = "cancelled" // the client went away before the end
	OutcomeFailed    Outcome = "failed"    // the upstream could not be reached or died mid-response
	OutcomeUnknown   Outcome = "unknown"   // the gateway crashed while the call was open
)

// Source says where an event came from.
type Source string

const (
	SourceProxy      Source = "proxy"       // recorded by the gateway
	SourceClaudeCode Source = "claude-code" // imported from Claude Code transcripts
	SourceCodex      Source = "codex"       // imported from Codex CLI sessions
)

// Event is one append-only record in the ledger.
//
// Seq, PrevHash and Hash are assigned by the Store when the event is
// appended; everything else is set by the writer. No field ever holds a
// secret: Principal is a virtual-key name or a hash of a credential.
type Event struct {
	Seq int64 `json:"seq"`
	// Key is the event's idempotency key: appending an event whose Key is
	// already in the ledger changes nothing. It is derived from RequestKey
	// and Kind, so replays and retries of the same step count once.
	Key string `json:"key"`
	// RequestKey names the call the event belongs to (for proxied calls a
	// gateway-generated id, returned to the client as x-tokenmeter-request-id).
	RequestKey string    `json:"request_key"`
	Kind       Kind      `json:"kind"`
	Time       time.Time `json:"time"`
	Source     Source    `json:"source"`
	// Instance identifies the process that wrote the event; recovery after a
	// crash closes only the calls left open by instances that are gone.
	Instance string `json:"instance,omitempty"`

	Provider string `json:"provider"`
	// Endpoint is the upstream path without query, e.g. "/v1/messages".
	Endpoint string `json:"endpoint"`
	Model    string `json:"model,omitempty"`
	Stream   bool   `json:"stream,omitempty"`
	// Principal is who made the call: "key:NAME" for a virtual key,
	// "cred:HASHPREFIX" for a pass-through credential, "" if none was sent.
	Principal string `json:"principal,omitempty"`
	Project   string `json:"project,omitempty"`
	// Session groups the calls of one client session (a Claude Code or
	// Codex session id); empty when unknown.
	Session string `json:"session,omitempty"`
	Tags    string `json:"tags,omitempty"`
	// UpstreamRequestID is the provider's request id (request-id or
	// x-request-id), used to recognise the same call seen by an importer.
	UpstreamRequestID string `json:"upstream_request_id,omitempty"`
	// ResponseID is the provider's own id of the response (Anthropic's
	// msg_..., OpenAI's resp_... or chatcmpl-...), recorded by the gateway
	// from the response and by importers from the logs, so the same call
	// seen twice is recognised as one.
	ResponseID string `json:"response_id,omitempty"`

	Status  int     `json:"status,omitempty"`
	Outcome Outcome `json:"outcome,omitempty"`
	// Reason explains an outcome other than ok, or why usage is unknown.
	Reason string `json:"reason,omitempty"`

	Usage Usage `json:"usage"`
	// UsageKnown is true when Usage is the provider's own final figure. It
	// is false when the response carried no usage the meter could read in
	// full (malformed body, a cut stream, a background response, an
	// endpoint without usage); Usage then holds what is known to have been
	// used, or an estimate (see Estimate). Nothing billable is ever
	// recorded as a known zero.
	UsageKnown bool `json:"usage_known"`
	// Estimate, when not empty, says Usage is the gateway's estimate rather
	// than the provider's figure, and how it was made (e.g. "output: 812
	// relayed characters at 4 per token; input: message_start"). UsageKnown
	// is then false. Reports count estimated calls and their tokens apart
	// from unknown ones (UsageState).
	Estimate string `json:"estimate,omitempty"`
	// Hold is what hard limits keep charging a completed call beyond its
	// Usage and Cost while its usage is not known: the excess of the worst
	// case it reserved over what was recorded (see HoldFor). A retraction
	// withdraws it when the provider's figure arrives. Zero for calls that
	// held no reservation or whose usage is known.
	Hold Hold `json:"hold,omitzero"`
	// RawUsage is the provider's usage object as it arrived, kept so that
	// fields added by providers later are not lost.
	RawUsage json.RawMessage `json:"raw_usage,omitempty"`

	// ServiceTier is the provider's processing tier that served the call,
	// as its response names it (OpenAI's service_tier: "default", "flex",
	// "priority", "fast", "scale", ...); empty when the response names none
	// (Anthropic's usage.service_tier stays in RawUsage). The cost is
	// priced at that tier's rate (pricing.Table.CostIn).
	ServiceTier string `json:"service_tier,omitempty"`

	Latency time.Duration `json:"latency_us"`
	TTFB    time.Duration `json:"ttfb_us"`

	Cost      Micros `json:"cost_micros"`
	CostKnown bool   `json:"cost_known"`

	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// UsageState says how far a completed event's usage can be trusted.
type UsageState string

const (
	UsageStateKnown     UsageState = "known"     // the provider's own final figure
	UsageStateEstimated UsageState = "estimated" // an estimate, with its basis in Estimate
	UsageStateUnknown   UsageState = "unknown"   // not read; Usage is a lower bound at best
)

// UsageState returns the state of ev's usage.
func (ev *Event) UsageState() UsageState {
	switch {
	case ev.UsageKnown:
		return UsageStateKnown
	case ev.Estimate != "":
		return UsageStateEstimated
	}
	return UsageStateUnknown
}

// EventKey returns the idempotency key of the kind step of the call named
// requestKey.
func EventKey(requestKey string, kind Kind) string { return requestKey + "/" + string(kind) }
