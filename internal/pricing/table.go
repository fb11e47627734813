package pricing

import (
	"bytes"
	_ "embed"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

//go:embed prices.json
var pricesJSON []byte

// Rates are prices in micro-dollars per million tokens: 75000 is $0.075 per
// million tokens.
type Rates struct {
	Input        int64
	Output       int64
	CacheWrite5m int64
	CacheWrite1h int64
	CacheRead    int64
}

// Tier is a long-context price: its Rates replace the standard ones for the
// whole request when the request's prompt tokens (input + cache writes +
// cache reads) exceed Threshold.
type Tier struct {
	Threshold int64
	Rates
}

// Price is one row of the table: the rates of one model over one period.
// Treat it, and the Tier it points to, as read-only.
type Price struct {
	Provider string // "anthropic", "openai" or "gemini"
	ID       string // canonical model id, lowercase
	// From is the first instant the row applies to; To is the first instant
	// it no longer does, zero when open-ended.
	From, To time.Time
	Rates
	LongContext      *Tier // nil when the model has no long-context tier
	BatchDiscountPct int   // percent off every token category in a batch
	// ServiceTiers maps a provider's processing tier (OpenAI's
	// service_tier: "flex", "priority", "ultrafast") to its price as a
	// percentage of the rates above: 50 is half, 200 double. A call served
	// on a tier the row does not list has no price (see ServiceTierPct).
	ServiceTiers map[string]int
	// WebSearchPer1k is the price of 1,000 web searches in micro-dollars;
	// zero when the table has no per-search price for the model.
	WebSearchPer1k int64
	// Source lists the keys of the row's sources (docs/pricing.md lists
	// them), e.g. "[AP][RN]"; Confidence is "O" (the provider's own page), "S"
	// (secondary sources) or "U" (unconfirmed).
	Source, Confidence string
}

// The cache of resolved model names, which clients choose, holds at most
// maxResolved names of at most maxResolvedLen bytes; other names are
// resolved again on every call.
const (
	maxResolved    = 4096
	maxResolvedLen = 256
)

// Table is a set of prices. It is immutable once built and safe for
// concurrent use.
type Table struct {
	version string
	rows    map[string][]Price // by ID, sorted by From, periods disjoint
	index   map[string]string  // lowercase id or alias -> ID; every ID maps to itself

	// resolved caches resolveSlow: model name as given -> ID, "" if unknown.
	resolved  sync.Map
	nresolved atomic.Int64
}

var defaultTable = sync.OnceValue(func() *Table {
	t, err := Parse(bytes.NewReader(pricesJSON))
	if err != nil {
		// The file is compiled in and TestDefault parses it.
		panic("pricing: embedded prices.json: " + err.Error())
	}
	return t
})

// Default returns the table embedded in the binary. It is parsed once, on the
// first call; every call returns the same *Table.
func Default() *Table { return defaultTable() }

// Version returns the version of the table: the "version" of its file, or
// "base+override" for a merged table.
func (t *Table) Version() string { return t.version }

// Lookup returns the price of model at time at, and false if the table does
// not know the model or its last price ended before at. See the package
// documentation for the model names it accepts and for events outside every
// row's period.
func (t *Table) Lookup(model string, at time.Time) (Price, bool) {
	id, ok := t.resolve(model)
	if !ok {
		return Price{}, false
	}
	// Rows are sorted and disjoint: the first one that has not ended by at
	// is the one in force, or the next one to start.
	for _, p := range t.rows[id] {
		if p.To.IsZero() || at.Before(p.To) {
			return p, true
		}
	}
	return Price{}, false
}

// Canonical returns the table's ID for model (its canonical name: an
// alias, a dated snapshot the table lists or one of the decorations the
// package documentation lists resolve to it), or model itself when the
// table does not know it. Limits compare models by it, so that an alias in
// a request and the snapshot in its response count toward the same
// model: scope.
func (t *Table) Canonical(model string) string {
	if id, ok := t.resolve(model); ok {
		return id
	}
	return model
}

// resolve returns the ID that model names. Listed ids and aliases are a map
// hit; other names are resolved once and cached.
func (t *Table) resolve(model string) (string, bool) {
	if id, ok := t.index[model]; ok {
		return id, true
	}
	if v, ok := t.resolved.Load(model); ok {
		id := v.(string)
		return id, id != ""
	}
	id := t.resolveSlow(model)
	if len(model) <= maxResolvedLen && t.nresolved.Load() < maxResolved {
		if _, loaded := t.resolved.LoadOrStore(strings.Clone(model), id); !loaded {
			t.nresolved.Add(1)
		}
	}
	return id, id != ""
}

// resolveSlow maps a model name to an ID after removing the decorations that
// clients and clouds add to it, or returns "".
func (t *Table) resolveSlow(model string) string {
	s := strings.ToLower(strings.TrimSpace(model))
	if id, ok := t.index[s]; ok {
		return id
	}
	// "models/gemini-2.5-pro", Vertex resource paths, Bedrock ARNs.
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	// Claude Code's context-window suffix, "claude-opus-5-5[1m]".
	if i := strings.IndexByte(s, '['); i > 0 && strings.HasSuffix(s, "]") {
		s = s[:i]
	}
	s = trimBedrock(s)
	if id, ok := t.index[s]; ok {
		return id
	}
	if base, ok := trimDate(s); ok {
		if id, ok := t.index[base]; ok {
			return id
		}
	}
	return ""
}

// trimBedrock turns a Bedrock model id such as
// "us.anthropic.claude-sonnet-4-5-20250929-v1:0" into the Anthropic id
// "claude-sonnet-4-5-20250929". Other names are returned unchanged.
func trimBedrock(s string) string {
	const vendor = "anthropic."
	i := strings.Index(s, vendor)
	if i < 0 || i > 0 && s[i-1] != '.' {
		return s
	}
	s = s[i+len(vendor):]
	// Version suffix: -v1, -v1:0, -v2:1, -v1:0:200k.
	j := strings.LastIndex(s, "-v")
	if j < 0 {
		return s
	}
	for n, part := range strings.Split(s[j+2:], ":") {
		if n > 0 {
			part = strings.TrimSuffix(part, "k")
		}
		if !isDigits(part) {
			return s
		}
	}
	return s[:j]
}

// trimDate removes a snapshot date from the end of s: "-20250929",
// "@20250929" (Vertex) or "-2025-08-07" (OpenAI).
func trimDate(s string) (string, bool) {
	if n := len(s) - 9; n > 0 && (s[n] == '-' || s[n] == '@') && isDate("20060102", s[n+1:]) {
		return s[:n], true
	}
	if n := len(s) - 11; n > 0 && s[n] == '-' && isDate(time.DateOnly, s[n+1:]) {
		return s[:n], true
	}
	return s, false
}

func isDate(layout, s string) bool {
	if len(s) != len(layout) {
		return false
	}
	_, err := time.Parse(layout, s)
	return err == nil
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Merge returns a new table holding t's rows with override's laid on top.
// For a model id in both, override's rows win over the periods they cover;
// t's rows keep the time outside them (a row may be cut in two). Rows of ids
// t does not have are added. An alias in override wins over the same alias
// in t, but never over an id. Neither input is changed.
func (t *Table) Merge(override *Table) *Table {
	m := &Table{
		version: t.version + "+" + override.version,
		rows:    make(map[string][]Price, len(t.rows)+len(override.rows)),
		index:   make(map[string]string, len(t.index)+len(override.index)),
	}
	for id, rows := range t.rows {
		for _, p := range rows {
			m.rows[id] = append(m.rows[id], uncovered(p, override.rows[id])...)
		}
	}
	for id, rows := range override.rows {
		m.rows[id] = append(m.rows[id], rows...)
		slices.SortFunc(m.rows[id], func(a, b Price) int { return a.From.Compare(b.From) })
	}
	// No id loses all its rows: only override's rows can cover them.
	for k, id := range t.index {
		m.index[k] = id
	}
	for k, id := range override.index {
		m.index[k] = id
	}
	for id := range m.rows {
		m.index[id] = id
	}
	return m
}

// uncovered returns the parts of p's period that none of over's rows cover,
// each as a copy of p. over is sorted by From and disjoint.
func uncovered(p Price, over []Price) []Price {
	var out []Price
	for _, o := range over {
		if !overlaps(p, o) {
			continue
		}
		if p.From.Before(o.From) {
			before := p
			before.To = o.From
			out = append(out, before)
		}
		if o.To.IsZero() || (!p.To.IsZero() && !o.To.Before(p.To)) {
			return out // o covers the rest of p
		}
		p.From = o.To
	}
	return append(out, p)
}

// overlaps reports whether the periods of a and b share an instant.
func overlaps(a, b Price) bool {
	return (a.To.IsZero() || b.From.Before(a.To)) && (b.To.IsZero() || a.From.Before(b.To))
}
