// Package ledger is the durable write path in front of a tokenmeter.Store:
// a group-committing Writer that the gateway hands events to, recovery of
// calls left open by a crash, and verification of the hash chain.
//
// Its promise: when a Pending returned by Writer.Submit reports nil from
// Wait, the event is in the store and survives a crash of the process.
// Concurrent submitters share one transaction (and one fsync with synchronous
// commits), so recording costs the gateway one commit per batch, not per call.
package ledger

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// DefaultMaxBatch is the most events the Writer commits in one transaction.
const DefaultMaxBatch = 1024

// DefaultQueueSize is how many submitted events may wait for the writer
// before Submit blocks (back-pressure rather than unbounded memory).
const DefaultQueueSize = 8192

// ErrClosed is returned for events submitted after Close.
var ErrClosed = errors.New("ledger writer closed")

// appender is the part of tokenmeter.Store the writer needs.
type appender interface {
	Append(ctx context.Context, events []tokenmeter.Event) (int, error)
}

// Pending is the result of one submitted event.
type Pending struct {
	done chan struct{}
	err  error
}

// Done returns a Pending that has already finished with err, for
// recorders that commit synchronously.
func Done(err error) *Pending {
	p := &Pending{done: make(chan struct{}), err: err}
	close(p.done)
	return p
}

// NewPending returns a Pending and the function that finishes it, for
// recorders that commit by other means (and tests that control timing).
func NewPending() (*Pending, func(error)) {
	p := &Pending{done: make(chan struct{})}
	return p, func(err error) {
		p.err = err
		close(p.done)
	}
}

// Wait blocks until the event is durable (nil) or failed, or ctx ends.
func (p *Pending) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Done returns a channel closed once the event is durable or failed.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Err returns the outcome once Done is closed.
func (p *Pending) Err() error { return p.err }

type op struct {
	ev tokenmeter.Event
	p  *Pending
}

// Stats are the writer's counters since Open.
type Stats struct {
	Events  int64 // events committed
	Skipped int64 // events skipped as duplicates of a recorded key
	Failed  int64 // events whose commit failed
	Batches int64 // transactions committed
}

// Writer commits submitted events in batches: its one goroutine takes every
// event queued while the previous commit ran, so batches grow with load and
// an idle writer commits a lone event at once, with no waiting window.
// It is safe for concurrent use. Call Open before Submit and Close at the end.
type Writer struct {
	// MaxBatch caps a batch; QueueSize bounds the queue. Set before Open.
	MaxBatch  int
	QueueSize int
	// OnCommit, when set, is called after each batch commit with the
	// number of events, the commit's duration and its error (metrics).
	// Set before Open; it must not block.
	OnCommit func(events int, d time.Duration, err error)

	store appender
	log   *slog.Logger

	queue   chan op
	mu      sync.RWMutex // guards closed against concurrent Submit/Close
	closed  bool
	stopped chan struct{}

	unhealthy atomic.Bool
	lastErr   atomic.Pointer[error]
	events    atomic.Int64
	skipped   atomic.Int64
	failed    atomic.Int64
	batches   atomic.Int64
}

// NewWriter returns a Writer appending to store.
func NewWriter(store appender, log *slog.Logger) *Writer {
	return &Writer{
		MaxBatch:  DefaultMaxBatch,
		QueueSize: DefaultQueueSize,
		store:     store,
		log:       log,
	}
}

// Open starts the commit goroutine.
func (w *Writer) Open() {
	w.queue = make(chan op, w.QueueSize)
	w.stopped = make(chan struct{})
	go w.run()
}

// Close stops accepting events, commits everything already submitted and
// waits for the commit goroutine to exit.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.queue)
	w.mu.Unlock()
	<-w.stopped
	return nil
}

// Submit queues ev for the next commit and returns at once (unless the queue
// is full). The caller waits on the Pending where durability matters.
func (w *Writer) Submit(ev tokenmeter.Event) *Pending {
	p := &Pending{done: make(chan struct{})}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		p.err = ErrClosed
		close(p.done)
		return p
	}
	w.queue <- op{ev: ev, p: p}
	return p
}

// Healthy reports whether the last commit succeeded. The gateway treats an
// unhealthy ledger as strict: it waits for the started record before
// forwarding, so nothing goes upstream unrecorded.
func (w *Writer) Healthy() bool { return !w.unhealthy.Load() }

// LastError returns the error of the last failed commit, if any.
func (w *Writer) LastError() error {
	if p := w.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// QueueDepth returns the number of events waiting for a commit.
func (w *Writer) QueueDepth() int { return len(w.queue) }

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	return Stats{Events: w.events.Load(), Skipped: w.skipped.Load(), Failed: w.failed.Load(), Batches: w.batches.Load()}
}

func (w *Writer) run() {
	defer close(w.stopped)
	batch := make([]op, 0, w.MaxBatch)
	events := make([]tokenmeter.Event, 0, w.MaxBatch)
	for first := range w.queue {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < w.MaxBatch {
			select {
			case o, ok := <-w.queue:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		events = events[:0]
		for _, o := range batch {
			events = append(events, o.ev)
		}
		w.commit(batch, events)
	}
}

func (w *Writer) commit(batch []op, events []tokenmeter.Event) {
	// No deadline on the commit: a cancellable context makes database/sql
	// and the SQLite driver start a watcher goroutine per statement, which
	// costs more than the insert itself. Lock waits are bounded by the
	// store's busy timeout instead.
	t0 := time.Now()
	skipped, err := w.store.Append(context.Background(), events)
	if w.OnCommit != nil {
		w.OnCommit(len(events), time.Since(t0), err)
	}
	if err != nil {
		w.failed.Add(int64(len(batch)))
		if !w.unhealthy.Swap(true) {
			w.log.Error("ledger commit failed; refusing unrecorded traffic until it recovers", "events", len(batch), "err", err)
		}
		w.lastErr.Store(&err)
	} else {
		if w.unhealthy.Swap(false) {
			w.log.Info("ledger commits succeed again")
		}
		w.events.Add(int64(len(batch) - skipped))
		w.skipped.Add(int64(skipped))
		w.batches.Add(1)
	}
	for _, o := range batch {
		o.p.err = err
		close(o.p.done)
	}
}
