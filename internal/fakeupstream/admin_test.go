package fakeupstream_test

import (
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

func TestParseAdminFaults(t *testing.T) {
	f, err := fakeupstream.ParseAdminFaults("drop_bucket=2026-11-25T11:00:00Z, inflate=claude-haiku-5-5:50 unknown_key_at=2026-11-25T12:30:00Z " +
		"unknown_key_tokens=40/4 lag=10m fail_page=2 fail_status=429 fail_retry_after=3 cost_report=403")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	if !f.DropBucket.Equal(at) || f.InflateModel != "claude-haiku-5-5" || f.InflateOutput != 50 || !f.UnknownKeyAt.Equal(at.Add(90*time.Minute)) ||
		f.UnknownKeyModel != "claude-haiku-5-5" || f.UnknownKeyUsage.InputTokens != 40 || f.UnknownKeyUsage.OutputTokens != 4 ||
		f.Lag != 10*time.Minute || f.FailPage != 2 || f.FailStatus != 429 || f.FailRetryAfter != 3 || f.CostReportStatus != 403 || f.AdminKey != "" {
		t.Errorf("ParseAdminFaults = %+v", f)
	}
	for _, bad := range []string{"drop_bucket=yesterday", "inflate=m", "inflate=:5", "lag=-1s", "fail_page=0", "fail_status=404",
		"unknown_key_tokens=5", "admin_key=sk-secret", "cost_report=500", "nonsense", "x=1", "fail_retry_after=-2"} {
		if _, err := fakeupstream.ParseAdminFaults(bad); err == nil {
			t.Errorf("ParseAdminFaults(%q) = nil error, want one", bad)
		}
	}
}

func FuzzParseAdminFaults(f *testing.F) {
	f.Add("drop_bucket=2026-11-25T11:00:00Z inflate=m:5 lag=10m fail_page=2 fail_status=429")
	f.Add("unknown_key_at=2026-11-25T12:30:00Z,unknown_key_tokens=1/2")
	f.Fuzz(func(t *testing.T, s string) {
		fa, err := fakeupstream.ParseAdminFaults(s)
		if err == nil && (fa.InflateOutput < 0 || fa.Lag < 0 || fa.FailPage < 0 || fa.FailRetryAfter < 0) {
			t.Fatalf("ParseAdminFaults(%q) accepted negative values: %+v", s, fa)
		}
	})
}
