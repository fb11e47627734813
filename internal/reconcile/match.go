package reconcile

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// Defaults of a reconciliation.
const (
	// DefaultLag is the provider's reporting delay: buckets that end later
	// than now minus the lag are not final.
	DefaultLag = 10 * time.Minute
	// CostSlack is the cost difference per day that counts as within
	// tolerance when the tolerance is in tokens: providers bill in cents.
	CostSlack tokenmeter.Micros = 10_000
)

// Tolerance is how far apart the provider's and the ledger's figures may
// be and still count as agreeing: an absolute number of tokens (and
// requests) per row and category, or a percentage of the larger figure.
type Tolerance struct {
	Tokens int64
	// PPM is the percentage in parts per million (2% is 20,000); used
	// when Pct is set.
	PPM int64
	Pct bool
}

// ParseTolerance reads "0", "100" (tokens) or "2%" / "0.5%".
func ParseTolerance(s string) (Tolerance, error) {
	if s == "" {
		return Tolerance{}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		r, ok := new(big.Rat).SetString(p)
		if !ok || r.Sign() < 0 || strings.ContainsAny(p, "/eE") || r.Cmp(big.NewRat(100, 1)) > 0 {
			return Tolerance{}, tokenmeter.Errorf(tokenmeter.EINVALID, "tolerance %q: want a percentage from 0%% to 100%%, e.g. 2%%", s)
		}
		r.Mul(r, big.NewRat(10_000, 1))
		ppm, _ := r.Float64()
		return Tolerance{PPM: int64(ppm + 0.5), Pct: true}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return Tolerance{}, tokenmeter.Errorf(tokenmeter.EINVALID, "tolerance %q: want a number of tokens (e.g. 100) or a percentage (e.g. 2%%)", s)
	}
	return Tolerance{Tokens: n}, nil
}

func (t Tolerance) String() string {
	if t.Pct {
		return strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(float64(t.PPM)/10_000, 'f', 4, 64), "0"), ".") + "%"
	}
	return strconv.FormatInt(t.Tokens, 10)
}

// within reports whether provider and ledger figures p and l agree.
func (t Tolerance) within(p, l int64) bool {
	d := p - l
	if d < 0 {
		d = -d
	}
	if !t.Pct {
		return d <= t.Tokens
	}
	m := max(abs(p), abs(l))
	// d/m <= ppm/1e6, in big integers so large counts cannot overflow.
	lhs := new(big.Int).Mul(big.NewInt(d), big.NewInt(1_000_000))
	rhs := new(big.Int).Mul(big.NewInt(m), big.NewInt(t.PPM))
	return lhs.Cmp(rhs) <= 0
}

// withinCost reports whether two daily costs agree.
func (t Tolerance) withinCost(p, l tokenmeter.Micros) bool {
	if t.Pct {
		return t.within(int64(p), int64(l))
	}
	if t.Tokens == 0 {
		return p == l
	}
	d := p - l
	return d < CostSlack && -d < CostSlack
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// Options says what to reconcile.
type Options struct {
	Provider     string // Anthropic or OpenAI (the ledger's provider name)
	Since, Until time.Time
	Bucket       time.Duration // time.Hour or 24 * time.Hour (time.Minute works too)
	By           string        // "model" (default) or "key"
	Tolerance    Tolerance
	// Lag: buckets ending after Now minus Lag are not final. Zero compares
	// every bucket as it stands.
	Lag time.Duration
	Now time.Time
	// Principals maps ledger principals ("cred:..." and "key:NAME") to the
	// provider's API key ids (see MatchKeys); used by key.
	Principals map[string]string
	// ProxyOnly leaves out imported events (Claude Code and Codex logs,
	// often subscription traffic that no admin report covers).
	ProxyOnly bool
}

// Figures are one side's numbers for a row.
type Figures struct {
	Usage    tokenmeter.Usage `json:"usage"`
	Requests int64            `json:"requests"`
	// The ledger's calls whose usage is estimated (and the tokens of Usage
	// they make up) or unknown; zero on the provider's side.
	EstimatedRequests int64 `json:"usage_estimated_requests,omitempty"`
	EstimatedTokens   int64 `json:"estimated_tokens,omitempty"`
	UnknownRequests   int64 `json:"usage_unknown_requests,omitempty"`
}

// Row is one bucket × model (× key) compared.
type Row struct {
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Model      string    `json:"model"`
	Key        string    `json:"key,omitempty"`
	Principals string    `json:"principals,omitempty"`
	Class      string    `json:"class"`
	Final      bool      `json:"final"`
	Provider   Figures   `json:"provider"`
	Ledger     Figures   `json:"ledger"`
}

// CostDay is one UTC day's cost of one model ("" for all models), on
// both sides.
type CostDay struct {
	Start    time.Time         `json:"start"`
	End      time.Time         `json:"end"`
	Model    string            `json:"model,omitempty"`
	Provider tokenmeter.Micros `json:"provider_micros"`
	Ledger   tokenmeter.Micros `json:"ledger_micros"`
	Class    string            `json:"class"`
	Final    bool              `json:"final"`
	Beyond   bool              `json:"beyond_tolerance"`
}

// Report is a reconciliation's outcome: the run (status, summary,
// discrepancies largest first) and every row compared.
type Report struct {
	tokenmeter.ReconcileRun
	Rows  []Row     `json:"rows"`
	Costs []CostDay `json:"costs,omitempty"`
}

// Categories returns the categories compared for provider, in display
// order.
func Categories(provider string) []string {
	if provider == OpenAI {
		return []string{tokenmeter.CategoryInput, tokenmeter.CategoryOutput, tokenmeter.CategoryCacheWrite,
			tokenmeter.CategoryCacheRead, tokenmeter.CategoryRequests}
	}
	return []string{tokenmeter.CategoryInput, tokenmeter.CategoryOutput, tokenmeter.CategoryCacheWrite5m,
		tokenmeter.CategoryCacheWrite1h, tokenmeter.CategoryCacheRead, tokenmeter.CategoryWebSearch}
}

// Value returns f's figure in category cat.
func (f Figures) Value(cat string) int64 {
	u := f.Usage
	switch cat {
	case tokenmeter.CategoryInput:
		return u.InputTokens
	case tokenmeter.CategoryOutput:
		return u.OutputTokens
	case tokenmeter.CategoryCacheWrite5m:
		return u.CacheWrite5mTokens
	case tokenmeter.CategoryCacheWrite1h:
		return u.CacheWrite1hTokens
	case tokenmeter.CategoryCacheWrite:
		return u.CacheWriteTokens()
	case tokenmeter.CategoryCacheRead:
		return u.CacheReadTokens
	case tokenmeter.CategoryWebSearch:
		return u.WebSearchRequests
	case tokenmeter.CategoryRequests:
		return f.Requests
	}
	return 0
}

type rowKey struct {
	start int64
	model string // tokenmeter.ModelBase
	key   string
}

// Compare reconciles the provider's usage (and, if costs is not nil, cost)
// report against the ledger's buckets (Store.Usage on opts.Bucket's grid
// over [Since, Until); buckets of other providers are ignored).
func Compare(opts Options, usage UsagePage, costs *CostPage, ledger []tokenmeter.UsageBucket) Report {
	if opts.By == "" {
		opts.By = "model"
	}
	rep := Report{ReconcileRun: tokenmeter.ReconcileRun{
		Provider: opts.Provider, Ran: opts.Now, Since: opts.Since, Until: opts.Until, Bucket: opts.Bucket,
		By: opts.By, Tolerance: opts.Tolerance.String(), Lag: opts.Lag, Discrepancies: []tokenmeter.Discrepancy{},
	}}
	sum := &rep.Summary
	if opts.Bucket > 0 {
		sum.Buckets = int(opts.Until.Sub(opts.Since) / opts.Bucket)
	}
	sum.HasRequests = opts.Provider == OpenAI
	final := func(end time.Time) bool { return opts.Lag <= 0 || !end.After(opts.Now.Add(-opts.Lag)) }

	rows := map[rowKey]*Row{}
	principals := map[rowKey]map[string]bool{}
	get := func(start, end time.Time, model, key string) (*Row, rowKey) {
		k := rowKey{start.Unix(), tokenmeter.ModelBase(model), key}
		r := rows[k]
		if r == nil {
			r = &Row{Start: start, End: end, Model: model, Key: key}
			rows[k] = r
		}
		return r, k
	}
	for _, u := range usage.Rows {
		if u.Start.Before(opts.Since) || !u.Start.Before(opts.Until) {
			continue
		}
		key := ""
		if opts.By == "key" {
			key = u.APIKeyID
			if key == "" {
				key = "(no key)"
			}
		}
		r, _ := get(u.Start, u.End, u.Model, key)
		r.Model = u.Model // the provider's name wins
		r.Provider.Usage = r.Provider.Usage.Add(u.Usage)
		r.Provider.Requests += u.Requests
	}
	for _, b := range ledger {
		if b.Provider != opts.Provider || b.Start.Before(opts.Since) || !b.Start.Before(opts.Until) || (opts.ProxyOnly && b.Source != tokenmeter.SourceProxy) {
			continue
		}
		key := ""
		if opts.By == "key" {
			key = opts.Principals[b.Principal]
			if key == "" {
				key = b.Principal
				if key == "" {
					key = "(no principal)"
				}
			}
		}
		r, k := get(b.Start, b.Start.Add(opts.Bucket), b.Model, key)
		r.Ledger.Usage = r.Ledger.Usage.Add(b.Usage)
		r.Ledger.EstimatedRequests += b.UsageEstimated
		r.Ledger.EstimatedTokens += b.EstimatedTokens
		r.Ledger.UnknownRequests += b.UsageUnknown
		if b.Outcome != tokenmeter.OutcomeError {
			// A refused call is not a model request to the provider.
			r.Ledger.Requests += b.Requests
		}
		if opts.By == "key" && b.Principal != "" {
			if principals[k] == nil {
				principals[k] = map[string]bool{}
			}
			principals[k][b.Principal] = true
		}
	}

	cats := Categories(opts.Provider)
	for k, r := range rows {
		if ps := principals[k]; len(ps) > 0 {
			names := make([]string, 0, len(ps))
			for p := range ps {
				names = append(names, p)
			}
			sort.Strings(names)
			r.Principals = strings.Join(names, ",")
		}
		if !sum.HasRequests {
			r.Provider.Requests = 0
		}
		pz, lz := true, true
		for _, c := range cats {
			pz = pz && r.Provider.Value(c) == 0
			lz = lz && r.Ledger.Value(c) == 0
		}
		if pz && lz {
			delete(rows, k) // nothing on either side (e.g. refused calls only)
			continue
		}
		r.Final = final(r.End)
		r.Class = tokenmeter.ReconcileMatch
		switch {
		case lz:
			r.Class = tokenmeter.ReconcileProviderOnly
		case pz:
			r.Class = tokenmeter.ReconcileLedgerOnly
		}
		for _, c := range cats {
			p, l := r.Provider.Value(c), r.Ledger.Value(c)
			if p == l {
				continue
			}
			if r.Class == tokenmeter.ReconcileMatch {
				r.Class = tokenmeter.ReconcileMismatch
			}
			d := tokenmeter.Discrepancy{Start: r.Start, End: r.End, Model: r.Model, Key: r.Key, Principals: r.Principals,
				Class: r.Class, Category: c, Provider: p, Ledger: l, Final: r.Final, Beyond: !opts.Tolerance.within(p, l)}
			rep.Discrepancies = append(rep.Discrepancies, d)
		}
		sum.ProviderUsage = sum.ProviderUsage.Add(r.Provider.Usage)
		sum.LedgerUsage = sum.LedgerUsage.Add(r.Ledger.Usage)
		sum.ProviderRequests += r.Provider.Requests
		sum.LedgerRequests += r.Ledger.Requests
		sum.LedgerEstimatedRequests += r.Ledger.EstimatedRequests
		sum.LedgerEstimatedTokens += r.Ledger.EstimatedTokens
		sum.LedgerUnknownRequests += r.Ledger.UnknownRequests
	}
	// Discrepancies of one row share its class; fix those listed before
	// the class turned from match to mismatch.
	for i := range rep.Discrepancies {
		d := &rep.Discrepancies[i]
		d.Class = rows[rowKey{d.Start.Unix(), tokenmeter.ModelBase(d.Model), d.Key}].Class
	}

	for _, r := range rows {
		rep.Rows = append(rep.Rows, *r)
		sum.Rows++
		if !r.Final {
			sum.NotFinal++
		}
		switch r.Class {
		case tokenmeter.ReconcileMatch:
			sum.Matched++
		case tokenmeter.ReconcileProviderOnly:
			sum.ProviderOnly++
		case tokenmeter.ReconcileLedgerOnly:
			sum.LedgerOnly++
		default:
			sum.Mismatched++
		}
	}
	sort.Slice(rep.Rows, func(i, j int) bool {
		a, b := rep.Rows[i], rep.Rows[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return a.Key < b.Key
	})

	if costs != nil {
		rep.Costs = compareCosts(opts, *costs, ledger, final, &rep)
	}

	sort.SliceStable(rep.Discrepancies, func(i, j int) bool {
		a, b := rep.Discrepancies[i], rep.Discrepancies[j]
		// Money and tokens do not compare; costs go after tokens.
		if ac, bc := a.Category == tokenmeter.CategoryCost, b.Category == tokenmeter.CategoryCost; ac != bc {
			return bc
		}
		if da, db := abs(a.Diff()), abs(b.Diff()); da != db {
			return da > db
		}
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.Category < b.Category
	})
	for _, d := range rep.Discrepancies {
		if d.Final && d.Beyond {
			sum.Beyond++
		}
	}
	rep.Status = tokenmeter.ReconcileOK
	if sum.Beyond > 0 {
		rep.Status = tokenmeter.ReconcileDiscrepancies
	}
	return rep
}

// compareCosts compares the provider's daily cost with the ledger's cost
// summed over the same UTC days: per model when every result of the
// provider's report names one (Anthropic's, grouped by description), else
// over all models.
func compareCosts(opts Options, costs CostPage, ledger []tokenmeter.UsageBucket, final func(time.Time) bool, rep *Report) []CostDay {
	const day = 24 * time.Hour
	byModel := len(costs.Rows) > 0
	for _, c := range costs.Rows {
		if c.Model == "" && c.Amount != 0 {
			byModel = false
		}
	}
	type dayKey struct {
		start int64
		model string
	}
	days := map[dayKey]*CostDay{}
	get := func(start time.Time, model string) *CostDay {
		start = start.UTC().Truncate(day)
		k := dayKey{start.Unix(), ""}
		if byModel {
			k.model = tokenmeter.ModelBase(model)
		}
		d := days[k]
		if d == nil {
			d = &CostDay{Start: start, End: start.Add(day)}
			if byModel {
				d.Model = model
			}
			days[k] = d
		}
		return d
	}
	// Only whole UTC days inside [Since, Until) are compared: the provider
	// reports cost per day, and a day cut by either end would set a full
	// day of the provider's against part of one of the ledger's (a
	// scheduled run starts at the hour, 48 hours back).
	from, to := opts.Since.UTC().Truncate(day), opts.Until.UTC().Truncate(day)
	if from.Before(opts.Since) {
		from = from.Add(day)
	}
	inside := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }
	for _, c := range costs.Rows {
		if !inside(c.Start.UTC().Truncate(day)) {
			continue
		}
		d := get(c.Start, c.Model)
		d.Provider += c.Amount
		if byModel {
			d.Model = c.Model // the provider's name wins
		}
	}
	for _, b := range ledger {
		if b.Provider != opts.Provider || !inside(b.Start.UTC().Truncate(day)) || b.Start.Before(opts.Since) || !b.Start.Before(opts.Until) ||
			(opts.ProxyOnly && b.Source != tokenmeter.SourceProxy) {
			continue
		}
		get(b.Start, b.Model).Ledger += b.Cost
	}
	var out []CostDay
	sum := &rep.Summary
	sum.HasCost = true
	for _, d := range days {
		if d.Provider == 0 && d.Ledger == 0 {
			continue
		}
		d.Final = final(d.End)
		switch {
		case d.Ledger == 0:
			d.Class = tokenmeter.ReconcileProviderOnly
		case d.Provider == 0:
			d.Class = tokenmeter.ReconcileLedgerOnly
		case d.Provider == d.Ledger:
			d.Class = tokenmeter.ReconcileMatch
		default:
			d.Class = tokenmeter.ReconcileMismatch
		}
		d.Beyond = !opts.Tolerance.withinCost(d.Provider, d.Ledger)
		sum.ProviderCost += d.Provider
		sum.LedgerCost += d.Ledger
		if d.Provider != d.Ledger {
			rep.Discrepancies = append(rep.Discrepancies, tokenmeter.Discrepancy{Start: d.Start, End: d.End, Model: d.Model, Class: d.Class,
				Category: tokenmeter.CategoryCost, Provider: int64(d.Provider), Ledger: int64(d.Ledger), Final: d.Final, Beyond: d.Beyond})
		}
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].Model < out[j].Model
	})
	return out
}

// MatchKeys maps ledger principals to provider API key ids. creds are the
// credentials the gateway forwarded (ID "cred:..." and Hint); keys the
// provider's listing; routeCred the ID of the credential the gateway
// forwards for virtual keys on this provider's route ("" if none), so
// "key:NAME" principals map to what it maps to. A credential whose hint
// matches no key, or more than one, stays unmapped.
func MatchKeys(creds []Credential, keys []Key, routeCred string, principals []string) map[string]string {
	out := map[string]string{}
	for _, c := range creds {
		var found []string
		for _, k := range keys {
			if c.Hint != "" && HintsMatch(c.Hint, k.Hint) {
				found = append(found, k.ID)
			}
		}
		if len(found) == 1 {
			out[c.ID] = found[0]
		}
	}
	if id := out[routeCred]; routeCred != "" && id != "" {
		for _, p := range principals {
			if strings.HasPrefix(p, "key:") {
				out[p] = id
			}
		}
	}
	return out
}

// Credential is a provider credential the gateway forwarded, as
// tokenmeter.Credential holds it: its ID (the ledger principal) and hint.
type Credential struct {
	ID, Hint string
}

// Describe is one line about a bucket width, for output.
func Describe(d time.Duration) string {
	switch d {
	case time.Minute:
		return "1m"
	case time.Hour:
		return "1h"
	case 24 * time.Hour:
		return "1d"
	}
	return fmt.Sprint(d)
}
