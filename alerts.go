package tokenmeter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// AlertKind is what an alert rule watches.
type AlertKind string

// The kinds of alert rule.
const (
	// AlertThreshold fires when a limit's usage in its current window
	// reaches a share of its Max (default 50, 80, 95 and 100 %).
	AlertThreshold AlertKind = "threshold"
	// AlertBurnRate fires when, at the recent rate, a limit's current
	// window will reach its Max before the window resets.
	AlertBurnRate AlertKind = "burn_rate"
	// AlertAnomaly fires for each anomaly the provider-counter watch (and
	// reconciliation) records.
	AlertAnomaly AlertKind = "anomaly"
	// AlertErrorRate fires when the share of proxied calls that failed or
	// got a 5xx over a recent span is high.
	AlertErrorRate AlertKind = "error_rate"
	// AlertRateLimited fires when the share of proxied calls refused with
	// 429 over a recent span is high.
	AlertRateLimited AlertKind = "rate_limited"
)

// AlertKinds lists every kind of alert rule.
var AlertKinds = []AlertKind{AlertThreshold, AlertBurnRate, AlertAnomaly, AlertErrorRate, AlertRateLimited}

// DefaultThresholds are a threshold rule's percentages of the limit when
// it names none.
var DefaultThresholds = []int{50, 80, 95, 100}

// AlertRule says when to raise an alert and where to send it. The zero
// value of every optional field means its default (see internal/alerts).
type AlertRule struct {
	// Name identifies the rule (same rules as a key name).
	Name string    `json:"name" yaml:"name"`
	Kind AlertKind `json:"kind" yaml:"kind"`
	// Limit restricts a threshold or burn_rate rule to the limit of that
	// name; empty means every limit, soft and hard.
	Limit string `json:"limit,omitempty" yaml:"limit"`
	// Thresholds are percentages of the limit's Max (threshold rules);
	// empty means DefaultThresholds.
	Thresholds []int `json:"thresholds,omitempty" yaml:"thresholds"`
	// AnomalyKinds restricts an anomaly rule to these anomaly kinds; empty
	// means every kind.
	AnomalyKinds []string `json:"anomaly_kinds,omitempty" yaml:"anomaly_kinds"`
	// Span is how far back a burn_rate rule measures the rate and an
	// error_rate or rate_limited rule counts calls.
	Span Duration `json:"span,omitempty" yaml:"span"`
	// MinRequests is how many calls an error_rate or rate_limited rule
	// needs in Span before it judges.
	MinRequests int64 `json:"min_requests,omitempty" yaml:"min_requests"`
	// Percent is the share of calls (error_rate, rate_limited) at or above
	// which the rule fires.
	Percent int `json:"percent,omitempty" yaml:"percent"`
	// Sinks names the sinks the rule's alerts go to; empty means every
	// configured sink.
	Sinks []string `json:"sinks,omitempty" yaml:"sinks"`
	// Source says where the rule comes from: "config", "ledger" (set with
	// the CLI) or "default". It is not stored.
	Source string `json:"source,omitempty" yaml:"-"`
}

// Duration is a time.Duration that reads and writes as "5m" in JSON and
// YAML.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return Errorf(EINVALID, "%q is not a duration like 5m or 1h", b)
	}
	*d = Duration(v)
	return nil
}

// Validate checks a rule. Messages name the YAML field at fault.
func (r AlertRule) Validate() error {
	if err := ValidateKeyName(r.Name); err != nil {
		return Errorf(EINVALID, "name %q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", r.Name)
	}
	if !slices.Contains(AlertKinds, r.Kind) {
		return Errorf(EINVALID, "rule %s: kind %q is not threshold, burn_rate, anomaly, error_rate or rate_limited", r.Name, r.Kind)
	}
	limitKind := r.Kind == AlertThreshold || r.Kind == AlertBurnRate
	spanKind := r.Kind == AlertBurnRate || r.Kind == AlertErrorRate || r.Kind == AlertRateLimited
	rateKind := r.Kind == AlertErrorRate || r.Kind == AlertRateLimited
	if r.Limit != "" && !limitKind {
		return Errorf(EINVALID, "rule %s: limit applies to threshold and burn_rate rules only", r.Name)
	}
	if r.Limit != "" && ValidateKeyName(r.Limit) != nil {
		return Errorf(EINVALID, "rule %s: limit %q is not a limit name", r.Name, r.Limit)
	}
	if len(r.Thresholds) > 0 && r.Kind != AlertThreshold {
		return Errorf(EINVALID, "rule %s: thresholds apply to threshold rules only", r.Name)
	}
	if len(r.Thresholds) > 20 {
		return Errorf(EINVALID, "rule %s: at most 20 thresholds", r.Name)
	}
	for i, t := range r.Thresholds {
		if t < 1 || t > 1000 {
			return Errorf(EINVALID, "rule %s: threshold %d must be a percentage between 1 and 1000", r.Name, t)
		}
		if slices.Contains(r.Thresholds[:i], t) {
			return Errorf(EINVALID, "rule %s: threshold %d is listed twice", r.Name, t)
		}
	}
	if len(r.AnomalyKinds) > 0 && r.Kind != AlertAnomaly {
		return Errorf(EINVALID, "rule %s: anomaly_kinds apply to anomaly rules only", r.Name)
	}
	for _, k := range r.AnomalyKinds {
		if !slices.Contains(AnomalyKinds, k) {
			// A rule for a kind nothing records could never fire.
			return Errorf(EINVALID, "rule %s: unknown anomaly kind %q (want %s)", r.Name, k, strings.Join(AnomalyKinds, ", "))
		}
	}
	if r.Span != 0 && !spanKind {
		return Errorf(EINVALID, "rule %s: span applies to burn_rate, error_rate and rate_limited rules only", r.Name)
	}
	if r.Span != 0 && (time.Duration(r.Span) < time.Minute || time.Duration(r.Span) > 7*24*time.Hour) {
		return Errorf(EINVALID, "rule %s: span %s must be between 1m and 168h", r.Name, time.Duration(r.Span))
	}
	if (r.MinRequests != 0 || r.Percent != 0) && !rateKind {
		return Errorf(EINVALID, "rule %s: min_requests and percent apply to error_rate and rate_limited rules only", r.Name)
	}
	if r.MinRequests < 0 || r.MinRequests > 1_000_000_000 {
		return Errorf(EINVALID, "rule %s: min_requests must be between 0 and 1000000000", r.Name)
	}
	if r.Percent < 0 || r.Percent > 100 {
		return Errorf(EINVALID, "rule %s: percent must be between 1 and 100", r.Name)
	}
	if len(r.Sinks) > 100 {
		return Errorf(EINVALID, "rule %s: at most 100 sinks", r.Name)
	}
	for _, s := range r.Sinks {
		if ValidateKeyName(s) != nil {
			return Errorf(EINVALID, "rule %s: sink %q is not a sink name", r.Name, s)
		}
	}
	return nil
}

// AlertState is where an alert is in its life.
type AlertState string

// Alert states.
const (
	AlertFiring   AlertState = "firing"
	AlertResolved AlertState = "resolved"
)

// Severity says how urgent an alert is: info, warning or critical.
type Severity string

// Severities.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Alert is one alert: raised once by a rule for one subject (a limit and
// threshold in one window, an anomaly, a provider's error spike), firing
// until its condition clears, then resolved. Alerts are never deleted.
type Alert struct {
	ID int64 `json:"id"`
	// Key is the alert's dedupe key: a store keeps one alert per key, ever,
	// so an alert fires once per rule, subject and window.
	Key string `json:"key"`
	// Group is the rule and subject without the window: a store keeps at
	// most one firing alert per group.
	Group    string     `json:"group"`
	Rule     string     `json:"rule"`
	Kind     AlertKind  `json:"kind"`
	Severity Severity   `json:"severity"`
	State    AlertState `json:"state"`
	// Subject names what the alert is about, e.g. "limit alice-day",
	// "anomaly 7", "provider anthropic".
	Subject string `json:"subject"`
	Summary string `json:"summary"`
	// WindowStart and WindowEnd bound the window the alert is about (zero
	// when it has none).
	WindowStart time.Time `json:"window_start,omitzero"`
	WindowEnd   time.Time `json:"window_end,omitzero"`
	Fired       time.Time `json:"fired"`
	Resolved    time.Time `json:"resolved,omitzero"`
	// Details carries the figures behind the alert (JSON object).
	Details json.RawMessage `json:"details,omitempty"`
	// History lists the alert's state changes, oldest first.
	History []AlertChange `json:"history,omitempty"`
}

// AlertChange is one entry of an alert's history.
type AlertChange struct {
	Time    time.Time  `json:"time"`
	State   AlertState `json:"state"`
	Summary string     `json:"summary"`
}

// AlertKey returns a dedupe key made of parts (a hash, so that a key
// never carries a label's text and always has the same length).
func AlertKey(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:16])
}

// Delivery is one message in the alert outbox: an alert's transition
// (fired or resolved) to one sink. A store holds at most one delivery per
// alert, transition and sink.
type Delivery struct {
	ID      int64 `json:"id"`
	AlertID int64 `json:"alert_id"`
	// Transition is the state the alert entered: firing or resolved.
	Transition AlertState `json:"transition"`
	Sink       string     `json:"sink"`
	// Payload is the message as sinks receive it (internal/alerts'
	// versioned JSON), fixed when the delivery is enqueued.
	Payload  json.RawMessage `json:"payload"`
	Created  time.Time       `json:"created"`
	Attempts int             `json:"attempts"`
	// Next is when the delivery is due (again).
	Next      time.Time `json:"next"`
	Delivered time.Time `json:"delivered,omitzero"`
	// LastError is the last attempt's error (never a sink's URL or secret).
	LastError string `json:"last_error,omitempty"`
}

// AlertQuery selects alerts: those fired at or after Since (zero: all)
// and, when Firing, only the firing ones.
type AlertQuery struct {
	Since  time.Time
	Firing bool
}

// CallOutcome is how one completed proxied call ended: what error-rate
// and 429 rules count.
type CallOutcome struct {
	Seq      int64
	Time     time.Time
	Provider string
	Status   int
	Outcome  Outcome
}

// AlertStore keeps alert rules set from the CLI, the alerts with their
// history, and the outbox of their deliveries. It is part of Store.
type AlertStore interface {
	// SetAlertRule creates or replaces the rule of the same name; EINVALID
	// for a rule that fails AlertRule.Validate.
	SetAlertRule(ctx context.Context, r AlertRule) error
	// AlertRules returns the stored rules by name.
	AlertRules(ctx context.Context) ([]AlertRule, error)
	// DeleteAlertRule removes a stored rule; ENOTFOUND if there is none.
	DeleteAlertRule(ctx context.Context, name string) error

	// FireAlert records a as firing, unless an alert with its Key exists
	// or another alert of its Group is firing, in which case it returns
	// that alert and false. A new alert's history starts with its firing
	// and one delivery per sink (with payload(alert), the alert as
	// recorded, ID included) is enqueued, due at once, in the same
	// transaction.
	FireAlert(ctx context.Context, a Alert, sinks []string, payload func(Alert) ([]byte, error)) (Alert, bool, error)
	// ResolveAlert marks the firing alert id resolved at at with summary,
	// adds that to its history and enqueues one delivery per sink in the
	// same transaction. It returns ENOTFOUND for an unknown id and
	// ECONFLICT for an alert already resolved.
	ResolveAlert(ctx context.Context, id int64, at time.Time, summary string, sinks []string, payload func(Alert) ([]byte, error)) (Alert, error)
	// Alerts returns the alerts q selects with their history, newest
	// first.
	Alerts(ctx context.Context, q AlertQuery) ([]Alert, error)
	// Alert returns one alert with its history; ENOTFOUND if none.
	Alert(ctx context.Context, id int64) (Alert, error)

	// ClaimDeliveries takes up to n undelivered deliveries due at now
	// (Next <= now, not claimed by anyone until after now), oldest first,
	// counts an attempt on each and claims them until until, in one
	// transaction: two claimers never hold the same delivery. A claim
	// that is neither marked delivered nor failed (the process died
	// mid-send) lapses at until, and the delivery is claimed again.
	ClaimDeliveries(ctx context.Context, now, until time.Time, n int) ([]Delivery, error)
	// DeliveryDone marks a claimed delivery delivered at at; it is never
	// claimed again.
	DeliveryDone(ctx context.Context, id int64, at time.Time) error
	// DeliveryFailed records a failed attempt: the error, and next, when
	// the delivery is due again; the claim ends.
	DeliveryFailed(ctx context.Context, id int64, next time.Time, errMsg string) error
	// Deliveries returns the deliveries of an alert (0: of every alert),
	// oldest first.
	Deliveries(ctx context.Context, alertID int64) ([]Delivery, error)

	// CallOutcomes reads the events with Seq > afterSeq in Seq order, at
	// most limit of them (of any kind), and returns the completed proxied
	// calls among them and next, the Seq to pass the next time (the last
	// event read; afterSeq when there was none). A negative afterSeq
	// starts -afterSeq events before the end of the ledger. It reads a
	// range of the primary key, never the whole ledger: error-rate and 429
	// rules follow the ledger with it.
	CallOutcomes(ctx context.Context, afterSeq int64, limit int) (calls []CallOutcome, next int64, err error)
}
