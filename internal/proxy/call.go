package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/anthropic"
	"github.com/tokenmeter/tokenmeter/internal/estimate"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/openai"
	"github.com/tokenmeter/tokenmeter/internal/reqbody"
)

// call is the state of one proxied request. It is used by the handler
// goroutine only (ReverseProxy reads and closes the body on the goroutine
// that serves the request), so it needs no locking.
type call struct {
	p     *Proxy
	rt    *route
	id    string
	start time.Time
	ctx   context.Context // the client's request context

	endpoint  string
	model     string
	stream    bool
	principal string
	project   string
	// virtual says the request carried a valid virtual key: principal is
	// "key:NAME", keyProject the key's project, and upstreamCred the
	// provider credential sent in place of the key.
	virtual      bool
	keyProject   string
	upstreamCred string
	tags         string
	session      string
	// metered says the endpoint reports usage; other endpoints (models,
	// count_tokens) are counted as requests with zero usage.
	metered bool
	// billable: a POST whose usage the gateway cannot read (batches,
	// embeddings, legacy completions): hard limits cannot be held for it.
	billable bool
	meter    meter
	reason   string // why usage cannot be read, known before the response
	// stripNullUsage: the gateway added include_usage to an OpenAI chat
	// stream, so the usage members it causes are removed from the chunks.
	stripNullUsage bool
	// maxOutput is the request's max_tokens (or OpenAI's equivalents); 0 if
	// absent. noOutput says the endpoint writes no output tokens
	// (embeddings), so none are reserved.
	maxOutput int64
	noOutput  bool
	// choices multiplies the output bound (OpenAI's n, best_of).
	choices int64
	// encoded says the client's body is not what the meter read (it was
	// compressed, or had a BOM, or was UTF-16); dropEncoding that the
	// gateway rewrote it and forwards the decoded JSON without its
	// Content-Encoding. badRequest, when set, is answered with 400 before
	// anything is recorded or forwarded.
	encoded, dropEncoding bool
	badRequest            string
	// limit is the outcome of hard-limit enforcement; limit.Reserved says
	// a reservation awaits the call's completed event.
	limit limits.Decision
	// reserved and reservedCost are the worst case reserved under hard
	// limits (zero when none applied): a call that ends without known
	// usage keeps charging it (tokenmeter.Hold).
	reserved     tokenmeter.Usage
	reservedCost tokenmeter.Micros
	// unbounded says why the request's cost cannot be bounded before it is
	// forwarded (a background response, a body that cannot be read): it is
	// refused while a hard limit applies, metered as far as possible
	// otherwise.
	unbounded string
	// plainBody is the request body as the meter reads it (decoded), kept
	// for the input estimate of a call cut before the provider's usage.
	plainBody []byte
	// poll is the id of the OpenAI response a GET /v1/responses/{id}
	// reads: once it shows the response's final usage, that settles the
	// (background) call that created it.
	poll string
	// background says the request created an OpenAI background response:
	// its create call shows no usage; the work is billed when it ends.
	background bool
	// tier is the service tier the request asks for (OpenAI); hard limits
	// reserve the worst case at its rate.
	tier string

	started    *ledger.Pending
	progressed bool
	status     int
	ttfb       time.Duration
	upstreamID string
	done       bool
}

// prepare reads what the ledger needs from the request and, for OpenAI chat
// streams without usage, asks upstream for it by rewriting *body.
func (c *call) prepare(r *http.Request, path string, body *[]byte) {
	c.endpoint = path
	if !c.virtual {
		c.principal = principal(r.Header)
	}
	c.project = cleanLabel(r.Header.Get(HeaderProject))
	if c.keyProject != "" {
		// A key's project is fixed: its holder cannot book calls elsewhere.
		c.project = c.keyProject
	}
	c.tags = cleanLabel(r.Header.Get(HeaderTags))
	c.session = cleanLabel(r.Header.Get(HeaderSession))
	if c.session == "" {
		c.session = cleanLabel(r.Header.Get(HeaderClaudeSession))
	}
	post := r.Method == http.MethodPost
	defer func() {
		c.billable = post && !c.metered && !freeEndpoint(path)
		if c.metered && c.reason == "" && c.model == "" {
			c.unbounded = "the request names no model"
		}
	}()
	unreadable := func(err error) {
		c.reason = "request body unreadable: " + err.Error()
		c.unbounded = "the gateway cannot read the request body"
		if errors.Is(err, anthropic.ErrModelTooLong) || errors.Is(err, openai.ErrModelTooLong) {
			c.badRequest = err.Error()
		}
	}
	// The meter reads the body decoded (Content-Encoding, a BOM, UTF-16);
	// the upstream gets it as the client sent it.
	plain, err := reqbody.Decode(r.Header, *body, c.p.MaxRequestBody)
	if err != nil {
		plain = nil
	}
	c.plainBody, c.encoded = plain, len(*body) > 0 && (len(plain) != len(*body) || &plain[0] != &(*body)[0])
	if err != nil && post {
		unreadable(err)
	}
	switch c.rt.Wire {
	case Anthropic:
		c.meter = anthropic.NewMeter()
		if post && path == "/v1/messages" {
			c.metered = true
			if c.reason != "" {
				return
			}
			req, err := anthropic.ParseRequest(c.plainBody)
			if err != nil {
				unreadable(err)
				return
			}
			c.model, c.stream, c.maxOutput = req.Model, req.Stream, req.MaxTokens
		}
	case OpenAI:
		api, kind := openai.APIForPath(path), openAIKind(path)
		strip := false
		if id, ok := polledResponse(r.Method, path); ok {
			c.poll, api = id, openai.Responses
		}
		if post && (api != openai.Other || kind != "") {
			c.metered = true
			parseAs := api
			switch kind {
			case "completions":
				parseAs = openai.Completions
			case "embeddings":
				// Embeddings report usage as chat does (prompt_tokens).
				parseAs = openai.Chat
			}
			var req openai.Request
			var err error
			if c.reason == "" {
				req, err = openai.ParseRequest(parseAs, c.plainBody)
			}
			if err != nil {
				unreadable(err)
			} else if c.reason == "" {
				c.model, c.stream, c.maxOutput, c.choices = req.Model, req.Stream, req.MaxTokens, max(req.Choices, 1)
				if kind == "embeddings" {
					c.noOutput = true
				}
				if kind == "completions" && req.MaxTokens == 0 {
					c.unbounded = "a legacy completion without max_tokens"
				}
				c.tier = req.ServiceTier
				if req.Background {
					c.background = true
					c.unbounded = "background: true (its work is billed after the create call returns)"
				}
				if (api == openai.Chat || kind == "completions") && req.Stream && !req.IncludeUsage {
					if c.rewriteBody(body, openai.InjectIncludeUsage) {
						strip, c.stripNullUsage = true, true
					}
				}
			}
			if parseAs != openai.Responses {
				api = openai.Chat // the meter reads every other usage as chat's
			}
		}
		c.meter = openai.NewMeter(api, strip)
	}
}

// polledResponse returns the response id that a GET of
// /v1/responses/{id} reads.
func polledResponse(method, path string) (string, bool) {
	id, ok := strings.CutPrefix(path, "/v1/responses/")
	if method != http.MethodGet || !ok || id == "" || strings.Contains(id, "/") || len(id) > 200 {
		return "", false
	}
	return id, true
}

// rewriteBody replaces the body forwarded upstream by f of the decoded
// body, and reports whether it did. A body the client had compressed is
// then forwarded decoded, without its Content-Encoding (the gateway
// rewrites JSON, not compressed streams).
func (c *call) rewriteBody(body *[]byte, f func([]byte) ([]byte, error)) bool {
	nb, err := f(c.plainBody)
	if err != nil {
		return false
	}
	*body, c.plainBody = nb, nb
	if c.encoded {
		c.dropEncoding = true
	}
	return true
}

// openAIKind names the OpenAI endpoints outside Chat Completions and
// Responses that report usage as Chat Completions does: "completions"
// (legacy) and "embeddings"; "" for the rest.
func openAIKind(path string) string {
	switch strings.TrimSuffix(path, "/") {
	case "/v1/completions":
		return "completions"
	case "/v1/embeddings":
		return "embeddings"
	}
	return ""
}

// event returns an event of kind for this call with what is known now.
// Started and progress events carry the worst case reserved under hard
// limits as their Hold (they add nothing to any sum), so recovery after a
// crash keeps charging it.
func (c *call) event(kind tokenmeter.Kind) tokenmeter.Event {
	var hold tokenmeter.Hold
	if kind != tokenmeter.KindCompleted && c.limit.Reserved {
		hold = tokenmeter.HoldFor(c.reserved, c.reservedCost, tokenmeter.Usage{}, 0)
	}
	return tokenmeter.Event{
		Hold:              hold,
		Key:               tokenmeter.EventKey(c.id, kind),
		RequestKey:        c.id,
		Kind:              kind,
		Time:              c.p.Now(),
		Source:            tokenmeter.SourceProxy,
		Instance:          c.p.Instance,
		Provider:          c.rt.Name,
		Endpoint:          c.endpoint,
		Model:             c.model,
		Stream:            c.stream,
		Principal:         c.principal,
		Project:           c.project,
		Session:           c.session,
		Tags:              c.tags,
		UpstreamRequestID: c.upstreamID,
		Status:            c.status,
	}
}

// progress records, without waiting, what a stream has revealed so far:
// after Anthropic's message_start, the input and cache tokens.
func (c *call) progress() {
	if c.progressed {
		return
	}
	c.progressed = true
	ev := c.event(tokenmeter.KindProgress)
	if m := c.meter.Model(); m != "" {
		ev.Model = m
	}
	ev.Usage, ev.RawUsage, ev.UsageKnown = c.meter.Usage()
	c.p.rec.Submit(ev)
}

// finish records the completed event once. With wait it blocks until the
// record is durable; it returns the ledger's error, if any.
func (c *call) finish(outcome tokenmeter.Outcome, reason string, wait bool) error {
	if c.done {
		return nil
	}
	c.done = true
	now := c.p.Now()
	ev := c.event(tokenmeter.KindCompleted)
	ev.Time = now
	ev.Latency = now.Sub(c.start)
	ev.TTFB = c.ttfb
	if c.meter != nil {
		switch m := c.meter.Model(); {
		case m == "":
			// No model in the response: the requested one, by the name
			// model: limits match (an alias would not match their scope).
			ev.Model = c.recordedName(c.model)
		case !c.sameModel(m) && c.limit.Reserved:
			// Limits were checked, and the worst case reserved, against the
			// requested model: the call is charged there too.
			ev.Model = c.recordedName(c.model)
			reason = joinReason(reason, "served by model "+strconvQuote(m)+", recorded as the requested model")
		default:
			ev.Model = c.recordedName(m)
		}
		// The tier that served the call prices it (OpenAI's service_tier).
		if t, ok := c.meter.(interface{ ServiceTier() string }); ok {
			ev.ServiceTier = t.ServiceTier()
		}
		// An error the upstream reported (an error body or an in-stream
		// error event) explains the end better than the stream's cut.
		if er := c.meter.ErrorReason(); er != "" {
			if outcome == tokenmeter.OutcomeOK || outcome == tokenmeter.OutcomeFailed {
				outcome, reason = tokenmeter.OutcomeError, er
			} else if reason == "" {
				reason = er
			}
		}
	}
	if outcome == tokenmeter.OutcomeOK && c.status >= 400 {
		outcome = tokenmeter.OutcomeError
	}
	ev.Outcome, ev.Reason = outcome, reason
	c.recordUsage(&ev)
	if c.p.log.Enabled(context.Background(), slog.LevelDebug) {
		c.p.log.Debug("call completed", "request", c.id, "provider", ev.Provider, "model", ev.Model,
			"principal", ev.Principal, "status", ev.Status, "outcome", ev.Outcome, "reason", ev.Reason,
			"input", ev.Usage.InputTokens, "output", ev.Usage.OutputTokens, "latency", ev.Latency)
	}
	pend := c.p.rec.Submit(ev)
	if c.p.Metrics != nil {
		c.p.Metrics.Completed(&ev)
	}
	if !wait {
		return nil
	}
	return pend.Wait(context.Background())
}

// canonical returns the canonical name of model (see Proxy.CanonicalModel).
func (c *call) canonical(model string) string {
	if c.p.CanonicalModel == nil || model == "" {
		return model
	}
	return c.p.CanonicalModel(model)
}

// recordedName returns the name a call of model m is recorded under: m,
// unless m is an alias that tokenmeter.ModelBase cannot tie to its model
// (claude-opus-4-0, claude-3-7-sonnet-latest: some upstreams answer with
// the alias the request named), which is recorded by its canonical name,
// so that model: limits, reports and reconciliation, which match names
// through ModelBase, count it with its model's snapshots.
func (c *call) recordedName(m string) string {
	canon := c.canonical(m)
	if canon != m && tokenmeter.ModelBase(m) != tokenmeter.ModelBase(canon) {
		return canon
	}
	return m
}

// sameModel reports whether the response's model m is the requested one,
// or an alias or snapshot of it.
func (c *call) sameModel(m string) bool {
	if m == c.model || c.model == "" {
		return true
	}
	canon := c.p.CanonicalModel
	if canon == nil {
		canon = func(s string) string { return s }
	}
	return tokenmeter.ModelBase(canon(m)) == tokenmeter.ModelBase(canon(c.model))
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// strconvQuote quotes a model name from the wire for a message, bounded.
func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}

// recordUsage sets ev's usage, its state (known, estimated or unknown),
// cost and hold from what the call saw. The rule (G8): nothing billable is
// recorded as a known zero. Usage is known only when the provider's final
// figure was read in full, or the endpoint bills nothing, or the upstream
// answered with an error (which bills nothing). Otherwise what was read is
// kept as a floor, an estimate is made from what was relayed when there is
// a basis for one, and a call that reserved a worst case under hard limits
// keeps charging the excess of it (Hold) until a revision settles it.
func (c *call) recordUsage(ev *tokenmeter.Event) {
	addReason := func(why string) {
		if ev.Reason == "" {
			ev.Reason = "usage unknown: " + why
		} else {
			ev.Reason += "; usage unknown: " + why
		}
	}
	switch {
	case !c.metered && !c.billable:
		// Free endpoints (models, count_tokens, polling a response): a
		// request, no usage, once the upstream answered.
		ev.UsageKnown, ev.CostKnown = c.status != 0, c.status != 0
		if c.poll != "" {
			c.settlePoll(ev)
		}
	case !c.metered && c.status >= 400:
		ev.UsageKnown, ev.CostKnown = true, true // an error bills nothing
	case !c.metered:
		addReason("the gateway does not meter " + c.endpoint)
	default:
		c.recordMetered(ev, addReason)
	}
	if !ev.UsageKnown && c.limit.Reserved {
		ev.Hold = tokenmeter.HoldFor(c.reserved, c.reservedCost, ev.Usage, ev.Cost)
	}
}

// recordMetered is recordUsage for an endpoint the meter reads.
func (c *call) recordMetered(ev *tokenmeter.Event, addReason func(string)) {
	ev.Usage, ev.RawUsage, ev.UsageKnown = c.meter.Usage()
	if id := responseID(c.meter); id != "" {
		ev.ResponseID = id
	}
	why := c.reason
	if why == "" {
		why = c.meter.Malformed()
	}
	if why == "" && ev.UsageKnown && !c.meter.Complete() {
		why = "the response ended before its final usage"
	}
	if c.background && !ev.UsageKnown && c.status < 400 {
		// The create call of a background response: the work is billed
		// when it ends, which a later poll through the gateway settles.
		addReason("background response; its usage is recorded when it is read back (GET /v1/responses/" + responseID(c.meter) + ")")
		return
	}
	if why == "" && (c.status >= 400 || (!ev.UsageKnown && ev.Usage.IsZero() && c.meter.ErrorReason() != "" && !c.meterStarted())) {
		// An error response, or a stream that errs before the message
		// starts, bills nothing; what it said about usage, if anything,
		// is kept.
		ev.UsageKnown = true
	}
	if why != "" || !ev.UsageKnown {
		ev.UsageKnown = false
		if why == "" {
			why = "no usage in the response"
		}
		addReason(why)
		c.estimate(ev)
	}
	if (ev.UsageKnown || !ev.Usage.IsZero()) && c.p.Price != nil {
		// Known usage, an estimate, or the floor of what is known to have
		// been used.
		c.p.Price(ev)
	}
}

// estimate replaces ev's partial usage (what the meter read before the
// response ended) by an estimate when there is a basis for one: the input
// from Anthropic's message_start, or from the request body once the
// upstream has accepted the request; the output from what was relayed to
// the client. Counts the meter read are floors the estimate never goes
// below.
func (c *call) estimate(ev *tokenmeter.Event) {
	if c.status == 0 || c.status >= 400 {
		return // no response (or an error): nothing to estimate from
	}
	var basis []string
	u := ev.Usage
	if !c.meterStarted() && u.PromptTokens() == 0 {
		if n, b := estimateInput(ev.Model, c.plainBody); n > 0 {
			u.InputTokens, basis = n, append(basis, b)
		}
	} else if u.PromptTokens() > 0 {
		basis = append(basis, "input as reported before the end")
	}
	if r, ok := c.meter.(relayer); ok {
		if n, b := r.RelayedOutput(ev.Model); n > u.OutputTokens {
			u.OutputTokens, basis = n, append(basis, b)
		}
	}
	if len(basis) == 0 {
		return
	}
	ev.Usage = u
	ev.Estimate = strings.Join(basis, "; ")
}

// settlePoll hands the final usage a poll of an OpenAI response shows to
// the ledger (Proxy.Settle), as the response's own record: it settles the
// background call that created the response if the gateway recorded it
// without usage, and is skipped if the call's usage is known already; a
// response created elsewhere is recorded once, keyed by its id, however
// often it is polled. poll is the poll's own completed event.
func (c *call) settlePoll(poll *tokenmeter.Event) {
	if c.p.Settle == nil || c.status != http.StatusOK {
		return
	}
	u, raw, known := c.meter.Usage()
	if !known || !c.meter.Complete() || c.meter.Malformed() != "" {
		return // still queued or running, or unreadable
	}
	ev := *poll
	ev.RequestKey = "resp:" + c.poll
	ev.Key = tokenmeter.EventKey(ev.RequestKey, tokenmeter.KindCompleted)
	ev.Endpoint, ev.ResponseID, ev.UpstreamRequestID = "/v1/responses", c.poll, ""
	ev.Usage, ev.RawUsage, ev.UsageKnown, ev.Latency, ev.TTFB = u, raw, true, 0, 0
	ev.Reason = "usage read back from a poll of the response"
	ev.Cost, ev.CostKnown = 0, false
	if c.p.Price != nil {
		c.p.Price(&ev)
	}
	if err := c.p.Settle(context.Background(), ev); err != nil {
		c.p.log.Warn("the usage of a polled response was not recorded", "request", c.id, "response", c.poll, "err", err)
	}
}

// relayer is a meter that can estimate the output tokens a response has
// relayed to the client so far (text, thinking and tool input), with the
// basis of the estimate.
type relayer interface {
	RelayedOutput(model string) (tokens int64, basis string)
}

// responseID returns the provider's id of the response the meter read, if
// it knows one.
func responseID(m meter) string {
	switch m := m.(type) {
	case interface{ MessageID() string }:
		return m.MessageID()
	case interface{ ResponseID() string }:
		return m.ResponseID()
	}
	return ""
}

// estimateInput estimates the input tokens of a request body for model
// (see internal/estimate).
func estimateInput(model string, body []byte) (int64, string) {
	if len(body) == 0 {
		return 0, ""
	}
	e := estimate.Input(model, body)
	return e.Tokens, e.Basis
}

// prepareMeter gives the call the default meter of its wire if prepare did
// not choose one.
func (c *call) prepareMeter() {
	if c.meter != nil {
		return
	}
	if c.rt.Wire == Anthropic {
		c.meter = anthropic.NewMeter()
	} else {
		c.meter = openai.NewMeter(openai.Chat, false)
	}
}

// refuse answers the client without forwarding, recording nothing: the
// request never left the gateway.
func (c *call) refuse(w http.ResponseWriter, status int, msg string) {
	c.done = true
	c.writeError(w, status, "tokenmeter: "+msg)
}

func (c *call) ledgerDown(w http.ResponseWriter, err error) {
	c.done = true
	c.release()
	c.p.log.Error("request refused: the ledger cannot record", "provider", c.rt.Name, "request", c.id, "err", err)
	c.writeError(w, http.StatusServiceUnavailable, "tokenmeter: the usage ledger cannot record right now, so the request was not forwarded (see the gateway log; --on-ledger-error=fail-open forwards anyway)")
}

// writeError answers in the provider's own error shape.
// freeEndpoint reports whether a POST to path costs nothing: token
// counting and moderation.
func freeEndpoint(path string) bool {
	switch path {
	case "/v1/messages/count_tokens", "/v1/moderations", "/v1/responses/input_tokens":
		return true
	}
	// Cancelling a (background) response bills nothing by itself.
	if rest, ok := strings.CutPrefix(path, "/v1/responses/"); ok && strings.Count(rest, "/") == 1 && strings.HasSuffix(rest, "/cancel") {
		return true
	}
	return false
}

// StatusClientClosed answers a request whose client closed its side of
// the connection before the response (nginx's 499 "client closed
// request"): Go's HTTP server takes a TCP half-close as the client leaving
// and cancels the request (golang.org/issue/18527), so a client that
// half-closes after sending gets this, never an empty 200.
const StatusClientClosed = 499

// clientClosed records the call as cancelled, for why, and answers with
// StatusClientClosed: a client that half-closed is still reading, and one
// that left never sees it.
func (c *call) clientClosed(w http.ResponseWriter, why string) {
	c.finish(tokenmeter.OutcomeCancelled, why, false)
	c.writeError(w, StatusClientClosed, "tokenmeter: the client closed its side of the connection before the response ("+why+
		"); a TCP half-close counts as the client leaving, so the call was cancelled: keep the connection open until the response is read")
}

func (c *call) writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set(HeaderRequestID, c.id)
	if c.rt.Wire == Anthropic {
		typ := "api_error"
		switch status {
		case StatusClientClosed:
			typ = "invalid_request_error"
		case http.StatusUnauthorized:
			typ = "authentication_error"
		case http.StatusForbidden:
			typ = "permission_error"
		case http.StatusRequestEntityTooLarge:
			typ = "request_too_large"
		case http.StatusNotFound:
			typ = "not_found_error"
		case http.StatusBadRequest:
			typ = "invalid_request_error"
		case http.StatusTooManyRequests:
			typ = "rate_limit_error"
		}
		anthropic.WriteError(w, status, typ, msg)
		return
	}
	typ, code := "server_error", ""
	switch status {
	case StatusClientClosed:
		typ, code = "invalid_request_error", "client_closed_request"
	case http.StatusUnauthorized:
		typ, code = "invalid_request_error", "invalid_api_key"
	case http.StatusForbidden:
		typ, code = "invalid_request_error", "unmetered_endpoint"
	case http.StatusRequestEntityTooLarge:
		typ, code = "invalid_request_error", "request_too_large"
	case http.StatusNotFound:
		typ = "invalid_request_error"
	case http.StatusTooManyRequests:
		typ, code = "requests", "rate_limit_exceeded"
	}
	openai.WriteError(w, status, typ, code, msg)
}
