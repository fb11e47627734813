package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/anthropic"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/openai"
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
	// absent.
	maxOutput int64
	// limit is the outcome of hard-limit enforcement; limit.Reserved says
	// a reservation awaits the call's completed event.
	limit limits.Decision

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
	defer func() { c.billable = post && !c.metered && !freeEndpoint(path) }()
	switch c.rt.Wire {
	case Anthropic:
		c.meter = anthropic.NewMeter()
		if post && path == "/v1/messages" {
			c.metered = true
			req, err := anthropic.ParseRequest(*body)
			if err != nil {
				c.reason = "request body unreadable: " + err.Error()
				return
			}
			c.model, c.stream, c.maxOutput = req.Model, req.Stream, req.MaxTokens
		}
	case OpenAI:
		api := openai.APIForPath(path)
		strip := false
		if post && api != openai.Other {
			c.metered = true
			req, err := openai.ParseRequest(api, *body)
			if err != nil {
				c.reason = "request body unreadable: " + err.Error()
			} else {
				c.model, c.stream, c.maxOutput = req.Model, req.Stream, req.MaxTokens
				if api == openai.Chat && req.Stream && !req.IncludeUsage {
					if nb, err := openai.InjectIncludeUsage(*body); err == nil {
						*body, strip, c.stripNullUsage = nb, true, true
					}
				}
			}
		}
		c.meter = openai.NewMeter(api, strip)
	}
}

// event returns an event of kind for this call with what is known now.
func (c *call) event(kind tokenmeter.Kind) tokenmeter.Event {
	return tokenmeter.Event{
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
		if m := c.meter.Model(); m != "" {
			ev.Model = m
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
	switch {
	case !c.metered:
		ev.UsageKnown = c.status != 0 // requests only: no billable usage
	case c.meter != nil:
		ev.Usage, ev.RawUsage, ev.UsageKnown = c.meter.Usage()
		why := c.reason
		if why == "" {
			why = c.meter.Malformed()
		}
		if why != "" {
			// Keep what was read (the tokens known to be used) but say the
			// total is not known.
			ev.UsageKnown = false
		}
		if !ev.UsageKnown {
			if why == "" && c.status >= 400 {
				ev.UsageKnown = true // an error response bills nothing
			} else if why != "" && ev.Reason == "" {
				ev.Reason = "usage unknown: " + why
			} else if why != "" {
				ev.Reason += "; usage unknown: " + why
			}
		}
	}
	if ev.UsageKnown && c.p.Price != nil && c.metered {
		c.p.Price(&ev)
	} else if ev.UsageKnown && !c.metered {
		ev.CostKnown = true
	}
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
	return false
}

func (c *call) writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set(HeaderRequestID, c.id)
	if c.rt.Wire == Anthropic {
		typ := "api_error"
		switch status {
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
