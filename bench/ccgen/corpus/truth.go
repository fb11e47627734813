package corpus

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// entry is the kept line of one request: about 48 bytes, so 400k requests
// take some 30 MB with the map's overhead.
type entry struct {
	ts    int64 // Unix milliseconds
	u     usage
	model uint8
	flags uint8
}

const (
	seenMain  = 1 << iota // a line with isSidechain false
	seenReqID             // a line with a requestId
)

// accumulator applies the truth rules to every valid line written.
type accumulator struct {
	m        map[[2]uint64]entry
	models   []string
	modelIdx map[string]uint8
}

func newAccumulator() *accumulator {
	return &accumulator{m: make(map[[2]uint64]entry, 1<<16), modelIdx: map[string]uint8{}}
}

// usageLine reports whether a is a line of a request.
func usageLine(a *asst) bool { return a.apiErr == "" && a.u.total() > 0 }

// observe records a, a valid assistant line (standalone or wrapped in an
// agent_progress line).
func (ac *accumulator) observe(a *asst) {
	if !usageLine(a) {
		return
	}
	mi, ok := ac.modelIdx[a.model]
	if !ok {
		mi = uint8(len(ac.models))
		ac.models = append(ac.models, a.model)
		ac.modelIdx[a.model] = mi
	}
	var fl uint8
	if !a.sidechain {
		fl |= seenMain
	}
	if a.reqID != "" {
		fl |= seenReqID
	}
	e, ok := ac.m[a.key]
	if !ok || a.u.total() > e.u.total() {
		e.ts, e.u, e.model = a.ts, a.u, mi
	}
	e.flags |= fl
	ac.m[a.key] = e
}

// finish sums the kept lines per UTC day and model into t.
func (ac *accumulator) finish(t *Truth, tbl *pricing.Table) error {
	type dm struct {
		day   int64
		model uint8
	}
	sums := map[dm]*Figures{}
	for _, e := range ac.m {
		u := tokenmeter.Usage{
			InputTokens:        int64(e.u.in),
			OutputTokens:       int64(e.u.out),
			CacheWrite5mTokens: int64(e.u.cw5),
			CacheWrite1hTokens: int64(e.u.cw1),
			CacheReadTokens:    int64(e.u.cr),
			WebSearchRequests:  int64(e.u.ws),
		}
		model := ac.models[e.model]
		cost, ok := tbl.Cost(model, time.UnixMilli(e.ts), u, false)
		if !ok {
			return fmt.Errorf("corpus: no price for %s at %s", model, time.UnixMilli(e.ts).UTC().Format(tsLayout))
		}
		k := dm{day(e.ts), e.model}
		f := sums[k]
		if f == nil {
			f = &Figures{}
			sums[k] = f
		}
		f.add(Figures{
			Requests:                   1,
			InputTokens:                u.InputTokens,
			OutputTokens:               u.OutputTokens,
			CacheCreation5mInputTokens: u.CacheWrite5mTokens,
			CacheCreation1hInputTokens: u.CacheWrite1hTokens,
			CacheCreationInputTokens:   u.CacheWriteTokens(),
			CacheReadInputTokens:       u.CacheReadTokens,
			WebSearchRequests:          u.WebSearchRequests,
			CostMicros:                 int64(cost),
		})
		c := &t.Counts
		if e.flags&seenMain == 0 {
			c.SidechainRequests++
		}
		if e.flags&seenReqID == 0 {
			c.NoRequestID++
		}
		if u.PromptTokens() > 200_000 {
			c.LongContextRequests++
		}
		if u.CacheWrite1hTokens > 0 {
			c.OneHourCacheRequests++
		}
		if u.WebSearchRequests > 0 {
			c.WebSearchRequests++
		}
	}
	keys := make([]dm, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b dm) int {
		if a.day != b.day {
			return int(a.day - b.day)
		}
		return strings.Compare(ac.models[a.model], ac.models[b.model])
	})
	byModel := map[string]*Figures{}
	for _, k := range keys {
		f := *sums[k]
		date := time.UnixMilli(k.day * dayMillis).UTC().Format(time.DateOnly)
		if n := len(t.Days); n == 0 || t.Days[n-1].Date != date {
			t.Days = append(t.Days, Day{Date: date})
		}
		d := &t.Days[len(t.Days)-1]
		model := ac.models[k.model]
		d.Models = append(d.Models, ModelFigures{Model: model, Figures: f})
		d.Totals.add(f)
		t.Totals.add(f)
		if byModel[model] == nil {
			byModel[model] = &Figures{}
		}
		byModel[model].add(f)
	}
	names := make([]string, 0, len(byModel))
	for m := range byModel {
		names = append(names, m)
	}
	slices.Sort(names)
	for _, m := range names {
		t.Models = append(t.Models, ModelFigures{Model: m, Figures: *byModel[m]})
	}
	return nil
}
