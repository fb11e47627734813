package tokenmeter_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

func TestAlertRuleValidate(t *testing.T) {
	min := tokenmeter.Duration(time.Minute)
	tests := []struct {
		name string
		rule tokenmeter.AlertRule
		want string // substring of the error; "" for valid
	}{
		{"threshold", tokenmeter.AlertRule{Name: "b", Kind: tokenmeter.AlertThreshold, Limit: "day", Thresholds: []int{50, 100, 150}, Sinks: []string{"ops"}}, ""},
		{"burn", tokenmeter.AlertRule{Name: "b", Kind: tokenmeter.AlertBurnRate, Span: min}, ""},
		{"anomaly", tokenmeter.AlertRule{Name: "a", Kind: tokenmeter.AlertAnomaly, AnomalyKinds: []string{"early_reset", "reconcile"}}, ""},
		{"errors", tokenmeter.AlertRule{Name: "e", Kind: tokenmeter.AlertErrorRate, Span: min, MinRequests: 3, Percent: 100}, ""},
		{"throttled", tokenmeter.AlertRule{Name: "t", Kind: tokenmeter.AlertRateLimited}, ""},
		{"no name", tokenmeter.AlertRule{Kind: tokenmeter.AlertThreshold}, "name"},
		{"bad name", tokenmeter.AlertRule{Name: "a b", Kind: tokenmeter.AlertThreshold}, "name"},
		{"kind", tokenmeter.AlertRule{Name: "x", Kind: "email"}, `kind "email"`},
		{"limit on anomaly", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertAnomaly, Limit: "day"}, "limit applies"},
		{"bad limit", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertThreshold, Limit: "a/b"}, "not a limit name"},
		{"threshold 0", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertThreshold, Thresholds: []int{0}}, "threshold 0"},
		{"threshold 1001", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertThreshold, Thresholds: []int{1001}}, "threshold 1001"},
		{"threshold twice", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertThreshold, Thresholds: []int{50, 50}}, "twice"},
		{"thresholds on burn", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertBurnRate, Thresholds: []int{50}}, "threshold rules only"},
		{"anomaly kinds on errors", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertErrorRate, AnomalyKinds: []string{"drift"}}, "anomaly rules only"},
		{"bad anomaly kind", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertAnomaly, AnomalyKinds: []string{"a b"}}, "anomaly kind"},
		// A misspelt kind could never fire (issue 19 item 3).
		{"unknown anomaly kind", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertAnomaly, AnomalyKinds: []string{"early_rest"}}, `unknown anomaly kind "early_rest" (want early_reset, drift`},
		{"span on threshold", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertThreshold, Span: min}, "span applies"},
		{"span short", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertErrorRate, Span: tokenmeter.Duration(time.Second)}, "span 1s"},
		{"span long", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertErrorRate, Span: tokenmeter.Duration(200 * time.Hour)}, "span 200h"},
		{"percent on anomaly", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertAnomaly, Percent: 5}, "percent apply"},
		{"percent 101", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertErrorRate, Percent: 101}, "percent"},
		{"min requests negative", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertErrorRate, MinRequests: -1}, "min_requests"},
		{"bad sink", tokenmeter.AlertRule{Name: "x", Kind: tokenmeter.AlertAnomaly, Sinks: []string{"https://hooks.example.com/x"}}, "sink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rule.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate(%+v) = %v, want nil", tt.rule, err)
			case tt.want != "" && (err == nil || !strings.Contains(tokenmeter.ErrorMessage(err), tt.want)):
				t.Errorf("Validate(%+v) = %v, want an error mentioning %q", tt.rule, err, tt.want)
			case err != nil && tokenmeter.ErrorCode(err) != tokenmeter.EINVALID:
				t.Errorf("Validate(%+v) code %s, want %s", tt.rule, tokenmeter.ErrorCode(err), tokenmeter.EINVALID)
			}
		})
	}
}

func TestAlertRuleJSON(t *testing.T) {
	r := tokenmeter.AlertRule{Name: "e", Kind: tokenmeter.AlertErrorRate, Span: tokenmeter.Duration(90 * time.Second), Percent: 20, Source: "config"}
	b, err := json.Marshal(r)
	if err != nil || string(b) != `{"name":"e","kind":"error_rate","span":"1m30s","percent":20,"source":"config"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var back tokenmeter.AlertRule
	if err := json.Unmarshal(b, &back); err != nil || back.Span != r.Span {
		t.Errorf("Unmarshal = %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"span":"soon"}`), &back); err == nil || !strings.Contains(err.Error(), "not a duration") {
		t.Errorf("Unmarshal of a bad span: %v", err)
	}
}

func TestAlertKey(t *testing.T) {
	a, b := tokenmeter.AlertKey("r", "limit", "x"), tokenmeter.AlertKey("r", "limitx")
	if a == b || len(a) != 32 || a != tokenmeter.AlertKey("r", "limit", "x") {
		t.Errorf("AlertKey: %q %q; want distinct, stable, 32 hex digits", a, b)
	}
}
