package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/window"
)

// Limit is a limit as the API (and limits list --json) shows it, with its
// current window. Amounts of cost_usd are dollars. /api/me leaves Used
// and Remaining out of limits shared with other keys (Shared).
type Limit struct {
	Name        string   `json:"name"`
	Scope       string   `json:"scope"`
	Metric      string   `json:"metric"`
	Mode        string   `json:"mode"`
	Window      string   `json:"window"`
	Max         float64  `json:"max"`
	Used        *float64 `json:"used,omitempty"`
	Remaining   *float64 `json:"remaining,omitempty"`
	WindowStart string   `json:"window_start"`
	Reset       string   `json:"reset"`
	Created     string   `json:"created"`
	Shared      bool     `json:"shared,omitempty"`
}

// limitStates returns the limits that keep passes, with their windows
// and usage now; figures(l) says whether to show used and remaining.
func (h *Handler) limitStates(ctx context.Context, keep func(tokenmeter.Limit) bool, figures func(tokenmeter.Limit) bool) ([]Limit, error) {
	all, err := h.Limits.Limits(ctx)
	if err != nil {
		return nil, fmt.Errorf("list limits: %w", err)
	}
	now := h.now()
	out := []Limit{}
	for _, lim := range all {
		if !keep(lim) {
			continue
		}
		spec, err := limits.Compile(lim)
		if err != nil {
			return nil, err
		}
		start, reset, err := limits.Window(ctx, h.Limits, lim, spec, now)
		if err != nil {
			return nil, err
		}
		j := Limit{Name: lim.Name, Scope: lim.Scope, Metric: string(lim.Metric), Mode: string(lim.Mode), Window: lim.Window,
			Max: amount(lim.Metric, lim.Max), WindowStart: windowTime(start, spec), Reset: windowTime(reset, spec),
			Created: lim.Created.UTC().Format(time.RFC3339)}
		if figures(lim) {
			used, err := limits.Used(ctx, h.Limits, lim, start, now)
			if err != nil {
				return nil, err
			}
			u, r := amount(lim.Metric, used), amount(lim.Metric, max(0, lim.Max-used))
			j.Used, j.Remaining = &u, &r
		} else {
			j.Shared = true
		}
		out = append(out, j)
	}
	return out, nil
}

// limits serves GET /api/limits: every limit with its usage, remaining,
// window start and reset, as limits list --json shows them.
func (h *Handler) limits(w http.ResponseWriter, r *http.Request, _ caller) error {
	if h.Limits == nil {
		return &httpError{http.StatusNotImplemented, "not_implemented", "limits are not available on this gateway"}
	}
	all := func(tokenmeter.Limit) bool { return true }
	ls, err := h.limitStates(r.Context(), all, all)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Limits []Limit `json:"limits"`
	}{ls})
	return nil
}

// keyLimits returns the limits that apply to calls made with k: its own
// (key:NAME) with their figures, and those it shares with other keys
// (global, its project, any model) without them, since their usage is
// not the key's alone.
func (h *Handler) keyLimits(ctx context.Context, k tokenmeter.VirtualKey) ([]Limit, error) {
	if h.Limits == nil {
		return nil, nil
	}
	applies := func(l tokenmeter.Limit) bool {
		kind, value, err := tokenmeter.ParseScope(l.Scope)
		if err != nil {
			return false
		}
		switch kind {
		case tokenmeter.ScopeGlobal, tokenmeter.ScopeModel:
			return true
		case tokenmeter.ScopeKey:
			return value == k.Name
		case tokenmeter.ScopeProject:
			return k.Project != "" && value == k.Project
		}
		return false
	}
	own := func(l tokenmeter.Limit) bool { return l.Scope == tokenmeter.ScopeKey+":"+k.Name }
	return h.limitStates(ctx, applies, own)
}

func amount(m tokenmeter.LimitMetric, n int64) float64 {
	if m == tokenmeter.MetricCost {
		return tokenmeter.Micros(n).USD()
	}
	return float64(n)
}

// windowTime formats t in the window's zone (UTC for rolling windows and
// 5-hour blocks), as limits list does.
func windowTime(t time.Time, spec window.Spec) string {
	if spec.Kind.Fixed() && spec.Location != nil {
		t = t.In(spec.Location)
	} else {
		t = t.UTC()
	}
	return t.Format(time.RFC3339)
}

// limitWriter is what PUT and DELETE /api/limits/{name} need of the store
// (a tokenmeter.LimitStore has it).
type limitWriter interface {
	SetLimit(ctx context.Context, l tokenmeter.Limit) error
	DeleteLimit(ctx context.Context, name string) error
}

func (h *Handler) limitWriter() (limitWriter, error) {
	lw, ok := h.Limits.(limitWriter)
	if h.Limits == nil || !ok {
		return nil, &httpError{http.StatusNotImplemented, "not_implemented", "limits cannot be changed on this gateway"}
	}
	return lw, nil
}

// limitBody is the body of PUT /api/limits/{name}: a limits.Definition
// whose max may also be a JSON number.
type limitBody struct {
	Name    string     `json:"name"`
	Scope   string     `json:"scope"`
	Metric  string     `json:"metric"`
	Max     amountJSON `json:"max"`
	Window  string     `json:"window"`
	ResetAt string     `json:"reset_at"`
	TZ      string     `json:"tz"`
	Mode    string     `json:"mode"`
}

// amountJSON is a limit's max as the API takes it: a string ("25",
// "0.50") or a JSON number (25, 0.5), kept as its literal text so that
// limits.Define parses it exactly (never through a float).
type amountJSON string

// UnmarshalJSON implements json.Unmarshaler.
func (a *amountJSON) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = amountJSON(s)
		return nil
	}
	if len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		*a = amountJSON(b)
		return nil
	}
	return tokenmeter.Errorf(tokenmeter.EINVALID, "max: want a number, or a string such as \"25\" or \"0.50\"")
}

// setLimit serves PUT /api/limits/{name}: the body is a limits.Definition
// (the flags of limits set, as strings; name may be left out), checked as
// limits set checks its flags, with the gateway's zone as the default
// --tz. It creates or replaces the limit and answers with it as
// GET /api/limits shows it. Running gateways enforce it within a second.
func (h *Handler) setLimit(w http.ResponseWriter, r *http.Request, _ caller) error {
	lw, err := h.limitWriter()
	if err != nil {
		return err
	}
	var body limitBody
	if err := h.decode(w, r, &body); err != nil {
		return err
	}
	def := limits.Definition{Name: body.Name, Scope: body.Scope, Metric: body.Metric, Max: string(body.Max), Window: body.Window,
		ResetAt: body.ResetAt, TZ: body.TZ, Mode: body.Mode}
	name := r.PathValue("name")
	if def.Name != "" && def.Name != name {
		return tokenmeter.Errorf(tokenmeter.EINVALID, "body names limit %q but the path %q", def.Name, name)
	}
	def.Name = name
	def.Canonical = pricing.Default().Canonical
	lim, _, err := limits.Define(def, h.loc(), h.now())
	if err != nil {
		return err
	}
	if err := lw.SetLimit(r.Context(), lim); err != nil {
		return fmt.Errorf("set limit: %w", err)
	}
	ls, err := h.limitStates(r.Context(), func(l tokenmeter.Limit) bool { return l.Name == name }, func(tokenmeter.Limit) bool { return true })
	if err != nil {
		return err
	}
	if len(ls) != 1 {
		return fmt.Errorf("limit %s vanished after it was set", name)
	}
	writeJSON(w, http.StatusOK, ls[0])
	return nil
}

// deleteLimit serves DELETE /api/limits/{name}: 204, or 404 for an
// unknown name.
func (h *Handler) deleteLimit(w http.ResponseWriter, r *http.Request, _ caller) error {
	lw, err := h.limitWriter()
	if err != nil {
		return err
	}
	if err := lw.DeleteLimit(r.Context(), r.PathValue("name")); err != nil {
		return fmt.Errorf("delete limit: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
