package reconcile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// UsageRow is one result of a provider's usage report, in tokenmeter's
// categories: Usage.InputTokens is uncached input for both providers
// (OpenAI's input_tokens minus its cached and cache-write parts).
type UsageRow struct {
	Start, End time.Time
	// Model and APIKeyID are "" when the provider reports null (not
	// grouped, or Workbench traffic without a key).
	Model    string
	APIKeyID string
	Usage    tokenmeter.Usage
	// Requests is OpenAI's num_model_requests; HasRequests is false for
	// Anthropic, whose report has no request count.
	Requests    int64
	HasRequests bool
	// Extra keeps the result's fields this version does not read
	// (service_tier, workspace_id, project_id, fields added later).
	Extra map[string]json.RawMessage
}

// CostRow is one result of a provider's cost report, in micro-dollars.
type CostRow struct {
	Start, End time.Time
	Amount     tokenmeter.Micros
	Currency   string
	// Model is set when the provider reports it (Anthropic grouped by
	// description); "" otherwise.
	Model string
	Extra map[string]json.RawMessage
}

// UsagePage and CostPage are one page of a report: its buckets (also the
// empty ones, which fix the grid), their results, and the cursor.
type UsagePage struct {
	Buckets  []Bucket
	Rows     []UsageRow
	HasMore  bool
	NextPage string
}

// CostPage is one page of a cost report.
type CostPage struct {
	Buckets  []Bucket
	Rows     []CostRow
	HasMore  bool
	NextPage string
}

// Bucket is one time bucket of a report.
type Bucket struct{ Start, End time.Time }

// FieldError is a report page that lacks a required field or has one of
// the wrong type or value. Field is its JSON path, e.g.
// "data[3].results[0].output_tokens".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// obj is a JSON object being read field by field.
type obj struct {
	path string
	m    map[string]json.RawMessage
	used map[string]bool
}

func (o *obj) fieldPath(name string) string {
	if o.path == "" {
		return name
	}
	return o.path + "." + name
}

func (o *obj) errf(name, format string, args ...any) error {
	return &FieldError{Field: o.fieldPath(name), Msg: fmt.Sprintf(format, args...)}
}

// decodeObj reads raw as a JSON object found at path.
func decodeObj(path string, raw json.RawMessage) (*obj, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		p := path
		if p == "" {
			p = "(page)"
		}
		return nil, &FieldError{Field: p, Msg: "want a JSON object, got " + describe(raw)}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		p := path
		if p == "" {
			p = "(page)"
		}
		return nil, &FieldError{Field: p, Msg: "malformed JSON: " + err.Error()}
	}
	return &obj{path: path, m: m, used: map[string]bool{}}, nil
}

// describe names the JSON type of raw for an error message.
func describe(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == '{':
		return "an object"
	case raw[0] == '[':
		return "an array"
	case raw[0] == '"':
		return "a string"
	case bytes.Equal(raw, []byte("null")):
		return "null"
	case bytes.Equal(raw, []byte("true")), bytes.Equal(raw, []byte("false")):
		return "a boolean"
	}
	return "a number"
}

// get returns the field's raw value, nil when it is absent or null.
func (o *obj) get(name string) json.RawMessage {
	o.used[name] = true
	v, ok := o.m[name]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil
	}
	return v
}

// count reads a non-negative integer. A missing or null field is an
// error when required, else 0.
func (o *obj) count(name string, required bool) (int64, bool, error) {
	v := o.get(name)
	if v == nil {
		if required {
			return 0, false, o.errf(name, "required, missing")
		}
		return 0, false, nil
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
	if err != nil || n < 0 {
		// Some serialisers write whole numbers as 12.0.
		var f float64
		if json.Unmarshal(v, &f) == nil && f >= 0 && f == math.Trunc(f) && f < 1<<53 {
			return int64(f), true, nil
		}
		return 0, false, o.errf(name, "want a non-negative integer, got %s", clip(v))
	}
	if n >= 1<<53 {
		// No real count is this large; summed, such values could wrap.
		return 0, false, o.errf(name, "%d is beyond any real count (at most 2^53)", n)
	}
	return n, true, nil
}

// str reads a string; null or absent is "" (an error when required).
func (o *obj) str(name string, required bool) (string, error) {
	v := o.get(name)
	if v == nil {
		if required {
			return "", o.errf(name, "required, missing")
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", o.errf(name, "want a string, got %s", describe(v))
	}
	return s, nil
}

func (o *obj) boolean(name string) (bool, error) {
	v := o.get(name)
	if v == nil {
		return false, o.errf(name, "required, missing")
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		return false, o.errf(name, "want a boolean, got %s", describe(v))
	}
	return b, nil
}

func (o *obj) array(name string) ([]json.RawMessage, error) {
	v := o.get(name)
	if v == nil {
		return nil, o.errf(name, "required, missing")
	}
	var a []json.RawMessage
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, o.errf(name, "want an array, got %s", describe(v))
	}
	return a, nil
}

// object reads a nested object; nil when absent or null (an error when
// required).
func (o *obj) object(name string, required bool) (*obj, error) {
	v := o.get(name)
	if v == nil {
		if required {
			return nil, o.errf(name, "required, missing")
		}
		return nil, nil
	}
	return decodeObj(o.fieldPath(name), v)
}

// rfc3339 reads a required RFC 3339 time.
func (o *obj) rfc3339(name string) (time.Time, error) {
	s, err := o.str(name, true)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, o.errf(name, "want an RFC 3339 time, got %q", clipS(s))
	}
	return t.UTC(), nil
}

// unix reads a required Unix time in seconds.
func (o *obj) unix(name string) (time.Time, error) {
	n, _, err := o.count(name, true)
	if err != nil {
		return time.Time{}, err
	}
	if n > 1<<40 {
		return time.Time{}, o.errf(name, "Unix time %d out of range", n)
	}
	return time.Unix(n, 0).UTC(), nil
}

// extra returns the fields not read, nil if none.
func (o *obj) extra() map[string]json.RawMessage {
	var out map[string]json.RawMessage
	for k, v := range o.m {
		if !o.used[k] {
			if out == nil {
				out = map[string]json.RawMessage{}
			}
			out[k] = v
		}
	}
	return out
}

func clip(v json.RawMessage) string { return clipS(string(v)) }

func clipS(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// envelope reads the page envelope shared by every report: data (the
// buckets), has_more and next_page, and calls bucket for each bucket.
func envelope(b []byte, bucket func(i int, o *obj) error) (hasMore bool, next string, err error) {
	page, err := decodeObj("", b)
	if err != nil {
		return false, "", err
	}
	data, err := page.array("data")
	if err != nil {
		return false, "", err
	}
	if hasMore, err = page.boolean("has_more"); err != nil {
		return false, "", err
	}
	if next, err = page.str("next_page", false); err != nil {
		return false, "", err
	}
	if hasMore && next == "" {
		return false, "", page.errf("next_page", "required when has_more is true, missing")
	}
	for i, raw := range data {
		o, err := decodeObj(fmt.Sprintf("data[%d]", i), raw)
		if err != nil {
			return false, "", err
		}
		if err := bucket(i, o); err != nil {
			return false, "", err
		}
	}
	return hasMore, next, nil
}

// results reads a bucket's results array and calls fn for each result.
func results(o *obj, fn func(r *obj) error) error {
	rs, err := o.array("results")
	if err != nil {
		return err
	}
	for j, raw := range rs {
		r, err := decodeObj(fmt.Sprintf("%s.results[%d]", o.path, j), raw)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// bucket reads a report bucket's span: Anthropic's starting_at/ending_at
// (RFC 3339) or, with unix, OpenAI's start_time/end_time (Unix seconds).
func bucket(o *obj, unix bool) (Bucket, error) {
	startName, endName, read := "starting_at", "ending_at", o.rfc3339
	if unix {
		startName, endName, read = "start_time", "end_time", o.unix
	}
	start, err := read(startName)
	if err != nil {
		return Bucket{}, err
	}
	end, err := read(endName)
	if err != nil {
		return Bucket{}, err
	}
	if !end.After(start) {
		return Bucket{}, o.errf(endName, "bucket ends (%s) before it starts (%s)", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	return Bucket{start, end}, nil
}

// ParseAnthropicUsage reads one page of Anthropic's
// GET /v1/organizations/usage_report/messages.
func ParseAnthropicUsage(b []byte) (UsagePage, error) {
	var p UsagePage
	var err error
	p.HasMore, p.NextPage, err = envelope(b, func(i int, o *obj) error {
		bk, err := bucket(o, false)
		if err != nil {
			return err
		}
		p.Buckets = append(p.Buckets, bk)
		start, end := bk.Start, bk.End
		return results(o, func(r *obj) error {
			row := UsageRow{Start: start, End: end}
			var err error
			if row.Usage.InputTokens, _, err = r.count("uncached_input_tokens", true); err != nil {
				return err
			}
			if row.Usage.OutputTokens, _, err = r.count("output_tokens", true); err != nil {
				return err
			}
			if row.Usage.CacheReadTokens, _, err = r.count("cache_read_input_tokens", true); err != nil {
				return err
			}
			cc, err := r.object("cache_creation", true)
			if err != nil {
				return err
			}
			if row.Usage.CacheWrite5mTokens, _, err = cc.count("ephemeral_5m_input_tokens", true); err != nil {
				return err
			}
			if row.Usage.CacheWrite1hTokens, _, err = cc.count("ephemeral_1h_input_tokens", true); err != nil {
				return err
			}
			if st, err := r.object("server_tool_use", false); err != nil {
				return err
			} else if st != nil {
				if row.Usage.WebSearchRequests, _, err = st.count("web_search_requests", false); err != nil {
					return err
				}
			}
			if row.Model, err = r.str("model", false); err != nil {
				return err
			}
			if row.APIKeyID, err = r.str("api_key_id", false); err != nil {
				return err
			}
			row.Extra = r.extra()
			p.Rows = append(p.Rows, row)
			return nil
		})
	})
	return p, err
}

// ParseOpenAIUsage reads one page of OpenAI's
// GET /v1/organization/usage/completions. input_tokens includes the cached
// (input_cached_tokens) and cache-write (input_cache_write_tokens) parts;
// they are taken out of InputTokens.
func ParseOpenAIUsage(b []byte) (UsagePage, error) {
	var p UsagePage
	var err error
	p.HasMore, p.NextPage, err = envelope(b, func(i int, o *obj) error {
		bk, err := bucket(o, true)
		if err != nil {
			return err
		}
		p.Buckets = append(p.Buckets, bk)
		start, end := bk.Start, bk.End
		return results(o, func(r *obj) error {
			row := UsageRow{Start: start, End: end, HasRequests: true}
			input, _, err := r.count("input_tokens", true)
			if err != nil {
				return err
			}
			if row.Usage.OutputTokens, _, err = r.count("output_tokens", true); err != nil {
				return err
			}
			if row.Requests, _, err = r.count("num_model_requests", true); err != nil {
				return err
			}
			cached, _, err := r.count("input_cached_tokens", false)
			if err != nil {
				return err
			}
			written, _, err := r.count("input_cache_write_tokens", false)
			if err != nil {
				return err
			}
			if cached+written > input || cached < 0 || written < 0 {
				return r.errf("input_cached_tokens", "cached (%d) and cache-write (%d) tokens exceed input_tokens (%d)", cached, written, input)
			}
			row.Usage.InputTokens = input - cached - written
			row.Usage.CacheReadTokens = cached
			row.Usage.CacheWrite5mTokens = written // OpenAI does not split cache writes by lifetime
			if row.Model, err = r.str("model", false); err != nil {
				return err
			}
			if row.APIKeyID, err = r.str("api_key_id", false); err != nil {
				return err
			}
			r.used["object"] = true
			row.Extra = r.extra()
			p.Rows = append(p.Rows, row)
			return nil
		})
	})
	return p, err
}

// ParseAnthropicCost reads one page of Anthropic's
// GET /v1/organizations/cost_report, whose amounts are decimal strings in
// cents.
func ParseAnthropicCost(b []byte) (CostPage, error) {
	var p CostPage
	var err error
	p.HasMore, p.NextPage, err = envelope(b, func(i int, o *obj) error {
		bk, err := bucket(o, false)
		if err != nil {
			return err
		}
		p.Buckets = append(p.Buckets, bk)
		start, end := bk.Start, bk.End
		return results(o, func(r *obj) error {
			row := CostRow{Start: start, End: end}
			s, err := r.str("amount", true)
			if err != nil {
				return err
			}
			if row.Amount, err = DecimalMicros(s, 4); err != nil {
				return r.errf("amount", "%v", err)
			}
			if row.Currency, err = r.str("currency", true); err != nil {
				return err
			}
			if row.Currency != "USD" {
				return r.errf("currency", "want USD, got %q", clipS(row.Currency))
			}
			if row.Model, err = r.str("model", false); err != nil {
				return err
			}
			row.Extra = r.extra()
			p.Rows = append(p.Rows, row)
			return nil
		})
	})
	return p, err
}

// ParseOpenAICost reads one page of OpenAI's GET /v1/organization/costs,
// whose amounts are JSON numbers in dollars. They are read from the JSON
// text, so "0.06" is exactly 60,000 micro-dollars.
func ParseOpenAICost(b []byte) (CostPage, error) {
	var p CostPage
	var err error
	p.HasMore, p.NextPage, err = envelope(b, func(i int, o *obj) error {
		bk, err := bucket(o, true)
		if err != nil {
			return err
		}
		p.Buckets = append(p.Buckets, bk)
		start, end := bk.Start, bk.End
		return results(o, func(r *obj) error {
			row := CostRow{Start: start, End: end}
			amount, err := r.object("amount", true)
			if err != nil {
				return err
			}
			v := amount.get("value")
			if v == nil {
				return amount.errf("value", "required, missing")
			}
			text := string(bytes.TrimSpace(v))
			if describe(v) != "a number" {
				return amount.errf("value", "want a number, got %s", describe(v))
			}
			if row.Amount, err = DecimalMicros(text, 6); err != nil {
				return amount.errf("value", "%v", err)
			}
			if row.Currency, err = amount.str("currency", true); err != nil {
				return err
			}
			if row.Currency != "usd" && row.Currency != "USD" {
				return amount.errf("currency", "want usd, got %q", clipS(row.Currency))
			}
			r.used["object"] = true
			row.Extra = r.extra()
			p.Rows = append(p.Rows, row)
			return nil
		})
	})
	return p, err
}

var decimalRE = regexp.MustCompile(`^-?[0-9]{1,30}(\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?$`)

// DecimalMicros converts the decimal text s, in units of 10^-shift dollars
// (shift 4: cents; shift 6: dollars), to micro-dollars exactly. Digits
// below a micro-dollar are rounded half away from zero, in decimal: no
// binary floating point is involved.
func DecimalMicros(s string, shift int) (tokenmeter.Micros, error) {
	if !decimalRE.MatchString(s) {
		return 0, fmt.Errorf("want a decimal amount, got %q", clipS(s))
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("want a decimal amount, got %q", clipS(s))
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(shift)), nil)))
	num, den := new(big.Int).Set(r.Num()), r.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	if rem.Mul(rem, big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, fmt.Errorf("amount %q out of range", clipS(s))
	}
	m := q.Int64()
	if neg {
		m = -m
	}
	return tokenmeter.Micros(m), nil
}

// sortRows orders usage rows by bucket, model and key.
func sortRows(rows []UsageRow) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return a.APIKeyID < b.APIKeyID
	})
}
