package ledgerrules_test

import (
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledgerrules"
)

// TestChargeSQL pins the SQL that the stores' limit reads are made of, as
// derived from Contribution.Charge and Reservation.Charge.
func TestChargeSQL(t *testing.T) {
	for _, c := range []struct {
		m                tokenmeter.LimitMetric
		rollup, reserved string
	}{
		{tokenmeter.MetricTokens, "input_tokens + output_tokens + cache_write_5m + cache_write_1h + cache_read + hold_tokens",
			"input_tokens + output_tokens + cache_write_5m + cache_write_1h + cache_read"},
		{tokenmeter.MetricInputTokens, "input_tokens + hold_input", "input_tokens"},
		{tokenmeter.MetricOutputTokens, "output_tokens + hold_output", "output_tokens"},
		{tokenmeter.MetricRequests, "requests", "1"},
		{tokenmeter.MetricCost, "cost_micros + hold_cost", "cost_micros"},
		{"bytes", "0", "0"},
	} {
		if got := ledgerrules.ChargeSQL(c.m); got != c.rollup {
			t.Errorf("ChargeSQL(%s) = %q, want %q", c.m, got, c.rollup)
		}
		if got := ledgerrules.ReservationChargeSQL(c.m); got != c.reserved {
			t.Errorf("ReservationChargeSQL(%s) = %q, want %q", c.m, got, c.reserved)
		}
	}
}

func TestSumsAndRows(t *testing.T) {
	day := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	ev := func(at time.Time, kind tokenmeter.Kind, in int64) tokenmeter.Event {
		return tokenmeter.Event{Kind: kind, Time: at, Source: tokenmeter.SourceProxy, Provider: "p", Model: "m",
			Outcome: tokenmeter.OutcomeOK, Usage: tokenmeter.Usage{InputTokens: in}, UsageKnown: true, CostKnown: true, Cost: 3}
	}
	s := make(ledgerrules.Sums)
	for _, e := range []tokenmeter.Event{
		ev(day.Add(time.Minute), tokenmeter.KindCompleted, 1),
		ev(day.Add(14*time.Minute), tokenmeter.KindCompleted, 2),
		ev(day.Add(16*time.Minute), tokenmeter.KindRevised, 4),
		ev(day.Add(17*time.Minute), tokenmeter.KindStarted, 100), // adds nothing
		ev(day.Add(25*time.Hour), tokenmeter.KindCompleted, 8),
	} {
		s.Add(&e)
	}
	if len(s) != 3 {
		t.Fatalf("15-minute rows = %d, want 3: %+v", len(s), s)
	}
	first := s[ledgerrules.Key{Bucket: day.UnixMicro(), Source: "proxy", Provider: "p", Model: "m", Outcome: "ok"}]
	if first == nil || first.Requests != 2 || first.Usage.InputTokens != 3 || first.Cost != 6 ||
		first.First != day.Add(time.Minute).UnixMicro() || first.Last != day.Add(14*time.Minute).UnixMicro() {
		t.Errorf("first row = %+v", first)
	}
	days := s.Days()
	d := days[ledgerrules.Key{Bucket: day.UnixMicro(), Source: "proxy", Provider: "p", Model: "m", Outcome: "ok"}]
	if len(days) != 2 || d == nil || d.Requests != 2 || d.Usage.InputTokens != 7 || d.Last != day.Add(16*time.Minute).UnixMicro() {
		t.Errorf("daily rows = %+v, first day %+v", days, d)
	}
	// Values and Targets see the same columns in the same order.
	var back ledgerrules.Row
	for i, p := range back.Targets() {
		*p.(*int64) = d.Values()[i]
	}
	if back != *d {
		t.Errorf("row through Values and Targets = %+v, want %+v", back, *d)
	}
	if n := len(ledgerrules.Columns); n != len(d.Values()) {
		t.Errorf("%d columns, %d values", n, len(d.Values()))
	}
}

func TestPlanUsage(t *testing.T) {
	day := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	us := func(t time.Time) int64 { return t.UnixMicro() }
	for _, c := range []struct {
		name string
		q    tokenmeter.UsageQuery
		want ledgerrules.UsagePlan
	}{
		{"Everything", tokenmeter.UsageQuery{}, ledgerrules.UsagePlan{From: ledgerrules.FromRollups, Bucket: ledgerrules.MaxTime,
			Since: ledgerrules.MinTime, Until: ledgerrules.MaxTime,
			DayFrom: ledgerrules.Ceil(ledgerrules.MinTime, ledgerrules.DayWidth), DayTo: ledgerrules.Floor(ledgerrules.MaxTime, ledgerrules.DayWidth)}},
		{"Grid", tokenmeter.UsageQuery{Since: day, Until: day.Add(time.Hour), Bucket: 15 * time.Minute},
			ledgerrules.UsagePlan{From: ledgerrules.FromRollup, Bucket: ledgerrules.Width, Since: us(day), Until: us(day.Add(time.Hour))}},
		{"Hours", tokenmeter.UsageQuery{Since: day.Add(-time.Hour), Until: day.Add(48 * time.Hour), Bucket: time.Hour},
			ledgerrules.UsagePlan{From: ledgerrules.FromRollups, Bucket: us(day.Add(time.Hour)) - us(day), Since: us(day.Add(-time.Hour)), Until: us(day.Add(48 * time.Hour))}},
		{"Days", tokenmeter.UsageQuery{Since: day.Add(-time.Hour), Until: day.Add(48*time.Hour + 15*time.Minute), Bucket: 24 * time.Hour},
			ledgerrules.UsagePlan{From: ledgerrules.FromRollups, Bucket: ledgerrules.DayWidth, Since: us(day.Add(-time.Hour)), Until: us(day.Add(48*time.Hour + 15*time.Minute)),
				DayFrom: us(day), DayTo: us(day.Add(48 * time.Hour))}},
		{"WithinADay", tokenmeter.UsageQuery{Since: day.Add(time.Hour), Until: day.Add(2 * time.Hour)},
			ledgerrules.UsagePlan{From: ledgerrules.FromRollups, Bucket: ledgerrules.MaxTime, Since: us(day.Add(time.Hour)), Until: us(day.Add(2 * time.Hour))}},
		{"OffGrid", tokenmeter.UsageQuery{Since: day.Add(time.Second), Bucket: 15 * time.Minute},
			ledgerrules.UsagePlan{From: ledgerrules.FromEvents, Bucket: ledgerrules.Width, Since: us(day.Add(time.Second)), Until: ledgerrules.MaxTime}},
		{"OddBucket", tokenmeter.UsageQuery{Bucket: 7 * time.Minute},
			ledgerrules.UsagePlan{From: ledgerrules.FromEvents, Bucket: 7 * 60e6, Since: ledgerrules.MinTime, Until: ledgerrules.MaxTime}},
		{"BySession", tokenmeter.UsageQuery{BySession: true},
			ledgerrules.UsagePlan{From: ledgerrules.FromEvents, Bucket: ledgerrules.MaxTime, Since: ledgerrules.MinTime, Until: ledgerrules.MaxTime}},
	} {
		got, err := ledgerrules.PlanUsage(c.q)
		if err != nil || got != c.want {
			t.Errorf("%s: PlanUsage(%+v) = %+v, %v; want %+v", c.name, c.q, got, err, c.want)
		}
	}
	if _, err := ledgerrules.PlanUsage(tokenmeter.UsageQuery{Bucket: time.Second}); tokenmeter.ErrorCode(err) != tokenmeter.EINVALID {
		t.Errorf("PlanUsage(1s buckets) = %v, want EINVALID", err)
	}
	now := us(day.Add(30 * time.Hour))
	if d0, d1 := ledgerrules.LimitSpan(us(day.Add(-47*time.Hour)), now); d0 != us(day.Add(-24*time.Hour)) || d1 != us(day.Add(24*time.Hour)) {
		t.Errorf("LimitSpan over three days = [%d, %d)", d0, d1)
	}
	if d0, d1 := ledgerrules.LimitSpan(us(day.Add(25*time.Hour)), now); d0 != d1 {
		t.Errorf("LimitSpan within today = [%d, %d), want empty", d0, d1)
	}
}
