package fakeupstream

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
)

// The Responses WebSocket transport (GET /v1/responses with Upgrade:
// websocket), as OpenAI serves it and Codex uses it:
//
//   - The client sends one JSON text message per request:
//     {"type":"response.create", ...the fields of a POST /v1/responses
//     body...}. The fake answers each with the same events, usage and ids
//     as its SSE Responses stream (responsesStream), one event per text
//     message, the event's JSON as the message. "stream" is implicit and
//     "background" is not supported (400), as on the real transport.
//   - "generate": false prepares state without generating: the answer is
//     response.created and response.completed with zero usage.
//   - A request with a "stream_id" (a lane) gets it echoed in every event
//     of its response. The fake answers requests one at a time in the order
//     they arrive, which keeps each lane first in, first out.
//   - Errors are one message in the transport's error shape,
//     {"type":"error","status":S,"error":{"type","code","message","param"}};
//     no response follows. A status directive in the request gives one;
//     one in the X-Fake-Upstream header of the handshake refuses the
//     handshake itself with that HTTP status and the provider's error body.
//   - "response.processed" (an acknowledgement Codex may send) is ignored;
//     any other client event type gets a 400 error message.
//   - Faults: error_event sends an error and response.failed after K
//     events; malformed truncates the event with the final usage (or the
//     K+1th); cut closes the connection without a close frame after K
//     events. ttfb and delay sleep before the first event and between
//     events.
//
// Each response.create is one call, as a POST is: one Call for
// Options.Observe (Method GET, Path /v1/responses, Stream true, its
// response id), one entry in the billing account (billing.go: a response
// the client leaves bills the output generated until then), and counted in
// the admin usage reports. The handshake's own answer carries x-request-id
// and the rate-limit headers; a refused handshake is observed and bills
// nothing.

func init() {
	extraRoutes = append(extraRoutes, func(s *Server, mux *http.ServeMux) {
		mux.HandleFunc("GET /v1/responses", s.handleResponsesWebSocket)
	})
}

// maxWebSocketQueue bounds the requests read from a connection and not yet
// answered.
const maxWebSocketQueue = 64

// webSocketEvent is what the fake reads of a client event.
type webSocketEvent struct {
	typ      string
	streamID *string // nil when the request named no lane
	// generate is false only for "generate": false.
	generate        bool
	background, bad bool
	badReason       string
}

// readWebSocketEvent reads the envelope of a client event.
func readWebSocketEvent(msg []byte) webSocketEvent {
	ev := webSocketEvent{generate: true}
	err := jsonscan.EachMember(msg, func(k []byte, s, e int) {
		v := msg[s:e]
		switch {
		case jsonscan.KeyIs(k, "type"):
			if json.Unmarshal(v, &ev.typ) != nil {
				ev.bad, ev.badReason = true, "type: must be a string"
			}
		case jsonscan.KeyIs(k, "stream_id"):
			ev.streamID = nil
			if jsonscan.IsNull(v) {
				break
			}
			var id string
			if json.Unmarshal(v, &id) != nil {
				ev.bad, ev.badReason = true, "stream_id: must be a string"
			}
			ev.streamID = &id
		case jsonscan.KeyIs(k, "generate"):
			ev.generate = string(v) != "false"
		case jsonscan.KeyIs(k, "background"):
			ev.background = string(v) == "true"
		}
	})
	if err != nil {
		ev.bad, ev.badReason = true, "the message must be a JSON object"
	}
	return ev
}

// isWebSocketUpgrade reports whether r asks to upgrade to a WebSocket.
func isWebSocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// handleResponsesWebSocket serves GET /v1/responses: the Responses
// WebSocket transport when the request upgrades, a 404 otherwise (there is
// no GET /v1/responses over plain HTTP).
func (s *Server) handleResponsesWebSocket(w http.ResponseWriter, r *http.Request) {
	if !isWebSocketUpgrade(r) {
		s.handle(providerOpenAI, s.handleNotFound).ServeHTTP(w, r)
		return
	}
	n := s.requests.Add(1)
	hs := &call{provider: providerOpenAI, start: s.now(), req: r}
	hs.principal = hs.provider.String() + ":" + credentialHash(r)
	hs.id = s.newID(n, []byte(r.Header.Get("Sec-WebSocket-Key")))
	header := r.Header.Values(DirectiveHeader)
	d, err := parseDirectives(header, nil)
	if err == nil && d.status != 0 {
		err = s.injectedStatus(r.Context(), &call{dir: d})
		hs.dir = d
	}
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			s.writeError(w, hs, ae)
		}
		s.finish(r, hs) // observed; a handshake bills nothing
		return
	}

	h := w.Header()
	h.Set("x-request-id", hs.requestID())
	h.Set("openai-version", "2020-10-01")
	s.limits.take(hs.principal, s.now(), 0, 0).setOpenAI(h, s.now())
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // a stand-in: any origin
		CompressionMode:    websocket.CompressionContextTakeover,
	})
	if err != nil {
		s.log.Info("websocket handshake failed", "request_id", hs.requestID(), "err", err)
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(MaxBodyBytes)
	s.log.Info("websocket opened", "path", r.URL.Path, "request_id", hs.requestID())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	queue := make(chan []byte, maxWebSocketQueue)
	go func() {
		defer close(queue)
		for {
			typ, msg, err := conn.Read(ctx)
			if err != nil {
				cancel() // the client left or closed: stop answering
				return
			}
			if typ != websocket.MessageText {
				msg = nil // answered as an error
			}
			select {
			case queue <- msg:
			case <-ctx.Done():
				return
			}
		}
	}()
	for msg := range queue {
		if err := s.answerWebSocket(ctx, conn, r, header, msg); err != nil {
			s.log.Info("websocket closed", "request_id", hs.requestID(), "reason", err)
			return
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
}

// errCut ends a connection on fault=cut.
var errCut = errors.New("fault=cut: connection dropped")

// answerWebSocket answers one client event. It returns an error when the
// connection must end (the client left, or a cut fault).
func (s *Server) answerWebSocket(ctx context.Context, conn *websocket.Conn, r *http.Request, header []string, msg []byte) error {
	var ev webSocketEvent
	if msg != nil {
		ev = readWebSocketEvent(msg)
		if !ev.bad && ev.typ == "response.processed" {
			return nil // an acknowledgement, not a request
		}
	}
	n := s.requests.Add(1)
	c := &call{provider: providerOpenAI, start: s.now(), body: msg, req: r, billable: true}
	c.principal = c.provider.String() + ":" + credentialHash(r)
	c.id = s.newID(n, msg)
	defer s.finish(r, c) // bills it (what was generated until it ended) and observes it
	switch {
	case msg == nil:
		return s.webSocketError(ctx, conn, c, nil, invalidRequest("binary messages are not supported; send JSON text"))
	case ev.bad:
		return s.webSocketError(ctx, conn, c, nil, invalidRequest("%s", ev.badReason))
	case ev.typ != "response.create":
		return s.webSocketError(ctx, conn, c, ev.streamID, invalidRequest("unsupported client event type %q; send response.create", jsonscan.Clip(ev.typ, 64)))
	case ev.background:
		return s.webSocketError(ctx, conn, c, ev.streamID, invalidRequest("background: not supported over WebSocket"))
	}
	d, err := parseDirectives(header, msg)
	c.dir = d
	if err == nil && d.status != 0 {
		err = s.injectedStatus(ctx, c)
	}
	var rp reply
	if err == nil {
		rp, err = planReply(endpointResponses, msg, d)
	}
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return s.webSocketError(ctx, conn, c, ev.streamID, ae)
		}
		return err
	}
	rp.stream = true
	if !ev.generate {
		rp.words, rp.capped, rp.reasoning, rp.input, rp.cacheRead = 0, false, 0, 0, 0
	}
	c.plan(rp, rp.input+rp.cacheRead)
	c.responseID = "resp_" + c.id
	c.stream, c.status = true, http.StatusOK
	s.limits.take(c.principal, s.now(), c.inputTokens, c.outputTokens)
	s.record(c)

	st := responsesStream(c, rp)
	if !ev.generate {
		st = preparedStream(c, rp)
	}
	frames, cut := faultFrames(st, d)
	if err := sleep(ctx, d.ttfb); err != nil {
		return err
	}
	for i, f := range frames {
		if i > 0 {
			if err := sleep(ctx, d.delay); err != nil {
				return err
			}
		}
		if err := conn.Write(ctx, websocket.MessageText, withStreamID(f.data, ev)); err != nil {
			return err
		}
		c.generated = max(c.generated, f.output)
	}
	if cut {
		s.log.Info("request cut", "method", r.Method, "path", r.URL.Path, "request_id", c.requestID())
		return errCut
	}
	s.log.Info("request served", "method", r.Method, "path", r.URL.Path, "transport", "websocket",
		"status", c.status, "model", c.model, "generate", ev.generate, "request_id", c.requestID(),
		"input_tokens", c.usage.InputTokens, "output_tokens", c.usage.OutputTokens, "fault", c.dir.fault)
	return nil
}

// faultFrames applies the fault directive to st's frames the way writeStream
// does for SSE, and reports whether the connection is then cut.
func faultFrames(st stream, d directives) ([]frame, bool) {
	frames := st.all()
	after := DefaultFaultAfter
	if d.after >= 0 {
		after = d.after
	}
	after = min(after, len(frames)-1)
	switch d.fault {
	case FaultMalformed:
		i := st.usageAt
		if d.after >= 0 {
			i = after
		}
		frames[i].data = truncate(frames[i].data)
	case FaultErrorEvent:
		frames = append(frames[:after:after], st.errorFrames(after)...)
	case FaultCut:
		return frames[:after], true
	}
	return frames, false
}

// preparedStream is the answer to "generate": false: the response is
// created and completed with no output and zero usage.
func preparedStream(c *call, rp reply) stream {
	done := newResponse(c, rp, "completed", []responseItem{})
	done.Usage = responseUsageOf(rp)
	st := frameStream([]frame{
		newFrame("response.created", responseEvent{Type: "response.created", Response: newResponse(c, rp, "in_progress", []responseItem{})}),
		newFrame("response.completed", responseEvent{Type: "response.completed", SequenceNumber: 1, Response: done}),
	})
	st.usageAt, st.errorFrames = 1, responsesStream(c, rp).errorFrames
	return st
}

// withStreamID returns an event's JSON with the request's stream_id added
// as its first member, or data unchanged when the request named none.
func withStreamID(data []byte, ev webSocketEvent) []byte {
	if ev.streamID == nil || len(data) < 2 || data[0] != '{' {
		return data
	}
	id, _ := json.Marshal(*ev.streamID) // a string always marshals
	out := make([]byte, 0, len(data)+len(id)+16)
	out = append(append(append(out, `{"stream_id":`...), id...), ',')
	if data[1] == '}' {
		out = out[:len(out)-1]
	}
	return append(out, data[1:]...)
}

// webSocketErrorEvent is the Responses WebSocket transport's error message.
type webSocketErrorEvent struct {
	Type     string            `json:"type"`
	StreamID *string           `json:"stream_id,omitempty"`
	Status   int               `json:"status"`
	Error    openAIErrorInfo   `json:"error"`
	Headers  map[string]string `json:"headers,omitempty"`
}

// webSocketError answers c with e as an error message; nothing follows it.
func (s *Server) webSocketError(ctx context.Context, conn *websocket.Conn, c *call, streamID *string, e *apiError) error {
	c.inputTokens, c.outputTokens, c.usage = 0, 0, tokenmeter.Usage{}
	c.status = e.status
	msg := e.message
	if msg == "" {
		msg = defaultErrorMessage(providerOpenAI, e.status)
	}
	typ, code := openAIErrorType(e.status)
	if e.typ != "" {
		typ = e.typ
	}
	out := webSocketErrorEvent{Type: "error", Status: e.status, Error: openAIErrorInfo{Message: msg, Type: typ}}
	if code != "" {
		out.Error.Code = &code
	}
	out.StreamID = streamID
	if e.status == http.StatusTooManyRequests {
		out.Headers = map[string]string{"retry-after": strconv.FormatInt(c.dir.retryAfterOr(DefaultRetryAfter), 10)}
	}
	data, err := json.Marshal(out)
	if err != nil {
		panic(err) // strings and ints always marshal
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, data)
}
