package fakeupstream

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseAdminFaults reads AdminFaults from the text of
// `tokenmeter fake-upstream --admin-faults`: key=value pairs separated by
// spaces or commas.
//
//	drop_bucket=TIME           the usage-report bucket starting at TIME (RFC 3339) is reported empty
//	inflate=MODEL:N            MODEL's results report N more output tokens
//	unknown_key_at=TIME        a result for an API key nobody used, in the bucket containing TIME
//	unknown_key_model=MODEL    its model (default claude-haiku-5-5)
//	unknown_key_tokens=IN/OUT  its input and output tokens (default 1000/100)
//	lag=DURATION               usage served less than DURATION ago is not reported yet
//	fail_page=N                the N-th report page request fails once
//	fail_status=S              with status S (500, 502, 503, 529 or 429; default 500)
//	fail_retry_after=SECONDS   the retry-after of a 429 (default 1)
//	cost_report=S              every cost report request answers S (403 or 404)
//
// The admin key is never a flag value; AdminFaults.AdminKey is for tests.
func ParseAdminFaults(s string) (AdminFaults, error) {
	var f AdminFaults
	unknownModel, unknownIn, unknownOut := "claude-haiku-5-5", int64(1000), int64(100)
	for _, field := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		key, value, ok := strings.Cut(field, "=")
		if !ok || value == "" {
			return f, fmt.Errorf("admin fault %q: want key=value", field)
		}
		bad := func(want string) error { return fmt.Errorf("admin fault %s=%q: want %s", key, value, want) }
		count := func() (int64, error) {
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || n > 1<<40 {
				return 0, bad("a non-negative integer")
			}
			return n, nil
		}
		var err error
		switch key {
		case "drop_bucket", "unknown_key_at":
			t, perr := time.Parse(time.RFC3339, value)
			if perr != nil {
				return f, bad("an RFC 3339 time such as 2026-11-25T11:00:00Z")
			}
			if key == "drop_bucket" {
				f.DropBucket = t.UTC()
			} else {
				f.UnknownKeyAt = t.UTC()
			}
		case "inflate":
			m, n, ok := strings.Cut(value, ":")
			v, perr := strconv.ParseInt(n, 10, 64)
			if !ok || m == "" || perr != nil || v < 0 || v > 1<<40 {
				return f, bad("MODEL:N")
			}
			f.InflateModel, f.InflateOutput = m, v
		case "unknown_key_model":
			unknownModel = value
		case "unknown_key_tokens":
			in, out, ok := strings.Cut(value, "/")
			a, e1 := strconv.ParseInt(in, 10, 64)
			b, e2 := strconv.ParseInt(out, 10, 64)
			if !ok || e1 != nil || e2 != nil || a < 0 || b < 0 || a > 1<<40 || b > 1<<40 {
				return f, bad("IN/OUT token counts such as 1000/100")
			}
			unknownIn, unknownOut = a, b
		case "lag":
			if f.Lag, err = time.ParseDuration(value); err != nil || f.Lag < 0 {
				return f, bad("a non-negative duration such as 10m")
			}
		case "fail_page":
			n, err := count()
			if err != nil || n == 0 {
				return f, bad("a page number from 1")
			}
			f.FailPage = int(min(n, 1<<30))
		case "fail_status":
			n, err := strconv.Atoi(value)
			if err != nil || (n != 429 && n != 500 && n != 502 && n != 503 && n != 529) {
				return f, bad("429, 500, 502, 503 or 529")
			}
			f.FailStatus = n
		case "cost_report":
			n, err := strconv.Atoi(value)
			if err != nil || (n != 403 && n != 404) {
				return f, bad("403 or 404")
			}
			f.CostReportStatus = n
		case "fail_retry_after":
			if f.FailRetryAfter, err = count(); err != nil {
				return f, err
			}
		default:
			return f, fmt.Errorf("admin fault %q: unknown key (see go doc ./internal/fakeupstream ParseAdminFaults)", key)
		}
	}
	if !f.UnknownKeyAt.IsZero() {
		f.UnknownKeyModel = unknownModel
		f.UnknownKeyUsage.InputTokens, f.UnknownKeyUsage.OutputTokens = unknownIn, unknownOut
	}
	return f, nil
}
