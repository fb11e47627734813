package fakeupstream

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// The admin endpoints report what this Server served, as the providers'
// organization usage, cost and key-listing APIs do:
//
//	GET /v1/organizations/usage_report/messages    Anthropic usage report
//	GET /v1/organizations/cost_report              Anthropic cost report (amounts: decimal strings in cents)
//	GET /v1/organizations/api_keys                 Anthropic API keys (partial_key_hint)
//	GET /v1/organization/usage/completions         OpenAI completions usage
//	GET /v1/organization/costs                     OpenAI costs (amounts: numbers in dollars)
//	GET /v1/organization/projects                  OpenAI projects (one, proj_fake)
//	GET /v1/organization/projects/{id}/api_keys    OpenAI project API keys (redacted_value)
//
// Every successful (200) reply on the three reply routes is counted, at
// the time it was served (Options.Now), under its model and the API key it
// carried (x-api-key or Authorization: Bearer): usage as the reply
// reported it (Call.Usage), one request, and its cost from the embedded
// price table. Reports use the providers' bucket grids (UTC; 1m, 1h, 1d),
// default and maximum page sizes, group_by (model and api_key_id; other
// groupings are reported as null) and next_page cursors. Buckets with no
// usage are listed with empty results, as the providers do.
//
// Admin requests need a key (x-api-key for Anthropic, a bearer token for
// OpenAI); one containing "expired", or any other than AdminFaults.AdminKey
// when that is set, gets 401 in the provider's shape. AdminFaults (see
// SetAdminFaults) inject the discrepancies a reconciliation must find.

// AdminFaults are discrepancies the admin endpoints inject into what they
// report. The zero value reports exactly what was served.
type AdminFaults struct {
	// DropBucket, if set, is the start of a usage-report bucket reported
	// with no results (the provider lost it).
	DropBucket time.Time
	// InflateModel's results report InflateOutput more output tokens in
	// every bucket where it has usage.
	InflateModel  string
	InflateOutput int64
	// UnknownKeyAt, if set, adds to the usage-report bucket that contains
	// it a result for an API key nobody used through this server
	// (UnknownKeyID), of model UnknownKeyModel with UnknownKeyUsage.
	UnknownKeyAt    time.Time
	UnknownKeyModel string
	UnknownKeyUsage tokenmeter.Usage
	// Lag leaves out of usage reports what was served less than Lag ago
	// (the provider's reporting delay): the last bucket lags.
	Lag time.Duration
	// FailPage, if positive, makes the FailPage-th report page request
	// (usage and cost reports, counted from when the faults were set)
	// fail once with FailStatus (default 500; 429 carries retry-after
	// FailRetryAfter seconds, default 1).
	FailPage       int
	FailStatus     int
	FailRetryAfter int64
	// CostReportStatus, if set (403 or 404), is what every cost report
	// request is answered with: an admin key without the cost scope, or an
	// account where the report is not offered.
	CostReportStatus int
	// AdminKey, if set, is the only admin key accepted.
	AdminKey string
}

// UnknownKeyID is the api_key_id of AdminFaults.UnknownKeyAt's usage.
const UnknownKeyID = "apikey_01UnknownKeyNobodyUsed"

// admin is the state behind the admin endpoints.
type admin struct {
	mu     sync.Mutex
	served map[servedKey]*servedSum
	keys   map[string]servedKeyInfo // by key id
	faults AdminFaults
	pages  int  // report page requests since the faults were set
	failed bool // FailPage has failed once
}

type servedKey struct {
	provider string
	model    string
	keyID    string
	minute   int64 // Unix seconds of the minute it was served in
}

type servedSum struct {
	usage    tokenmeter.Usage
	requests int64
	cost     tokenmeter.Micros
}

type servedKeyInfo struct {
	provider string
	hint     string
	first    time.Time
}

// SetAdminFaults sets the discrepancies the admin endpoints inject.
func (s *Server) SetAdminFaults(f AdminFaults) {
	s.admin.mu.Lock()
	defer s.admin.mu.Unlock()
	s.admin.faults = f
	s.admin.pages, s.admin.failed = 0, false
}

// AdminReportPages returns the number of report page requests answered
// (or failed) since the faults were last set.
func (s *Server) AdminReportPages() int {
	s.admin.mu.Lock()
	defer s.admin.mu.Unlock()
	return s.admin.pages
}

// APIKeyID returns the api_key_id the admin endpoints report for calls
// made with secret on provider ("anthropic" or "openai").
func APIKeyID(provider, secret string) string {
	sum := sha256.Sum256([]byte(secret))
	if provider == "anthropic" {
		return "apikey_01" + hex.EncodeToString(sum[:11])
	}
	return "key_" + hex.EncodeToString(sum[:8])
}

// keyHint returns what the provider's key listing shows of secret:
// Anthropic's partial_key_hint has the first 16 characters, OpenAI's
// redacted_value the first 8, then "..." and the last 4.
func keyHint(provider, secret string) string {
	n := 8
	if provider == "anthropic" {
		n = 16
	}
	if len(secret) < n+8 {
		n = min(4, len(secret)/3)
		return secret[:n] + "..." + secret[len(secret)-min(4, len(secret)/3):]
	}
	return secret[:n] + "..." + secret[len(secret)-4:]
}

// requestSecret returns the API key a request carried, "" if none.
func requestSecret(r *http.Request) string {
	if k := r.Header.Get("x-api-key"); k != "" {
		return k
	}
	auth := r.Header.Get("Authorization")
	if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return ""
}

var prices = pricing.Default()

// record counts c, a call whose headers are being written, for the admin
// reports: replies with status 200 on the reply routes only, with the
// usage planned for them; finish corrects it to what the call billed (a
// cut stream) with correct. The create call of a background response is
// not counted: its work is, when it ends (recordUsage).
func (s *Server) record(c *call) {
	r := c.req
	if c.status != http.StatusOK || c.model == "" || r == nil || c.background {
		return
	}
	switch r.URL.Path {
	case "/v1/messages", "/v1/chat/completions", "/v1/responses", "/v1/completions":
	default:
		return
	}
	c.recorded = true
	keyID, hint := requestKey(c.provider.String(), r)
	s.recordUsage(c.provider.String(), c.model, keyID, hint, c.start, c.usage, costOf(c.model, c.start, c.usage, c.tierOf()), 1)
}

// requestKey returns the api key id and hint the admin reports show for
// r's credential on provider p, empty if it has none.
func requestKey(p string, r *http.Request) (keyID, hint string) {
	secret := requestSecret(r)
	if secret == "" {
		return "", ""
	}
	return APIKeyID(p, secret), keyHint(p, secret)
}

// correct replaces, in the admin reports, the usage c was counted with by
// what it billed: the provider reports what it billed.
func (s *Server) correct(c *call, billed tokenmeter.Usage) {
	keyID, hint := requestKey(c.provider.String(), c.req)
	cost := costOf(c.model, c.start, billed, c.tierOf()) - costOf(c.model, c.start, c.usage, c.tierOf())
	s.recordUsage(c.provider.String(), c.model, keyID, hint, c.start, billed.Sub(c.usage), cost, 0)
}

// recordUsage adds u, its cost and requests served at t to the admin
// reports.
func (s *Server) recordUsage(p, model, keyID, hint string, t time.Time, u tokenmeter.Usage, cost tokenmeter.Micros, requests int64) {
	k := servedKey{provider: p, model: model, keyID: keyID, minute: t.Truncate(time.Minute).Unix()}
	s.admin.mu.Lock()
	defer s.admin.mu.Unlock()
	if keyID != "" {
		if _, ok := s.admin.keys[keyID]; !ok {
			if s.admin.keys == nil {
				s.admin.keys = map[string]servedKeyInfo{}
			}
			s.admin.keys[keyID] = servedKeyInfo{provider: p, hint: hint, first: t}
		}
	}
	if s.admin.served == nil {
		s.admin.served = map[servedKey]*servedSum{}
	}
	sum := s.admin.served[k]
	if sum == nil {
		sum = &servedSum{}
		s.admin.served[k] = sum
	}
	sum.usage = sum.usage.Add(u)
	sum.requests += requests
	sum.cost += cost
}

// costOf prices u on service tier tier with the embedded price table; 0
// if the model has no price.
func costOf(model string, t time.Time, u tokenmeter.Usage, tier string) tokenmeter.Micros {
	cost, _ := prices.CostIn(model, t, u, false, tier)
	return cost
}

// tierOf is the service tier c is billed at: its reply's for OpenAI,
// the standard one for Anthropic.
func (c *call) tierOf() string {
	if c.provider != providerOpenAI {
		return ""
	}
	return c.serviceTier()
}

// adminRoutes registers the admin endpoints.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.Handle("GET /v1/organizations/usage_report/messages", s.handle(providerAnthropic, s.adminReport(reportUsage)))
	mux.Handle("GET /v1/organizations/cost_report", s.handle(providerAnthropic, s.adminReport(reportCost)))
	mux.Handle("GET /v1/organizations/api_keys", s.handle(providerAnthropic, s.adminKeys))
	mux.Handle("GET /v1/organization/usage/completions", s.handle(providerOpenAI, s.adminReport(reportUsage)))
	mux.Handle("GET /v1/organization/costs", s.handle(providerOpenAI, s.adminReport(reportCost)))
	mux.Handle("GET /v1/organization/projects", s.handle(providerOpenAI, s.adminProjects))
	mux.Handle("GET /v1/organization/projects/{project}/api_keys", s.handle(providerOpenAI, s.adminKeys))
}

// adminAuth checks the admin key of r.
func (s *Server) adminAuth(r *http.Request, c *call) error {
	key := requestSecret(r)
	if c.provider == providerAnthropic {
		key = r.Header.Get("x-api-key")
	}
	s.admin.mu.Lock()
	want := s.admin.faults.AdminKey
	s.admin.mu.Unlock()
	switch {
	case key == "":
		return &apiError{status: http.StatusUnauthorized, message: "fake-upstream: admin endpoints need an admin key"}
	case strings.Contains(key, "expired"), want != "" && key != want:
		return &apiError{status: http.StatusUnauthorized, message: "invalid x-api-key"}
	}
	return nil
}

type reportKind int

const (
	reportUsage reportKind = iota
	reportCost
)

// grid is a report request's buckets and page.
type grid struct {
	width        time.Duration
	start, end   time.Time // the whole span, on the grid
	from         time.Time // this page's first bucket
	limit        int
	model, keyID bool // grouped by
	description  bool // cost report grouped by description (and so by model)
}

// parseGrid reads a report request's query in the provider's dialect.
func parseGrid(c *call, q map[string][]string, kind reportKind, now time.Time) (grid, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	g := grid{width: 24 * time.Hour}
	switch w := get("bucket_width"); w {
	case "", "1d":
	case "1h":
		g.width = time.Hour
	case "1m":
		g.width = time.Minute
	default:
		return g, invalidRequest("bucket_width: want 1m, 1h or 1d, got %q", w)
	}
	if kind == reportCost && g.width != 24*time.Hour {
		return g, invalidRequest("bucket_width: the cost report supports 1d only")
	}
	var err error
	if c.provider == providerAnthropic {
		if g.start, err = time.Parse(time.RFC3339, get("starting_at")); err != nil {
			return g, invalidRequest("starting_at: want an RFC 3339 time, got %q", get("starting_at"))
		}
		g.end = now
		if v := get("ending_at"); v != "" {
			if g.end, err = time.Parse(time.RFC3339, v); err != nil {
				return g, invalidRequest("ending_at: want an RFC 3339 time, got %q", v)
			}
		}
	} else {
		sec, err := strconv.ParseInt(get("start_time"), 10, 64)
		if err != nil {
			return g, invalidRequest("start_time: want Unix seconds, got %q", get("start_time"))
		}
		g.start, g.end = time.Unix(sec, 0), now
		if v := get("end_time"); v != "" {
			sec, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return g, invalidRequest("end_time: want Unix seconds, got %q", v)
			}
			g.end = time.Unix(sec, 0)
		}
	}
	g.start = g.start.UTC().Truncate(g.width)
	g.end = g.end.UTC()
	def, max := 7, 31
	switch {
	case g.width == time.Hour:
		def, max = 24, 168
	case g.width == time.Minute:
		def, max = 60, 1440
	case kind == reportCost && c.provider == providerOpenAI:
		max = 180
	}
	g.limit = def
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return g, invalidRequest("limit: want 1 to %d, got %q", max, v)
		}
		g.limit = n
	}
	g.from = g.start
	if v := get("page"); v != "" {
		sec, err := strconv.ParseInt(strings.TrimPrefix(v, "page_"), 10, 64)
		if err != nil || !strings.HasPrefix(v, "page_") {
			return g, invalidRequest("page: unknown cursor %q", v)
		}
		g.from = time.Unix(sec, 0).UTC()
	}
	groups := append(q["group_by[]"], q["group_by"]...)
	for _, gb := range groups {
		switch gb {
		case "model":
			g.model = true
		case "api_key_id":
			g.keyID = true
		case "description":
			g.description = true
		}
	}
	return g, nil
}

// adminReport serves a usage or cost report in the request's provider's
// shape.
func (s *Server) adminReport(kind reportKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if err := s.adminAuth(r, c); err != nil {
			return err
		}
		now := s.now()
		g, err := parseGrid(c, r.URL.Query(), kind, now)
		if err != nil {
			return err
		}
		s.admin.mu.Lock()
		f := s.admin.faults
		if kind == reportCost && f.CostReportStatus != 0 {
			s.admin.mu.Unlock()
			msg := "The cost report is not available for this organization."
			if f.CostReportStatus == http.StatusForbidden {
				msg = "This admin key does not have permission to read the cost report."
			}
			return &apiError{status: f.CostReportStatus, message: msg}
		}
		s.admin.pages++
		if f.FailPage > 0 && s.admin.pages == f.FailPage && !s.admin.failed {
			s.admin.failed = true
			s.admin.mu.Unlock()
			status := f.FailStatus
			if status == 0 {
				status = http.StatusInternalServerError
			}
			if status == http.StatusTooManyRequests {
				c.dir.retryAfter = f.FailRetryAfter
				if c.dir.retryAfter <= 0 {
					c.dir.retryAfter = DefaultRetryAfter
				}
			}
			return &apiError{status: status}
		}
		var data []any
		b := g.from
		for i := 0; i < g.limit && b.Before(g.end); i++ {
			end := b.Add(g.width)
			if kind == reportUsage {
				data = append(data, s.usageBucket(c.provider, g, b, end, now, f))
			} else {
				data = append(data, s.costBucket(c.provider, g, b, end))
			}
			b = end
		}
		s.admin.mu.Unlock() // the page is built; write it without holding up record
		if data == nil {
			data = []any{}
		}
		var next *string
		if b.Before(g.end) {
			v := "page_" + strconv.FormatInt(b.Unix(), 10)
			next = &v
		}
		if c.provider == providerAnthropic {
			s.writeJSON(w, c, http.StatusOK, map[string]any{"data": data, "has_more": next != nil, "next_page": next})
		} else {
			s.writeJSON(w, c, http.StatusOK, map[string]any{"object": "page", "data": data, "has_more": next != nil, "next_page": next})
		}
		return nil
	}
}

type groupKey struct{ model, keyID string }

// sums adds up what provider served in [start, end) (before cutoff) by
// group. Callers hold s.admin.mu.
func (s *Server) sums(provider string, start, end, cutoff time.Time, g grid) map[groupKey]*servedSum {
	out := map[groupKey]*servedSum{}
	for k, v := range s.admin.served {
		t := time.Unix(k.minute, 0)
		if k.provider != provider || t.Before(start) || !t.Before(end) || !t.Before(cutoff) {
			continue
		}
		gk := groupKey{}
		if g.model {
			gk.model = k.model
		}
		if g.keyID {
			gk.keyID = k.keyID
		}
		sum := out[gk]
		if sum == nil {
			sum = &servedSum{}
			out[gk] = sum
		}
		sum.usage = sum.usage.Add(v.usage)
		sum.requests += v.requests
		sum.cost += v.cost
	}
	return out
}

func sortedGroups(m map[groupKey]*servedSum) []groupKey {
	keys := make([]groupKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].model != keys[j].model {
			return keys[i].model < keys[j].model
		}
		return keys[i].keyID < keys[j].keyID
	})
	return keys
}

func nullable(s string, grouped bool) any {
	if !grouped || s == "" {
		return nil
	}
	return s
}

// usageBucket returns one usage-report bucket. Callers hold s.admin.mu.
func (s *Server) usageBucket(p provider, g grid, start, end, now time.Time, f AdminFaults) any {
	cutoff := end
	if f.Lag > 0 {
		cutoff = now.Add(-f.Lag)
	}
	sums := s.sums(p.String(), start, end, cutoff, g)
	if !f.DropBucket.IsZero() && f.DropBucket.Equal(start) {
		sums = map[groupKey]*servedSum{}
	}
	if f.InflateModel != "" {
		for k, v := range sums {
			if k.model == f.InflateModel || !g.model {
				v.usage.OutputTokens += f.InflateOutput
			}
		}
	}
	if !f.UnknownKeyAt.IsZero() && !f.UnknownKeyAt.Before(start) && f.UnknownKeyAt.Before(end) {
		k := groupKey{}
		if g.model {
			k.model = f.UnknownKeyModel
		}
		if g.keyID {
			k.keyID = UnknownKeyID
		}
		if sums[k] == nil {
			sums[k] = &servedSum{}
		}
		sums[k].usage = sums[k].usage.Add(f.UnknownKeyUsage)
		sums[k].requests++
	}
	results := []any{}
	for _, k := range sortedGroups(sums) {
		u, n := sums[k].usage, sums[k].requests
		if p == providerAnthropic {
			results = append(results, map[string]any{
				"uncached_input_tokens":   u.InputTokens,
				"cache_creation":          map[string]int64{"ephemeral_1h_input_tokens": u.CacheWrite1hTokens, "ephemeral_5m_input_tokens": u.CacheWrite5mTokens},
				"cache_read_input_tokens": u.CacheReadTokens,
				"output_tokens":           u.OutputTokens,
				"server_tool_use":         map[string]int64{"web_search_requests": u.WebSearchRequests},
				"api_key_id":              nullable(k.keyID, g.keyID),
				"workspace_id":            nil,
				"model":                   nullable(k.model, g.model),
				"service_tier":            nil,
				"context_window":          nil,
			})
			continue
		}
		results = append(results, map[string]any{
			"object":                    "organization.usage.completions.result",
			"input_tokens":              u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens(),
			"input_cached_tokens":       u.CacheReadTokens,
			"output_tokens":             u.OutputTokens,
			"input_audio_tokens":        0,
			"input_cached_audio_tokens": 0,
			"output_audio_tokens":       0,
			"num_model_requests":        n,
			"project_id":                nil,
			"user_id":                   nil,
			"api_key_id":                nullable(k.keyID, g.keyID),
			"model":                     nullable(k.model, g.model),
			"batch":                     nil,
			"service_tier":              nil,
		})
	}
	if p == providerAnthropic {
		return map[string]any{"starting_at": start.Format(time.RFC3339), "ending_at": end.Format(time.RFC3339), "results": results}
	}
	return map[string]any{"object": "bucket", "start_time": start.Unix(), "end_time": end.Unix(), "results": results}
}

// costBucket returns one cost-report bucket: one result (the day's
// total), or with Anthropic's group_by[]=description one per model.
// Callers hold s.admin.mu.
func (s *Server) costBucket(p provider, g grid, start, end time.Time) any {
	byModel := p == providerAnthropic && g.description
	sums := s.sums(p.String(), start, end, end, grid{model: byModel})
	results := []any{}
	for _, k := range sortedGroups(sums) {
		total := sums[k].cost
		if total == 0 {
			continue
		}
		if p == providerAnthropic {
			cents := strconv.FormatInt(int64(total)/10_000, 10) + "." + strconv.FormatInt(int64(total)%10_000+10_000, 10)[1:]
			r := map[string]any{"currency": "USD", "amount": cents, "workspace_id": nil, "description": nil,
				"cost_type": nil, "context_window": nil, "model": nil, "service_tier": nil, "token_type": nil}
			if byModel {
				r["description"], r["model"], r["cost_type"] = k.model+" Usage", k.model, "tokens"
			}
			results = append(results, r)
		} else {
			results = append(results, map[string]any{"object": "organization.costs.result",
				"amount":    map[string]any{"value": json.Number(total.String()), "currency": "usd"},
				"line_item": nil, "project_id": nil, "api_key_id": nil})
		}
	}
	if p == providerAnthropic {
		return map[string]any{"starting_at": start.Format(time.RFC3339), "ending_at": end.Format(time.RFC3339), "results": results}
	}
	return map[string]any{"object": "bucket", "start_time": start.Unix(), "end_time": end.Unix(), "results": results}
}

// adminKeys serves the key listings: every key that made a call, by id.
func (s *Server) adminKeys(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.adminAuth(r, c); err != nil {
		return err
	}
	s.admin.mu.Lock()
	var ids []string
	for id, k := range s.admin.keys {
		if k.provider == c.provider.String() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	data := []any{}
	for _, id := range ids {
		k := s.admin.keys[id]
		if c.provider == providerAnthropic {
			data = append(data, map[string]any{"id": id, "type": "api_key", "name": "key " + id[len(id)-6:],
				"partial_key_hint": k.hint, "status": "active", "workspace_id": nil,
				"created_at": k.first.UTC().Format(time.RFC3339), "created_by": map[string]string{"id": "user_01Fake", "type": "user"}})
		} else {
			data = append(data, map[string]any{"object": "organization.project.api_key", "id": id, "name": "key " + id[len(id)-6:],
				"redacted_value": k.hint, "created_at": k.first.Unix(), "last_used_at": nil, "owner": map[string]any{"type": "user"}})
		}
	}
	s.admin.mu.Unlock()
	first, last := "", ""
	if len(ids) > 0 {
		first, last = ids[0], ids[len(ids)-1]
	}
	if c.provider == providerOpenAI && r.PathValue("project") != "proj_fake" {
		return &apiError{status: http.StatusNotFound, message: "No such project: " + r.PathValue("project")}
	}
	body := map[string]any{"data": data, "has_more": false, "first_id": first, "last_id": last}
	if c.provider == providerOpenAI {
		body["object"] = "list"
	}
	s.writeJSON(w, c, http.StatusOK, body)
	return nil
}

// adminProjects serves the OpenAI project listing: one project.
func (s *Server) adminProjects(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.adminAuth(r, c); err != nil {
		return err
	}
	s.writeJSON(w, c, http.StatusOK, map[string]any{"object": "list", "data": []any{map[string]any{
		"id": "proj_fake", "object": "organization.project", "name": "Default project", "created_at": 0, "status": "active"}},
		"first_id": "proj_fake", "last_id": "proj_fake", "has_more": false})
	return nil
}
