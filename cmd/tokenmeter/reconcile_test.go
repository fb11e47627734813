package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
	"github.com/tokenmeter/tokenmeter/internal/reconcile"
)

// simClock is the simulated clock the gateway and the fake upstream share.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *simClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var recDay = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

const (
	recAnthropicKey = "sk-ant-api03-reconcile-test-key-0123456789abcdefghij-AAAA"
	recOpenAIKey    = "sk-proj-reconcile-test-key-0123456789abcdefghij-BBBB"
	recAdminKey     = "sk-ant-admin01-reconcile-admin-key-0123456789"
	// recRouteKey is the gateway's own Anthropic credential, forwarded for
	// virtual keys.
	recRouteKey = "sk-ant-api03-gateway-route-key-0123456789abcdefghij-CCCC"
)

// recWorld is a gateway in front of a fake upstream, both on one
// simulated clock, with traffic over several hours and models.
type recWorld struct {
	clk  *simClock
	fake *fakeupstream.Server
	up   string
	gw   *gateway
	// calls is the number of calls made per provider.
	calls map[string]int
	// key is the x-api-key of Anthropic calls (default recAnthropicKey).
	key string
	// noRouteKey leaves the route's provider credential out of the
	// reconcile command's environment (a machine other than the gateway's).
	noRouteKey bool
}

func newRecWorld(t *testing.T, edit ...func(*Serve)) *recWorld {
	t.Helper()
	w := &recWorld{clk: &simClock{t: recDay.Add(9 * time.Hour)}, calls: map[string]int{}, key: recAnthropicKey}
	w.fake = fakeupstream.New(fakeupstream.Options{Now: w.clk.Now})
	srv := httptest.NewServer(w.fake)
	t.Cleanup(srv.Close)
	w.up = srv.URL
	w.gw = startGateway(t, srv.URL, func(s *Serve) {
		s.Now = w.clk.Now
		for _, e := range edit {
			e(s)
		}
	})
	return w
}

// traffic sends, for each hour from 09:00 to 14:00, calls of two models
// on each provider, at minutes that vary, with varied usage.
func (w *recWorld) traffic(t *testing.T) {
	t.Helper()
	for h := 9; h <= 14; h++ {
		for i, m := range []string{"claude-sonnet-5-5", "claude-haiku-5-5"} {
			w.anthropic(t, recDay.Add(time.Duration(h)*time.Hour+time.Duration(7+20*i)*time.Minute), m,
				fmt.Sprintf("input=%d output=%d cache_read=%d cache_write_5m=%d cache_write_1h=%d", 1000+h*10+i, 100+h, 50*i, 20, 5*i))
		}
		for i, m := range []string{"gpt-6.1-sol", "gpt-5.4-mini"} {
			w.openai(t, recDay.Add(time.Duration(h)*time.Hour+time.Duration(12+30*i)*time.Minute), m, fmt.Sprintf("input=%d output=%d cache_read=%d", 900+h, 80+h, 40*i))
		}
	}
	// A refused call: in the ledger, in no provider report, and no
	// discrepancy either.
	w.clk.Set(recDay.Add(10*time.Hour + 40*time.Minute))
	post(t, w.gw.URL()+"/anthropic/v1/messages", map[string]string{"x-api-key": w.key, fakeupstream.DirectiveHeader: "status=400"},
		`{"model":"claude-sonnet-5-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`)
	w.calls["anthropic"]++
	w.wait(t)
}

func (w *recWorld) anthropic(t *testing.T, at time.Time, model, dirs string) {
	t.Helper()
	w.clk.Set(at)
	resp, body := post(t, w.gw.URL()+"/anthropic/v1/messages", map[string]string{"x-api-key": w.key, "anthropic-version": "2023-06-01", fakeupstream.DirectiveHeader: dirs},
		fmt.Sprintf(`{"model":%q,"max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}`, model))
	if resp.StatusCode != 200 {
		t.Fatalf("anthropic call: %d %s", resp.StatusCode, body)
	}
	w.calls["anthropic"]++
}

func (w *recWorld) openai(t *testing.T, at time.Time, model, dirs string) {
	t.Helper()
	w.clk.Set(at)
	resp, body := post(t, w.gw.URL()+"/openai/v1/chat/completions", map[string]string{"Authorization": "Bearer " + recOpenAIKey, fakeupstream.DirectiveHeader: dirs},
		fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}]}`, model))
	if resp.StatusCode != 200 {
		t.Fatalf("openai call: %d %s", resp.StatusCode, body)
	}
	w.calls["openai"]++
}

// wait waits until every call made has its completed event.
func (w *recWorld) wait(t *testing.T) {
	t.Helper()
	want := w.calls["anthropic"] + w.calls["openai"]
	for range 3000 {
		if len(w.gw.completed(t)) == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the ledger has %d completed calls, want %d", len(w.gw.completed(t)), want)
}

// recorded sleeps of the reconcile client.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

// run runs `tokenmeter reconcile PROVIDER --since 2026-11-25 --until
// 2026-11-26 ARGS --json` at the simulated now, and returns the report and
// the exit status (0, 3, or 1 for an error).
func (w *recWorld) run(t *testing.T, provider string, sl *sleeps, args ...string) (reconcile.Report, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := reconcileEnv{now: w.clk.Now, getenv: func(k string) string {
		switch k {
		case "ANTHROPIC_ADMIN_KEY", "OPENAI_ADMIN_KEY":
			return recAdminKey
		case "ANTHROPIC_API_KEY":
			if !w.noRouteKey {
				return recRouteKey
			}
		}
		return ""
	}}
	if sl != nil {
		env.sleep = sl.sleep
	}
	all := append([]string{provider, "--since", "2026-11-25", "--until", "2026-11-26", "--upstream", provider + "=" + w.up, "--data", w.gw.Config.Data}, args...)
	if !strings.Contains(strings.Join(args, " "), "--csv") {
		all = append(all, "--json")
	}
	err := reconcileCmd(context.Background(), all, &out, &errb, env)
	code := 0
	var ex *exitError
	switch {
	case errors.As(err, &ex):
		code = ex.code
	case err != nil:
		return reconcile.Report{}, 1, err.Error()
	}
	if strings.Contains(strings.Join(args, " "), "--csv") {
		return reconcile.Report{}, code, out.String()
	}
	var rep reconcile.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("reconcile --json: %v\n%s\nstderr: %s", err, out.String(), errb.String())
	}
	return rep, code, errb.String()
}

func hourOf(h int) time.Time { return recDay.Add(time.Duration(h) * time.Hour) }

// TestReconcileEndToEnd: traffic through the gateway over six simulated
// hours and two models per provider, then reconcile against the fake's
// admin endpoints: clean data matches exactly; each injected discrepancy
// is listed exactly once with its bucket, model, category and amount, and
// the exit status says so; a failing page is retried; a lagging last
// bucket is not final.
func TestReconcileEndToEnd(t *testing.T) {
	w := newRecWorld(t)
	w.traffic(t)
	w.clk.Set(recDay.Add(16 * time.Hour))

	for _, provider := range []string{"anthropic", "openai"} {
		t.Run("clean/"+provider, func(t *testing.T) {
			rep, code, stderr := w.run(t, provider, nil)
			if code != 0 || rep.Status != tokenmeter.ReconcileOK || len(rep.Discrepancies) != 0 {
				t.Fatalf("exit %d, status %s, discrepancies %+v (%s); want 0, ok, none", code, rep.Status, rep.Discrepancies, stderr)
			}
			// 6 hours x 2 models, every one matched, tokens and cost equal.
			if rep.Summary.Rows != 12 || rep.Summary.Matched != 12 || rep.Summary.ProviderUsage != rep.Summary.LedgerUsage || rep.Summary.ProviderUsage.IsZero() {
				t.Errorf("summary %+v, want 12 rows matched with equal, non-zero totals", rep.Summary)
			}
			if !rep.Summary.HasCost || rep.Summary.ProviderCost != rep.Summary.LedgerCost || rep.Summary.ProviderCost == 0 {
				t.Errorf("cost: provider %d, ledger %d; want equal and non-zero", rep.Summary.ProviderCost, rep.Summary.LedgerCost)
			}
			if provider == "openai" && (rep.Summary.ProviderRequests != 12 || rep.Summary.LedgerRequests != 12) {
				t.Errorf("requests: provider %d, ledger %d; want 12 each", rep.Summary.ProviderRequests, rep.Summary.LedgerRequests)
			}
			for _, r := range rep.Rows {
				if r.Class != tokenmeter.ReconcileMatch || !r.Final || r.Provider.Usage != r.Ledger.Usage {
					t.Errorf("row %+v, want a final match", r)
				}
			}
		})
	}

	type want struct {
		start             time.Time
		model, class, cat string
		provider, ledger  int64
		final, beyond     bool
	}
	check := func(t *testing.T, got []tokenmeter.Discrepancy, wants []want) {
		t.Helper()
		if len(got) != len(wants) {
			t.Errorf("%d discrepancies, want %d: %+v", len(got), len(wants), got)
		}
		for _, wt := range wants {
			n := 0
			for _, d := range got {
				if d.Start.Equal(wt.start) && d.Model == wt.model && d.Category == wt.cat {
					n++
					if d.Class != wt.class || d.Provider != wt.provider || d.Ledger != wt.ledger || d.Final != wt.final || d.Beyond != wt.beyond {
						t.Errorf("discrepancy %+v, want %+v", d, wt)
					}
				}
			}
			if n != 1 {
				t.Errorf("%s %s %s listed %d times, want once", wt.start.Format("15:04"), wt.model, wt.cat, n)
			}
		}
	}

	t.Run("dropped bucket", func(t *testing.T) {
		w.fake.SetAdminFaults(fakeupstream.AdminFaults{DropBucket: hourOf(11)})
		rep, code, _ := w.run(t, "anthropic", nil, "--no-cost")
		if code != 3 || rep.Status != tokenmeter.ReconcileDiscrepancies || rep.Summary.LedgerOnly != 2 {
			t.Errorf("exit %d, status %s, ledger-only rows %d; want 3, discrepancies, 2", code, rep.Status, rep.Summary.LedgerOnly)
		}
		lo := tokenmeter.ReconcileLedgerOnly
		check(t, rep.Discrepancies, []want{
			{hourOf(11), "claude-sonnet-5-5", lo, tokenmeter.CategoryInput, 0, 1110, true, true},
			{hourOf(11), "claude-sonnet-5-5", lo, tokenmeter.CategoryOutput, 0, 111 + 0, true, true},
			{hourOf(11), "claude-sonnet-5-5", lo, tokenmeter.CategoryCacheWrite5m, 0, 20, true, true},
			{hourOf(11), "claude-haiku-5-5", lo, tokenmeter.CategoryInput, 0, 1111, true, true},
			{hourOf(11), "claude-haiku-5-5", lo, tokenmeter.CategoryOutput, 0, 111, true, true},
			{hourOf(11), "claude-haiku-5-5", lo, tokenmeter.CategoryCacheWrite5m, 0, 20, true, true},
			{hourOf(11), "claude-haiku-5-5", lo, tokenmeter.CategoryCacheWrite1h, 0, 5, true, true},
			{hourOf(11), "claude-haiku-5-5", lo, tokenmeter.CategoryCacheRead, 0, 50, true, true},
		})
		if rep.Discrepancies[0].Category != tokenmeter.CategoryInput || rep.Discrepancies[0].Ledger != 1111 {
			t.Errorf("largest first: got %+v first", rep.Discrepancies[0])
		}
	})

	t.Run("inflated output", func(t *testing.T) {
		w.fake.SetAdminFaults(fakeupstream.AdminFaults{InflateModel: "gpt-5.4-mini", InflateOutput: 37})
		rep, code, _ := w.run(t, "openai", nil, "--no-cost")
		if code != 3 || rep.Summary.Mismatched != 6 {
			t.Errorf("exit %d, mismatched rows %d; want 3, 6", code, rep.Summary.Mismatched)
		}
		var wants []want
		for h := 9; h <= 14; h++ {
			wants = append(wants, want{hourOf(h), "gpt-5.4-mini", tokenmeter.ReconcileMismatch, tokenmeter.CategoryOutput, int64(80+h) + 37, int64(80 + h), true, true})
		}
		check(t, rep.Discrepancies, wants)
		// Within a tolerance of 37 tokens: listed, but exit 0.
		rep, code, _ = w.run(t, "openai", nil, "--no-cost", "--tolerance", "37")
		if code != 0 || len(rep.Discrepancies) != 6 || rep.Discrepancies[0].Beyond {
			t.Errorf("--tolerance 37: exit %d, %d discrepancies (%+v); want 0 and 6 within tolerance", code, len(rep.Discrepancies), rep.Discrepancies)
		}
		// 30% of ~130 output tokens is more than 37.
		if _, code, _ = w.run(t, "openai", nil, "--no-cost", "--tolerance", "30%"); code != 0 {
			t.Errorf("--tolerance 30%%: exit %d, want 0", code)
		}
		if _, code, _ = w.run(t, "openai", nil, "--no-cost", "--tolerance", "10%"); code != 3 {
			t.Errorf("--tolerance 10%%: exit %d, want 3", code)
		}
	})

	t.Run("difference", func(t *testing.T) {
		// Each discrepancy carries its signed difference, provider minus
		// ledger, in JSON and CSV (issue 13 item 4).
		w.fake.SetAdminFaults(fakeupstream.AdminFaults{InflateModel: "gpt-5.4-mini", InflateOutput: 37, DropBucket: hourOf(10)})
		var out, errb bytes.Buffer
		env := reconcileEnv{now: w.clk.Now, getenv: func(string) string { return recAdminKey }}
		reconcileCmd(context.Background(), []string{"openai", "--since", "2026-11-25", "--until", "2026-11-26", "--upstream", "openai=" + w.up,
			"--data", w.gw.Config.Data, "--no-cost", "--json"}, &out, &errb, env)
		var raw struct {
			Discrepancies []map[string]any `json:"discrepancies"`
		}
		if err := json.Unmarshal(out.Bytes(), &raw); err != nil || len(raw.Discrepancies) == 0 {
			t.Fatalf("reconcile --json: %v\n%s%s", err, out.String(), errb.String())
		}
		signs := map[bool]int{}
		for _, d := range raw.Discrepancies {
			p, l, diff := d["provider"].(float64), d["ledger"].(float64), d["difference"]
			if diff != p-l {
				t.Errorf("discrepancy %v: difference %v, want provider - ledger = %v", d, diff, p-l)
			}
			signs[p > l]++
		}
		if signs[true] == 0 || signs[false] == 0 {
			t.Errorf("want differences of both signs (inflated output, dropped bucket): %v", signs)
		}
		_, code, csv := w.run(t, "openai", nil, "--no-cost", "--csv")
		lines := strings.Split(strings.TrimSpace(csv), "\n")
		head := strings.Split(lines[0], ",")
		col := map[string]int{}
		for i, h := range head {
			col[h] = i
		}
		if code != 3 || !strings.Contains(lines[0], "provider_output_tokens,ledger_output_tokens,difference_output_tokens") ||
			!strings.HasSuffix(lines[0], "provider_cost_usd,ledger_cost_usd,difference_cost_usd") {
			t.Fatalf("--csv: exit %d, header %s", code, lines[0])
		}
		var mini int
		for _, l := range lines[1:] {
			f := strings.Split(l, ",")
			if len(f) != len(head) {
				t.Fatalf("CSV line of %d fields, header %d: %s", len(f), len(head), l)
			}
			for _, c := range reconcile.Categories("openai") {
				var p, lg, d int64
				fmt.Sscan(f[col["provider_"+c]], &p)
				fmt.Sscan(f[col["ledger_"+c]], &lg)
				fmt.Sscan(f[col["difference_"+c]], &d)
				if d != p-lg {
					t.Errorf("CSV %s: difference %d, want %d - %d: %s", c, d, p, lg, l)
				}
			}
			if f[col["model"]] == "gpt-5.4-mini" && f[col["difference_output_tokens"]] == "37" {
				mini++
			}
		}
		if mini != 5 { // 6 hours, the one at 10:00 dropped
			t.Errorf("%d CSV rows of gpt-5.4-mini with output difference 37, want 5:\n%s", mini, csv)
		}
	})

	t.Run("cost report refused", func(t *testing.T) {
		// An admin key without the cost scope (403), or an account without
		// the report (404): tokens are compared, cost is reported as
		// unavailable with the reason, and the exit status is the tokens'
		// (issue 13 item 3).
		for _, status := range []int{403, 404} {
			w.fake.SetAdminFaults(fakeupstream.AdminFaults{CostReportStatus: status})
			rep, code, stderr := w.run(t, "anthropic", nil)
			if code != 0 || rep.Summary.Matched != 12 || rep.Summary.HasCost || !strings.Contains(rep.Summary.CostUnavailable, fmt.Sprintf("cost report page 1: HTTP %d", status)) {
				t.Errorf("cost report %d: exit %d, summary %+v (%s); want 0, 12 matched, cost unavailable with the reason", status, code, rep.Summary, stderr)
			}
			var out bytes.Buffer
			env := reconcileEnv{now: w.clk.Now, getenv: func(string) string { return recAdminKey }}
			err := reconcileCmd(context.Background(), []string{"anthropic", "--since", "2026-11-25", "--until", "2026-11-26", "--upstream", "anthropic=" + w.up,
				"--data", w.gw.Config.Data}, &out, io.Discard, env)
			if err != nil || !strings.Contains(out.String(), fmt.Sprintf("cost not compared: the provider refused the cost report (anthropic cost report page 1: HTTP %d", status)) {
				t.Errorf("cost report %d, table: %v\n%s", status, err, out.String())
			}
		}
		w.fake.SetAdminFaults(fakeupstream.AdminFaults{CostReportStatus: 403, InflateModel: "claude-haiku-5-5", InflateOutput: 5})
		if rep, code, _ := w.run(t, "anthropic", nil); code != 3 || rep.Summary.CostUnavailable == "" || rep.Summary.Mismatched != 6 {
			t.Errorf("cost refused, tokens off: exit %d, summary %+v; want 3 from the tokens", code, rep.Summary)
		}
	})

	t.Run("unknown key", func(t *testing.T) {
		w.fake.SetAdminFaults(fakeupstream.AdminFaults{UnknownKeyAt: hourOf(12).Add(30 * time.Minute), UnknownKeyModel: "claude-opus-5-5",
			UnknownKeyUsage: tokenmeter.Usage{InputTokens: 4000, OutputTokens: 321}})
		rep, code, _ := w.run(t, "anthropic", nil, "--no-cost")
		if code != 3 || rep.Summary.ProviderOnly != 1 {
			t.Errorf("exit %d, provider-only rows %d; want 3, 1", code, rep.Summary.ProviderOnly)
		}
		po := tokenmeter.ReconcileProviderOnly
		check(t, rep.Discrepancies, []want{
			{hourOf(12), "claude-opus-5-5", po, tokenmeter.CategoryInput, 4000, 0, true, true},
			{hourOf(12), "claude-opus-5-5", po, tokenmeter.CategoryOutput, 321, 0, true, true},
		})
	})

	t.Run("failing page retried", func(t *testing.T) {
		for _, status := range []int{500, 429} {
			w.fake.SetAdminFaults(fakeupstream.AdminFaults{FailPage: 1, FailStatus: status, FailRetryAfter: 3})
			sl := &sleeps{}
			rep, code, stderr := w.run(t, "anthropic", sl)
			if code != 0 || rep.Summary.Matched != 12 {
				t.Errorf("status %d: exit %d, %d matched (%s); want 0, 12", status, code, rep.Summary.Matched, stderr)
			}
			wantWait := reconcile.DefaultBackoff
			if status == 429 {
				wantWait = 3 * time.Second
			}
			if len(sl.d) != 1 || sl.d[0] != wantWait {
				t.Errorf("status %d: waits %v, want [%s]", status, sl.d, wantWait)
			}
		}
	})

	t.Run("expired admin key", func(t *testing.T) {
		w.fake.SetAdminFaults(fakeupstream.AdminFaults{AdminKey: "sk-ant-admin01-the-right-one"})
		_, code, msg := w.run(t, "anthropic", nil)
		if code != 1 || !strings.Contains(msg, "usage report page 1: HTTP 401") || strings.Contains(msg, recAdminKey) {
			t.Errorf("exit %d, error %q; want 1 and a 401 without the key", code, msg)
		}
	})

	t.Run("html and csv", func(t *testing.T) {
		w.fake.SetAdminFaults(fakeupstream.AdminFaults{DropBucket: hourOf(13)})
		file := filepath.Join(t.TempDir(), "report.html")
		if _, code, _ := w.run(t, "anthropic", nil, "--html", file); code != 3 {
			t.Errorf("--html: exit %d, want 3", code)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		page := string(b)
		for _, s := range []string{"<!DOCTYPE html>", "Anthropic usage reconciliation", "2026-11-25 13:00", "claude-haiku-5-5", "ledger-only", "beyond tolerance", "Cost by day"} {
			if !strings.Contains(page, s) {
				t.Errorf("the HTML report lacks %q", s)
			}
		}
		for _, s := range []string{"<script", "http://", "https://", "<link"} {
			if strings.Contains(page, s) {
				t.Errorf("the HTML report is not self-contained: it has %q", s)
			}
		}
		_, code, csv := w.run(t, "anthropic", nil, "--csv")
		lines := strings.Split(strings.TrimSpace(csv), "\n")
		if code != 3 || len(lines) != 1+12+2 || !strings.HasPrefix(lines[0], "start,end,model,key,principals,class,final,provider_input_tokens,ledger_input_tokens") {
			t.Errorf("--csv: exit %d, %d lines:\n%s", code, len(lines), csv)
		}
	})

	t.Run("several pages", func(t *testing.T) {
		// Three days of hourly buckets: the provider's default page of 24
		// buckets makes three usage pages, and one cost page.
		w.fake.SetAdminFaults(fakeupstream.AdminFaults{})
		for _, provider := range []string{"anthropic", "openai"} {
			rep, code, _ := w.run(t, provider, nil, "--since", "2026-11-24", "--until", "2026-11-27")
			if code != 0 || rep.Summary.Buckets != 72 || rep.Summary.Matched != 12 || len(rep.Discrepancies) != 0 {
				t.Errorf("%s over 3 days: exit %d, summary %+v", provider, code, rep.Summary)
			}
		}
		if n := w.fake.AdminReportPages(); n != 2*(3+1) {
			t.Errorf("the fake served %d report pages, want 8 (3 usage and 1 cost page per provider)", n)
		}
	})

	t.Run("save", func(t *testing.T) {
		w.fake.SetAdminFaults(fakeupstream.AdminFaults{DropBucket: hourOf(9)})
		rep, code, _ := w.run(t, "openai", nil, "--save")
		if code != 3 || rep.ID == 0 {
			t.Fatalf("--save: exit %d, run id %d; want 3 and a stored run", code, rep.ID)
		}
		stored, err := w.gw.store.ReconcileRun(context.Background(), rep.ID)
		if err != nil || stored.Provider != "openai" || len(stored.Discrepancies) != len(rep.Discrepancies) || stored.Summary != rep.Summary {
			t.Errorf("stored run %+v, %v; want the report's", stored, err)
		}
	})

	t.Run("lagging last bucket", func(t *testing.T) {
		w.anthropic(t, recDay.Add(15*time.Hour+55*time.Minute), "claude-sonnet-5-5", "input=500 output=50")
		w.wait(t)
		w.clk.Set(recDay.Add(16*time.Hour + 2*time.Minute))
		w.fake.SetAdminFaults(fakeupstream.AdminFaults{Lag: 10 * time.Minute})
		rep, code, _ := w.run(t, "anthropic", nil, "--no-cost")
		if code != 0 || rep.Summary.NotFinal != 1 || rep.Summary.LedgerOnly != 1 {
			t.Errorf("exit %d, summary %+v; want 0 with one ledger-only row not final", code, rep.Summary)
		}
		lo := tokenmeter.ReconcileLedgerOnly
		check(t, rep.Discrepancies, []want{
			{hourOf(15), "claude-sonnet-5-5", lo, tokenmeter.CategoryInput, 0, 500, false, true},
			{hourOf(15), "claude-sonnet-5-5", lo, tokenmeter.CategoryOutput, 0, 50, false, true},
		})
		// --lag 0 compares the bucket as it stands.
		if rep, code, _ := w.run(t, "anthropic", nil, "--no-cost", "--lag", "0"); code != 3 || rep.Summary.NotFinal != 0 {
			t.Errorf("--lag 0: exit %d, not final %d; want 3, 0", code, rep.Summary.NotFinal)
		}
		// Once the provider has caught up, it matches.
		w.fake.SetAdminFaults(fakeupstream.AdminFaults{})
		if rep, code, _ := w.run(t, "anthropic", nil); code != 0 || len(rep.Discrepancies) != 0 {
			t.Errorf("caught up: exit %d, discrepancies %+v", code, rep.Discrepancies)
		}
	})
}

// TestReconcileByKey: by key, the ledger's pass-through principal is
// matched to the provider's api_key_id through the key listing's hint,
// and an unknown key is provider-only under its own id.
func TestReconcileByKey(t *testing.T) {
	w := newRecWorld(t)
	w.traffic(t)
	w.clk.Set(recDay.Add(16 * time.Hour))
	// The gateway notes the credentials it forwards in the background.
	var creds []tokenmeter.Credential
	for range 3000 {
		creds, _ = w.gw.store.Credentials(context.Background())
		if len(creds) >= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(creds) < 2 {
		t.Skipf("the gateway noted %d credentials (the counter watch is not wired into serve): nothing to match keys with", len(creds))
	}
	w.fake.SetAdminFaults(fakeupstream.AdminFaults{UnknownKeyAt: hourOf(9), UnknownKeyModel: "claude-sonnet-5-5", UnknownKeyUsage: tokenmeter.Usage{InputTokens: 10}})
	rep, code, stderr := w.run(t, "anthropic", nil, "--by", "key", "--no-cost")
	if code != 3 {
		t.Fatalf("exit %d (%s), want 3", code, stderr)
	}
	keyID := fakeupstream.APIKeyID("anthropic", recAnthropicKey)
	if rep.Summary.Matched != 12 || rep.Summary.ProviderOnly != 1 || len(rep.Discrepancies) != 1 {
		t.Errorf("summary %+v, discrepancies %+v; want 12 matched and one provider-only", rep.Summary, rep.Discrepancies)
	}
	for _, r := range rep.Rows {
		if r.Class == tokenmeter.ReconcileMatch && (r.Key != keyID || r.Principals != tokenmeter.CredentialID(recAnthropicKey)) {
			t.Errorf("row %+v: want key %s from principal %s", r, keyID, tokenmeter.CredentialID(recAnthropicKey))
		}
	}
	if d := rep.Discrepancies[0]; d.Key != fakeupstream.UnknownKeyID || d.Class != tokenmeter.ReconcileProviderOnly || d.Provider != 10 {
		t.Errorf("discrepancy %+v, want 10 input tokens provider-only under %s", d, fakeupstream.UnknownKeyID)
	}
}

// TestReconcileScheduled: serve --reconcile anthropic runs at start and
// on every tick, stores each run (reconcile history shows them), and a
// run with discrepancies beyond tolerance becomes one reconcile anomaly.
// TestReconcileScheduledNoAdminKey: a scheduled run whose admin key's
// variable (named by admin_keys:) is unset is stored with an error that
// names that variable, once, without Go's error code prefix; the start-up
// warning and the failure's log line say the same.
func TestReconcileScheduledNoAdminKey(t *testing.T) {
	runs := make(chan tokenmeter.ReconcileRun)
	w := newRecWorld(t, func(s *Serve) {
		s.Config.Reconcile = []string{"anthropic"}
		s.Config.AdminKeys = map[string]string{"anthropic": "ACME_ANTHROPIC_ADMIN"}
		s.Getenv = func(string) string { return "" }
		s.ReconcileRuns, s.ReconcileTick = runs, make(chan time.Time)
	})
	var r tokenmeter.ReconcileRun
	select {
	case r = <-runs:
	case <-time.After(30 * time.Second):
		t.Fatal("no scheduled run")
	}
	want := "no anthropic admin key: set $ACME_ANTHROPIC_ADMIN (an admin key, not an API key)"
	if r.Status != tokenmeter.ReconcileFailed || r.Error != want {
		t.Errorf("stored run: status %s, error %q; want failed with %q", r.Status, r.Error, want)
	}
	logs := w.gw.logs.String()
	if strings.Contains(logs, "ANTHROPIC_ADMIN_KEY") || strings.Contains(logs, "tokenmeter: invalid") || !strings.Contains(logs, `err="`+want+`"`) {
		t.Errorf("log names the wrong variable or doubles the prefix:\n%s", logs)
	}
}

// TestReconcileScheduledImports: scheduled runs compare the gateway's
// calls only (reconcile_source: proxy, the default), so imported
// subscription usage that no admin report covers is not an anomaly every
// hour; reconcile_source: all compares it too.
func TestReconcileScheduledImports(t *testing.T) {
	for _, source := range []string{"", "all"} {
		runs, tick := make(chan tokenmeter.ReconcileRun), make(chan time.Time)
		w := newRecWorld(t, func(s *Serve) {
			s.Config.Reconcile, s.Config.ReconcileSource = []string{"anthropic"}, source
			s.Getenv = func(k string) string { return map[string]string{"ANTHROPIC_ADMIN_KEY": recAdminKey}[k] }
			s.ReconcileRuns, s.ReconcileTick = runs, tick
		})
		<-runs // the run at start
		imported := tokenmeter.Event{Key: "claude-code:msg_1", RequestKey: "claude-code:msg_1", Kind: tokenmeter.KindCompleted,
			Time: hourOf(10), Source: tokenmeter.SourceClaudeCode, Provider: "anthropic", Endpoint: "/v1/messages",
			Model: "claude-sonnet-5-5", Outcome: tokenmeter.OutcomeOK, Usage: tokenmeter.Usage{InputTokens: 500, OutputTokens: 50}, UsageKnown: true}
		if _, err := w.gw.store.Import(context.Background(), []tokenmeter.Event{imported}, nil); err != nil {
			t.Fatal(err)
		}
		w.clk.Set(recDay.Add(16 * time.Hour))
		tick <- w.clk.Now()
		r := <-runs
		if source == "" && (r.Status != tokenmeter.ReconcileOK || r.Summary.LedgerOnly != 0) {
			t.Errorf("default source: run %+v; want ok, the imported call left out", r)
		}
		if source == "all" && (r.Status != tokenmeter.ReconcileDiscrepancies || r.Summary.LedgerOnly != 1) {
			t.Errorf("reconcile_source all: run %+v; want the imported call ledger-only", r)
		}
	}
}

func TestReconcileScheduled(t *testing.T) {
	runs := make(chan tokenmeter.ReconcileRun)
	tick := make(chan time.Time)
	w := newRecWorld(t, func(s *Serve) {
		s.Config.Reconcile = []string{"anthropic"}
		s.Config.ReconcileEvery = "1h"
		s.Getenv = func(k string) string {
			if k == "ANTHROPIC_ADMIN_KEY" {
				return recAdminKey
			}
			return ""
		}
		s.ReconcileRuns, s.ReconcileTick = runs, tick
		s.Config.AdminToken = testAdminToken
	})
	next := func() tokenmeter.ReconcileRun {
		t.Helper()
		select {
		case r := <-runs:
			return r
		case <-time.After(30 * time.Second):
			t.Fatal("no scheduled run")
		}
		return tokenmeter.ReconcileRun{}
	}
	// The run at start: an empty ledger and an empty report agree.
	if r := next(); r.Status != tokenmeter.ReconcileOK || r.ID == 0 || r.Summary.Rows != 0 {
		t.Fatalf("first run %+v, want an empty ok run", r)
	}
	w.traffic(t)
	w.clk.Set(recDay.Add(16 * time.Hour))
	tick <- w.clk.Now()
	r := next()
	if r.Status != tokenmeter.ReconcileOK || r.Summary.Matched != 12 || !r.Since.Equal(recDay.Add(-31*time.Hour)) || !r.Until.Equal(recDay.Add(17*time.Hour)) {
		t.Errorf("second run %+v, want 12 rows matched over the 48 hours to 17:00", r)
	}
	w.fake.SetAdminFaults(fakeupstream.AdminFaults{DropBucket: hourOf(10)})
	tick <- w.clk.Now()
	r = next()
	if r.Status != tokenmeter.ReconcileDiscrepancies || r.Summary.LedgerOnly != 2 {
		t.Errorf("third run %+v, want the dropped bucket's 2 ledger-only rows", r)
	}
	w.fake.SetAdminFaults(fakeupstream.AdminFaults{AdminKey: "another"})
	tick <- w.clk.Now()
	if r := next(); r.Status != tokenmeter.ReconcileFailed || !strings.Contains(r.Error, "HTTP 401") || len(r.Discrepancies) != 0 {
		t.Errorf("fourth run %+v, want a failed run without discrepancies", r)
	}

	stored, err := w.gw.store.ReconcileRun(context.Background(), 3)
	if err != nil || stored.Status != tokenmeter.ReconcileDiscrepancies || len(stored.Discrepancies) != 8 {
		t.Errorf("stored run 3: %+v, %v; want its 8 discrepancies", stored, err)
	}
	all, err := w.gw.store.Anomalies(context.Background(), time.Time{})
	var anomalies []tokenmeter.Anomaly
	for _, a := range all {
		if a.Kind == reconcile.AnomalyKind {
			anomalies = append(anomalies, a)
		}
	}
	if err != nil || len(anomalies) != 1 || anomalies[0].Provider != "anthropic" || !strings.Contains(anomalies[0].Summary, "ledger-only") ||
		!anomalies[0].Start.Equal(hourOf(10)) {
		t.Errorf("anomalies %+v, %v; want one reconcile anomaly for the 10:00 bucket", anomalies, err)
	}

	// The anomaly reaches the alerts through the default anomalies rule.
	if err := w.gw.Alerts.Evaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
	alerts, err := w.gw.store.Alerts(context.Background(), tokenmeter.AlertQuery{Firing: true})
	n := 0
	for _, a := range alerts {
		if strings.Contains(a.Summary, "reconcile anomaly on anthropic") {
			n++
		}
	}
	if err != nil || n != 1 {
		t.Errorf("firing alerts %+v, %v; want one for the reconcile anomaly", alerts, err)
	}

	var out bytes.Buffer
	if err := reconcileCmd(context.Background(), []string{"history", "--data", w.gw.Config.Data}, &out, &out, reconcileEnv{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[1], "4 ") || !strings.Contains(lines[1], "error") || !strings.Contains(lines[2], "discrepancies") {
		t.Errorf("history:\n%s", out.String())
	}
	out.Reset()
	if err := reconcileCmd(context.Background(), []string{"history", "--json", "--data", w.gw.Config.Data}, &out, &out, reconcileEnv{}); err != nil {
		t.Fatal(err)
	}
	var h struct{ Runs []tokenmeter.ReconcileRun }
	if err := json.Unmarshal(out.Bytes(), &h); err != nil || len(h.Runs) != 4 || h.Runs[0].ID != 4 {
		t.Errorf("history --json: %v\n%s", err, out.String())
	}
}

// TestReconcileAdminAPI: GET /api/reconcile lists the stored runs and
// /api/reconcile/{id} shows one with its discrepancies; the admin token
// is required.
func TestReconcileAdminAPI(t *testing.T) {
	runs := make(chan tokenmeter.ReconcileRun)
	tick := make(chan time.Time)
	w := newRecWorld(t, func(s *Serve) {
		s.Config.Reconcile = []string{"anthropic"}
		s.Getenv = func(k string) string { return map[string]string{"ANTHROPIC_ADMIN_KEY": recAdminKey}[k] }
		s.ReconcileRuns, s.ReconcileTick = runs, tick
		s.Config.AdminToken = testAdminToken
	})
	<-runs
	w.traffic(t)
	w.clk.Set(recDay.Add(16 * time.Hour))
	w.fake.SetAdminFaults(fakeupstream.AdminFaults{InflateModel: "claude-haiku-5-5", InflateOutput: 3})
	tick <- w.clk.Now()
	run := <-runs
	get := func(path, token string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, w.gw.URL()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, _ := get("/api/reconcile", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /api/reconcile without a token: %d, want 401", code)
	}
	code, body := get("/api/reconcile?provider=anthropic", testAdminToken)
	var list struct{ Runs []tokenmeter.ReconcileRun }
	if err := json.Unmarshal(body, &list); code != 200 || err != nil || len(list.Runs) != 2 || list.Runs[0].ID != run.ID || list.Runs[0].Discrepancies != nil {
		t.Errorf("GET /api/reconcile: %d %s", code, body)
	}
	code, body = get(fmt.Sprintf("/api/reconcile/%d", run.ID), testAdminToken)
	var one tokenmeter.ReconcileRun
	if err := json.Unmarshal(body, &one); code != 200 || err != nil || len(one.Discrepancies) != 6 || one.Discrepancies[0].Category != tokenmeter.CategoryOutput {
		t.Errorf("GET /api/reconcile/%d: %d %s", run.ID, code, body)
	}
	if code, _ := get("/api/reconcile/999", testAdminToken); code != http.StatusNotFound {
		t.Errorf("GET /api/reconcile/999: %d, want 404", code)
	}
	if code, _ := get("/api/reconcile/x", testAdminToken); code != http.StatusBadRequest {
		t.Errorf("GET /api/reconcile/x: %d, want 400", code)
	}
}

// TestReconcileConfig: the reconcile settings of the config file are
// checked, and an admin key pasted where a variable name belongs is
// refused without being echoed.
func TestReconcileConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.LoadFile("testdata/config/valid.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid.yaml: %v", err)
	}
	if every, _ := c.reconcileEvery(); every != 30*time.Minute || c.AdminKeyEnv("anthropic") != "ACME_ANTHROPIC_ADMIN" || c.AdminKeyEnv("openai") != "OPENAI_ADMIN_KEY" {
		t.Errorf("reconcile_every %v, admin key variables %s, %s", every, c.AdminKeyEnv("anthropic"), c.AdminKeyEnv("openai"))
	}
	file := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(file, []byte("reconcile: [gemini]\nreconcile_every: 5s\nreconcile_tolerance: lots\nadmin_keys:\n  anthropic: sk-ant-admin01-pasted-secret\n  mistral: MISTRAL_ADMIN\n"), 0o600)
	c = DefaultConfig()
	if err := c.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	err := c.Validate()
	for _, want := range []string{"reconcile = gemini", "reconcile_every = 5s", "reconcile_tolerance = lots", "admin_keys.anthropic = (redacted)", "admin_keys.mistral"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error = %v, want it to mention %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "pasted-secret") {
		t.Errorf("Validate echoes the admin key: %v", err)
	}
	// Bad flags are exit status 2, before anything is read.
	for _, args := range [][]string{{"gemini", "--since", "2026-11-01"}, {"anthropic"}, {"anthropic", "--since", "2026-11-01", "--bucket", "5m"},
		{"anthropic", "--since", "2026-11-01", "--by", "project"}, {"anthropic", "--since", "2026-11-01", "--tolerance", "-3"},
		{"anthropic", "--since", "2026-11-01T10:30:00Z"}, {"anthropic", "--since", "2026-11-01", "--json", "--csv"}} {
		var out bytes.Buffer
		err := reconcileCmd(context.Background(), args, &out, &out, reconcileEnv{now: time.Now, getenv: func(string) string { return "" }})
		var ex *exitError
		if !errors.As(err, &ex) || ex.code != 2 {
			t.Errorf("reconcile %v = %v, want exit status 2", args, err)
		}
	}
}

// TestReconcileVirtualKey: calls made with a virtual key (principal
// key:ci) are forwarded with the route's credential; by key they are
// matched to that credential's api_key_id.
func TestReconcileVirtualKey(t *testing.T) {
	w := newRecWorld(t, func(s *Serve) {
		s.Getenv = func(k string) string { return map[string]string{"ANTHROPIC_API_KEY": recRouteKey}[k] }
	})
	w.key = createKey(t, w.gw.Config.Data, "--name", "ci")
	for h := 9; h <= 11; h++ {
		w.anthropic(t, hourOf(h).Add(5*time.Minute), "claude-sonnet-5-5", "input=300 output=30")
	}
	w.wait(t)
	for _, ev := range w.gw.completed(t) {
		if ev.Principal != "key:ci" {
			t.Fatalf("principal %q, want key:ci", ev.Principal)
		}
	}
	w.clk.Set(hourOf(16))
	for range 3000 {
		if creds, _ := w.gw.store.Credentials(context.Background()); len(creds) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// With the route's credential in the environment, and without it (the
	// gateway noted which credential it forwards for virtual keys).
	for _, hide := range []bool{false, true} {
		w.noRouteKey = hide
		rep, code, stderr := w.run(t, "anthropic", nil, "--by", "key")
		if code != 0 || rep.Summary.Matched != 3 || len(rep.Discrepancies) != 0 {
			t.Fatalf("route key hidden %v: exit %d (%s), summary %+v, discrepancies %+v; want 3 rows matched", hide, code, stderr, rep.Summary, rep.Discrepancies)
		}
		for _, r := range rep.Rows {
			if r.Key != fakeupstream.APIKeyID("anthropic", recRouteKey) || r.Principals != "key:ci" {
				t.Errorf("route key hidden %v: row %+v: want the route credential's key id from principal key:ci", hide, r)
			}
		}
	}
}
