package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// file is the JSON form of a table; docs/pricing.md describes it.
type file struct {
	Version    string            `json:"version"`
	SourceRead string            `json:"source_read"`
	Models     []json.RawMessage `json:"models"`
}

// row is the JSON form of a Price. Pointers tell a missing rate, which is an
// error, from a zero one.
type row struct {
	Provider         string         `json:"provider"`
	ID               string         `json:"id"`
	Aliases          []string       `json:"aliases"`
	EffectiveFrom    string         `json:"effective_from"`
	EffectiveTo      string         `json:"effective_to"`
	rates                           // input, output, cache_write_5m, cache_write_1h, cache_read
	LongContext      *tier          `json:"long_context"`
	BatchDiscountPct *int           `json:"batch_discount_pct"`
	ServiceTiers     map[string]int `json:"service_tiers"`
	WebSearchPer1k   *int64         `json:"web_search_per_1k"`
	Source           string         `json:"source"`
	Confidence       string         `json:"confidence"`
	Note             string         `json:"note"` // free text, not kept
}

type rates struct {
	Input        *int64 `json:"input"`
	Output       *int64 `json:"output"`
	CacheWrite5m *int64 `json:"cache_write_5m"`
	CacheWrite1h *int64 `json:"cache_write_1h"`
	CacheRead    *int64 `json:"cache_read"`
}

type tier struct {
	Threshold *int64 `json:"threshold"`
	rates
}

// Parse reads a table in the JSON format of prices.json (see
// docs/pricing.md). It rejects unknown keys, missing or negative rates, bad
// dates, an effective_to not after effective_from, rows of one id whose
// periods overlap, and a name used for two different ids.
func Parse(r io.Reader) (*Table, error) {
	t, err := parse(r)
	if err != nil {
		return nil, fmt.Errorf("parse price table: %w", err)
	}
	return t, nil
}

func parse(r io.Reader) (*Table, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the table")
	}
	if strings.TrimSpace(f.Version) == "" {
		return nil, errors.New(`missing "version"`)
	}
	if f.Models == nil {
		return nil, errors.New(`missing "models"`)
	}

	t := &Table{
		version: f.Version,
		rows:    make(map[string][]Price),
		index:   make(map[string]string),
	}
	aliases := make(map[string]string) // alias -> ID
	for i, raw := range f.Models {
		p, names, err := parseRow(raw)
		if err != nil {
			if p.ID != "" {
				return nil, fmt.Errorf("models[%d] (%s): %w", i, p.ID, err)
			}
			return nil, fmt.Errorf("models[%d]: %w", i, err)
		}
		if rows := t.rows[p.ID]; len(rows) > 0 && rows[0].Provider != p.Provider {
			return nil, fmt.Errorf("models[%d] (%s): provider %q, but an earlier row of this id has %q", i, p.ID, p.Provider, rows[0].Provider)
		}
		t.rows[p.ID] = append(t.rows[p.ID], p)
		for _, a := range names {
			if id, ok := aliases[a]; ok && id != p.ID {
				return nil, fmt.Errorf("models[%d] (%s): alias %q already names %s", i, p.ID, a, id)
			}
			aliases[a] = p.ID
		}
	}
	for _, a := range slices.Sorted(maps.Keys(aliases)) {
		id := aliases[a]
		if _, ok := t.rows[a]; ok {
			return nil, fmt.Errorf("%q is both a model id and an alias of %s", a, id)
		}
		t.index[a] = id
	}
	for _, id := range slices.Sorted(maps.Keys(t.rows)) {
		rows := t.rows[id]
		t.index[id] = id
		slices.SortFunc(rows, func(a, b Price) int { return a.From.Compare(b.From) })
		for i := 1; i < len(rows); i++ {
			if prev := rows[i-1]; prev.To.IsZero() || prev.To.After(rows[i].From) {
				return nil, fmt.Errorf("%s: rows %s and %s overlap", id, period(prev), period(rows[i]))
			}
		}
	}
	return t, nil
}

// parseRow decodes and checks one row. It returns the row's lowercased
// aliases, and the Price so far (for its ID) even with an error.
func parseRow(raw json.RawMessage) (Price, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var r row
	if err := dec.Decode(&r); err != nil {
		return Price{}, nil, err
	}
	p := Price{
		Provider:   r.Provider,
		ID:         strings.ToLower(strings.TrimSpace(r.ID)),
		Source:     r.Source,
		Confidence: r.Confidence,
	}
	if p.ID == "" {
		return p, nil, errors.New(`missing "id"`)
	}
	switch p.Provider {
	case "anthropic", "openai", "gemini":
	case "":
		return p, nil, errors.New(`missing "provider"`)
	default:
		return p, nil, fmt.Errorf("provider %q is not anthropic, openai or gemini", p.Provider)
	}
	switch p.Confidence {
	case "", "O", "S", "U":
	default:
		return p, nil, fmt.Errorf("confidence %q is not O, S or U", p.Confidence)
	}
	var names []string
	for _, a := range r.Aliases {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" {
			return p, nil, errors.New("empty alias")
		}
		if a != p.ID {
			names = append(names, a)
		}
	}

	var err error
	if r.EffectiveFrom == "" {
		return p, nil, errors.New(`missing "effective_from"`)
	}
	if p.From, err = time.Parse(time.DateOnly, r.EffectiveFrom); err != nil {
		return p, nil, fmt.Errorf("effective_from %q is not a YYYY-MM-DD date", r.EffectiveFrom)
	}
	if r.EffectiveTo != "" {
		if p.To, err = time.Parse(time.DateOnly, r.EffectiveTo); err != nil {
			return p, nil, fmt.Errorf("effective_to %q is not a YYYY-MM-DD date", r.EffectiveTo)
		}
		if !p.To.After(p.From) {
			return p, nil, fmt.Errorf("effective_to %s is not after effective_from %s", r.EffectiveTo, r.EffectiveFrom)
		}
	}

	if p.Rates, err = r.rates.check(""); err != nil {
		return p, nil, err
	}
	if lc := r.LongContext; lc != nil {
		if lc.Threshold == nil {
			return p, nil, errors.New(`missing "long_context.threshold"`)
		}
		if *lc.Threshold <= 0 {
			return p, nil, fmt.Errorf("long_context.threshold %d is not positive", *lc.Threshold)
		}
		rs, err := lc.rates.check("long_context.")
		if err != nil {
			return p, nil, err
		}
		p.LongContext = &Tier{Threshold: *lc.Threshold, Rates: rs}
	}
	if r.BatchDiscountPct == nil {
		return p, nil, errors.New(`missing "batch_discount_pct"`)
	}
	if p.BatchDiscountPct = *r.BatchDiscountPct; p.BatchDiscountPct < 0 || p.BatchDiscountPct > 100 {
		return p, nil, fmt.Errorf("batch_discount_pct %d is not between 0 and 100", p.BatchDiscountPct)
	}
	if r.WebSearchPer1k != nil {
		if p.WebSearchPer1k = *r.WebSearchPer1k; p.WebSearchPer1k < 0 {
			return p, nil, fmt.Errorf("web_search_per_1k %d is negative", p.WebSearchPer1k)
		}
	}
	for name, pct := range r.ServiceTiers {
		if NormalizeTier(name) != name || StandardTier(name) {
			return p, nil, fmt.Errorf("service_tiers: %q is not a tier name (lowercase, not default or standard; fast is written priority)", name)
		}
		if pct < 1 || pct > 10_000 {
			return p, nil, fmt.Errorf("service_tiers.%s %d is not a percentage between 1 and 10000", name, pct)
		}
		if p.ServiceTiers == nil {
			p.ServiceTiers = make(map[string]int, len(r.ServiceTiers))
		}
		p.ServiceTiers[name] = pct
	}
	return p, names, nil
}

// check returns the rates, or an error naming the first one missing or
// negative; prefix qualifies the key in the message.
func (r rates) check(prefix string) (Rates, error) {
	fields := []struct {
		key string
		v   *int64
	}{
		{"input", r.Input},
		{"output", r.Output},
		{"cache_write_5m", r.CacheWrite5m},
		{"cache_write_1h", r.CacheWrite1h},
		{"cache_read", r.CacheRead},
	}
	for _, f := range fields {
		if f.v == nil {
			return Rates{}, fmt.Errorf("missing %q", prefix+f.key)
		}
		if *f.v < 0 {
			return Rates{}, fmt.Errorf("%s%s %d is negative", prefix, f.key, *f.v)
		}
	}
	return Rates{
		Input:        *r.Input,
		Output:       *r.Output,
		CacheWrite5m: *r.CacheWrite5m,
		CacheWrite1h: *r.CacheWrite1h,
		CacheRead:    *r.CacheRead,
	}, nil
}

// period formats p's period for error messages, e.g. "[2026-03-13, open)".
func period(p Price) string {
	to := "open"
	if !p.To.IsZero() {
		to = p.To.Format(time.DateOnly)
	}
	return "[" + p.From.Format(time.DateOnly) + ", " + to + ")"
}
