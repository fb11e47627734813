package fakeupstream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// frame is one server-sent event.
type frame struct {
	event string // SSE event name; "" for a data-only frame (Chat Completions)
	data  []byte
}

// newFrame returns an event named event whose data is v as JSON.
func newFrame(event string, v any) frame {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakeupstream: marshal %T: %v", v, err)) // our own types always marshal
	}
	return frame{event: event, data: data}
}

// stream is a complete event stream and what its faults send.
type stream struct {
	frames []frame
	// usageAt is the index of the frame with the final usage, the one
	// fault=malformed breaks.
	usageAt int
	// errorFrames returns what fault=error_event sends after the first n
	// frames.
	errorFrames func(n int) []frame
}

// truncate returns the first half of a JSON document: never valid JSON.
func truncate(data []byte) []byte { return data[:len(data)/2] }

// writeStream sends st as text/event-stream, applying the fault, ttfb and
// delay directives. It returns a non-nil error if the client went away.
func (s *Server) writeStream(w http.ResponseWriter, r *http.Request, c *call, st stream) error {
	c.stream = true
	frames := st.frames
	after := DefaultFaultAfter
	if c.dir.after >= 0 {
		after = c.dir.after
	}
	after = min(after, len(frames)-1)
	cut := false
	switch c.dir.fault {
	case FaultMalformed:
		i := st.usageAt
		if c.dir.after >= 0 {
			i = after
		}
		frames = append([]frame(nil), frames...)
		frames[i].data = truncate(frames[i].data)
	case FaultErrorEvent:
		frames = append(frames[:after:after], st.errorFrames(after)...)
	case FaultCut:
		frames, cut = frames[:after], true
	}

	ctx := r.Context()
	if err := sleep(ctx, c.dir.ttfb); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-cache")
	s.writeHeader(w, c, http.StatusOK, "text/event-stream; charset=utf-8")
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return err
	}
	var buf []byte
	for i, f := range frames {
		if i > 0 {
			if err := sleep(ctx, c.dir.delay); err != nil {
				return err
			}
		} else if err := ctx.Err(); err != nil {
			return err
		}
		buf = buf[:0]
		if f.event != "" {
			buf = append(buf, "event: "...)
			buf = append(buf, f.event...)
			buf = append(buf, '\n')
		}
		buf = append(buf, "data: "...)
		buf = append(buf, f.data...)
		buf = append(buf, "\n\n"...)
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if err := rc.Flush(); err != nil {
			return err
		}
	}
	if cut {
		s.abort(r, c)
	}
	return nil
}

// writeBody sends a complete non-stream JSON reply, applying the fault,
// ttfb and delay directives.
func (s *Server) writeBody(w http.ResponseWriter, r *http.Request, c *call, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakeupstream: marshal %T: %v", v, err)) // our own types always marshal
	}
	if err := sleep(r.Context(), c.dir.ttfb+c.dir.delay); err != nil {
		return err
	}
	switch c.dir.fault {
	case FaultErrorEvent:
		if c.provider == providerAnthropic {
			return &apiError{status: 529}
		}
		return &apiError{status: http.StatusInternalServerError}
	case FaultMalformed:
		body = truncate(body)
	case FaultCut:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		s.writeHeader(w, c, http.StatusOK, "application/json")
		if _, err := w.Write(truncate(body)); err != nil {
			return err
		}
		if err := http.NewResponseController(w).Flush(); err != nil {
			return err
		}
		s.abort(r, c)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	s.writeHeader(w, c, http.StatusOK, "application/json")
	_, err = w.Write(body)
	return err
}

// abort breaks the connection of a response that was started, the way a
// dying upstream would.
func (s *Server) abort(r *http.Request, c *call) {
	s.log.Info("request cut", "method", r.Method, "path", r.URL.Path, "request_id", c.requestID())
	panic(http.ErrAbortHandler)
}
