package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// runAlerts checks the AlertStore: rules, firing once per key, one firing
// alert per group, resolution with history, and the outbox (enqueued with
// the transition, claimed by one claimer, retried, delivered once).
func runAlerts(t *testing.T, s tokenmeter.Store) {
	ctx := context.Background()
	wantCode := func(t *testing.T, what string, err error, code string) {
		t.Helper()
		if got := tokenmeter.ErrorCode(err); got != code {
			t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
		}
	}
	payload := func(a tokenmeter.Alert) ([]byte, error) {
		return json.Marshal(map[string]any{"id": a.ID, "state": a.State, "key": a.Key})
	}

	t.Run("Rules", func(t *testing.T) {
		r := tokenmeter.AlertRule{Name: "budget", Kind: tokenmeter.AlertThreshold, Limit: "alice-day", Thresholds: []int{80, 100}, Sinks: []string{"ops"}}
		if err := s.SetAlertRule(ctx, r); err != nil {
			t.Fatal(err)
		}
		r2 := tokenmeter.AlertRule{Name: "errors", Kind: tokenmeter.AlertErrorRate, Span: tokenmeter.Duration(10 * time.Minute), MinRequests: 5, Percent: 30}
		if err := s.SetAlertRule(ctx, r2); err != nil {
			t.Fatal(err)
		}
		r.Thresholds = []int{90}
		if err := s.SetAlertRule(ctx, r); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "SetAlertRule(bad kind)", s.SetAlertRule(ctx, tokenmeter.AlertRule{Name: "x", Kind: "nope"}), tokenmeter.EINVALID)
		got, err := s.AlertRules(ctx)
		if err != nil || len(got) != 2 || got[0].Name != "budget" || fmt.Sprint(got[0].Thresholds) != "[90]" || got[0].Sinks[0] != "ops" ||
			got[1].Span != r2.Span || got[1].Percent != 30 || got[1].MinRequests != 5 {
			t.Fatalf("AlertRules = %+v, %v; want budget (replaced, thresholds [90]) and errors", got, err)
		}
		wantCode(t, "DeleteAlertRule(unknown)", s.DeleteAlertRule(ctx, "nope"), tokenmeter.ENOTFOUND)
		if err := s.DeleteAlertRule(ctx, "budget"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.AlertRules(ctx); len(got) != 1 {
			t.Errorf("after delete: %+v", got)
		}
	})

	mk := func(key, group string, at time.Time) tokenmeter.Alert {
		return tokenmeter.Alert{Key: key, Group: group, Rule: "budget", Kind: tokenmeter.AlertThreshold, Severity: tokenmeter.SeverityWarning,
			Subject: "limit alice-day", Summary: "80% of alice-day", WindowStart: at.Truncate(time.Hour), WindowEnd: at.Truncate(time.Hour).Add(time.Hour),
			Fired: at, Details: json.RawMessage(`{"used":80}`)}
	}

	t.Run("FireResolve", func(t *testing.T) {
		a, fired, err := s.FireAlert(ctx, mk("k1", "g1", t0), []string{"ops", "log"}, payload)
		if err != nil || !fired || a.ID == 0 || a.State != tokenmeter.AlertFiring || len(a.History) != 1 {
			t.Fatalf("FireAlert = %+v, %v, %v; want a new firing alert with one history entry", a, fired, err)
		}
		// The same key again, even after resolution, fires nothing.
		again, fired, err := s.FireAlert(ctx, mk("k1", "g1", t0.Add(time.Minute)), []string{"ops"}, payload)
		if err != nil || fired || again.ID != a.ID {
			t.Errorf("FireAlert(same key) = %+v, %v, %v; want the existing alert, not fired", again, fired, err)
		}
		// Another key of a group with a firing alert fires nothing either.
		other, fired, err := s.FireAlert(ctx, mk("k2", "g1", t0.Add(time.Minute)), nil, payload)
		if err != nil || fired || other.ID != a.ID {
			t.Errorf("FireAlert(firing group) = %+v, %v, %v; want the firing alert of the group", other, fired, err)
		}
		wantCode(t, "ResolveAlert(unknown)", func() error { _, err := s.ResolveAlert(ctx, 999, t0, "", nil, payload); return err }(), tokenmeter.ENOTFOUND)
		res, err := s.ResolveAlert(ctx, a.ID, t0.Add(2*time.Minute), "window reset", []string{"ops"}, payload)
		if err != nil || res.State != tokenmeter.AlertResolved || !res.Resolved.Equal(t0.Add(2*time.Minute).Truncate(time.Microsecond)) || len(res.History) != 2 ||
			res.History[1].Summary != "window reset" || res.History[1].State != tokenmeter.AlertResolved {
			t.Fatalf("ResolveAlert = %+v, %v", res, err)
		}
		wantCode(t, "ResolveAlert(again)", func() error { _, err := s.ResolveAlert(ctx, a.ID, t0, "", nil, payload); return err }(), tokenmeter.ECONFLICT)
		if _, fired, _ := s.FireAlert(ctx, mk("k1", "g1", t0.Add(3*time.Minute)), nil, payload); fired {
			t.Error("FireAlert fired a resolved alert's key again")
		}
		// The group is free again for a new key (the next window).
		b, fired, err := s.FireAlert(ctx, mk("k2", "g1", t0.Add(time.Hour)), []string{"ops"}, payload)
		if err != nil || !fired || b.ID == a.ID {
			t.Fatalf("FireAlert(next window) = %+v, %v, %v", b, fired, err)
		}
		got, err := s.Alert(ctx, a.ID)
		if err != nil || got.Key != "k1" || got.State != tokenmeter.AlertResolved || len(got.History) != 2 || string(got.Details) != `{"used":80}` ||
			!got.WindowStart.Equal(t0.Truncate(time.Hour)) || got.Subject != "limit alice-day" || got.Severity != tokenmeter.SeverityWarning {
			t.Errorf("Alert(%d) = %+v, %v", a.ID, got, err)
		}
		wantCode(t, "Alert(unknown)", func() error { _, err := s.Alert(ctx, 999); return err }(), tokenmeter.ENOTFOUND)
		all, err := s.Alerts(ctx, tokenmeter.AlertQuery{})
		if err != nil || len(all) != 2 || all[0].ID != b.ID || len(all[1].History) != 2 {
			t.Errorf("Alerts = %+v, %v; want both, newest first, with history", all, err)
		}
		firing, err := s.Alerts(ctx, tokenmeter.AlertQuery{Firing: true})
		if err != nil || len(firing) != 1 || firing[0].ID != b.ID {
			t.Errorf("Alerts(firing) = %+v, %v", firing, err)
		}
		if since, _ := s.Alerts(ctx, tokenmeter.AlertQuery{Since: t0.Add(30 * time.Minute)}); len(since) != 1 {
			t.Errorf("Alerts(since) = %+v; want the later one", since)
		}

		ds, err := s.Deliveries(ctx, a.ID)
		if err != nil || len(ds) != 3 {
			t.Fatalf("Deliveries(%d) = %+v, %v; want firing to ops and log, resolved to ops", a.ID, ds, err)
		}
		var p struct {
			ID    int64
			State string
		}
		if err := json.Unmarshal(ds[0].Payload, &p); err != nil || p.ID != a.ID || p.State != "firing" || ds[0].Transition != tokenmeter.AlertFiring ||
			ds[0].Sink != "ops" || !ds[0].Next.Equal(t0.Truncate(time.Microsecond)) {
			t.Errorf("first delivery %+v (payload %s): want the firing to ops, due at the firing, its payload naming the alert", ds[0], ds[0].Payload)
		}
		if err := json.Unmarshal(ds[2].Payload, &p); err != nil || p.State != "resolved" || ds[2].Transition != tokenmeter.AlertResolved {
			t.Errorf("third delivery %+v (payload %s): want the resolution", ds[2], ds[2].Payload)
		}
	})

	t.Run("Outbox", func(t *testing.T) {
		base := t0.Add(24 * time.Hour)
		a, _, err := s.FireAlert(ctx, mk("o1", "o1", base), []string{"a", "b"}, payload)
		if err != nil {
			t.Fatal(err)
		}
		// Earlier tests left deliveries due; claim everything due and
		// deliver all but ours.
		ds, err := s.ClaimDeliveries(ctx, base, base.Add(time.Minute), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.AlertID != a.ID {
				if err := s.DeliveryDone(ctx, d.ID, base); err != nil {
					t.Fatal(err)
				}
			}
		}
		ours, _ := s.Deliveries(ctx, a.ID)
		if len(ours) != 2 || ours[0].Attempts != 1 {
			t.Fatalf("deliveries of %d = %+v; want two, claimed once", a.ID, ours)
		}
		// Claimed: nobody else gets them until the claim lapses.
		if ds, _ := s.ClaimDeliveries(ctx, base.Add(30*time.Second), base.Add(time.Minute), 10); len(ds) != 0 {
			t.Errorf("ClaimDeliveries during a claim = %+v; want none", ds)
		}
		// The claim of "b" lapses (its sender died); "a" fails and is due later.
		if err := s.DeliveryFailed(ctx, ours[0].ID, base.Add(5*time.Minute), "503 Service Unavailable"); err != nil {
			t.Fatal(err)
		}
		ds, err = s.ClaimDeliveries(ctx, base.Add(2*time.Minute), base.Add(3*time.Minute), 10)
		if err != nil || len(ds) != 1 || ds[0].ID != ours[1].ID || ds[0].Attempts != 2 {
			t.Fatalf("ClaimDeliveries after the claim lapsed = %+v, %v; want b again, second attempt", ds, err)
		}
		if err := s.DeliveryDone(ctx, ds[0].ID, base.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "DeliveryDone(twice)", s.DeliveryDone(ctx, ds[0].ID, base.Add(2*time.Minute)), tokenmeter.ECONFLICT)
		wantCode(t, "DeliveryFailed(delivered)", s.DeliveryFailed(ctx, ds[0].ID, base, "x"), tokenmeter.ECONFLICT)
		if ds, _ := s.ClaimDeliveries(ctx, base.Add(4*time.Minute), base.Add(5*time.Minute), 10); len(ds) != 0 {
			t.Errorf("ClaimDeliveries before the retry is due = %+v; want none", ds)
		}
		// Concurrent claimers: exactly one gets the retry.
		var mu sync.Mutex
		var got []tokenmeter.Delivery
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ds, err := s.ClaimDeliveries(ctx, base.Add(6*time.Minute), base.Add(7*time.Minute), 10)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				got = append(got, ds...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if len(got) != 1 || got[0].ID != ours[0].ID || got[0].Attempts != 2 || got[0].LastError != "503 Service Unavailable" {
			t.Fatalf("concurrent claims got %+v; want a's retry once", got)
		}
		if err := s.DeliveryDone(ctx, got[0].ID, base.Add(6*time.Minute)); err != nil {
			t.Fatal(err)
		}
		final, _ := s.Deliveries(ctx, a.ID)
		for _, d := range final {
			if d.Delivered.IsZero() || d.Attempts != 2 || d.LastError != "" {
				t.Errorf("delivery %+v: want delivered after two attempts, no error left", d)
			}
		}
		if ds, _ := s.ClaimDeliveries(ctx, base.Add(time.Hour), base.Add(2*time.Hour), 10); len(ds) != 0 {
			t.Errorf("ClaimDeliveries after delivery = %+v; want none", ds)
		}
	})

	t.Run("CallOutcomes", func(t *testing.T) {
		var evs []tokenmeter.Event
		for i, c := range []struct {
			status  int
			outcome tokenmeter.Outcome
		}{{200, tokenmeter.OutcomeOK}, {429, tokenmeter.OutcomeError}, {500, tokenmeter.OutcomeError}, {0, tokenmeter.OutcomeFailed}} {
			started := Event(fmt.Sprintf("cc%d", i), t0.Add(time.Duration(i)*time.Second), tokenmeter.Usage{})
			started.Kind, started.Key, started.Status, started.Outcome = tokenmeter.KindStarted, tokenmeter.EventKey(started.RequestKey, tokenmeter.KindStarted), 0, ""
			ev := Event(fmt.Sprintf("cc%d", i), t0.Add(time.Duration(i)*time.Second), tokenmeter.Usage{InputTokens: 1})
			ev.Status, ev.Outcome = c.status, c.outcome
			evs = append(evs, started, ev)
		}
		imported := Event("imp", t0, tokenmeter.Usage{InputTokens: 1})
		imported.Source = tokenmeter.SourceClaudeCode
		evs = append(evs, imported)
		if _, err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		all := scanSeqs(t, s)
		last := all[len(all)-1]
		got, next, err := s.CallOutcomes(ctx, 0, 100)
		if err != nil || len(got) != 4 || next != last || got[1].Status != 429 || got[3].Outcome != tokenmeter.OutcomeFailed ||
			got[0].Provider != "anthropic" || !got[2].Time.Equal(t0.Add(2*time.Second).Truncate(time.Microsecond)) {
			t.Fatalf("CallOutcomes(0) = %+v, %d, %v; want the 4 completed proxied calls, next %d", got, next, err, last)
		}
		if got, next2, err := s.CallOutcomes(ctx, next, 100); err != nil || len(got) != 0 || next2 != next {
			t.Errorf("CallOutcomes(at the end) = %+v, %d, %v; want none, next unchanged", got, next2, err)
		}
		// Pages: three events at a time.
		var n int
		for cur, pages := int64(0), 0; pages < 10; pages++ {
			got, next, err := s.CallOutcomes(ctx, cur, 3)
			if err != nil {
				t.Fatal(err)
			}
			n += len(got)
			if next == cur {
				break
			}
			cur = next
		}
		if n != 4 {
			t.Errorf("paging through CallOutcomes found %d calls, want 4", n)
		}
		// The last three events: cc3 started, cc3 completed, the import.
		if got, _, err := s.CallOutcomes(ctx, -3, 100); err != nil || len(got) != 1 || got[0].Outcome != tokenmeter.OutcomeFailed {
			t.Errorf("CallOutcomes(-3) = %+v, %v; want the last call only", got, err)
		}
	})
}

// scanSeqs returns the Seq of every event.
func scanSeqs(t *testing.T, s tokenmeter.Store) []int64 {
	t.Helper()
	var out []int64
	if err := s.Scan(context.Background(), 0, func(ev *tokenmeter.Event) error { out = append(out, ev.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
