package limits

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/window"
)

// Definition is a limit as a person writes it: the flags of `limits set`
// and the body of PUT /api/limits/{name}, as text.
type Definition struct {
	Name    string `json:"name"`
	Scope   string `json:"scope"`
	Metric  string `json:"metric"`
	Max     string `json:"max"` // dollars for cost_usd
	Window  string `json:"window"`
	ResetAt string `json:"reset_at,omitempty"`
	TZ      string `json:"tz,omitempty"`
	Mode    string `json:"mode,omitempty"` // default soft
	// Canonical, if set, maps the model of a model: scope to its canonical
	// name (the price table's), so that a limit set on an alias
	// (claude-opus-4-0) counts its model's calls.
	Canonical func(string) string `json:"-"`
}

// Define checks d and returns the limit it defines, created at now, and
// its parsed window. A fixed window with no zone (or "local") is stored
// under local's IANA name, so every gateway and CLI reading the limit
// agrees on its boundaries whatever zone they run in. Every error is an
// EINVALID whose message starts with the flag it is about ("--scope: ...").
func Define(d Definition, local *time.Location, now time.Time) (tokenmeter.Limit, window.Spec, error) {
	bad := func(format string, args ...any) (tokenmeter.Limit, window.Spec, error) {
		return tokenmeter.Limit{}, window.Spec{}, tokenmeter.Errorf(tokenmeter.EINVALID, format, args...)
	}
	if err := tokenmeter.ValidateKeyName(d.Name); err != nil {
		return bad("limit name %q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", d.Name)
	}
	if d.Scope == "" {
		return bad("--scope: missing (global, key:NAME, project:NAME or model:NAME)")
	}
	if kind, value, err := tokenmeter.ParseScope(d.Scope); err != nil {
		return bad("%s", tokenmeter.ErrorMessage(err))
	} else if kind == tokenmeter.ScopeModel && d.Canonical != nil {
		d.Scope = tokenmeter.ScopeModel + ":" + d.Canonical(value)
	}
	m := tokenmeter.LimitMetric(d.Metric)
	switch m {
	case tokenmeter.MetricTokens, tokenmeter.MetricInputTokens, tokenmeter.MetricOutputTokens, tokenmeter.MetricRequests, tokenmeter.MetricCost:
	case "":
		return bad("--metric: missing (tokens, input_tokens, output_tokens, requests or cost_usd)")
	default:
		return bad("--metric: unknown metric %q (want tokens, input_tokens, output_tokens, requests or cost_usd)", d.Metric)
	}
	n, err := ParseMax(m, d.Max)
	if err != nil {
		return bad("%s", err)
	}
	zone := d.TZ
	if zone == "" || strings.EqualFold(zone, "local") {
		if spec, err := window.Parse(d.Window, d.ResetAt, ""); err == nil && spec.Kind.Fixed() && local != nil {
			if name := local.String(); name != "Local" {
				zone = name
			}
		}
	}
	spec, err := window.Parse(d.Window, d.ResetAt, zone)
	if err != nil {
		return bad("%s", err)
	}
	if spec.ResetAt%tokenmeter.RollupBucket != 0 {
		// Usage is counted from the ledger's 15-minute rollups: a window
		// boundary inside a bucket would count calls from before it.
		return bad("--reset-at: %q must be on a quarter hour (:00, :15, :30 or :45)", d.ResetAt)
	}
	md := tokenmeter.LimitMode(d.Mode)
	if d.Mode == "" {
		md = tokenmeter.LimitSoft
	}
	if md != tokenmeter.LimitSoft && md != tokenmeter.LimitHard {
		return bad("--mode: unknown mode %q (want soft or hard)", d.Mode)
	}
	lim := tokenmeter.Limit{Name: d.Name, Scope: d.Scope, Metric: m, Max: n, Window: spec.String(), Mode: md, Created: now.UTC()}
	if err := lim.Validate(); err != nil {
		return bad("%s", tokenmeter.ErrorMessage(err))
	}
	return lim, spec, nil
}

// ParseMax parses a limit's maximum: a positive whole number, or for
// cost_usd a positive amount of dollars with at most 6 decimals (kept in
// micro-dollars, exactly).
func ParseMax(metric tokenmeter.LimitMetric, s string) (int64, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, "_", ""))
	if s == "" {
		return 0, errors.New("--max: missing (the most the window may hold)")
	}
	if metric == tokenmeter.MetricCost {
		s = strings.TrimPrefix(s, "$")
		r, ok := new(big.Rat).SetString(s)
		if !ok || strings.ContainsAny(s, "eE/") {
			return 0, fmt.Errorf("--max: %q is not an amount of dollars (like 25 or 0.50)", s)
		}
		r.Mul(r, big.NewRat(1_000_000, 1))
		if !r.IsInt() {
			return 0, fmt.Errorf("--max: %q has more than 6 decimals (amounts are kept in micro-dollars)", s)
		}
		if r.Sign() <= 0 || !r.Num().IsInt64() {
			return 0, fmt.Errorf("--max: %q must be a positive amount of dollars", s)
		}
		return r.Num().Int64(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("--max: %q is not a whole number of %s", s, metric)
	}
	if n <= 0 {
		return 0, fmt.Errorf("--max: %d must be positive", n)
	}
	return n, nil
}
