package status

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokenmeter/tokenmeter/internal/report"
)

// LineWidth is the most characters a status line takes.
const LineWidth = 80

// Hook is what Claude Code writes on the standard input of its statusLine
// command. Only the fields the line uses are kept; unknown ones are
// ignored.
type Hook struct {
	SessionID      string `json:"session_id"`
	TranscriptPath string `json:"transcript_path"`
	Cwd            string `json:"cwd"`
	Model          struct {
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
	} `json:"model"`
	Workspace struct {
		CurrentDir string `json:"current_dir"`
		ProjectDir string `json:"project_dir"`
	} `json:"workspace"`
	Version string `json:"version"`
	Cost    struct {
		// TotalCostUSD is Claude Code's own estimate of the session's cost.
		TotalCostUSD    *float64 `json:"total_cost_usd"`
		TotalDurationMS *float64 `json:"total_duration_ms"`
	} `json:"cost"`
	// RateLimits is sent to subscribers of Claude.ai plans by some
	// versions: how much of the real 5-hour and weekly limits is used.
	RateLimits struct {
		FiveHour *RateLimit `json:"five_hour"`
		SevenDay *RateLimit `json:"seven_day"`
	} `json:"rate_limits"`
}

// RateLimit is one of Claude Code's rate_limits windows.
type RateLimit struct {
	UsedPercentage *float64 `json:"used_percentage"`
	// ResetsAt is seen both as Unix seconds and as an RFC 3339 string.
	ResetsAt json.RawMessage `json:"resets_at"`
}

// Resets returns the window's reset time, or zero if it is missing or
// unreadable.
func (l *RateLimit) Resets() time.Time {
	if l == nil || len(l.ResetsAt) == 0 {
		return time.Time{}
	}
	var s string
	if json.Unmarshal(l.ResetsAt, &s) == nil {
		t, _ := time.Parse(time.RFC3339, s)
		return t
	}
	if n, err := strconv.ParseFloat(string(l.ResetsAt), 64); err == nil && n > 0 && n < 1e11 {
		return time.Unix(int64(n), 0)
	}
	return time.Time{}
}

// ParseHook reads the hook's JSON as far as it can: malformed input leaves
// everything zero, and a field of an unexpected type (a cost that is a
// string) leaves that field zero or nil, never a made-up value.
func ParseHook(data []byte) Hook {
	var h Hook
	top := object(data)
	if top == nil {
		return Hook{}
	}
	leaf(top, "session_id", &h.SessionID)
	leaf(top, "transcript_path", &h.TranscriptPath)
	leaf(top, "cwd", &h.Cwd)
	leaf(top, "version", &h.Version)
	m := object(top["model"])
	leaf(m, "id", &h.Model.ID)
	leaf(m, "display_name", &h.Model.DisplayName)
	w := object(top["workspace"])
	leaf(w, "current_dir", &h.Workspace.CurrentDir)
	leaf(w, "project_dir", &h.Workspace.ProjectDir)
	c := object(top["cost"])
	leaf(c, "total_cost_usd", &h.Cost.TotalCostUSD)
	leaf(c, "total_duration_ms", &h.Cost.TotalDurationMS)
	rl := object(top["rate_limits"])
	h.RateLimits.FiveHour = rateLimit(object(rl["five_hour"]))
	h.RateLimits.SevenDay = rateLimit(object(rl["seven_day"]))
	return h
}

// object decodes a JSON object into its members; anything else is nil.
func object(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// leaf decodes member k of m into dst if it has dst's type.
func leaf[T any](m map[string]json.RawMessage, k string, dst *T) {
	var v T
	if raw, ok := m[k]; ok && json.Unmarshal(raw, &v) == nil {
		*dst = v
	}
}

func rateLimit(m map[string]json.RawMessage) *RateLimit {
	if m == nil {
		return nil
	}
	l := &RateLimit{}
	leaf(m, "used_percentage", &l.UsedPercentage)
	l.ResetsAt = m["resets_at"]
	if l.UsedPercentage == nil && len(l.ResetsAt) == 0 {
		return nil
	}
	return l
}

// part is a piece of the line.
type part struct {
	name        string
	text, short string // short, when set, replaces text before the part is dropped
	sep         string // put before the part
}

// shrink lists what Line does, in order, until the line fits: shorten a
// part ("short") or leave it out.
var shrink = []struct{ name, action string }{
	{"session", "short"}, {"limit", "short"}, {"rate", "drop"}, {"limit", "drop"}, {"tokens", "drop"},
	{"model", "drop"}, {"session", "drop"}, {"left", "drop"},
}

// Line renders s (nil when there is no ledger to read, hint then says why)
// and the hook as one line of at most LineWidth characters, for example
//
//	Sonnet 4.5 · block $3.41 1.2M tok, 2h13m left, $1.52/h · today $12.30 · cc $0.84
//
// shortened as needed. Block and today come from the ledger; the session
// cost is Claude Code's own figure, labelled "cc".
func Line(s *Status, h Hook, hint string) string {
	var parts []part
	if m := modelName(h); m != "" {
		parts = append(parts, part{name: "model", text: m})
	}
	sep := " · "
	if s == nil {
		parts = append(parts, part{name: "hint", text: hint, sep: sep})
	} else if b := s.Block; b != nil {
		parts = append(parts,
			part{name: "block", text: "block " + usd(b.CostMicros), sep: sep},
			part{name: "tokens", text: tokens(b.TotalTokens) + " tok", sep: " "},
			part{name: "left", text: report.Duration(time.Duration(b.RemainingMinutes)*time.Minute) + " left", sep: ", "})
		if b.BurnRate != nil {
			parts = append(parts, part{name: "rate", text: usd(b.BurnRate.CostMicrosPerHour) + "/h", sep: ", "})
		}
	} else {
		parts = append(parts, part{name: "block", text: "no active block", sep: sep})
	}
	if s != nil {
		parts = append(parts, part{name: "today", text: "today " + usd(s.Today.CostMicros), sep: sep})
	}
	if l := h.RateLimits.FiveHour; l != nil && l.UsedPercentage != nil {
		pct := fmt.Sprintf("%.0f%%", *l.UsedPercentage)
		parts = append(parts, part{name: "limit", text: "5h limit " + pct, short: "5h " + pct, sep: sep})
	}
	if c := h.Cost.TotalCostUSD; c != nil && *c >= 0 && *c < 1e9 {
		parts = append(parts, part{name: "session", text: fmt.Sprintf("cc session $%.2f", *c), short: fmt.Sprintf("cc $%.2f", *c), sep: sep})
	}
	render := func() string {
		var b strings.Builder
		for _, p := range parts {
			if b.Len() > 0 {
				b.WriteString(p.sep)
			}
			b.WriteString(p.text)
		}
		return b.String()
	}
	line := render()
	for _, step := range shrink {
		if utf8.RuneCountInString(line) <= LineWidth {
			break
		}
		for n, p := range parts {
			if p.name != step.name {
				continue
			}
			if step.action == "short" && p.short != "" {
				parts[n].text = p.short
			} else if step.action == "drop" {
				parts = append(parts[:n], parts[n+1:]...)
			}
			break
		}
		line = render()
	}
	return cut(line, LineWidth)
}

// modelName is the hook's model, display name first, made safe for one
// terminal line.
func modelName(h Hook) string {
	m := h.Model.DisplayName
	if m == "" {
		m = h.Model.ID
	}
	return cut(strings.Join(strings.FieldsFunc(m, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}), " "), 24)
}

// tokens abbreviates a count to at most four characters: 950, 12k, 1.2M.
func tokens(n int64) string {
	switch {
	case n < 10_000:
		return strconv.FormatInt(n, 10)
	case n < 999_500:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	case n < 9_950_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n < 999_500_000:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n < 9_950_000_000:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	}
	return fmt.Sprintf("%.0fB", float64(n)/1e9)
}

func usd(micros int64) string { return fmt.Sprintf("$%.2f", float64(micros)/1e6) }

func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
