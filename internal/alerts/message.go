package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// Version is the version of Message's schema. Fields are only ever added
// within a version; a change that removes or redefines one raises it.
const Version = 1

// Message is what every sink receives for one alert transition: the
// webhook's JSON body, a command's stdin, and (its Text) the Slack
// message. See docs/alerts.md for the schema.
type Message struct {
	Version int `json:"version"`
	// IdempotencyKey is the same for every attempt at delivering one
	// transition of one alert (and differs between transitions): a
	// receiver that sees it twice has seen the message before. Webhooks
	// also get it as the Idempotency-Key header.
	IdempotencyKey string `json:"idempotency_key"`
	// Event is the transition: "firing" or "resolved".
	Event tokenmeter.AlertState `json:"event"`
	// Text is one line for people (what Slack shows).
	Text string `json:"text"`
	// Alert is the alert as recorded, without its history.
	Alert tokenmeter.Alert `json:"alert"`
	// Test is true for the sample `tokenmeter alerts test` sends.
	Test bool `json:"test,omitempty"`
}

// IdempotencyKey returns the idempotency key of alert a's transition to
// state.
func IdempotencyKey(a tokenmeter.Alert, state tokenmeter.AlertState) string {
	h := sha256.Sum256([]byte(a.Key + "\x00" + string(state)))
	return "tm-alert-" + hex.EncodeToString(h[:16])
}

// NewMessage returns the message of a's current state.
func NewMessage(a tokenmeter.Alert) Message {
	text := Text(a)
	a.History = nil
	return Message{Version: Version, IdempotencyKey: IdempotencyKey(a, a.State), Event: a.State, Text: text, Alert: a}
}

// Payload returns the JSON of a's message; it is the payload function
// the store's FireAlert and ResolveAlert take.
func Payload(a tokenmeter.Alert) ([]byte, error) {
	return json.Marshal(NewMessage(a))
}

// Text returns the one-line text of a's current state.
func Text(a tokenmeter.Alert) string {
	var b strings.Builder
	switch {
	case a.State == tokenmeter.AlertResolved:
		b.WriteString("[resolved] ")
	default:
		b.WriteString("[" + string(a.Severity) + "] ")
	}
	b.WriteString(a.Summary)
	if a.State == tokenmeter.AlertResolved && len(a.History) > 0 {
		if last := a.History[len(a.History)-1]; last.State == tokenmeter.AlertResolved && last.Summary != "" {
			b.WriteString(": " + last.Summary)
		}
	}
	fmt.Fprintf(&b, " (tokenmeter alert %d, rule %s)", a.ID, a.Rule)
	return b.String()
}

// Sample returns the sample alert message `tokenmeter alerts test` sends.
func Sample(now time.Time) Message {
	now = now.UTC().Truncate(time.Second)
	a := tokenmeter.Alert{ID: 0, Key: tokenmeter.AlertKey("test", now.String()), Group: "test", Rule: "test",
		Kind: tokenmeter.AlertThreshold, Severity: tokenmeter.SeverityInfo, State: tokenmeter.AlertFiring,
		Subject: "limit example", Summary: "test alert from tokenmeter: limit example at 80% of 1000000 tokens",
		Fired: now, Details: json.RawMessage(`{"limit":"example","threshold_percent":80,"used":800000,"max":1000000,"metric":"tokens"}`)}
	m := NewMessage(a)
	m.Test = true
	return m
}
