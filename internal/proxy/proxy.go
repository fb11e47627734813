package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/anthropic"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/openai"
	"github.com/tokenmeter/tokenmeter/internal/sse"
)

// Providers the gateway speaks.
const (
	Anthropic = "anthropic"
	OpenAI    = "openai"
)

// Durability modes.
const (
	// DurabilityNormal commits the started record while the request is in
	// flight and waits for it before relaying the response headers.
	DurabilityNormal = "normal"
	// DurabilityStrict waits for the started record before forwarding.
	DurabilityStrict = "strict"
)

// Defaults for Proxy's tuning fields.
const (
	DefaultMaxRequestBody = 32 << 20 // Anthropic's own request limit
	DefaultMaxFrame       = 1 << 20  // SSE frames larger than this are scanned as they pass (internal/bigframe), not copied
	DefaultMaxMeteredBody = 16 << 20 // JSON bodies larger than this are scanned as they pass, not copied
)

// Header names the gateway reads, strips or adds.
const (
	HeaderProject   = "X-Tokenmeter-Project"
	HeaderTags      = "X-Tokenmeter-Tags"
	HeaderRequestID = "X-Tokenmeter-Request-Id"
	// HeaderSession names the client session a call belongs to. Claude
	// Code sends X-Claude-Code-Session-Id (its transcripts' sessionId); it
	// is recorded and forwarded unchanged.
	HeaderSession       = "X-Tokenmeter-Session"
	HeaderClaudeSession = "X-Claude-Code-Session-Id"
)

// Route maps a path prefix of the gateway to an upstream.
type Route struct {
	// Name is the provider recorded for calls on this route, e.g. "anthropic",
	// "openai", or the name of an OpenAI-compatible upstream.
	Name string
	// Prefix is the gateway path prefix, e.g. "/anthropic".
	Prefix string
	// Wire is Anthropic or OpenAI: the API dialect the upstream speaks.
	Wire string
	// Upstream is the base URL the rest of the path is appended to.
	Upstream *url.URL
}

// Observer is told about calls as they pass: the first byte of each
// response and each completed event as it is submitted to the ledger (a
// *metrics.Metrics). Its methods must not block.
type Observer interface {
	FirstByte(provider string, ttfb time.Duration)
	Completed(ev *tokenmeter.Event)
}

// Recorder is the ledger the proxy writes to (a *ledger.Writer).
type Recorder interface {
	Submit(tokenmeter.Event) *ledger.Pending
	Healthy() bool
}

// Proxy is the metering gateway, an http.Handler. Set its fields before the
// first request; it is safe for concurrent use afterwards.
type Proxy struct {
	// Durability is DurabilityNormal (default) or DurabilityStrict.
	Durability string
	// FailOpen forwards requests even when the ledger cannot record them.
	FailOpen bool
	// MaxRequestBody bounds client request bodies; larger ones get 413.
	MaxRequestBody int64
	// MaxFrame and MaxMeteredBody bound what the meter copies.
	MaxFrame       int
	MaxMeteredBody int
	// Instance names this process in the events it writes.
	Instance string
	// Price sets Cost and CostKnown of a completed event; nil leaves cost unknown.
	Price func(*tokenmeter.Event)
	// CanonicalModel maps a model name to its canonical one (the price
	// table's), so that a response naming a snapshot of the requested
	// alias is the same model; nil compares names through
	// tokenmeter.ModelBase only.
	CanonicalModel func(string) string
	// Now returns the current time.
	Now func() time.Time
	// Transport carries requests upstream.
	Transport http.RoundTripper

	// Keys looks up virtual keys (tm-...); nil refuses every request that
	// carries one. See docs/keys.md.
	Keys KeyLookup
	// KeyCacheTTL is how long a looked-up key is reused without asking Keys
	// again, so the longest a revocation takes to reach this gateway. Zero
	// means DefaultKeyCacheTTL; negative disables the cache.
	KeyCacheTTL time.Duration
	// KeysWhere names where Keys looks keys up (the ledger's path), for
	// the log line of an unknown key: a key created in another ledger is
	// the usual cause. Empty leaves the hint out.
	KeysWhere string
	// Credentials maps a route name to the provider credential sent
	// upstream in place of a virtual key. A route without one refuses
	// virtual keys with 500.
	Credentials map[string]string
	// CredentialFix maps a route name to what the operator does to give
	// it a credential ("set $ANTHROPIC_API_KEY"), for the log line of a
	// refusal on a route without one.
	CredentialFix map[string]string
	// RequireVirtualKey refuses, with 401, requests that carry no virtual
	// key (pass-through credentials, or none).
	RequireVirtualKey bool

	// MaxInFlight caps the proxied requests served at once; a request
	// beyond it gets 503 with retry-after in the provider's error shape.
	// Zero means DefaultMaxInFlight; negative means no cap. See admit.go.
	MaxInFlight int
	// RequestReadTimeout is the longest a request body may stall (no byte
	// arriving) before the request is answered 408. Zero means
	// DefaultRequestReadTimeout; negative means no timeout.
	RequestReadTimeout time.Duration
	inflight           atomic.Int64 // requests admitted and not done
	fullLogged         atomic.Int64 // when the cap was last logged (UnixNano)

	// Limits enforces hard limits before forwarding; nil enforces none.
	// See docs/limits.md.
	Limits *limits.Enforcer
	// BytesPerToken divides the request body's size into the input
	// estimate reserved against hard limits; zero means
	// limits.DefaultBytesPerToken.
	BytesPerToken int
	// DefaultMaxOutput is the output reserved for a request that sets no
	// maximum; zero means limits.DefaultMaxOutput.
	DefaultMaxOutput int64

	// Settle records a call's usage read after the call itself (a polled
	// background response) the way an importer does (Store.Import): it
	// settles the gateway's record of the call if that has no known usage
	// and is skipped if it has. nil leaves such usage unrecorded.
	Settle func(ctx context.Context, ev tokenmeter.Event) error

	// Metrics observes calls as they pass (Prometheus); nil observes none.
	Metrics Observer

	// Counters sees the rate-limit headers of every upstream response;
	// nil watches none. See observe.go and docs/counters.md.
	Counters CounterObserver
	obs      observeState

	rec    Recorder
	log    *slog.Logger
	routes []*route
	active sync.WaitGroup // calls being served

	keyMu    sync.Mutex
	keyCache map[string]cachedKey // by hash

	ws webSockets // relayed WebSocket connections (websocket.go)
}

type route struct {
	Route
	rp *httputil.ReverseProxy
}

// New returns a Proxy for routes, recording into rec.
func New(routes []Route, rec Recorder, log *slog.Logger) *Proxy {
	p := &Proxy{
		Durability:     DurabilityNormal,
		MaxRequestBody: DefaultMaxRequestBody,
		MaxFrame:       DefaultMaxFrame,
		MaxMeteredBody: DefaultMaxMeteredBody,
		Now:            time.Now,
		Transport:      NewTransport(),
		KeyCacheTTL:    DefaultKeyCacheTTL,
		rec:            rec,
		log:            log,
	}
	for _, r := range routes {
		rt := &route{Route: r}
		rt.rp = &httputil.ReverseProxy{
			Rewrite:        rt.rewrite,
			Transport:      transportFunc(func(req *http.Request) (*http.Response, error) { return p.Transport.RoundTrip(req) }),
			FlushInterval:  -1,
			ModifyResponse: p.modifyResponse,
			ErrorHandler:   p.errorHandler,
			ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		p.routes = append(p.routes, rt)
	}
	return p
}

type transportFunc func(*http.Request) (*http.Response, error)

func (f transportFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// NewTransport returns the HTTP transport the gateway uses upstream: many
// idle connections per host (a gateway talks to few hosts a lot) and no
// overall timeout, since an LLM response can take minutes.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Match returns the route for path and the upstream path, or false.
func (p *Proxy) match(path string) (*route, string, bool) {
	for _, rt := range p.routes {
		if rest, ok := strings.CutPrefix(path, rt.Prefix); ok && (rest == "" || rest[0] == '/') {
			return rt, rest, true
		}
	}
	return nil, "", false
}

// Wait blocks until every call being served has returned (and so has
// submitted its completion), or ctx ends. Call it after the HTTP server
// has stopped, before closing the ledger writer.
func (p *Proxy) Wait(ctx context.Context) error {
	p.shutdownWebSockets(ctx)
	done := make(chan struct{})
	go func() {
		p.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Handles reports whether path belongs to one of the proxy's routes.
func (p *Proxy) Handles(path string) bool {
	_, _, ok := p.match(path)
	return ok
}

func (rt *route) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(rt.Upstream)
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	for name := range pr.Out.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-tokenmeter-") {
			delete(pr.Out.Header, name)
		}
	}
	if c, _ := pr.In.Context().Value(ctxKey{}).(*call); c != nil && c.virtual {
		// The virtual key stops here: the upstream gets the provider's.
		setCredential(pr.Out.Header, rt.Wire, c.upstreamCred)
	}
	// Let the transport negotiate compression and decode it, so the meter
	// reads plain bytes; the client receives the decoded body.
	pr.Out.Header.Del("Accept-Encoding")
}

type ctxKey struct{}

// ServeHTTP meters and forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, rest, ok := p.match(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	p.active.Add(1)
	defer p.active.Done()
	start := p.Now()
	c := &call{p: p, rt: rt, start: start, id: newID(), ctx: r.Context()}
	// Admission (admit.go): the path, the in-flight cap, the credential and
	// the request body; refused requests are answered there.
	in, ok := p.admit(w, r, c, rest)
	if !ok {
		return
	}
	defer in.done()
	if isWebSocket(r) {
		// A connection holds its in-flight slot for as long as it lasts.
		p.serveWebSocket(w, r, c, in.url)
		return
	}
	body := in.body
	rest = in.rest
	c.prepare(r, rest, &body)
	if c.badRequest != "" {
		c.refuse(w, http.StatusBadRequest, c.badRequest)
		return
	}
	if p.Limits != nil && !p.reserve(w, c, &body) {
		return
	}

	c.started = p.rec.Submit(c.event(tokenmeter.KindStarted))
	if p.Durability == DurabilityStrict || !p.rec.Healthy() {
		// Wait for the commit itself, not for the client: a client that
		// leaves now must not be mistaken for a ledger failure.
		if err := c.started.Wait(context.Background()); err != nil && !p.FailOpen {
			c.ledgerDown(w, err)
			return
		}
		if r.Context().Err() != nil {
			c.clientClosed(w, "client disconnected before the request was forwarded")
			return
		}
	}

	// ReverseProxy clones the request it forwards, so a shallow copy with
	// its own URL is enough here.
	out := r.WithContext(context.WithValue(r.Context(), ctxKey{}, c))
	out.URL = in.url // rest, the client's escaping kept; no virtual key
	out.Header.Del("Content-Length")
	if c.dropEncoding {
		out.Header.Del("Content-Encoding")
	}
	if len(body) == 0 {
		// No body: send none, not an empty chunked one (a GET with a body
		// is refused by some upstreams).
		out.Body, out.ContentLength = http.NoBody, 0
	} else {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
	}
	defer func() {
		if !c.done {
			// Neither the body nor the error handler finished the call: the
			// handler is unwinding (client gone mid-copy).
			c.finish(tokenmeter.OutcomeCancelled, "client disconnected", false)
		}
	}()
	rt.rp.ServeHTTP(w, out)
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	c, _ := resp.Request.Context().Value(ctxKey{}).(*call)
	if c == nil {
		return nil
	}
	c.status = resp.StatusCode
	c.ttfb = p.Now().Sub(c.start)
	if p.Metrics != nil {
		p.Metrics.FirstByte(c.rt.Name, c.ttfb)
	}
	c.upstreamID = resp.Header.Get("Request-Id")
	if c.upstreamID == "" {
		c.upstreamID = resp.Header.Get("X-Request-Id")
	}
	p.observe(c, resp)
	// The commit is bounded by the store's busy timeout; waiting on the
	// client's context instead would turn a client leaving into a false
	// ledger failure and leave the call open.
	if err := c.started.Wait(context.Background()); err != nil && !p.FailOpen {
		return &ledgerError{err: err}
	}
	resp.Header.Set(HeaderRequestID, c.id)
	limitHeaders(resp.Header, c.limit, c.keyScope())
	sse := strings.HasPrefix(strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Type"))), "text/event-stream")
	resp.Body = newMeteredBody(resp.Body, c, sse)
	return nil
}

type ledgerError struct{ err error }

func (e *ledgerError) Error() string { return "ledger unavailable: " + e.err.Error() }
func (e *ledgerError) Unwrap() error { return e.err }

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	c, _ := r.Context().Value(ctxKey{}).(*call)
	if c == nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	var le *ledgerError
	switch {
	case errors.As(err, &le):
		p.log.Error("response not relayed: the ledger could not record the call", "provider", c.rt.Name, "request", c.id, "err", le.err)
		c.done = true
		c.release()
		c.writeError(w, http.StatusServiceUnavailable, "tokenmeter: the usage ledger cannot record right now, so the response was not relayed")
	case r.Context().Err() != nil:
		c.clientClosed(w, "client disconnected before the upstream answered")
	default:
		c.status = http.StatusBadGateway
		c.finish(tokenmeter.OutcomeFailed, "upstream unreachable: "+err.Error(), true)
		p.log.Warn("upstream request failed", "provider", c.rt.Name, "request", c.id, "err", err)
		c.writeError(w, http.StatusBadGateway, "tokenmeter: the upstream could not be reached")
	}
}

// newID returns a gateway request id: the time in microseconds, then 64
// random bits. Ids made later sort later, so the ledger's key index grows at
// its right edge instead of taking inserts all over a large B-tree.
func newID() string {
	var b [8 + 8]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMicro()))
	rand.Read(b[8:])
	return "tmr_" + hex.EncodeToString(b[:])
}

// CredentialHash returns the principal recorded for a pass-through
// credential: "cred:" and the first 16 hex digits of its SHA-256.
func CredentialHash(cred string) string { return tokenmeter.CredentialID(cred) }

// principal derives the caller's identity from its credential headers:
// the hash of the credential (see credentialSecret), or "" without one.
func principal(h http.Header) string {
	if secret := credentialSecret(h); secret != "" {
		return CredentialHash(secret)
	}
	return ""
}

// cleanLabel bounds a client-supplied label (project, tags) to printable
// text of reasonable length.
func cleanLabel(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// meter is what the proxy needs from a provider's response meter.
type meter interface {
	Frame(ev sse.Event) (terminal, drop bool)
	Body(b []byte)
	Usage() (u tokenmeter.Usage, raw []byte, known bool)
	Model() string
	Complete() bool
	ErrorReason() string
	Malformed() string
}

var (
	_ meter = (*anthropic.Meter)(nil)
	_ meter = (*openai.Meter)(nil)
)
