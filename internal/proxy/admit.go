package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Admission: what a request must pass before anything about it is
// recorded or forwarded, in this order.
//
//  1. Its path (after the route prefix) must be canonical and at most
//     MaxEndpointLength bytes: the path the ledger records and meters is
//     then exactly the one the upstream routes on. Refused with 400: dot
//     segments (".", "..", also written %2e%2e, %2E. and so on, which Go
//     decodes before the gateway sees them), empty segments ("//", also
//     from %2F%2F), backslashes and ';' (which some servers read as a
//     separator or a parameter), and control bytes. An escaped slash (%2F)
//     inside a segment is kept as the client wrote it; the gateway routes
//     and meters on the decoded path.
//  2. Fewer than MaxInFlight requests are being served; else 503 with
//     retry-after.
//  3. Its credential (auth.go): a virtual key is authenticated or refused.
//  4. Its body is read: at most MaxRequestBody bytes (413), with no pause
//     longer than RequestReadTimeout (408), into a buffer grown as bytes
//     arrive, never sized from the declared Content-Length up front (a
//     declared length is only a claim).
//
// Every refusal is answered in the provider's error shape and recorded
// nowhere: the request never left the gateway. A refused request's unread
// body gets refusedBodyGrace to arrive (net/http reads it before answering,
// to keep the connection); a client that stalls it loses the connection
// instead of holding a server goroutine without an in-flight slot.

// Defaults for Proxy's admission fields.
const (
	// DefaultMaxInFlight is the default cap on requests served at once.
	DefaultMaxInFlight = 1024
	// DefaultRequestReadTimeout is the default longest pause in a request
	// body.
	DefaultRequestReadTimeout = 30 * time.Second
)

// MaxEndpointLength bounds the path recorded as an event's Endpoint (the
// path after the route prefix), in bytes; a longer path is refused.
const MaxEndpointLength = 512

// initialBodyBuffer is the most the gateway allocates for a request body
// before its bytes arrive; the buffer doubles as they do.
const initialBodyBuffer = 64 << 10

// refusedBodyGrace is how long the server may wait for the rest of a
// refused request's body before the answer (net/http discards it first, to
// reuse the connection); after it the connection closes after the answer.
const refusedBodyGrace = time.Second

// fullLogInterval spaces the log lines about requests refused at the
// in-flight cap.
const fullLogInterval = 10 * time.Second

// admission is an admitted request: its body, its path after the route
// prefix, and the URL to forward it to.
type admission struct {
	p    *Proxy
	body []byte
	rest string
	url  *url.URL
}

// done gives back the request's in-flight slot.
func (a admission) done() { a.p.inflight.Add(-1) }

// InFlight returns the number of proxied requests being served.
func (p *Proxy) InFlight() int { return int(p.inflight.Load()) }

// admit runs the admission of a request on c's route whose path after the
// route prefix is rest. On refusal it has answered the client and returns
// false; otherwise the caller must call the admission's done when the call
// ends.
func (p *Proxy) admit(w http.ResponseWriter, r *http.Request, c *call, rest string) (a admission, ok bool) {
	stalled := false
	defer func() {
		if !ok && !stalled && r.Body != nil && r.Body != http.NoBody {
			// Bound the server's wait for the body it reads before the
			// answer goes out (see refusedBodyGrace). A stalled body's
			// deadline has passed already and stays so.
			grace := refusedBodyGrace
			if t := p.readTimeout(); t > 0 && t < grace {
				grace = t
			}
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(grace))
		}
	}()
	if msg := checkPath(rest); msg != "" {
		c.refuse(w, http.StatusBadRequest, msg)
		return admission{}, false
	}
	a = admission{p: p, rest: rest}
	n := p.inflight.Add(1)
	if max := p.maxInFlight(); max > 0 && n > max {
		a.done()
		p.logFull(max)
		w.Header().Set("Retry-After", "1")
		c.refuse(w, http.StatusServiceUnavailable, fmt.Sprintf("the gateway is serving its maximum of %d requests at once; retry shortly", max))
		return admission{}, false
	}
	k, authed := p.authenticate(w, r, c)
	if !authed {
		a.done()
		return admission{}, false
	}
	body, status, err := p.readBody(w, r)
	if err != nil {
		a.done()
		stalled = status == http.StatusRequestTimeout
		if r.ProtoMajor == 1 {
			// The rest of the body, if any, is not read: end the
			// connection (HTTP/2 ends just the stream).
			w.Header().Set("Connection", "close")
		}
		c.refuse(w, status, err.Error())
		return admission{}, false
	}
	a.body = body
	if a.rest == "" {
		a.rest = "/"
	}
	a.url = outboundURL(r.URL, c.rt.Prefix, a.rest)
	if c.virtual {
		k.scrub(r.Header, a.url)
	}
	return a, true
}

// readTimeout returns RequestReadTimeout with its default; negative means
// none.
func (p *Proxy) readTimeout() time.Duration {
	if p.RequestReadTimeout == 0 {
		return DefaultRequestReadTimeout
	}
	return p.RequestReadTimeout
}

func (p *Proxy) maxInFlight() int64 {
	switch {
	case p.MaxInFlight == 0:
		return DefaultMaxInFlight
	case p.MaxInFlight < 0:
		return 0
	}
	return int64(p.MaxInFlight)
}

// logFull logs, at most once per fullLogInterval, that requests are
// refused at the in-flight cap.
func (p *Proxy) logFull(max int64) {
	now := time.Now().UnixNano()
	last := p.fullLogged.Load()
	if now-last < int64(fullLogInterval) || !p.fullLogged.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn("requests refused: the gateway is at its in-flight cap (--max-in-flight)", "max_in_flight", max)
}

// checkPath returns why the path rest (after the route prefix, decoded)
// is refused, or "" if it is canonical (see the comment at the top).
func checkPath(rest string) string {
	if len(rest) > MaxEndpointLength {
		return fmt.Sprintf("the request path is %d bytes long; the gateway accepts at most %d after the route prefix", len(rest), MaxEndpointLength)
	}
	seg := 0 // start of the current segment
	for i := 0; i <= len(rest); i++ {
		if i < len(rest) {
			switch c := rest[i]; {
			case c < 0x20 || c == 0x7f:
				return "the request path holds a control character"
			case c == '\\' || c == ';':
				return fmt.Sprintf("the request path holds %q, which upstreams may read as a separator; the gateway refuses it", c)
			case c != '/':
				continue
			}
		}
		// rest[seg:i] is a segment (rest[0] is '/': the first is empty).
		switch s := rest[seg:i]; {
		case s == "." || s == "..":
			return "the request path holds a dot segment (. or .., also written %2e); the gateway refuses it rather than guess where the upstream would route it"
		case s == "" && seg > 0 && i < len(rest):
			return "the request path holds an empty segment (//)"
		}
		seg = i + 1
	}
	return ""
}

// outboundURL returns the URL to forward a request for in to: the path
// rest, escaped as the client escaped it when the client's escaped path
// starts with the route prefix (so an escaped slash inside a segment stays
// one), and in the canonical escaping otherwise.
func outboundURL(in *url.URL, prefix, rest string) *url.URL {
	u := *in
	u.Path, u.RawPath = rest, ""
	if in.RawPath != "" {
		if raw, ok := strings.CutPrefix(in.RawPath, prefix); ok && (raw == "" || raw[0] == '/') {
			u.RawPath = raw
		}
	}
	return &u
}

// readBody reads the request body (see the comment at the top). On error
// it returns the status to answer with: 413 for a body over
// MaxRequestBody, 408 for one that stalled, 400 for one that could not be
// read.
func (p *Proxy) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, 0, nil
	}
	limit := p.MaxRequestBody
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body of %d bytes exceeds the gateway's limit of %d bytes", r.ContentLength, limit)
	}
	// end is the most the buffer may hold: the declared length, or one
	// byte past the limit to see that a body of unknown length is over it.
	end := limit + 1
	if r.ContentLength > 0 {
		end = r.ContentLength
	}
	timeout := p.readTimeout()
	var rc *http.ResponseController
	if timeout > 0 {
		rc = http.NewResponseController(w)
	}
	armed := false
	buf := make([]byte, 0, min(end, initialBodyBuffer))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= end {
				break
			}
			nb := make([]byte, len(buf), min(end, 2*int64(cap(buf))))
			copy(nb, buf)
			buf = nb
		}
		if rc != nil {
			// An idle timeout: each read may wait this long for bytes.
			if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
				rc = nil // not supported by this ResponseWriter
			} else {
				armed = true
			}
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			if timedOut(err) {
				// The deadline stays passed: nothing more is read from
				// this connection, which closes after the answer.
				return nil, http.StatusRequestTimeout, fmt.Errorf("the request body stalled: no bytes arrived for %s (the gateway's request read timeout)", timeout)
			}
			return nil, http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
		}
	}
	if armed {
		// Clear it: the server's own read of the idle connection (which
		// notices a client that leaves) must not time out mid-response.
		rc.SetReadDeadline(time.Time{})
	}
	if int64(len(buf)) > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body exceeds the gateway's limit of %d bytes", limit)
	}
	return buf, 0, nil
}

// timedOut reports whether err is a read deadline passing.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
