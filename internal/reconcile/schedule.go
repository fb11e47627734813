package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// DefaultWindow is how far back a scheduled run reconciles: the buckets
// of the last two days, so late corrections by the provider are seen.
const DefaultWindow = 48 * time.Hour

// AnomalyKind is the tokenmeter.Anomaly kind a scheduled run records.
const AnomalyKind = tokenmeter.AnomalyReconcile

// RunStore stores runs (a tokenmeter.Store is one).
type RunStore interface {
	AddReconcileRun(ctx context.Context, run tokenmeter.ReconcileRun) (int64, error)
}

// AnomalyStore receives one anomaly per run with discrepancies beyond
// tolerance, which is how they reach the alerts (a tokenmeter.Store is
// one).
type AnomalyStore interface {
	AddAnomaly(ctx context.Context, a tokenmeter.Anomaly) (int64, error)
}

// Schedule reconciles one provider every Every, over the last Window, and
// stores each run. Run owns its goroutine's loop: it returns when ctx
// ends.
type Schedule struct {
	// Input is the reconciliation to run; Since, Until and Now are set by
	// each run (Until is the end of the current bucket).
	Input Input
	// Credentials, if set, is called before each run by key, to refresh
	// Input.Credentials.
	Credentials func(ctx context.Context) ([]Credential, error)
	Every       time.Duration
	Window      time.Duration // zero means DefaultWindow
	Store       RunStore
	Anomalies   AnomalyStore // nil: discrepancies are stored and logged only
	Now         func() time.Time
	Log         *slog.Logger
	// Tick, if set, replaces the Every ticker (tests drive runs with it).
	Tick <-chan time.Time
	// Stored, if set, is called with each run once it is stored.
	Stored func(tokenmeter.ReconcileRun)
}

// Run runs once at once and then every Every until ctx ends.
func (s *Schedule) Run(ctx context.Context) error {
	tick := s.Tick
	if tick == nil {
		t := time.NewTicker(s.Every)
		defer t.Stop()
		tick = t.C
	}
	for {
		run, err := s.Once(ctx)
		if err != nil && ctx.Err() == nil {
			s.Log.Warn("scheduled reconciliation failed", "provider", s.Input.Provider, "err", errorText(err))
		}
		if run.ID > 0 && s.Stored != nil {
			s.Stored(run)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

// Once runs one reconciliation and stores it: a run that could not read
// the reports is stored with status error and no discrepancies.
func (s *Schedule) Once(ctx context.Context) (tokenmeter.ReconcileRun, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	window := s.Window
	if window <= 0 {
		window = DefaultWindow
	}
	in := s.Input
	in.Now = now().UTC()
	in.Until = in.Now.Truncate(in.Bucket).Add(in.Bucket)
	in.Since = in.Until.Add(-window).Truncate(in.Bucket)
	var err error
	if in.By == "key" && s.Credentials != nil {
		in.Credentials, err = s.Credentials(ctx)
	}
	var rep Report
	if err == nil {
		c := *in.Client // Stats per run
		in.Client = &c
		rep, err = Run(ctx, in)
	}
	run := rep.ReconcileRun
	if err != nil {
		if ctx.Err() != nil {
			return run, err
		}
		run = tokenmeter.ReconcileRun{Provider: in.Provider, Ran: in.Now, Since: in.Since, Until: in.Until, Bucket: in.Bucket,
			By: in.By, Tolerance: in.Tolerance.String(), Lag: in.Lag, Status: tokenmeter.ReconcileFailed, Error: errorText(err)}
	}
	if run.By == "" {
		run.By = "model"
	}
	id, serr := s.Store.AddReconcileRun(ctx, run)
	if serr != nil {
		return run, fmt.Errorf("store reconcile run: %w", serr)
	}
	run.ID = id
	if err != nil {
		return run, err
	}
	s.Log.Info("reconciled", "provider", run.Provider, "run", id, "status", run.Status, "rows", run.Summary.Rows,
		"beyond_tolerance", run.Summary.Beyond, "not_final", run.Summary.NotFinal)
	if run.Status == tokenmeter.ReconcileDiscrepancies && s.Anomalies != nil {
		if _, err := s.Anomalies.AddAnomaly(ctx, Anomaly(run)); err != nil {
			return run, fmt.Errorf("record reconcile anomaly: %w", err)
		}
	}
	return run, nil
}

// Anomaly returns the anomaly that reports run's discrepancies beyond
// tolerance: its summary names the largest, its evidence is the run's
// summary and those discrepancies.
func Anomaly(run tokenmeter.ReconcileRun) tokenmeter.Anomaly {
	var beyond []tokenmeter.Discrepancy
	for _, d := range run.Discrepancies {
		if d.Final && d.Beyond {
			beyond = append(beyond, d)
		}
	}
	summary := fmt.Sprintf("%s reconciliation run %d: %d discrepancies beyond tolerance %s", run.Provider, run.ID, len(beyond), run.Tolerance)
	if len(beyond) > 0 {
		d := beyond[0]
		summary += fmt.Sprintf("; largest: %s %s %s %s provider %d ledger %d", d.Start.UTC().Format("2006-01-02 15:04"), d.Model, d.Class, d.Category, d.Provider, d.Ledger)
	}
	ev, _ := json.Marshal(struct {
		Run           int64                       `json:"run"`
		Summary       tokenmeter.ReconcileSummary `json:"summary"`
		Discrepancies []tokenmeter.Discrepancy    `json:"discrepancies"`
	}{run.ID, run.Summary, beyond})
	start, end := run.Since, run.Until
	if len(beyond) > 0 {
		start, end = beyond[0].Start, beyond[0].End
		for _, d := range beyond {
			start, end = minTime(start, d.Start), maxTime(end, d.End)
		}
	}
	return tokenmeter.Anomaly{Kind: AnomalyKind, Provider: run.Provider, Detected: run.Ran, Start: start, End: end,
		Summary: summary, Evidence: ev}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// errorText is err for people: its text with a tokenmeter.Error in the
// chain told by its message alone (not "tokenmeter: invalid: ..." after
// the context the layers above added). It never holds the admin key (see
// Client).
func errorText(err error) string {
	var te *tokenmeter.Error
	if errors.As(err, &te) {
		return strings.Replace(err.Error(), te.Error(), te.Message, 1)
	}
	return err.Error()
}
