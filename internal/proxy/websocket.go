package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
	"github.com/tokenmeter/tokenmeter/internal/openai"
	"github.com/tokenmeter/tokenmeter/internal/sse"
)

// The Responses WebSocket transport.
//
// OpenAI serves the Responses API over a WebSocket at GET /v1/responses
// (Codex uses it by default): the client sends JSON text messages, one per
// request, {"type":"response.create", ...the body of a POST
// /v1/responses...}, and the server answers each with the events of the
// SSE stream, one event per text message (response.created ...
// response.completed). A request may name a lane ("stream_id"); events of
// its response echo it, and requests of one lane are answered first in,
// first out. Errors come as {"type":"error","status":S,"error":{...},
// "headers":{...}} messages. The handshake is authenticated like any
// request (Authorization: Bearer).
//
// The gateway relays such a connection message by message, in both
// directions, as each arrives, and meters it:
//
//   - The handshake is authenticated exactly as an HTTP request
//     (authenticate): a virtual key is checked and replaced by the route's
//     credential in the upstream handshake (rewrite), a pass-through
//     credential is forwarded and hashed as the principal. The upstream's
//     handshake answer is passed on: its refusal (status and body) to the
//     client as it came, its 101 headers (request id, rate limits) with the
//     gateway's own 101. Only /v1/responses on an OpenAI-dialect route is
//     relayed; other WebSocket paths are refused with 501.
//   - Each response.create is one call, with the guarantees of a POST: a
//     started event is submitted before the message is forwarded (and
//     waited for in strict durability), hard limits reserve its worst case
//     (p.reserve, which may add max_output_tokens to the message), the
//     response's messages are metered by an openai.Meter in Responses mode
//     (each message is one frame), and the message that ends the response
//     (response.completed, response.incomplete, response.failed, or an
//     error that ends the request) is relayed only once the completed
//     event is durable.
//   - A refusal (hard limit, ledger down, gateway shutting down) is
//     answered on the socket as the transport's error message, with the
//     HTTP status and OpenAI error body the HTTP path would have sent and
//     its headers (retry-after, x-tokenmeter-limit ...) in "headers"; the
//     connection stays open.
//   - Responses are matched to requests per lane, in order. A response the
//     gateway did not see requested (a client message it could not read as
//     response.create but the upstream accepted) is still recorded, from
//     its response.created on, so no usage goes unrecorded.
//   - Other client messages pass unchanged: "response.processed" (an
//     acknowledgement Codex sends) always; any other type (for example
//     response.steer, which adds input to a response in flight) only when
//     no hard limit applies to the caller, since its cost cannot be
//     reserved (refused with 403 otherwise).
//   - When the connection ends, calls still waiting for their response are
//     recorded as cancelled when the client left or the gateway shut down,
//     and as failed when the upstream closed or broke the connection. A
//     close frame from either side is passed to the other with its code.
//   - Client messages are bounded by MaxRequestBody and upstream messages
//     by MaxWebSocketMessage; a larger message closes the connection with
//     status 1009 (message too big).

// MaxWebSocketMessage bounds one message from the upstream on a relayed
// WebSocket. A terminal event echoes the request's instructions and tools,
// so it may be much larger than any event of a stream.
const MaxWebSocketMessage = 64 << 20

// webSocketDialTimeout bounds the upstream handshake.
const webSocketDialTimeout = 30 * time.Second

// webSocketShutdownGrace is how long, after the shutdown deadline, the
// gateway waits for relays it closed to record their calls.
const webSocketShutdownGrace = 2 * time.Second

// webSockets is the proxy's set of open relays, so that shutdown can end
// them (http.Server.Shutdown does not track hijacked connections).
type webSockets struct {
	mu      sync.Mutex
	open    map[*wsRelay]struct{}
	closing bool
	done    chan struct{} // closed when open becomes empty while closing
}

func (s *webSockets) add(r *wsRelay) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.open == nil {
		s.open = make(map[*wsRelay]struct{})
	}
	s.open[r] = struct{}{}
	return true
}

func (s *webSockets) remove(r *wsRelay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, r)
	if s.closing && len(s.open) == 0 && s.done != nil {
		close(s.done)
		s.done = nil
	}
}

// shutdownWebSockets ends every relayed WebSocket: no new connection or
// request is accepted, and each connection is closed (status 1001) as soon
// as it has no response in flight. When ctx ends first the rest are closed
// at once, their open calls recorded as cancelled. It returns when every
// relay has recorded its calls (or a short grace after ctx ended).
func (p *Proxy) shutdownWebSockets(ctx context.Context) {
	s := &p.ws
	s.mu.Lock()
	s.closing = true
	relays := make([]*wsRelay, 0, len(s.open))
	for r := range s.open {
		relays = append(relays, r)
	}
	if len(s.open) == 0 {
		s.mu.Unlock()
		return
	}
	done := make(chan struct{})
	s.done = done
	s.mu.Unlock()
	for _, r := range relays {
		r.drain()
	}
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	for _, r := range relays {
		r.end(tokenmeter.OutcomeCancelled, "gateway shut down", websocket.StatusGoingAway, "tokenmeter: gateway shutting down")
	}
	t := time.NewTimer(webSocketShutdownGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// isWebSocket reports whether r asks to upgrade to a WebSocket.
func isWebSocket(r *http.Request) bool {
	return headerToken(r.Header, "Connection", "upgrade") && headerToken(r.Header, "Upgrade", "websocket")
}

// headerToken reports whether a comma-separated header has token
// (case-insensitive).
func headerToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// handshakeHeaders are the request and response headers of a WebSocket
// handshake that belong to one hop: the gateway's own handshakes set them.
var handshakeHeaders = []string{
	"Connection", "Upgrade", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Content-Length",
	"Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions", "Sec-Websocket-Protocol", "Sec-Websocket-Accept",
}

// serveWebSocket relays and meters one WebSocket connection. hs is the
// handshake's call: it carries the route and the caller's identity
// (authenticate has run) and is never recorded itself.
func (p *Proxy) serveWebSocket(w http.ResponseWriter, r *http.Request, hs *call, target *url.URL) {
	rest := target.Path
	if hs.rt.Wire != OpenAI || openai.APIForPath(rest) != openai.Responses {
		hs.refuse(w, http.StatusNotImplemented, "WebSocket connections are relayed (and metered) only for the OpenAI Responses API, GET /v1/responses; use HTTPS for "+jsonscan.Clip(rest, 200))
		return
	}
	if !hs.virtual {
		hs.principal = principal(r.Header)
	}
	protocols := subprotocols(r.Header)

	// The upstream handshake: the request as the HTTP path would forward
	// it (admit's URL: the path after the prefix, the client's escaping,
	// no virtual key; rewrite: upstream URL, x-tokenmeter-* stripped, the
	// route's credential for a virtual key), less this hop's handshake.
	in := r.WithContext(context.WithValue(r.Context(), ctxKey{}, hs))
	in.URL = target
	pr := &httputil.ProxyRequest{In: in, Out: in.Clone(in.Context())}
	hs.rt.rewrite(pr)
	for _, h := range handshakeHeaders {
		pr.Out.Header.Del(h)
	}
	dctx, cancel := context.WithTimeout(r.Context(), webSocketDialTimeout)
	defer cancel()
	client := &http.Client{
		Transport:     p.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	up, resp, err := websocket.Dial(dctx, pr.Out.URL.String(), &websocket.DialOptions{
		HTTPClient:      client,
		HTTPHeader:      pr.Out.Header,
		Subprotocols:    protocols,
		CompressionMode: websocket.CompressionNoContextTakeover,
	})
	if resp != nil {
		p.observe(hs, resp)
	}
	if err != nil {
		if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
			p.log.Warn("websocket: upstream handshake failed", "provider", hs.rt.Name, "request", hs.id, "err", err)
			hs.refuse(w, http.StatusBadGateway, "the upstream WebSocket could not be opened")
			return
		}
		// The upstream refused: pass its answer on as it came (coder/websocket
		// keeps the first 1024 bytes of its body).
		copyHeaders(w.Header(), resp.Header)
		w.Header().Set(HeaderRequestID, hs.id)
		body := new(bytes.Buffer)
		if resp.Body != nil {
			body.ReadFrom(resp.Body)
		}
		w.Header().Set("Content-Length", strconv.Itoa(body.Len()))
		w.WriteHeader(resp.StatusCode)
		w.Write(body.Bytes())
		p.log.Debug("websocket: upstream refused the handshake", "provider", hs.rt.Name, "request", hs.id, "status", resp.StatusCode)
		return
	}
	defer up.CloseNow()
	up.SetReadLimit(MaxWebSocketMessage)

	// The gateway's own 101 carries the upstream's headers (request id,
	// rate limits, model).
	copyHeaders(w.Header(), resp.Header)
	w.Header().Set(HeaderRequestID, hs.id)
	// A hijacked connection keeps the deadlines the server set for reading
	// the request; a WebSocket lives for as long as both ends want.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	var accept []string
	if sp := up.Subprotocol(); sp != "" {
		accept = []string{sp}
	}
	cl, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: accept, CompressionMode: websocket.CompressionNoContextTakeover})
	if err != nil {
		up.Close(websocket.StatusGoingAway, "client handshake failed")
		p.log.Debug("websocket: client handshake failed", "request", hs.id, "err", err)
		return
	}
	defer cl.CloseNow()
	cl.SetReadLimit(p.MaxRequestBody)

	rl := &wsRelay{p: p, hs: hs, req: r, rest: rest, client: cl, up: up, lanes: map[string][]*wsCall{}}
	if !p.ws.add(rl) {
		cl.Close(websocket.StatusGoingAway, "tokenmeter: gateway shutting down")
		return
	}
	defer p.ws.remove(rl)
	rl.run()
}

// subprotocols returns the WebSocket subprotocols the client offers.
func subprotocols(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Sec-Websocket-Protocol") {
		for sp := range strings.SplitSeq(v, ",") {
			if sp = strings.TrimSpace(sp); sp != "" {
				out = append(out, sp)
			}
		}
	}
	return out
}

// copyHeaders copies src into dst, less the handshake's own headers.
func copyHeaders(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
	for _, h := range handshakeHeaders {
		dst.Del(h)
	}
}

// wsCall is one response.create on a relayed connection.
type wsCall struct {
	*call
	lane string
	// seen: a message of the response has arrived (the started record was
	// waited for, ttfb taken). created: the response object was seen
	// (response.created, queued or in_progress).
	seen, created bool
}

// wsRelay is one relayed connection. The client goroutine (fromClient)
// creates calls and hands them to the upstream goroutine (fromUpstream)
// through lanes; after that only the upstream goroutine, and once both have
// stopped the teardown, touch a call.
type wsRelay struct {
	p      *Proxy
	hs     *call
	req    *http.Request
	rest   string
	client *websocket.Conn
	up     *websocket.Conn

	mu       sync.Mutex
	lanes    map[string][]*wsCall // calls awaiting the end of their response, per lane
	draining bool
	ended    bool
	outcome  tokenmeter.Outcome // for the calls still open when the relay ended
	reason   string
	cancel   context.CancelFunc
}

func (rl *wsRelay) run() {
	ctx, cancel := context.WithCancel(context.Background())
	rl.mu.Lock()
	rl.cancel = cancel
	rl.mu.Unlock()
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		rl.fromUpstream(ctx)
	}()
	rl.fromClient(ctx)
	<-done

	// Both directions have stopped: record what is still open.
	rl.mu.Lock()
	outcome, reason := rl.outcome, rl.reason
	var open []*wsCall
	for _, q := range rl.lanes {
		open = append(open, q...)
	}
	rl.lanes = nil
	rl.mu.Unlock()
	for _, c := range open {
		c.finish(outcome, reason, false)
	}
}

// end stops the relay once, for the reason given: calls still open are
// recorded with outcome, and both sides are closed with code (the side
// that closed first already is).
func (rl *wsRelay) end(outcome tokenmeter.Outcome, reason string, code websocket.StatusCode, msg string) {
	rl.mu.Lock()
	if rl.ended {
		rl.mu.Unlock()
		return
	}
	rl.ended, rl.outcome, rl.reason = true, outcome, reason
	cancel := rl.cancel
	rl.mu.Unlock()
	// Close both in parallel: each waits (a few seconds at most) for its
	// peer's close frame, which the reading goroutines receive; only then
	// are the reads cancelled (cancelling a read closes the connection
	// without a close frame).
	var wg sync.WaitGroup
	for _, c := range []*websocket.Conn{rl.client, rl.up} {
		wg.Go(func() {
			if code == 0 {
				c.CloseNow()
			} else if c.Close(code, jsonscan.Clip(msg, 120)) != nil {
				c.CloseNow()
			}
		})
	}
	wg.Wait()
	if cancel != nil {
		cancel()
	}
}

// drain makes the relay refuse new requests and close once it has no
// response in flight.
func (rl *wsRelay) drain() {
	rl.mu.Lock()
	rl.draining = true
	idle := rl.idleLocked()
	rl.mu.Unlock()
	if idle {
		go rl.end(tokenmeter.OutcomeCancelled, "gateway shut down", websocket.StatusGoingAway, "tokenmeter: gateway shutting down")
	}
}

func (rl *wsRelay) idleLocked() bool {
	for _, q := range rl.lanes {
		if len(q) > 0 {
			return false
		}
	}
	return true
}

// closeStatus describes why a read ended: the peer's close code and
// reason, or 0 for a connection that broke.
func closeStatus(err error) (websocket.StatusCode, string) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Reason
	}
	return 0, ""
}

// passOn returns the close code to send the other side: the one received,
// unless it may not be sent in a close frame.
func passOn(code websocket.StatusCode, fallback websocket.StatusCode) websocket.StatusCode {
	switch code {
	case 0, websocket.StatusNoStatusRcvd, websocket.StatusAbnormalClosure, websocket.StatusTLSHandshake:
		return fallback
	}
	return code
}

// fromClient reads the client's messages until the connection ends.
func (rl *wsRelay) fromClient(ctx context.Context) {
	for {
		typ, msg, err := rl.client.Read(ctx)
		if err != nil {
			code, why := closeStatus(err)
			switch {
			case ctx.Err() != nil: // ended elsewhere
			case code == websocket.StatusMessageTooBig:
				rl.end(tokenmeter.OutcomeCancelled, "client message larger than the gateway's limit", websocket.StatusMessageTooBig, "tokenmeter: message too big")
			case code != 0:
				rl.end(tokenmeter.OutcomeCancelled, "client closed the connection", passOn(code, websocket.StatusNormalClosure), why)
			default:
				rl.end(tokenmeter.OutcomeCancelled, "client disconnected", websocket.StatusGoingAway, "client disconnected")
			}
			return
		}
		if err := rl.clientMessage(ctx, typ, msg); err != nil {
			if ctx.Err() == nil {
				rl.end(tokenmeter.OutcomeFailed, "upstream connection lost: "+err.Error(), websocket.StatusBadGateway, "tokenmeter: upstream connection lost")
			}
			return
		}
	}
}

// clientMessage handles one message from the client. It returns an error
// when the message could not be forwarded upstream.
func (rl *wsRelay) clientMessage(ctx context.Context, typ websocket.MessageType, msg []byte) error {
	env := readEnvelope(msg)
	if typ != websocket.MessageText {
		env = envelope{}
	}
	switch {
	case typ == websocket.MessageText && env.typ == "response.create":
		return rl.create(ctx, msg, env)
	case typ == websocket.MessageText && env.typ == "response.processed":
	case rl.p.Limits != nil:
		// A message whose cost cannot be reserved: refused while a hard
		// limit applies to the caller (reserve answers 403).
		c := rl.newCall(ctx)
		c.metered, c.billable = false, true
		rec := newRefusal()
		if !rl.p.reserve(rec, c, &msg) {
			if rec.status != 0 {
				return rl.refuse(ctx, env, rec)
			}
			return nil
		}
		c.release()
	}
	return rl.up.Write(ctx, typ, msg)
}

// newCall returns a call for a request on this connection, attributed like
// the handshake.
func (rl *wsRelay) newCall(ctx context.Context) *call {
	hs := rl.hs
	return &call{p: rl.p, rt: hs.rt, id: newID(), start: rl.p.Now(), ctx: ctx,
		virtual: hs.virtual, principal: hs.principal, keyProject: hs.keyProject, upstreamCred: hs.upstreamCred}
}

// prepare reads what the ledger needs from a response.create message, as
// call.prepare does from a POST /v1/responses body (the message is that
// body plus "type"), with the handshake's headers.
func (rl *wsRelay) prepare(c *call, body *[]byte) {
	post := *rl.req
	post.Method = http.MethodPost
	c.prepare(&post, rl.rest, body)
	c.stream = true
}

// create meters one response.create and forwards it.
func (rl *wsRelay) create(ctx context.Context, msg []byte, env envelope) error {
	p := rl.p
	c := rl.newCall(ctx)
	body := msg
	rl.prepare(c, &body)
	if c.badRequest != "" {
		rec := newRefusal()
		c.writeError(rec, http.StatusBadRequest, "tokenmeter: "+c.badRequest)
		return rl.refuse(ctx, env, rec)
	}

	rl.mu.Lock()
	draining := rl.draining
	rl.mu.Unlock()
	if draining {
		rec := newRefusal()
		c.writeError(rec, http.StatusServiceUnavailable, "tokenmeter: the gateway is shutting down; open a new connection")
		return rl.refuse(ctx, env, rec)
	}
	if p.Limits != nil {
		rec := newRefusal()
		if !p.reserve(rec, c, &body) {
			if rec.status != 0 {
				return rl.refuse(ctx, env, rec)
			}
			return nil
		}
	}
	c.started = p.rec.Submit(c.event(tokenmeter.KindStarted))
	if p.Durability == DurabilityStrict || !p.rec.Healthy() {
		if err := c.started.Wait(context.Background()); err != nil && !p.FailOpen {
			rec := newRefusal()
			c.ledgerDown(rec, err)
			return rl.refuse(ctx, env, rec)
		}
	}
	wc := &wsCall{call: c, lane: env.lane()}
	rl.mu.Lock()
	if rl.ended {
		rl.mu.Unlock()
		c.finish(tokenmeter.OutcomeCancelled, "connection closed before the request was forwarded", false)
		return nil
	}
	rl.lanes[wc.lane] = append(rl.lanes[wc.lane], wc)
	rl.mu.Unlock()
	// Once queued the call belongs to the upstream side, which may record it
	// as soon as its response arrives: nothing here touches it again.
	return rl.up.Write(ctx, websocket.MessageText, body)
}

// refuse answers a request on the socket with the error message the HTTP
// path would have sent as a response (rec).
func (rl *wsRelay) refuse(ctx context.Context, env envelope, rec *refusal) error {
	if err := rl.client.Write(ctx, websocket.MessageText, rec.event(env.streamID)); err != nil {
		rl.end(tokenmeter.OutcomeCancelled, "client disconnected", 0, "")
	}
	return nil
}

// fromUpstream reads the upstream's messages until the connection ends.
func (rl *wsRelay) fromUpstream(ctx context.Context) {
	for {
		typ, msg, err := rl.up.Read(ctx)
		if err != nil {
			code, why := closeStatus(err)
			switch {
			case ctx.Err() != nil:
			case code == websocket.StatusMessageTooBig:
				rl.end(tokenmeter.OutcomeFailed, fmt.Sprintf("upstream message larger than %d bytes", MaxWebSocketMessage), websocket.StatusMessageTooBig, "tokenmeter: upstream message too big")
			case code != 0:
				rl.end(tokenmeter.OutcomeFailed, "upstream closed the connection before the response ended", passOn(code, websocket.StatusNormalClosure), why)
			default:
				rl.end(tokenmeter.OutcomeFailed, "upstream connection lost before the response ended", websocket.StatusBadGateway, "tokenmeter: upstream connection lost")
			}
			return
		}
		if typ != websocket.MessageText {
			if rl.client.Write(ctx, typ, msg) != nil {
				rl.clientGone(ctx)
				return
			}
			continue
		}
		if !rl.upstreamMessage(ctx, msg) {
			return
		}
	}
}

// clientGone ends the relay after a write to the client failed.
func (rl *wsRelay) clientGone(ctx context.Context) {
	if ctx.Err() == nil {
		rl.end(tokenmeter.OutcomeCancelled, "client disconnected", 0, "")
	}
}

// upstreamMessage meters one text message from the upstream and relays it.
// It returns false when the relay must stop.
func (rl *wsRelay) upstreamMessage(ctx context.Context, msg []byte) bool {
	p := rl.p
	env := readEnvelope(msg)
	c := rl.attribute(ctx, env)
	if c == nil {
		if rl.client.Write(ctx, websocket.MessageText, msg) != nil {
			rl.clientGone(ctx)
			return false
		}
		return true
	}
	if !c.seen {
		c.seen = true
		c.status = http.StatusOK
		c.ttfb = p.Now().Sub(c.start)
		if p.Metrics != nil {
			p.Metrics.FirstByte(c.rt.Name, c.ttfb)
		}
		if err := c.started.Wait(context.Background()); err != nil && !p.FailOpen {
			p.log.Error("response not relayed: the ledger could not record the call", "provider", c.rt.Name, "request", c.id, "err", err)
			rl.pop(c)
			c.done = true
			c.release()
			rl.end(tokenmeter.OutcomeFailed, "connection closed: the ledger could not record", websocket.StatusInternalError, "tokenmeter: the usage ledger cannot record right now")
			return false
		}
	}
	terminal := c.observe(env, msg)
	if terminal {
		rl.pop(c)
		if err := c.finish(tokenmeter.OutcomeOK, "", true); err != nil && !p.FailOpen {
			p.log.Error("terminal event withheld: the ledger could not record the call", "request", c.id, "err", err)
			rl.end(tokenmeter.OutcomeFailed, "connection closed: the ledger could not record", websocket.StatusInternalError, "tokenmeter: the usage ledger cannot record right now; response withheld")
			return false
		}
	}
	if rl.client.Write(ctx, websocket.MessageText, msg) != nil {
		rl.clientGone(ctx)
		return false
	}
	if terminal {
		rl.mu.Lock()
		idle := rl.draining && rl.idleLocked()
		rl.mu.Unlock()
		if idle {
			rl.end(tokenmeter.OutcomeCancelled, "gateway shut down", websocket.StatusGoingAway, "tokenmeter: gateway shutting down")
			return false
		}
	}
	return true
}

// observe meters one message of c's response and reports whether it ends
// the response: response.completed, incomplete or failed, or an error
// that ends the request (one with an HTTP status, which the transport
// sends for a refused request, or any error before the response was
// created). An error during a response (no status) is followed by
// response.failed, which ends it.
func (c *wsCall) observe(env envelope, msg []byte) bool {
	switch env.typ {
	case "response.created", "response.queued", "response.in_progress":
		c.created = true
	}
	terminal, _ := c.meter.Frame(sse.Event{Data: msg})
	if env.typ == "error" && (env.status != 0 || !c.created) {
		terminal = true
		if env.status != 0 {
			c.status = env.status
		}
	}
	return terminal
}

// attribute returns the call a message from the upstream belongs to: the
// oldest open call of its lane (the newest for an error saying a response
// is already in flight: that one refuses the latest request). A response
// that starts on a lane with no open call gets a call of its own. It
// returns nil for messages that belong to no call.
func (rl *wsRelay) attribute(ctx context.Context, env envelope) *wsCall {
	lane := env.lane()
	rl.mu.Lock()
	defer rl.mu.Unlock()
	q := rl.lanes[lane]
	if len(q) > 0 {
		if env.typ == "error" && env.code == "response_already_in_flight" {
			return q[len(q)-1]
		}
		return q[0]
	}
	switch env.typ {
	case "response.created", "response.queued", "response.in_progress":
	default:
		return nil
	}
	if rl.ended {
		return nil
	}
	// A response nobody was seen asking for: meter it all the same, from
	// here on (labels from the handshake, model from the response).
	c := rl.newCall(ctx)
	body := []byte("{}")
	rl.prepare(c, &body)
	c.plainBody, c.unbounded = nil, "" // no request to estimate from
	c.started = rl.p.rec.Submit(c.event(tokenmeter.KindStarted))
	wc := &wsCall{call: c, lane: lane}
	rl.lanes[lane] = append(q, wc)
	rl.p.log.Warn("websocket: the upstream started a response the gateway did not see requested; metering it", "provider", c.rt.Name, "request", c.id)
	return wc
}

// pop removes c from its lane.
func (rl *wsRelay) pop(c *wsCall) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	q := rl.lanes[c.lane]
	for i, x := range q {
		if x == c {
			rl.lanes[c.lane] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(rl.lanes[c.lane]) == 0 {
		delete(rl.lanes, c.lane)
	}
}

// envelope is what the relay reads of a message: its type and lane, and
// for errors the HTTP status and error code.
type envelope struct {
	typ      string
	streamID *string // nil when the message names no lane
	status   int     // an error's "status", 0 if none or unreadable
	code     string  // an error's error.code
}

func (e envelope) lane() string {
	if e.streamID == nil {
		return ""
	}
	return *e.streamID
}

// maxEnvelopeString bounds the strings an envelope keeps (type, lane, code).
const maxEnvelopeString = 256

// readEnvelope reads the top-level members of a message that say what it
// is. It never fails: what cannot be read is left empty.
func readEnvelope(msg []byte) envelope {
	var e envelope
	jsonscan.EachMember(msg, func(k []byte, s, end int) {
		v := msg[s:end]
		switch {
		case jsonscan.KeyIs(k, "type"):
			e.typ = jsonString(v)
		case jsonscan.KeyIs(k, "stream_id"):
			e.streamID = nil
			if len(v) > 0 && v[0] == '"' {
				id := jsonString(v)
				e.streamID = &id
			}
		case jsonscan.KeyIs(k, "status"):
			n, err := jsonscan.ParseCount("status", v)
			e.status = 0
			if err == nil && n >= 100 && n <= 599 {
				e.status = int(n)
			}
		case jsonscan.KeyIs(k, "error"):
			e.code = ""
			if len(v) > 0 && v[0] == '{' {
				jsonscan.EachMember(v, func(k []byte, s, end int) {
					if jsonscan.KeyIs(k, "code") {
						e.code = jsonString(v[s:end])
					}
				})
			}
		}
	})
	return e
}

// jsonString decodes a JSON string of at most maxEnvelopeString bytes; it
// returns "" for anything else.
func jsonString(v []byte) string {
	if len(v) < 2 || v[0] != '"' || len(v) > 2*maxEnvelopeString+2 {
		return ""
	}
	if bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) {
		return jsonscan.Clip(string(v[1:len(v)-1]), maxEnvelopeString)
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return jsonscan.Clip(s, maxEnvelopeString)
}

// refusal is an http.ResponseWriter that keeps an answer the HTTP path
// would have sent (reserve, ledgerDown, writeError), to be sent on a
// WebSocket as the transport's error message instead.
type refusal struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func newRefusal() *refusal { return &refusal{h: http.Header{}} }

func (r *refusal) Header() http.Header { return r.h }

func (r *refusal) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *refusal) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

// refusalHeaders are the headers of a refusal passed on in its error
// message: why and until when.
var refusalHeaders = []string{"Retry-After", HeaderLimit, HeaderRemaining, HeaderReset, HeaderRequestID}

// event returns the refusal as the transport's error message:
// {"type":"error","status":S,"error":{...the OpenAI error object...},
// "headers":{...}}, with the request's lane.
func (r *refusal) event(streamID *string) []byte {
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(r.body.Bytes(), &body) != nil || len(body.Error) == 0 {
		body.Error, _ = json.Marshal(map[string]any{"message": strings.TrimSpace(r.body.String()), "type": "server_error", "param": nil, "code": nil})
	}
	headers := map[string]string{}
	for _, h := range refusalHeaders {
		if v := r.h.Get(h); v != "" {
			headers[strings.ToLower(h)] = v
		}
	}
	out, err := json.Marshal(struct {
		Type     string            `json:"type"`
		StreamID *string           `json:"stream_id,omitempty"`
		Status   int               `json:"status"`
		Error    json.RawMessage   `json:"error"`
		Headers  map[string]string `json:"headers,omitempty"`
	}{"error", streamID, r.status, body.Error, headers})
	if err != nil {
		panic(err) // strings, an int and valid JSON always marshal
	}
	return out
}
