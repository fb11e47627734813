package proxy

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/openai"
	"github.com/tokenmeter/tokenmeter/internal/sse"
)

// meteredBody relays an upstream response body to the client while the
// call's meter reads it.
//
// For event streams it releases every complete frame as soon as it has
// arrived, except the terminal one (message_stop, [DONE],
// response.completed), which it releases only once the completed record is
// durable. For other bodies it releases all but the last byte and keeps a
// bounded copy for the meter; the last byte follows the durable record.
// A frame larger than MaxFrame is relayed unparsed.
type meteredBody struct {
	src io.ReadCloser
	c   *call
	sse bool

	buf    []byte // bytes read from src, not yet released
	out    []byte // bytes ready for the client
	off    int    // read position in out
	copy   []byte // JSON: copy of the body for the meter
	over   bool   // JSON: body larger than MaxMeteredBody
	skip   bool   // SSE: inside an oversized frame
	ended  bool   // src is finished and the call recorded
	endErr error  // what Read returns once out is drained
	chunk  []byte
}

// chunkPool recycles the read buffers of metered bodies: one per response
// in flight, so a busy gateway would otherwise allocate 32 KiB per call.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func newMeteredBody(src io.ReadCloser, c *call, isSSE bool) *meteredBody {
	return &meteredBody{src: src, c: c, sse: isSSE, chunk: *chunkPool.Get().(*[]byte)}
}

// Read implements io.Reader.
func (b *meteredBody) Read(p []byte) (int, error) {
	for {
		if b.off < len(b.out) {
			n := copy(p, b.out[b.off:])
			b.off += n
			if b.off == len(b.out) {
				b.out, b.off = b.out[:0], 0
			}
			return n, nil
		}
		if b.ended {
			return 0, b.endErr
		}
		if b.chunk == nil {
			return 0, errors.New("read after close")
		}
		n, err := b.src.Read(b.chunk)
		if n > 0 {
			if ferr := b.consume(b.chunk[:n]); ferr != nil {
				b.ended, b.endErr = true, ferr
				continue
			}
		}
		if err != nil {
			b.end(err)
		}
	}
}

// consume takes newly read bytes.
func (b *meteredBody) consume(data []byte) error {
	if !b.sse {
		if !b.over {
			if len(b.copy)+len(data) > b.c.p.MaxMeteredBody {
				b.over, b.copy = true, nil
			} else {
				b.copy = append(b.copy, data...)
			}
		}
		// Release the byte held so far and all new bytes but the last,
		// which is held until the call is recorded.
		b.out = append(append(b.out, b.buf...), data[:len(data)-1]...)
		b.buf = append(b.buf[:0], data[len(data)-1])
		return nil
	}
	b.buf = append(b.buf, data...)
	start := 0
	for {
		rest := b.buf[start:]
		n := sse.FrameEnd(rest)
		if n < 0 {
			if len(rest) > b.c.p.MaxFrame {
				b.out = append(b.out, rest...)
				start += len(rest)
				b.skip = true
			}
			break
		}
		frame := rest[:n]
		start += n
		if b.skip {
			b.skip = false
			b.out = append(b.out, frame...)
			continue
		}
		terminal, drop := b.c.meter.Frame(sse.Parse(frame))
		if !b.c.progressed && b.c.meterStarted() {
			b.c.progress()
		}
		if drop {
			continue
		}
		if terminal {
			if err := b.c.finish(tokenmeter.OutcomeOK, "", true); err != nil && !b.c.p.FailOpen {
				b.c.p.log.Error("terminal event withheld: the ledger could not record the call", "request", b.c.id, "err", err)
				return errors.New("tokenmeter: ledger unavailable; response withheld")
			}
		}
		if b.c.stripNullUsage {
			frame = openai.StripNullUsage(frame)
		}
		b.out = append(b.out, frame...)
	}
	b.buf = append(b.buf[:0], b.buf[start:]...)
	return nil
}

// end records the call when the upstream body ends, then releases what is
// left.
func (b *meteredBody) end(err error) {
	b.ended = true
	b.endErr = err
	if b.c.done {
		b.out = append(b.out, b.buf...)
		b.buf = b.buf[:0]
		return
	}
	if !b.sse {
		if b.over {
			b.c.reason = "response body larger than the meter's limit"
		} else {
			b.c.meter.Body(b.copy)
		}
		b.copy = nil
	} else if len(b.buf) > 0 && !b.skip {
		// A final frame without its blank line: meter it as a frame.
		b.c.meter.Frame(sse.Parse(b.buf))
	}
	outcome, reason := tokenmeter.OutcomeOK, ""
	switch {
	case b.c.ctx.Err() != nil || errors.Is(err, context.Canceled):
		outcome, reason = tokenmeter.OutcomeCancelled, "client disconnected"
	case err != io.EOF:
		outcome, reason = tokenmeter.OutcomeFailed, "upstream response cut: "+err.Error()
	case b.sse && !b.c.meter.Complete() && b.c.status < 400:
		outcome, reason = tokenmeter.OutcomeFailed, "stream ended before its final event"
	}
	if ferr := b.c.finish(outcome, reason, true); ferr != nil && !b.c.p.FailOpen {
		b.c.p.log.Error("response end withheld: the ledger could not record the call", "request", b.c.id, "err", ferr)
		b.endErr = errors.New("tokenmeter: ledger unavailable; response withheld")
		b.buf = b.buf[:0]
		return
	}
	b.out = append(b.out, b.buf...)
	b.buf = b.buf[:0]
}

// Close records a call the client abandoned, then closes the upstream body
// (which cancels the upstream request, as the client would have).
func (b *meteredBody) Close() error {
	if !b.c.done {
		b.c.finish(tokenmeter.OutcomeCancelled, "client disconnected", false)
	}
	if b.chunk != nil {
		buf := b.chunk
		b.chunk = nil
		chunkPool.Put(&buf)
	}
	return b.src.Close()
}

func (c *call) meterStarted() bool {
	s, ok := c.meter.(interface{ Started() bool })
	return ok && s.Started()
}
