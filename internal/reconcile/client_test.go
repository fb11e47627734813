package reconcile_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
	"github.com/tokenmeter/tokenmeter/internal/reconcile"
)

// clock is a settable clock shared by the fake upstream and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

const adminKey = "sk-ant-admin01-test-admin-key-0123456789"

var day0 = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

// call sends one Anthropic or OpenAI request to the fake at time at.
func call(t *testing.T, clk *clock, url, provider, key, model string, at time.Time, dirs string) {
	t.Helper()
	clk.Set(at)
	path, body := "/v1/messages", fmt.Sprintf(`{"model":%q,"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`, model)
	if provider == reconcile.OpenAI {
		path, body = "/v1/chat/completions", fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}]}`, model)
	}
	req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if provider == reconcile.Anthropic {
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
	} else {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if dirs != "" {
		req.Header.Set(fakeupstream.DirectiveHeader, dirs)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d", path, resp.StatusCode)
	}
}

func newFake(t *testing.T) (*fakeupstream.Server, *httptest.Server, *clock) {
	t.Helper()
	clk := &clock{t: day0}
	fake := fakeupstream.New(fakeupstream.Options{Now: clk.Now})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv, clk
}

// waits records the client's sleeps instead of sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

// TestClientPagination: three days of hourly buckets come in three pages
// of the provider's default 24 buckets, the grid has every bucket, and
// each call is where it was served; both providers' shapes.
func TestClientPagination(t *testing.T) {
	for _, provider := range []string{reconcile.Anthropic, reconcile.OpenAI} {
		t.Run(provider, func(t *testing.T) {
			_, srv, clk := newFake(t)
			models := map[string][]string{reconcile.Anthropic: {"claude-sonnet-5-5", "claude-haiku-5-5"}, reconcile.OpenAI: {"gpt-6.1-sol", "gpt-5.4-mini"}}[provider]
			want := map[string]tokenmeter.Usage{}
			for h := 0; h < 72; h += 5 {
				at := day0.Add(time.Duration(h)*time.Hour + 17*time.Minute)
				m := models[h%2]
				call(t, clk, srv.URL, provider, "sk-user-key-abcdefghijklmnopqrstuvwxyz", m, at, fmt.Sprintf("input=%d output=%d cache_read=7", 100+h, 10+h))
				k := at.Truncate(time.Hour).Format(time.RFC3339) + " " + m
				want[k] = want[k].Add(tokenmeter.Usage{InputTokens: int64(100 + h), OutputTokens: int64(10 + h), CacheReadTokens: 7})
			}
			clk.Set(day0.Add(80 * time.Hour))
			c := &reconcile.Client{Provider: provider, BaseURL: srv.URL, AdminKey: adminKey}
			got, err := c.Usage(context.Background(), day0, day0.Add(72*time.Hour), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if c.Stats.Pages != 3 || c.Stats.Retries != 0 {
				t.Errorf("stats %+v, want 3 pages and no retries", c.Stats)
			}
			if len(got.Buckets) != 72 {
				t.Errorf("%d buckets, want 72", len(got.Buckets))
			}
			if len(got.Rows) != len(want) {
				t.Errorf("%d rows, want %d", len(got.Rows), len(want))
			}
			for _, r := range got.Rows {
				k := r.Start.Format(time.RFC3339) + " " + r.Model
				if r.Usage != want[k] || r.APIKeyID != fakeupstream.APIKeyID(provider, "sk-user-key-abcdefghijklmnopqrstuvwxyz") {
					t.Errorf("row %s: %+v key %s, want %+v", k, r.Usage, r.APIKeyID, want[k])
				}
				if provider == reconcile.OpenAI && r.Requests != 1 {
					t.Errorf("row %s: %d requests, want 1", k, r.Requests)
				}
			}
			// Daily buckets: 31 days in pages of the default 7, and the
			// minute grid: 3 hours in pages of 60.
			cd := &reconcile.Client{Provider: provider, BaseURL: srv.URL, AdminKey: adminKey}
			days, err := cd.Usage(context.Background(), day0, day0.Add(31*24*time.Hour), 24*time.Hour)
			if err != nil || len(days.Buckets) != 31 || cd.Stats.Pages != 5 || !days.Buckets[30].Start.Equal(day0.Add(30*24*time.Hour)) {
				t.Errorf("1d: %d buckets in %d pages, %v; want 31 in 5", len(days.Buckets), cd.Stats.Pages, err)
			}
			var total tokenmeter.Usage
			for _, r := range days.Rows {
				total = total.Add(r.Usage)
			}
			var wantTotal tokenmeter.Usage
			for _, u := range want {
				wantTotal = wantTotal.Add(u)
			}
			if total != wantTotal {
				t.Errorf("1d: total %+v, want %+v", total, wantTotal)
			}
			cm := &reconcile.Client{Provider: provider, BaseURL: srv.URL, AdminKey: adminKey}
			mins, err := cm.Usage(context.Background(), day0.Add(9*time.Hour), day0.Add(12*time.Hour), time.Minute)
			if err != nil || len(mins.Buckets) != 180 || cm.Stats.Pages != 3 || len(mins.Rows) != 1 || !mins.Rows[0].Start.Equal(day0.Add(10*time.Hour+17*time.Minute)) {
				t.Errorf("1m: %d buckets in %d pages, rows %+v, %v; want 180 in 3 and the 10:17 call", len(mins.Buckets), cm.Stats.Pages, mins.Rows, err)
			}
			// A page size of 5 buckets: 15 pages, same rows.
			c2 := &reconcile.Client{Provider: provider, BaseURL: srv.URL, AdminKey: adminKey, Limit: 5}
			got2, err := c2.Usage(context.Background(), day0, day0.Add(72*time.Hour), time.Hour)
			if err != nil || c2.Stats.Pages != 15 || len(got2.Rows) != len(got.Rows) {
				t.Errorf("limit 5: %d pages, %d rows, %v; want 15 pages, %d rows", c2.Stats.Pages, len(got2.Rows), err, len(got.Rows))
			}
		})
	}
}

// TestClientRetries: a page that fails once (500, or 429 with
// retry-after) is retried, after back-off or the retry-after.
func TestClientRetries(t *testing.T) {
	tests := []struct {
		status   int
		after    int64
		wantWait time.Duration
	}{
		{http.StatusInternalServerError, 0, reconcile.DefaultBackoff},
		{http.StatusTooManyRequests, 7, 7 * time.Second},
		{529, 0, reconcile.DefaultBackoff},
	}
	for _, tt := range tests {
		for _, provider := range []string{reconcile.Anthropic, reconcile.OpenAI} {
			fake, srv, clk := newFake(t)
			clk.Set(day0.Add(80 * time.Hour))
			fake.SetAdminFaults(fakeupstream.AdminFaults{FailPage: 2, FailStatus: tt.status, FailRetryAfter: tt.after})
			w := &waits{}
			c := &reconcile.Client{Provider: provider, BaseURL: srv.URL, AdminKey: adminKey, Sleep: w.sleep}
			got, err := c.Usage(context.Background(), day0, day0.Add(72*time.Hour), time.Hour)
			if err != nil {
				t.Fatalf("%s %d: %v", provider, tt.status, err)
			}
			if len(got.Buckets) != 72 || c.Stats.Pages != 3 || c.Stats.Retries != 1 || len(w.d) != 1 || w.d[0] != tt.wantWait {
				t.Errorf("%s %d: %d buckets, stats %+v, waits %v; want 72 buckets, 3 pages, 1 retry after %s", provider, tt.status, len(got.Buckets), c.Stats, w.d, tt.wantWait)
			}
			if fake.AdminReportPages() != 4 {
				t.Errorf("%s %d: the fake answered %d page requests, want 4", provider, tt.status, fake.AdminReportPages())
			}
		}
	}
}

// TestClientGivesUp: a page that keeps failing is an error after
// MaxAttempts, with doubling waits.
func TestClientGivesUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, `{"type":"error","error":{"type":"api_error","message":"upstream broke"}}`)
	}))
	defer srv.Close()
	w := &waits{}
	c := &reconcile.Client{Provider: reconcile.Anthropic, BaseURL: srv.URL, AdminKey: adminKey, Sleep: w.sleep, MaxAttempts: 4, Backoff: time.Second}
	_, err := c.Usage(context.Background(), day0, day0.Add(24*time.Hour), time.Hour)
	if err == nil || !strings.Contains(err.Error(), "usage report page 1: HTTP 502 api_error: upstream broke") {
		t.Errorf("error = %v", err)
	}
	if fmt.Sprint(w.d) != "[1s 2s 4s]" {
		t.Errorf("waits %v, want [1s 2s 4s]", w.d)
	}
}

// TestClientUnauthorized: an expired admin key is one clear error, not
// retried, and the key appears nowhere in it.
func TestClientUnauthorized(t *testing.T) {
	for _, provider := range []string{reconcile.Anthropic, reconcile.OpenAI} {
		_, srv, _ := newFake(t)
		key := "sk-ant-admin01-expired-0123456789abcdef"
		w := &waits{}
		c := &reconcile.Client{Provider: provider, BaseURL: srv.URL, AdminKey: key, Sleep: w.sleep}
		_, err := c.Usage(context.Background(), day0, day0.Add(24*time.Hour), time.Hour)
		if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "admin key was refused") {
			t.Errorf("%s: error = %v, want a 401 naming the admin key", provider, err)
		}
		if err != nil && strings.Contains(err.Error(), key) {
			t.Errorf("%s: the error shows the admin key: %v", provider, err)
		}
		if len(w.d) != 0 {
			t.Errorf("%s: a 401 was retried (%v)", provider, w.d)
		}
		c.AdminKey = ""
		if _, err := c.Usage(context.Background(), day0, day0.Add(24*time.Hour), time.Hour); err == nil || !strings.Contains(err.Error(), "_ADMIN_KEY") {
			t.Errorf("%s: no admin key: %v, want an error naming the variable", provider, err)
		}
	}
}

// TestClientCostAndKeys: the fake's cost reports convert exactly, and its
// key listings match the credential hints tokenmeter keeps.
func TestClientCostAndKeys(t *testing.T) {
	for _, provider := range []string{reconcile.Anthropic, reconcile.OpenAI} {
		_, srv, clk := newFake(t)
		model := map[string]string{reconcile.Anthropic: "claude-sonnet-4-5-20250929", reconcile.OpenAI: "gpt-5.4"}[provider]
		secret := "sk-test-" + provider + "-0123456789abcdefghijklmnopqrstuvwxyz"
		call(t, clk, srv.URL, provider, secret, model, day0.Add(time.Hour), "input=1000000 output=1000")
		clk.Set(day0.Add(30 * time.Hour))
		c := &reconcile.Client{Provider: provider, BaseURL: srv.URL, AdminKey: adminKey}
		costs, err := c.Costs(context.Background(), day0, day0.Add(48*time.Hour))
		if err != nil || len(costs.Buckets) != 2 || len(costs.Rows) != 1 || costs.Rows[0].Amount <= 0 {
			t.Errorf("%s costs = %+v, %v; want one day with a cost", provider, costs, err)
		}
		keys, err := c.Keys(context.Background())
		if err != nil || len(keys) != 1 || keys[0].ID != fakeupstream.APIKeyID(provider, secret) {
			t.Fatalf("%s keys = %+v, %v", provider, keys, err)
		}
		if !reconcile.HintsMatch(tokenmeter.CredentialHint(secret), keys[0].Hint) {
			t.Errorf("%s: hint %q does not match the listing's %q", provider, tokenmeter.CredentialHint(secret), keys[0].Hint)
		}
		m := reconcile.MatchKeys([]reconcile.Credential{{ID: tokenmeter.CredentialID(secret), Hint: tokenmeter.CredentialHint(secret)}}, keys,
			tokenmeter.CredentialID(secret), []string{"key:ci", tokenmeter.CredentialID(secret)})
		if m["key:ci"] != keys[0].ID || m[tokenmeter.CredentialID(secret)] != keys[0].ID {
			t.Errorf("%s: MatchKeys = %v", provider, m)
		}
	}
}

// TestClientNoRedirect: a report endpoint that redirects elsewhere gets
// an error, and the admin key never reaches the redirect's target (Go
// would copy Anthropic's x-api-key header to it).
func TestClientNoRedirect(t *testing.T) {
	var leaked atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-api-key") != "" || r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
		w.Write([]byte(`{"data":[],"has_more":false}`))
	}))
	defer elsewhere.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	for _, provider := range []string{reconcile.Anthropic, reconcile.OpenAI} {
		c := &reconcile.Client{Provider: provider, BaseURL: redirect.URL, AdminKey: "sk-ant-admin01-secret-0123456789", Sleep: (&waits{}).sleep}
		if _, err := c.Usage(context.Background(), day0, day0.Add(24*time.Hour), time.Hour); err == nil || !strings.Contains(err.Error(), "307") {
			t.Errorf("%s: Usage through a redirect = %v; want an error naming the 307", provider, err)
		}
	}
	if leaked.Load() {
		t.Error("the admin key reached the redirect's target")
	}
}
