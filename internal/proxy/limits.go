package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/openai"
)

// Headers that report the tightest hard limit (or the refusing one).
const (
	HeaderLimit     = "X-Tokenmeter-Limit"
	HeaderRemaining = "X-Tokenmeter-Remaining"
	HeaderReset     = "X-Tokenmeter-Reset"
)

// reserve enforces the hard limits that apply to the call before it is
// forwarded: it reserves the call's worst case (see limits.WorstCase) and
// answers 429 when a limit would be crossed. An admitted OpenAI request
// that sets no output bound is given the one its reservation assumed
// (*body is rewritten), so the reservation bounds it. It returns false
// when the call was answered and must not be forwarded.
func (p *Proxy) reserve(w http.ResponseWriter, c *call, body *[]byte) bool {
	// The decoded body: a 311-byte gzip body may hold 600 KB of prompt.
	bodyLen := max(len(*body), len(c.plainBody))
	var worst tokenmeter.Usage
	var cost tokenmeter.Micros
	costUnknown := false
	if c.metered {
		worst = limits.WorstCase(bodyLen, c.maxOutput, p.BytesPerToken, p.defaultMaxOutput())
		if c.noOutput {
			worst.OutputTokens = 0
		} else if c.choices > 1 {
			// Every choice (n, best_of) writes up to the bound.
			if worst.OutputTokens > jsonscan.MaxCount/c.choices {
				worst.OutputTokens = jsonscan.MaxCount
			} else {
				worst.OutputTokens *= c.choices
			}
		}
		if p.Price != nil && c.model != "" {
			// The input may turn out to be cache writes, which cost more
			// than plain input (1-hour writes twice as much): the worst
			// case is the dearer of the two readings.
			for _, u := range []tokenmeter.Usage{worst, {CacheWrite1hTokens: worst.InputTokens, OutputTokens: worst.OutputTokens}} {
				// At the tier the request asks for: a priority call costs
				// double. ("auto" is priced as the standard tier; see
				// docs/limits.md.)
				ev := tokenmeter.Event{Model: c.model, Time: c.start, Usage: u, Provider: c.rt.Name, ServiceTier: c.tier}
				p.Price(&ev)
				cost = max(cost, ev.Cost)
				costUnknown = costUnknown || !ev.CostKnown
			}
		}
	}
	d, err := p.Limits.Reserve(c.ctx, limits.Request{RequestKey: c.id, Instance: p.Instance,
		Principal: c.principal, Project: c.project, Model: c.model, Usage: worst, Cost: cost,
		CostUnknown: costUnknown && c.metered})
	if err != nil {
		if c.ctx.Err() != nil {
			// The client left (or half-closed) while the reservation was
			// being made: nothing was reserved or forwarded.
			c.done = true
			c.writeError(w, StatusClientClosed, "tokenmeter: the client closed its side of the connection before the response; "+
				"a TCP half-close counts as the client leaving, so the request was not forwarded: keep the connection open until the response is read")
			return false
		}
		if p.FailOpen {
			p.log.Warn("limits not enforced: the ledger cannot reserve", "provider", c.rt.Name, "request", c.id, "err", err)
			return true
		}
		c.ledgerDown(w, err)
		return false
	}
	c.limit = d
	if d.Reserved {
		c.reserved, c.reservedCost = worst, cost
	}
	if d.Refusal != "" {
		c.done = true
		limitHeaders(w.Header(), d, c.keyScope())
		c.writeError(w, http.StatusForbidden, "tokenmeter: hard limit "+strconv.Quote(d.Limit.Name)+" refuses this request: "+d.Refusal)
		return false
	}
	if d.Allowed && d.Applies && c.unbounded != "" {
		// G5: a request whose cost cannot be bounded before it is
		// forwarded is not forwarded while a hard limit applies.
		c.release()
		c.done = true
		limitHeaders(w.Header(), d, c.keyScope())
		c.writeError(w, http.StatusForbidden, "tokenmeter: hard limit "+strconv.Quote(d.Limit.Name)+
			" applies to this caller and the cost of this request cannot be bounded before it is forwarded ("+c.unbounded+"), so it is refused")
		return false
	}
	if d.Allowed && d.Applies && c.billable {
		// G5: a call whose usage cannot be read cannot be held within a
		// hard limit, so it is not forwarded while one applies.
		c.release()
		c.done = true
		limitHeaders(w.Header(), d, c.keyScope())
		c.writeError(w, http.StatusForbidden, "tokenmeter: hard limit "+strconv.Quote(d.Limit.Name)+
			" applies to this caller and the usage of this endpoint cannot be metered, so it is refused")
		return false
	}
	if !d.Allowed {
		c.done = true
		limitHeaders(w.Header(), d, c.keyScope())
		w.Header().Set("Retry-After", strconv.FormatInt(int64((d.RetryAfter+time.Second-1)/time.Second), 10))
		c.writeError(w, http.StatusTooManyRequests, p.refusal(c, d, worst, bodyLen))
		return false
	}
	if d.Applies && c.metered && c.maxOutput == 0 && !c.noOutput && c.rt.Wire == OpenAI {
		// Anthropic requires max_tokens; OpenAI's may be left out, and the
		// model may then write far more than the default reserved.
		if c.rewriteBody(body, func(b []byte) ([]byte, error) {
			return openai.InjectMaxOutput(openai.APIForPath(c.endpoint), b, p.defaultMaxOutput())
		}) {
			c.maxOutput = p.defaultMaxOutput()
		}
	}
	return true
}

// refusal is the message of a 429 from d: which limit, what the request
// reserved against it (its worst case, not what it will use) and what
// remains, and, when its output bound is the default one because it set
// none, how to ask for less.
func (p *Proxy) refusal(c *call, d limits.Decision, worst tokenmeter.Usage, bodyLen int) string {
	m := d.Limit.Metric
	amount := func(n int64) string {
		if m == tokenmeter.MetricCost {
			return "$" + tokenmeter.Micros(n).String()
		}
		if m == tokenmeter.MetricRequests {
			return strconv.FormatInt(n, 10) + " requests"
		}
		return strconv.FormatInt(n, 10) + " tokens"
	}
	msg := fmt.Sprintf("tokenmeter: hard limit %q (%s, %s) would be exceeded by this request: it reserves its worst case, %s",
		d.Limit.Name, m, d.Limit.Window, amount(d.Need))
	output := m != tokenmeter.MetricRequests && m != tokenmeter.MetricInputTokens && c.metered && !c.noOutput
	if output && m != tokenmeter.MetricOutputTokens {
		msg += fmt.Sprintf(" (input up to %d tokens from the body's %d bytes, output up to %d tokens)",
			worst.InputTokens, bodyLen, worst.OutputTokens)
	}
	msg += ", and the window has " + amount(d.Remaining) + " left"
	if output && c.maxOutput == 0 {
		msg += fmt.Sprintf("; the request sets no output bound, so the default of %d tokens was reserved: set max_tokens "+
			"(max_completion_tokens, max_output_tokens) to what the request needs", p.defaultMaxOutput())
	}
	return msg + "; retry after the window frees up"
}

func (p *Proxy) defaultMaxOutput() int64 {
	if p.DefaultMaxOutput > 0 {
		return p.DefaultMaxOutput
	}
	return limits.DefaultMaxOutput
}

// keyScope is the scope of the limits that are the call's virtual key's
// own ("key:NAME"), or "" for a pass-through credential.
func (c *call) keyScope() string {
	if !c.virtual {
		return ""
	}
	return c.principal
}

// limitHeaders sets the x-tokenmeter-limit headers for d's limit, if any
// applies: its name, what remains (dollars for cost_usd) and when its
// window resets (RFC 3339). A virtual key (keyScope "key:NAME") is shown
// what /api/me shows it: the remaining figure of its own limits only; of a
// limit it shares with other callers (global, its project, a model) the
// name and reset, not how much the others have used.
func limitHeaders(h http.Header, d limits.Decision, keyScope string) {
	if !d.Applies {
		return
	}
	h.Set(HeaderLimit, d.Limit.Name)
	if keyScope == "" || d.Limit.Scope == keyScope {
		rem := strconv.FormatInt(d.Remaining, 10)
		if d.Limit.Metric == tokenmeter.MetricCost {
			rem = tokenmeter.Micros(d.Remaining).String()
		}
		h.Set(HeaderRemaining, rem)
	}
	h.Set(HeaderReset, d.Reset.UTC().Format(time.RFC3339))
}

// release removes the call's reservation when the call ends without a
// completed event in the ledger (which would release it).
func (c *call) release() {
	if !c.limit.Reserved || c.p.Limits == nil {
		return
	}
	c.limit.Reserved = false
	if err := c.p.Limits.Release(context.Background(), c.id); err != nil {
		c.p.log.Warn("reservation not released; it is released at the next start", "request", c.id, "err", err)
	}
}
