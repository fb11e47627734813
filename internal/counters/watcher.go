package counters

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// Defaults of the Watcher's tuning fields.
const (
	DefaultQueueSize     = 4096
	DefaultFlushInterval = time.Second
	// DefaultHeartbeat is how often a series whose values move only
	// within their window is stored.
	DefaultHeartbeat     = time.Minute
	DefaultRetention     = 30 * 24 * time.Hour
	DefaultPruneInterval = time.Hour
	// maxBatch samples are written in one transaction at most.
	maxBatch = 512
)

// Observation is one upstream response as the gateway saw it.
type Observation struct {
	Time     time.Time
	Provider string
	// Credential is the provider credential the request was sent with
	// (ID and Hint only); zero when it carried none.
	Credential tokenmeter.Credential
	// NoteCredential asks the watcher to record Credential in the store
	// (the gateway asks at most once a minute per credential).
	NoteCredential bool
	Status         int
	// Headers are the response's rate-limit headers (see Select).
	Headers []Header
}

// Store is what the Watcher needs of the ledger.
type Store interface {
	UsageReader
	tokenmeter.CounterStore
	tokenmeter.CredentialStore
}

// Watcher turns the gateway's observations into stored samples and
// anomalies. Observe never blocks: observations go to a bounded queue that
// one goroutine, owned by the Watcher (Open starts it, Close stops it),
// drains; when the queue is full an observation is dropped and counted.
// The goroutine parses headers, runs the detectors on every sample,
// stores the samples that compaction keeps in batches, stores anomalies
// with their evidence, and prunes samples older than Retention.
type Watcher struct {
	Store Store
	Log   *slog.Logger
	// Now is the clock for pruning; default time.Now.
	Now func() time.Time

	QueueSize     int
	FlushInterval time.Duration
	Heartbeat     time.Duration
	// Retention is how long samples are kept; zero or negative keeps them
	// forever.
	Retention     time.Duration
	PruneInterval time.Duration
	Detector      *Detector
	// RouteCredentials maps a provider route to the Credential.ID of its
	// configured credential (the one virtual-key calls are sent with), so
	// that drift counts those calls for it.
	RouteCredentials map[string]string
	// OnAnomaly, if set, is called on the watcher's goroutine with each
	// anomaly after it is stored (with its ID).
	OnAnomaly func(tokenmeter.Anomaly)

	queue   chan Observation
	syncReq chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Int64
	seen    atomic.Int64

	reported  int64
	lastPrune time.Time
	deferred  []deferredFinding               // findings whose evidence waits (Finding.Settle)
	stored    map[seriesKey]tokenmeter.Sample // last stored sample per series
	pending   []tokenmeter.Sample
}

// deferredFinding is a finding judged once due (real time).
type deferredFinding struct {
	f   Finding
	due time.Time
}

// NewWatcher returns a Watcher on store with the default settings.
func NewWatcher(store Store, log *slog.Logger) *Watcher {
	return &Watcher{Store: store, Log: log, Now: time.Now, QueueSize: DefaultQueueSize,
		FlushInterval: DefaultFlushInterval, Heartbeat: DefaultHeartbeat, Retention: DefaultRetention,
		PruneInterval: DefaultPruneInterval, Detector: NewDetector()}
}

// Open starts the watcher's goroutine.
func (w *Watcher) Open() {
	if w.QueueSize <= 0 {
		w.QueueSize = DefaultQueueSize
	}
	if w.FlushInterval <= 0 {
		w.FlushInterval = DefaultFlushInterval
	}
	if w.Heartbeat <= 0 {
		w.Heartbeat = DefaultHeartbeat
	}
	if w.PruneInterval <= 0 {
		w.PruneInterval = DefaultPruneInterval
	}
	if w.Detector == nil {
		w.Detector = NewDetector()
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	w.queue = make(chan Observation, w.QueueSize)
	w.syncReq = make(chan chan struct{})
	w.stop = make(chan struct{})
	w.done = make(chan struct{})
	w.stored = make(map[seriesKey]tokenmeter.Sample)
	w.seed()
	go w.run()
}

// seedSpan is how far back Open looks for the series' last samples.
const seedSpan = 10 * time.Minute

// seed makes the last sample stored of each series, in the last
// seedSpan, the detectors' and compaction's starting point, so that a
// counter that jumped while the gateway was restarting is still compared.
func (w *Watcher) seed() {
	if w.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	samples, err := w.Store.Samples(ctx, tokenmeter.SampleQuery{Since: w.Now().Add(-seedSpan), Limit: 10000})
	if err != nil {
		w.Log.Warn("cannot read the last counter samples; the detectors start afresh", "err", err)
		return
	}
	for _, s := range samples { // oldest first: the last one wins
		if s.Source == tokenmeter.SampleGateway {
			w.Detector.Seed(s)
			w.stored[keyOf(s)] = s
		}
	}
}

// Observe hands o to the watcher without blocking; when the queue is full
// o is dropped and counted (see Dropped).
func (w *Watcher) Observe(o Observation) {
	select {
	case w.queue <- o:
	default:
		w.dropped.Add(1)
	}
}

// Dropped returns the number of observations dropped so far.
func (w *Watcher) Dropped() int64 { return w.dropped.Load() }

// Sync waits until every observation queued before it was processed, its
// samples stored and its findings recorded (deferred ones too), or ctx
// ends.
func (w *Watcher) Sync(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case w.syncReq <- reply:
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close processes what is queued, stores it and stops the goroutine.
func (w *Watcher) Close() {
	w.once.Do(func() {
		if w.stop == nil {
			return
		}
		close(w.stop)
		<-w.done
	})
}

func (w *Watcher) run() {
	defer close(w.done)
	tick := time.NewTicker(w.FlushInterval)
	defer tick.Stop()
	ctx := context.Background()
	drain := func() {
		for {
			select {
			case o := <-w.queue:
				w.process(ctx, o)
			default:
				w.flush(ctx)
				w.judgeDeferred(ctx, true)
				return
			}
		}
	}
	for {
		select {
		case o := <-w.queue:
			w.process(ctx, o)
			if len(w.pending) >= maxBatch {
				w.flush(ctx)
			}
		case <-tick.C:
			w.flush(ctx)
			w.judgeDeferred(ctx, false)
			w.prune(ctx)
		case reply := <-w.syncReq:
			drain()
			close(reply)
		case <-w.stop:
			drain()
			return
		}
	}
}

func (w *Watcher) process(ctx context.Context, o Observation) {
	w.seen.Add(1)
	cred := o.Credential.ID
	if o.NoteCredential && cred != "" {
		c := o.Credential
		c.Provider, c.FirstSeen, c.LastSeen = o.Provider, o.Time, o.Time
		if err := w.Store.NoteCredential(ctx, c); err != nil {
			w.Log.Warn("cannot record a provider credential", "credential", cred, "err", err)
		}
	}
	var findings []Finding
	retryAfter := ""
	for _, s := range Parse(o.Headers, o.Time, o.Provider, cred) {
		if s.Counter == "retry-after" {
			retryAfter = strings.TrimPrefix(s.Raw, "retry-after: ")
		}
		found := w.Detector.Sample(s)
		findings = append(findings, found...)
		if w.keep(s, len(found) > 0) {
			w.pending = append(w.pending, s)
		}
	}
	findings = append(findings, w.Detector.Status(o.Time, o.Provider, cred, o.Status, retryAfter)...)
	for _, f := range findings {
		if f.Settle > 0 {
			w.deferred = append(w.deferred, deferredFinding{f, time.Now().Add(f.Settle)})
			continue
		}
		w.record(ctx, f)
	}
}

// judgeDeferred records the deferred findings that are due, or all of
// them (Sync and Close).
func (w *Watcher) judgeDeferred(ctx context.Context, all bool) {
	now := time.Now()
	keep := w.deferred[:0]
	for _, d := range w.deferred {
		if all || !now.Before(d.due) {
			w.record(ctx, d.f)
		} else {
			keep = append(keep, d)
		}
	}
	clear(w.deferred[len(keep):])
	w.deferred = keep
}

// keep decides whether s is stored: the first of its series (in this
// process), a change of limit or status, a new window (s after the stored
// sample's reset, or the reset moved), a sample an anomaly was found on,
// and otherwise one per Heartbeat.
func (w *Watcher) keep(s tokenmeter.Sample, found bool) bool {
	if len(w.stored) >= maxSeries {
		w.stored = make(map[seriesKey]tokenmeter.Sample)
	}
	k := keyOf(s)
	last, ok := w.stored[k]
	keep := !ok || found || last.Limit != s.Limit || last.Status != s.Status ||
		// A new window of a counter whose windows are longer than the
		// heartbeat (shorter ones are kept by the heartbeat).
		(!last.Reset.IsZero() && !s.Time.Before(last.Reset) && last.Reset.Sub(last.Time) >= w.Heartbeat) ||
		last.Reset.IsZero() != s.Reset.IsZero() ||
		s.Time.Sub(last.Time) >= w.Heartbeat ||
		// A change of raw text counts only beside parsed values: a header
		// kept raw alone (an unknown *ratelimit* header) is stored once per
		// Heartbeat, however often its value changes.
		(s.Raw != last.Raw && s.Counter != "retry-after" && !rawOnly(s))
	if !keep && !s.Reset.IsZero() && !last.Reset.IsZero() {
		moved := s.Reset.Sub(last.Reset).Abs()
		keep = moved > max(w.Detector.ResetMove, last.Reset.Sub(last.Time)/100)
	}
	if keep {
		w.stored[k] = s
	}
	return keep
}

// rawOnly reports whether s carries nothing but raw text.
func rawOnly(s tokenmeter.Sample) bool {
	return s.Limit == tokenmeter.NoValue && s.Remaining == tokenmeter.NoValue && s.Utilization == tokenmeter.NoValue &&
		s.Reset.IsZero() && s.Status == ""
}

// record judges f against the ledger and stores the anomaly.
func (w *Watcher) record(ctx context.Context, f Finding) {
	a, ok, err := Judge(ctx, w.Store, f, w.RouteCredentials[f.Anomaly.Provider])
	if err != nil {
		w.Log.Warn("cannot gather an anomaly's evidence", "kind", f.Anomaly.Kind, "counter", f.Anomaly.Counter, "err", err)
		return
	}
	if !ok {
		return
	}
	id, err := w.Store.AddAnomaly(ctx, a)
	if err != nil {
		w.Log.Error("cannot store an anomaly", "kind", a.Kind, "counter", a.Counter, "err", err)
		return
	}
	a.ID = id
	w.Log.Warn("provider counter anomaly", "id", id, "kind", a.Kind, "provider", a.Provider, "credential", a.Credential,
		"counter", a.Counter, "summary", a.Summary)
	if w.OnAnomaly != nil {
		w.OnAnomaly(a)
	}
}

func (w *Watcher) flush(ctx context.Context) {
	if d := w.dropped.Load(); d > w.reported {
		w.Log.Warn("rate-limit header capture fell behind: observations dropped", "dropped", d-w.reported, "total", d)
		w.reported = d
	}
	if len(w.pending) == 0 {
		return
	}
	if err := w.Store.AddSamples(ctx, w.pending); err != nil {
		w.Log.Error("cannot store counter samples", "samples", len(w.pending), "err", err)
	}
	w.pending = w.pending[:0]
}

func (w *Watcher) prune(ctx context.Context) {
	if w.Retention <= 0 {
		return
	}
	now := w.Now()
	if !w.lastPrune.IsZero() && now.Sub(w.lastPrune) < w.PruneInterval {
		return
	}
	w.lastPrune = now
	n, err := w.Store.PruneSamples(ctx, now.Add(-w.Retention))
	if err != nil {
		w.Log.Warn("cannot prune counter samples", "err", err)
	} else if n > 0 {
		w.Log.Info("pruned counter samples", "samples", n, "older_than", w.Retention)
	}
}
