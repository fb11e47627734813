package fakeupstream

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// Defaults and limits of the fake.
const (
	// DefaultOutputTokens is the number of reply words when the request
	// has no output directive.
	DefaultOutputTokens = 12
	// DefaultFaultAfter is the number of stream events sent before a fault
	// when the request has no after directive.
	DefaultFaultAfter = 2
	// DefaultRetryAfter is the retry-after of an injected 429, in seconds.
	DefaultRetryAfter = 1

	// DefaultRequestsPerMinute, DefaultInputTokensPerMinute and
	// DefaultOutputTokensPerMinute are the rate limits advertised in the
	// rate-limit headers. The token limit is the sum of the input and output
	// limits.
	DefaultRequestsPerMinute     = 4000
	DefaultInputTokensPerMinute  = 2_000_000
	DefaultOutputTokensPerMinute = 400_000

	// MaxBodyBytes is the largest request body accepted (Anthropic's limit);
	// a larger one gets 413.
	MaxBodyBytes = 32 << 20
	// MaxOutputTokens is the largest output directive accepted.
	MaxOutputTokens = 100_000

	// DefaultBackgroundDelay is the time a background response takes from
	// create to completion (queued for the first half, in progress for the
	// second) when the request has no background_delay directive;
	// MaxBackgroundDelay is the largest background_delay honoured.
	DefaultBackgroundDelay = 100 * time.Millisecond
	MaxBackgroundDelay     = 10 * time.Minute
)

// Options configures a Server. The zero value is ready to use.
type Options struct {
	// Now is the clock for timestamps and rate-limit windows; default
	// time.Now. Sleeps (ttfb, delay) always use real time.
	Now func() time.Time
	// Logger receives one line per request; nil discards. Credentials
	// are never logged.
	Logger *slog.Logger
	// Observe, if set, is called once for every request, after it was
	// served (also when it was cut or the client went away), on the
	// request's goroutine. It must be safe for concurrent use.
	Observe func(Call)

	// RequestsPerMinute, InputTokensPerMinute and OutputTokensPerMinute are
	// the limits advertised in rate-limit headers; zero means the Default*
	// constant.
	RequestsPerMinute     int64
	InputTokensPerMinute  int64
	OutputTokensPerMinute int64

	// Scenario is the rate-limit scenario of requests that name none (see
	// scenario.go); empty means none.
	Scenario string

	// BillingWindow is the number of billing entries kept (see
	// billing.go); zero means DefaultBillingWindow.
	BillingWindow int
}

// Call is what the fake answered to one request, as Options.Observe sees
// it.
type Call struct {
	Method string
	Path   string // without the query
	// Provider is "anthropic" or "openai": the shape of the answer.
	Provider string
	// RequestID is the request id the response carried (request-id or
	// x-request-id).
	RequestID string
	// Model is the request's on the three reply routes, empty when the
	// request was refused before its reply was planned (a bad body, an
	// injected status). Stream reports that an event stream was sent.
	Model  string
	Stream bool
	// Status is the HTTP status sent; 0 if the client went away before
	// the headers.
	Status int
	// Usage is the usage of the reply the fake planned (ExpectedUsage's
	// figures), as the response reports it when nothing is injected:
	// faults and delays do not change it, an error status zeroes it. It
	// is zero on the routes that are not metered.
	Usage tokenmeter.Usage
	// Fault is the fault directive, if any.
	Fault string

	// Billed is what the call billed (see billing.go): for a stream the
	// client left, its input and the output generated until then; zero for
	// errors and for the create call of a background response, whose work
	// is billed in its own entry when it ends. BillSeq is the Seq of the
	// call's entry in the billing account, 0 on routes that do not bill.
	Billed  tokenmeter.Usage
	BillSeq int64
	// ResponseID is the response id of a Responses call ("resp_...");
	// Background reports that it created a background response.
	ResponseID string
	Background bool
}

// Server is the fake upstream. It implements http.Handler and is safe for
// concurrent use. It starts no goroutines and needs no Close.
type Server struct {
	now      func() time.Time
	log      *slog.Logger
	observe  func(Call)
	mux      *http.ServeMux
	limits   *limiter
	scen     *scenarios
	instance string // random per Server, so ids never repeat across instances
	requests atomic.Int64
	admin    admin // what was served, for the admin reports (admin.go)
	billing  *billing
	bg       *backgroundJobs // background responses (background.go)
}

// New returns a Server configured by opts.
func New(opts Options) *Server {
	s := &Server{
		now:     opts.Now,
		log:     opts.Logger,
		observe: opts.Observe,
		limits: newLimiter(
			orDefault(opts.RequestsPerMinute, DefaultRequestsPerMinute),
			orDefault(opts.InputTokensPerMinute, DefaultInputTokensPerMinute),
			orDefault(opts.OutputTokensPerMinute, DefaultOutputTokensPerMinute),
		),
	}
	s.scen = newScenarios(opts.Scenario)
	s.billing = newBilling(opts.BillingWindow)
	s.bg = newBackgroundJobs()
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	s.instance = hex.EncodeToString(b[:])
	s.mux = s.routes()
	return s
}

func orDefault(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}

// routes lists every route of the fake; handleBilled marks those that bill
// (see billing.go).
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/messages", s.handleBilled(providerAnthropic, s.handleMessages))
	mux.Handle("POST /v1/messages/count_tokens", s.handle(providerAnthropic, s.handleCountTokens))
	mux.Handle("GET /v1/models", s.handle(providerByHeader, s.handleModels))
	mux.Handle("GET /api/hello", s.handle(providerAnthropic, s.handleHello))
	mux.Handle("POST /v1/chat/completions", s.handleBilled(providerOpenAI, s.handleChatCompletions))
	mux.Handle("POST /v1/responses", s.handleBilled(providerOpenAI, s.handleResponses))
	mux.Handle("GET /v1/responses/{id}", s.handle(providerOpenAI, s.handleGetResponse))
	mux.Handle("POST /v1/responses/{id}/cancel", s.handle(providerOpenAI, s.handleCancelResponse))
	mux.Handle("POST /v1/completions", s.handleBilled(providerOpenAI, s.handleCompletions))
	mux.Handle("POST /v1/embeddings", s.handleBilled(providerOpenAI, s.handleEmbeddings))
	for path, sp := range standIns {
		mux.Handle("POST "+path, s.handleBilled(providerOpenAI, s.handleStandIn(sp)))
	}
	mux.Handle("GET "+BillingPath, http.HandlerFunc(s.handleBilling))
	s.adminRoutes(mux)
	for _, extra := range extraRoutes {
		extra(s, mux)
	}
	mux.Handle("/", s.handle(providerByRoute, s.handleNotFound))
	return mux
}

// extraRoutes register routes kept in their own files, such as another
// transport of the Responses API (a WebSocket at GET /v1/responses): a
// file appends to it from an init function. Each is called once per
// Server, after the routes above and before the catch-all 404.
var extraRoutes []func(s *Server, mux *http.ServeMux)

// ServeHTTP answers r as the provider its path names. A request with
// fault=cut panics with http.ErrAbortHandler, which net/http handles.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Requests returns the number of requests served so far.
func (s *Server) Requests() int64 { return s.requests.Load() }

type provider int

const (
	providerAnthropic provider = iota
	providerOpenAI
	// providerByHeader is Anthropic if the request has an anthropic-version
	// header, OpenAI otherwise.
	providerByHeader
	// providerByRoute is also Anthropic for paths under /v1/messages.
	providerByRoute
)

func (p provider) String() string {
	if p == providerAnthropic {
		return "anthropic"
	}
	return "openai"
}

func resolveProvider(p provider, r *http.Request) provider {
	switch p {
	case providerByRoute:
		if strings.HasPrefix(r.URL.Path, "/v1/messages") {
			return providerAnthropic
		}
		fallthrough
	case providerByHeader:
		if r.Header.Get("anthropic-version") != "" {
			return providerAnthropic
		}
		return providerOpenAI
	}
	return p
}

// call is the state of one request as it is served.
type call struct {
	provider  provider
	start     time.Time
	id        string // suffix shared by the request id and the object ids
	body      []byte
	dir       directives
	principal string // rate-limit key: provider and a hash of the credential
	// inputTokens and outputTokens are charged to the rate-limit counters
	// when the headers are written.
	inputTokens, outputTokens int64
	status                    int // 0 until the headers are written
	stream                    bool
	// model and usage are those of the planned reply (reply routes only):
	// usage as the reply reports it.
	model string
	usage tokenmeter.Usage
	req   *http.Request // for the admin reports (admin.go)

	// Billing (billing.go): billable marks a billing route; planned is set
	// once the reply is accepted, with billPlan what it bills if served in
	// full; generated is the output generated by the stream events sent.
	billable  bool
	planned   bool
	billPlan  tokenmeter.Usage
	generated int64
	// background marks the create call of a background response;
	// responseID is a Responses call's response id.
	background bool
	responseID string
	// recorded is set when the admin reports counted c (admin.go).
	recorded bool
	// tier caches serviceTier.
	tier *string
}

// serviceTier is the service tier an OpenAI reply names (service_tier):
// the one the request asks for (flex, priority, fast, ultrafast, scale,
// as written), "default" for auto, default or none. Costs in the admin
// reports and the billing account are priced at it, as the provider does.
func (c *call) serviceTier() string {
	if c.tier != nil {
		return *c.tier
	}
	tier := "default"
	var v struct {
		ServiceTier string `json:"service_tier"`
	}
	if json.Unmarshal(c.body, &v) == nil {
		switch t := strings.ToLower(v.ServiceTier); t {
		case "flex", "priority", "fast", "ultrafast", "scale":
			tier = t
		}
	}
	c.tier = &tier
	return tier
}

// tierPtr returns c's service tier, read, for a copy of c.
func (c *call) tierPtr() *string {
	t := c.serviceTier()
	return &t
}

// plan records rp as the reply c answers with, what it bills, and the
// tokens it charges to the rate-limit counters.
func (c *call) plan(rp reply, inputTokens int64) {
	c.model, c.usage = rp.model, rp.usage()
	c.inputTokens, c.outputTokens = inputTokens, rp.output()
	c.planned, c.billPlan = true, c.usage
}

func (c *call) requestID() string { return "req_" + c.id }

// handlerFunc serves one route. It returns an *apiError to answer with an
// error, or another error when the client went away.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// handle adapts h, a route that bills nothing: see serve.
func (s *Server) handle(p provider, h handlerFunc) http.Handler { return s.serve(p, false, h) }

// handleBilled adapts h, a route that bills: see serve.
func (s *Server) handleBilled(p provider, h handlerFunc) http.Handler { return s.serve(p, true, h) }

// serve adapts h: it counts the request, reads and decodes the body,
// parses directives, answers injected statuses, turns h's error into a
// response, and when the call ends bills it if billable (finish).
func (s *Server) serve(p provider, billable bool, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		n := s.requests.Add(1)
		c := &call{provider: resolveProvider(p, r), start: s.now(), billable: billable}
		c.principal = c.provider.String() + ":" + credentialHash(r)
		c.req = r
		// Deferred, so that calls cut with http.ErrAbortHandler are billed
		// and observed too.
		defer s.finish(r, c)
		body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		c.id = s.newID(n, body)

		err := readErr
		var tooLarge *http.MaxBytesError
		if errors.As(readErr, &tooLarge) {
			err = &apiError{status: http.StatusRequestEntityTooLarge, message: fmt.Sprintf("request body exceeds %d bytes", tooLarge.Limit)}
		}
		if err == nil {
			if body, err = DecodeBody(r.Header.Get("Content-Encoding"), body); err != nil {
				err = decodeError(err)
			}
		}
		c.body = body
		if err == nil {
			c.dir, err = parseDirectives(r.Header.Values(DirectiveHeader), body)
		}
		if err == nil {
			if c.dir.status != 0 {
				err = s.injectedStatus(r.Context(), c)
			} else {
				err = h(w, r, c)
			}
		}

		var ae *apiError
		switch {
		case err == nil:
		case errors.As(err, &ae) && c.status == 0:
			s.writeError(w, c, ae)
		default:
			s.log.Info("request aborted", "method", r.Method, "path", r.URL.Path, "request_id", c.requestID(), "err", err)
			return
		}
		s.log.Info("request served",
			"method", r.Method, "path", r.URL.Path, "provider", c.provider.String(),
			"status", c.status, "model", c.model, "stream", c.stream, "request_id", c.requestID(),
			"input_tokens", c.usage.InputTokens, "output_tokens", c.usage.OutputTokens,
			"fault", c.dir.fault, "duration", time.Since(began))
	})
}

// finish bills c if c.billable, corrects the admin reports to what it
// billed, and calls Observe. serve calls it when the request ends; a
// transport that serves several calls on one request (a WebSocket) calls
// it once per call, having set c.billable, planned the reply (c.plan) and
// kept c.generated up to date as it sent the stream's frames.
func (s *Server) finish(r *http.Request, c *call) {
	billed := c.billedUsage()
	var seq int64
	if c.billable {
		seq = s.billing.add(Bill{
			Kind: BillCall, CallID: c.requestID(), Time: c.start,
			Method: r.Method, Path: r.URL.Path, Provider: c.provider.String(), Model: c.model,
			Status: c.status, Stream: c.stream, Background: c.background, ResponseID: c.responseID,
			Planned: c.billPlan, Billed: billed, Stopped: c.stopped(billed), ServiceTier: c.tierOf(),
		})
	}
	if c.recorded && billed != c.usage {
		s.correct(c, billed)
	}
	if s.observe != nil {
		s.observe(Call{
			Method: r.Method, Path: r.URL.Path, Provider: c.provider.String(),
			RequestID: c.requestID(), Model: c.model, Stream: c.stream,
			Status: c.status, Usage: c.usage, Fault: c.dir.fault,
			Billed: billed, BillSeq: seq, ResponseID: c.responseID, Background: c.background,
		})
	}
}

// stopped reports whether c, served, billed less output than planned: a
// stream that the client left or a fault ended.
func (c *call) stopped(billed tokenmeter.Usage) bool {
	return c.planned && !c.background && (c.status == http.StatusOK || c.status == 0) &&
		billed.OutputTokens < c.billPlan.OutputTokens
}

// newID returns a 24-hex-digit id suffix unique to this request: the server
// instance, the request number and a hash of the body.
func (s *Server) newID(n int64, body []byte) string {
	h := fnv.New32a()
	h.Write(body)
	return fmt.Sprintf("%s%08x%08x", s.instance, uint32(n), h.Sum32())
}

// credentialHash returns a short hash of the request's credential, so that
// rate-limit counters are kept per credential without holding it.
func credentialHash(r *http.Request) string {
	cred := r.Header.Get("x-api-key")
	if cred == "" {
		cred = r.Header.Get("Authorization")
	}
	if cred == "" {
		return "none"
	}
	sum := sha256.Sum256([]byte(cred))
	return hex.EncodeToString(sum[:8])
}

// injectedStatus answers the status directive, after the ttfb and delay
// directives.
func (s *Server) injectedStatus(ctx context.Context, c *call) error {
	if err := sleep(ctx, c.dir.ttfb+c.dir.delay); err != nil {
		return err
	}
	return &apiError{status: c.dir.status}
}

// handleHello serves GET (and HEAD) /api/hello, the connectivity check
// Claude Code sends to its base URL at start-up to open a connection early
// (not when CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC is set). It answers
// 200 with an empty JSON object.
func (s *Server) handleHello(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := sleep(r.Context(), c.dir.ttfb+c.dir.delay); err != nil {
		return err
	}
	s.writeJSON(w, c, http.StatusOK, struct{}{})
	return nil
}

// handleNotFound answers every path that is not a route.
func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request, c *call) error {
	msg := "Not found: " + r.Method + " " + r.URL.Path
	if c.provider == providerOpenAI {
		msg = "Invalid URL (" + r.Method + " " + r.URL.Path + ")"
	}
	return &apiError{status: http.StatusNotFound, message: msg}
}

// writeHeader sets the headers every response carries (request id,
// rate-limit headers, content type) and writes the status.
func (s *Server) writeHeader(w http.ResponseWriter, c *call, status int, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	q := s.limits.take(c.principal, s.now(), c.inputTokens, c.outputTokens)
	if c.provider == providerAnthropic {
		h.Set("request-id", c.requestID())
		q.setAnthropic(h)
	} else {
		h.Set("x-request-id", c.requestID())
		h.Set("openai-version", "2020-10-01")
		h.Set("openai-processing-ms", strconv.FormatInt(s.now().Sub(c.start).Milliseconds(), 10))
		q.setOpenAI(h, s.now())
	}
	s.scen.apply(h, c, s.now())
	c.status = status
	s.record(c) // before the client can see the reply, so admin reports include it
	w.WriteHeader(status)
}

// writeJSON writes v as a complete JSON response.
func (s *Server) writeJSON(w http.ResponseWriter, c *call, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakeupstream: marshal %T: %v", v, err)) // our own types always marshal
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	s.writeHeader(w, c, status, "application/json")
	_, _ = w.Write(body) // a failed write means the client went away; nothing to do
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
