package main

// This file replays ccusage 20.0.24's `claude daily` on a corpus, one rule
// at a time, so that its difference from the truth can be broken down by
// cause. The rules are those of shared/reference/local-logs.md §2.2-2.5,
// checked against the binary on generated corpora (the replay matched its
// token counts exactly and its cost to the cent):
//
//  1. a line is read only if it contains the bytes "usage":{ (lines written
//     with a space after ':' are skipped);
//  2. lines are keyed by (message.id, requestId), or by (message.id,
//     sessionId, timestamp) when there is no requestId; on a key collision
//     the line with the larger total stays. A line whose key is new is still
//     the same response as an earlier line with the same message.id if
//     either of them is a sidechain line: a main line replaces a sidechain
//     one, and of two sidechain lines the larger stays. So requestId-less
//     content-block lines of a main conversation, which have different
//     timestamps, are each counted;
//  3. a model's long-context rates apply per field, to the tokens of each
//     field above 200k (1-hour cache writes included), not to the whole
//     request;
//  4. web searches are not priced.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/bench/ccgen/corpus"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// line is the part of a transcript line the replay reads.
type line struct {
	Type        string `json:"type"`
	IsSidechain bool   `json:"isSidechain"`
	IsAPIError  bool   `json:"isApiErrorMessage"`
	RequestID   string `json:"requestId"`
	SessionID   string `json:"sessionId"`
	Timestamp   string `json:"timestamp"`
	Message     *struct {
		ID    string `json:"id"`
		Model string `json:"model"`
		Usage *struct {
			Input         int64 `json:"input_tokens"`
			Output        int64 `json:"output_tokens"`
			CacheWrite    int64 `json:"cache_creation_input_tokens"`
			CacheRead     int64 `json:"cache_read_input_tokens"`
			CacheCreation *struct {
				E5m int64 `json:"ephemeral_5m_input_tokens"`
				E1h int64 `json:"ephemeral_1h_input_tokens"`
			} `json:"cache_creation"`
			ServerToolUse *struct {
				WebSearch int64 `json:"web_search_requests"`
			} `json:"server_tool_use"`
		} `json:"usage"`
	} `json:"message"`
	Data *struct {
		Type    string `json:"type"`
		Message *line  `json:"message"`
	} `json:"data"`
}

// obs is one usage line.
type obs struct {
	id, req, session, ts string
	model                string
	at                   time.Time
	sidechain            bool
	u                    tokenmeter.Usage
}

// byID keeps the largest line of each message.id: the truth's rule.
type byID map[string]*obs

func (m byID) add(o *obs) {
	if k := m[o.id]; k == nil || o.u.TotalTokens() > k.u.TotalTokens() {
		m[o.id] = o
	}
}

// ccKey is ccusage's dedup key.
type ccKey struct{ id, req, session, ts string }

// ccDedup applies ccusage's rule 2.
type ccDedup struct {
	kept map[ccKey]*obs
	ids  map[string][]ccKey
}

func (d *ccDedup) add(o *obs) {
	k := ccKey{id: o.id, req: o.req}
	if o.req == "" {
		k.session, k.ts = o.session, o.ts
	}
	if e := d.kept[k]; e != nil {
		if o.u.TotalTokens() > e.u.TotalTokens() {
			d.kept[k] = o
		}
		return
	}
	for _, k2 := range d.ids[o.id] {
		e := d.kept[k2]
		if !o.sidechain && !e.sidechain {
			continue
		}
		switch {
		case e.sidechain && !o.sidechain:
			d.kept[k2] = o
		case e.sidechain && o.sidechain && o.u.TotalTokens() > e.u.TotalTokens():
			d.kept[k2] = o
		}
		return
	}
	d.kept[k] = o
	d.ids[o.id] = append(d.ids[o.id], k)
}

// step is the replay's figures after applying some of the rules.
type step struct {
	label string
	f     figs
}

type model struct {
	steps []step
}

// replay reads the corpus under dir and returns the figures of the truth's
// rules and then of ccusage's rules added one by one.
func replay(dir string) (*model, error) {
	var files []string
	err := filepath.WalkDir(filepath.Join(dir, "projects"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(path) == ".jsonl" {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files) // ccusage's order, which decides ties
	all, compact := byID{}, byID{}
	cc := &ccDedup{kept: map[ccKey]*obs{}, ids: map[string][]ccKey{}}
	for _, path := range files {
		if err := readFile(path, func(o *obs, spaced bool) {
			all.add(o)
			if !spaced {
				compact.add(o)
				cc.add(o)
			}
		}); err != nil {
			return nil, err
		}
	}
	tbl := pricing.Default()
	sum := func(kept []*obs, price func(*obs) float64) figs {
		var f figs
		for _, o := range kept {
			f.add(o, price(o))
		}
		return f
	}
	values := func(m byID) []*obs {
		v := make([]*obs, 0, len(m))
		for _, o := range m {
			v = append(v, o)
		}
		return v
	}
	ccKept := make([]*obs, 0, len(cc.kept))
	for _, o := range cc.kept {
		ccKept = append(ccKept, o)
	}
	exact := func(o *obs) float64 {
		c, _ := tbl.Cost(o.model, o.at, o.u, false)
		return float64(c) / 1e6
	}
	perField := func(web bool) func(o *obs) float64 {
		return func(o *obs) float64 {
			p, ok := tbl.Lookup(o.model, o.at)
			if !ok {
				return 0
			}
			return ccCost(p, o.u, web)
		}
	}
	return &model{steps: []step{
		{"truth's rules (replayed)", sum(values(all), exact)},
		{"- lines with spaces skipped", sum(values(compact), exact)},
		{"+ requestId-less lines per (session, timestamp)", sum(ccKept, exact)},
		{"~ long context priced per field", sum(ccKept, perField(true))},
		{"- web searches unpriced", sum(ccKept, perField(false))},
	}}, nil
}

func (f *figs) add(o *obs, cost float64) {
	f.in += o.u.InputTokens
	f.out += o.u.OutputTokens
	f.cw += o.u.CacheWriteTokens()
	f.cr += o.u.CacheReadTokens
	f.requests++
	f.cost += cost
}

// ccCost prices u the way ccusage does: each field's tokens above the
// long-context threshold at the long-context rate, the rest at the base
// rate; web searches only when web is true (ccusage never prices them).
func ccCost(p pricing.Price, u tokenmeter.Usage, web bool) float64 {
	tier := func(n, base int64, above func(pricing.Rates) int64) float64 {
		if p.LongContext == nil || n <= p.LongContext.Threshold {
			return float64(n) * float64(base)
		}
		t := p.LongContext.Threshold
		return float64(t)*float64(base) + float64(n-t)*float64(above(p.LongContext.Rates))
	}
	r := p.Rates
	micros := (tier(u.InputTokens, r.Input, func(x pricing.Rates) int64 { return x.Input }) +
		tier(u.OutputTokens, r.Output, func(x pricing.Rates) int64 { return x.Output }) +
		tier(u.CacheWrite5mTokens, r.CacheWrite5m, func(x pricing.Rates) int64 { return x.CacheWrite5m }) +
		tier(u.CacheWrite1hTokens, r.CacheWrite1h, func(x pricing.Rates) int64 { return x.CacheWrite1h }) +
		tier(u.CacheReadTokens, r.CacheRead, func(x pricing.Rates) int64 { return x.CacheRead })) / 1e6
	if web {
		micros += float64(u.WebSearchRequests) * float64(p.WebSearchPer1k) / 1000
	}
	return micros / 1e6
}

var usageCompact = []byte(`"usage":{`)

// readFile calls fn with every valid usage line of the file at path, and
// whether it was written with spaces.
func readFile(path string, fn func(o *obs, spaced bool)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	for sc.Scan() {
		b := sc.Bytes()
		if !bytes.Contains(b, []byte(`"usage"`)) {
			continue
		}
		var l line
		if json.Unmarshal(b, &l) != nil {
			continue
		}
		a := &l
		switch {
		case l.Type == "assistant":
		case l.Type == "progress" && l.Data != nil && l.Data.Type == "agent_progress" && l.Data.Message != nil:
			a = l.Data.Message
		default:
			continue
		}
		m := a.Message
		if a.IsAPIError || m == nil || m.Usage == nil || m.ID == "" || m.Model == "" || m.Model == "<synthetic>" {
			continue
		}
		u := tokenmeter.Usage{InputTokens: m.Usage.Input, OutputTokens: m.Usage.Output, CacheReadTokens: m.Usage.CacheRead}
		if cc := m.Usage.CacheCreation; cc != nil {
			u.CacheWrite5mTokens, u.CacheWrite1hTokens = cc.E5m, cc.E1h
		} else {
			u.CacheWrite5mTokens = m.Usage.CacheWrite
		}
		if st := m.Usage.ServerToolUse; st != nil {
			u.WebSearchRequests = st.WebSearch
		}
		if u.TotalTokens() == 0 {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, a.Timestamp)
		if err != nil {
			continue
		}
		fn(&obs{id: m.ID, req: a.RequestID, session: a.SessionID, ts: a.Timestamp, model: m.Model, at: at,
			sidechain: a.IsSidechain, u: u}, !bytes.Contains(b, usageCompact))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// explain prints the replay's steps, each with its change from the one
// before, and how far the last is from what ccusage printed.
func explain(w io.Writer, tr *corpus.Truth, m *model, cc *report) {
	fmt.Fprintln(w, "\nccusage claude daily replayed on the corpus, rule by rule (local-logs.md §2.4):")
	fmt.Fprintf(w, "%-50s %14s %14s %14s %16s %12s\n", "", "input", "output", "cache write", "cache read", "cost USD")
	row := func(label string, f figs) {
		fmt.Fprintf(w, "%-50s %14s %14s %14s %16s %12s\n", label,
			group(fmt.Sprint(f.in)), group(fmt.Sprint(f.out)), group(fmt.Sprint(f.cw)), group(fmt.Sprint(f.cr)), group(fmt.Sprintf("%.2f", f.cost)))
	}
	delta := func(label string, f, base figs) {
		d := func(a, b int64) string {
			if a == b {
				return "0"
			}
			return fmt.Sprintf("%+.2f%%", float64(a-b)/float64(b)*100)
		}
		dc := "0"
		if math.Abs(f.cost-base.cost) >= 0.005 {
			dc = fmt.Sprintf("%+.2f%%", (f.cost-base.cost)/base.cost*100)
		}
		fmt.Fprintf(w, "%-50s %14s %14s %14s %16s %12s\n", label, d(f.in, base.in), d(f.out, base.out), d(f.cw, base.cw), d(f.cr, base.cr), dc)
	}
	t := tr.Totals
	truth := figs{t.InputTokens, t.OutputTokens, t.CacheCreationInputTokens, t.CacheReadInputTokens, t.Requests, float64(t.CostMicros) / 1e6}
	row("truth", truth)
	for i, s := range m.steps {
		row(s.label, s.f)
		if i == 0 {
			delta("    vs the truth", s.f, truth)
			continue
		}
		delta("    change", s.f, m.steps[i-1].f)
	}
	last := m.steps[len(m.steps)-1].f
	delta("expected ccusage vs truth", last, truth)
	if cc != nil {
		row("ccusage printed", cc.totals)
		dc := cc.totals.cost - last.cost
		if math.Abs(dc) < 0.005 {
			dc = 0 // float rounding, not a difference
		}
		fmt.Fprintf(w, "%-50s %14d %14d %14d %16d %12.2f\n", "unexplained (printed - expected)",
			cc.totals.in-last.in, cc.totals.out-last.out, cc.totals.cw-last.cw, cc.totals.cr-last.cr, dc)
	}
}
