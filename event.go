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

	Status  int     `json:"status,omitempty"`
	Outcome Outcome `json:"outcome,omitempty"`
	// Reason explains an outcome other than ok, or why usage is unknown.
	Reason string `json:"reason,omitempty"`

	Usage Usage `json:"usage"`
	// UsageKnown is false when the response carried no usage the meter could
	// read (malformed body, a cut stream before any usage, an endpoint
	// without usage).
	UsageKnown bool `json:"usage_known"`
	// RawUsage is the provider's usage object as it arrived, kept so that
	// fields added by providers later are not lost.
	RawUsage json.RawMessage `json:"raw_usage,omitempty"`

	Latency time.Duration `json:"latency_us"`
	TTFB    time.Duration `json:"ttfb_us"`

	Cost      Micros `json:"cost_micros"`
	CostKnown bool   `json:"cost_known"`

	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// EventKey returns the idempotency key of the kind step of the call named
// requestKey.
func EventKey(requestKey string, kind Kind) string { return requestKey + "/" + string(kind) }
