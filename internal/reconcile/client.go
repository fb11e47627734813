package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// Providers a Client reads.
const (
	Anthropic = "anthropic"
	OpenAI    = "openai"
)

// Defaults of a Client.
const (
	// DefaultMaxAttempts is how many times a page is requested before its
	// error is returned (429, 5xx, 529 and network errors are retried).
	DefaultMaxAttempts = 5
	// DefaultBackoff is the first wait before retrying a transient error;
	// it doubles with each attempt.
	DefaultBackoff = 500 * time.Millisecond
	// DefaultMaxWait caps one wait, a retry-after included.
	DefaultMaxWait = 60 * time.Second
	// DefaultTimeout bounds one page request.
	DefaultTimeout = 60 * time.Second
	// MaxPageBytes bounds one page's body.
	MaxPageBytes = 32 << 20
	// MaxReportBytes bounds the pages of one report together, so a
	// provider that keeps paging cannot fill the gateway's memory.
	MaxReportBytes = 256 << 20
	// MaxCursorBytes bounds a page cursor (real ones are short).
	MaxCursorBytes = 4096
	// MaxPages bounds the pages of one report, so a provider that always
	// answers has_more cannot keep a run going for ever.
	MaxPages = 10_000
	// AnthropicVersion is sent as anthropic-version.
	AnthropicVersion = "2023-06-01"
)

// Client reads a provider's usage and cost reports and its API key
// listing with an admin credential. One goroutine uses a Client at a time
// (Stats are counted without locking); make one per run.
type Client struct {
	// Provider is Anthropic or OpenAI.
	Provider string
	// BaseURL is the API's base URL, e.g. https://api.anthropic.com or a
	// fake-upstream.
	BaseURL string
	// AdminKey is the admin credential (Anthropic sk-ant-admin...,
	// OpenAI admin key). It is sent only in the auth header and never
	// appears in an error or a log line.
	AdminKey string
	// AdminKeyEnv names the environment variable AdminKey was read from,
	// for the message when it is empty; default ANTHROPIC_ADMIN_KEY or
	// OPENAI_ADMIN_KEY.
	AdminKeyEnv string
	// HTTP is the client; nil means one with DefaultTimeout.
	HTTP *http.Client
	// Sleep waits between attempts; nil sleeps for real (and stops when
	// ctx ends). Tests inject one that records the waits.
	Sleep func(ctx context.Context, d time.Duration) error
	// MaxAttempts, Backoff and MaxWait tune retries; zero means the
	// Default* constant.
	MaxAttempts int
	Backoff     time.Duration
	MaxWait     time.Duration
	// Limit is the page size (buckets per page); zero leaves the
	// provider's default.
	Limit int
	// Log receives one line per retry; nil discards.
	Log *slog.Logger

	// Stats count what the client did (read them after a report).
	Stats Stats
}

// Stats count a Client's requests.
type Stats struct {
	Pages   int // pages read successfully
	Retries int // requests repeated after a transient error
}

// APIError is a provider's refusal that retrying does not fix (401, 403,
// 400, 404, ...), or the last transient error after every attempt.
type APIError struct {
	Status  int
	Type    string
	Message string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("HTTP %d", e.Status)
	if e.Type != "" {
		msg += " " + e.Type
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	switch e.Status {
	case http.StatusUnauthorized:
		msg += " (the admin key was refused: is it an admin key, and still valid?)"
	case http.StatusForbidden:
		msg += " (the admin key lacks the permission for this report)"
	}
	return msg
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CheckKey returns the error of a client without an admin key, naming the
// variable to set; nil when it has one.
func (c *Client) CheckKey() error {
	if c.AdminKey != "" {
		return nil
	}
	env := c.AdminKeyEnv
	if env == "" {
		env = "ANTHROPIC_ADMIN_KEY"
		if c.Provider == OpenAI {
			env = "OPENAI_ADMIN_KEY"
		}
	}
	return tokenmeter.Errorf(tokenmeter.EINVALID, "no %s admin key: set $%s (an admin key, not an API key)", c.Provider, env)
}

// get fetches path?q and returns the body of a 200 answer, retrying 429
// (after its retry-after), 5xx, 529 and network errors with back-off.
func (c *Client) get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	if err := c.CheckKey(); err != nil {
		return nil, err
	}
	attempts := c.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	maxWait := c.MaxWait
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	if hc.CheckRedirect == nil {
		// Redirects are not followed: Go copies a custom header such as
		// Anthropic's x-api-key to wherever a redirect points, so the admin
		// key would go to a host nobody configured. A 3xx is an error.
		noRedirect := *hc
		noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		hc = &noRedirect
	}
	u := strings.TrimSuffix(c.BaseURL, "/") + path
	if enc := q.Encode(); enc != "" {
		u += "?" + enc
	}
	var last error
	for attempt := 1; ; attempt++ {
		body, wait, err := c.once(ctx, hc, u)
		if err == nil {
			c.Stats.Pages++
			return body, nil
		}
		if wait < 0 || attempt >= attempts || ctx.Err() != nil {
			if ctx.Err() != nil && last != nil {
				return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
			}
			return nil, err
		}
		last = err
		if wait == 0 {
			wait = backoff << (attempt - 1)
		}
		wait = min(wait, maxWait)
		c.Stats.Retries++
		if c.Log != nil {
			c.Log.Info("retrying provider report request", "provider", c.Provider, "path", path, "attempt", attempt, "wait", wait, "err", c.redact(err.Error()))
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%w (last error: %v)", err, last)
		}
	}
}

// once makes one request. wait is -1 for an error not worth retrying, 0
// for a transient error without retry-after, else the retry-after.
func (c *Client) once(ctx context.Context, hc *http.Client, u string) (body []byte, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, -1, err
	}
	if c.Provider == Anthropic {
		req.Header.Set("x-api-key", c.AdminKey)
		req.Header.Set("anthropic-version", AnthropicVersion)
	} else {
		req.Header.Set("Authorization", "Bearer "+c.AdminKey)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		// The URL carries no secret; the error is the transport's.
		return nil, 0, errors.New(c.redact(err.Error()))
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxPageBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read response: %v", c.redact(err.Error()))
	}
	if len(body) > MaxPageBytes {
		return nil, -1, fmt.Errorf("response larger than %d bytes", MaxPageBytes)
	}
	if resp.StatusCode == http.StatusOK {
		return body, 0, nil
	}
	apiErr := c.apiError(resp.StatusCode, body)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, retryAfter(resp.Header.Get("retry-after"), time.Now()), apiErr
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == 529:
		return nil, retryAfter(resp.Header.Get("retry-after"), time.Now()), apiErr
	}
	return nil, -1, apiErr
}

// apiError reads an error body in either provider's shape.
func (c *Client) apiError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var shape struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &shape) == nil {
		e.Type, e.Message = shape.Error.Type, c.redact(clipS200(shape.Error.Message))
	}
	return e
}

func clipS200(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// redact removes the admin key from s, should a provider or a transport
// ever echo it.
func (c *Client) redact(s string) string {
	if c.AdminKey == "" {
		return s
	}
	return strings.ReplaceAll(s, c.AdminKey, "[admin key]")
}

// retryAfter reads a retry-after header (seconds or an HTTP date); 0 when
// absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 && n < 1e6 {
		return max(time.Duration(n*float64(time.Second)), time.Millisecond)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// bucketWidth is the provider's name of a bucket width.
func bucketWidth(d time.Duration) (string, error) {
	switch d {
	case time.Minute:
		return "1m", nil
	case time.Hour:
		return "1h", nil
	case 24 * time.Hour:
		return "1d", nil
	}
	return "", tokenmeter.Errorf(tokenmeter.EINVALID, "bucket %s: want 1m, 1h or 1d", d)
}

// Usage reads the usage report for [since, until) on bucket's grid,
// grouped by model and API key, every page of it.
func (c *Client) Usage(ctx context.Context, since, until time.Time, bucket time.Duration) (UsagePage, error) {
	width, err := bucketWidth(bucket)
	if err != nil {
		return UsagePage{}, err
	}
	q := url.Values{}
	path := "/v1/organizations/usage_report/messages"
	parse := ParseAnthropicUsage
	if c.Provider == Anthropic {
		q.Set("starting_at", since.UTC().Format(time.RFC3339))
		q.Set("ending_at", until.UTC().Format(time.RFC3339))
		q.Set("bucket_width", width)
		q["group_by[]"] = []string{"model", "api_key_id"}
	} else {
		path, parse = "/v1/organization/usage/completions", ParseOpenAIUsage
		q.Set("start_time", strconv.FormatInt(since.Unix(), 10))
		q.Set("end_time", strconv.FormatInt(until.Unix(), 10))
		q.Set("bucket_width", width)
		q["group_by"] = []string{"model", "api_key_id"}
	}
	if c.Limit > 0 {
		q.Set("limit", strconv.Itoa(c.Limit))
	}
	var all UsagePage
	err = c.pages(ctx, "usage report", path, q, func(b []byte) (bool, string, error) {
		p, err := parse(b)
		all.Buckets = append(all.Buckets, p.Buckets...)
		all.Rows = append(all.Rows, p.Rows...)
		return p.HasMore, p.NextPage, err
	})
	if err != nil {
		return UsagePage{}, err
	}
	sortRows(all.Rows)
	return all, nil
}

// Costs reads the cost report (daily buckets) for [since, until).
// Anthropic's is grouped by description, so that its results carry their
// model; OpenAI's is not grouped (its line items do not name models in a
// documented form).
func (c *Client) Costs(ctx context.Context, since, until time.Time) (CostPage, error) {
	q := url.Values{}
	path := "/v1/organizations/cost_report"
	parse := ParseAnthropicCost
	if c.Provider == Anthropic {
		q.Set("starting_at", since.UTC().Format(time.RFC3339))
		q.Set("ending_at", until.UTC().Format(time.RFC3339))
		q.Set("bucket_width", "1d")
		q["group_by[]"] = []string{"description"}
	} else {
		path, parse = "/v1/organization/costs", ParseOpenAICost
		q.Set("start_time", strconv.FormatInt(since.Unix(), 10))
		q.Set("end_time", strconv.FormatInt(until.Unix(), 10))
		q.Set("bucket_width", "1d")
	}
	var all CostPage
	err := c.pages(ctx, "cost report", path, q, func(b []byte) (bool, string, error) {
		p, err := parse(b)
		all.Buckets = append(all.Buckets, p.Buckets...)
		all.Rows = append(all.Rows, p.Rows...)
		return p.HasMore, p.NextPage, err
	})
	if err != nil {
		return CostPage{}, err
	}
	return all, nil
}

// pages requests path with q and then with each next_page cursor, and
// hands each body to read. Nothing is kept from a report that fails on
// any page: the caller gets the error only.
func (c *Client) pages(ctx context.Context, what, path string, q url.Values, read func([]byte) (bool, string, error)) error {
	seen := map[string]bool{}
	total := 0
	for n := 1; ; n++ {
		if n > MaxPages {
			return fmt.Errorf("%s %s: more than %d pages", c.Provider, what, MaxPages)
		}
		b, err := c.get(ctx, path, q)
		if err != nil {
			return fmt.Errorf("%s %s page %d: %w", c.Provider, what, n, err)
		}
		if total += len(b); total > MaxReportBytes {
			return fmt.Errorf("%s %s page %d: the report passes %d bytes in all", c.Provider, what, n, MaxReportBytes)
		}
		more, next, err := read(b)
		if err != nil {
			return fmt.Errorf("%s %s page %d: %w", c.Provider, what, n, err)
		}
		if !more {
			return nil
		}
		if len(next) > MaxCursorBytes {
			return fmt.Errorf("%s %s page %d: next_page of %d bytes (at most %d)", c.Provider, what, n, len(next), MaxCursorBytes)
		}
		if seen[next] {
			return fmt.Errorf("%s %s page %d: next_page %q repeats an earlier cursor", c.Provider, what, n, clipS(next))
		}
		seen[next] = true
		q.Set("page", next)
	}
}

// Key is one API key of the provider's key listing: its id (as usage
// reports name it) and the hint the listing shows of the secret.
type Key struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Hint string `json:"hint"`
}

// Keys lists the organization's API keys: Anthropic
// GET /v1/organizations/api_keys (partial_key_hint), OpenAI
// GET /v1/organization/projects and each project's
// GET /v1/organization/projects/{id}/api_keys (redacted_value).
func (c *Client) Keys(ctx context.Context) ([]Key, error) {
	if c.Provider == Anthropic {
		return c.listKeys(ctx, "/v1/organizations/api_keys", "after_id", "partial_key_hint")
	}
	var projects []Key
	projects, err := c.listKeys(ctx, "/v1/organization/projects", "after", "")
	if err != nil {
		return nil, err
	}
	var out []Key
	for _, p := range projects {
		keys, err := c.listKeys(ctx, "/v1/organization/projects/"+url.PathEscape(p.ID)+"/api_keys", "after", "redacted_value")
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
	}
	return out, nil
}

// listKeys reads a cursor-paged list of objects with id, name and the
// hint field.
func (c *Client) listKeys(ctx context.Context, path, cursor, hintField string) ([]Key, error) {
	var out []Key
	q := url.Values{}
	q.Set("limit", "100")
	seenCursor := map[string]bool{}
	for n := 1; n <= MaxPages; n++ {
		b, err := c.get(ctx, path, q)
		if err != nil {
			return nil, fmt.Errorf("%s key listing %s page %d: %w", c.Provider, path, n, err)
		}
		page, err := decodeObj("", b)
		if err == nil {
			var data []json.RawMessage
			if data, err = page.array("data"); err == nil {
				for i, raw := range data {
					var o *obj
					if o, err = decodeObj(fmt.Sprintf("data[%d]", i), raw); err != nil {
						break
					}
					var k Key
					if k.ID, err = o.str("id", true); err != nil {
						break
					}
					if k.Name, err = o.str("name", false); err != nil {
						break
					}
					if hintField != "" {
						if k.Hint, err = o.str(hintField, false); err != nil {
							break
						}
					}
					out = append(out, k)
				}
			}
		}
		var more bool
		if err == nil {
			more, err = page.boolean("has_more")
		}
		if err != nil {
			return nil, fmt.Errorf("%s key listing %s page %d: %w", c.Provider, path, n, err)
		}
		if !more || len(out) == 0 {
			return out, nil
		}
		last, _ := page.str("last_id", false)
		if last == "" {
			last = out[len(out)-1].ID
		}
		if len(last) > MaxCursorBytes {
			return nil, fmt.Errorf("%s key listing %s page %d: cursor of %d bytes (at most %d)", c.Provider, path, n, len(last), MaxCursorBytes)
		}
		if seenCursor[last] {
			return nil, fmt.Errorf("%s key listing %s page %d: cursor %q repeats an earlier one", c.Provider, path, n, clipS(last))
		}
		seenCursor[last] = true
		q.Set(cursor, last)
	}
	return nil, fmt.Errorf("%s key listing %s: more than %d pages", c.Provider, path, MaxPages)
}

// HintsMatch reports whether two display hints of secrets ("prefix...suffix",
// as a provider's key listing and tokenmeter's credential hints show them;
// a run of asterisks or an ellipsis character also separates them) can be
// of the same secret: one prefix starts the other and one suffix ends the
// other, each at least 3 characters long.
func HintsMatch(a, b string) bool {
	ap, as, ok1 := strings.Cut(normHint(a), "...")
	bp, bs, ok2 := strings.Cut(normHint(b), "...")
	if !ok1 || !ok2 {
		return false
	}
	if len(ap) < 3 || len(bp) < 3 || len(as) < 3 || len(bs) < 3 {
		return false
	}
	return (strings.HasPrefix(ap, bp) || strings.HasPrefix(bp, ap)) &&
		(strings.HasSuffix(as, bs) || strings.HasSuffix(bs, as))
}

var hintSep = regexp.MustCompile(`\*{3,}|\x{2026}|\.{3,}`)

func normHint(h string) string { return hintSep.ReplaceAllString(strings.TrimSpace(h), "...") }
