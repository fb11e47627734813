package proxy

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/bigframe"
	"github.com/tokenmeter/tokenmeter/internal/estimate"
	"github.com/tokenmeter/tokenmeter/internal/openai"
	"github.com/tokenmeter/tokenmeter/internal/sse"
)

// meteredBody relays an upstream response body to the client while the
// call's meter reads it.
//
// For event streams it releases every complete frame as soon as it has
// arrived, except the terminal one (message_stop, [DONE],
// response.completed), which it releases only once the completed record is
// durable. A frame larger than MaxFrame is not buffered: its bytes are
// released as they arrive, all but the last, while a bigframe.Scanner reads
// them; once the frame has ended the meter reads the small frame the
// scanner made of it, and the last byte follows (after the durable record
// if the frame is terminal). For other bodies it releases all but the last
// byte and keeps a copy for the meter, up to MaxMeteredBody, beyond which a
// bigframe.Scanner reads the body instead; the last byte follows the
// durable record. The client never holds a whole response the ledger has
// not recorded.
type meteredBody struct {
	src io.ReadCloser
	c   *call
	sse bool

	buf    []byte // bytes read from src, not yet released
	out    []byte // bytes ready for the client
	off    int    // read position in out
	copy   []byte // JSON: copy of the body for the meter
	big    *bigframe.Scanner
	ended  bool  // src is finished and the call recorded
	endErr error // what Read returns once out is drained
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
		switch {
		case b.big != nil:
			b.big.Write(data)
		case len(b.copy)+len(data) > b.c.p.MaxMeteredBody:
			// Too large to copy: scan it instead, from its first byte.
			b.big = bigframe.NewBody()
			b.big.Write(b.copy)
			b.big.Write(data)
			b.copy = nil
		default:
			b.copy = append(b.copy, data...)
		}
		// Release the byte held so far and all new bytes but the last,
		// which is held until the call is recorded.
		b.out = append(append(b.out, b.buf...), data[:len(data)-1]...)
		b.buf = append(b.buf[:0], data[len(data)-1])
		return nil
	}
	for len(data) > 0 {
		if b.big != nil {
			// Inside an oversized frame: b.buf holds its last byte so far.
			n, done := b.big.Write(data)
			part := data[:n]
			data = data[n:]
			if !done {
				b.out = append(append(b.out, b.buf...), part[:len(part)-1]...)
				b.buf = append(b.buf[:0], part[len(part)-1])
				continue
			}
			b.buf = append(b.buf, part...)
			big := b.big
			b.big = nil
			if err := b.deliverBig(big); err != nil {
				return err
			}
			continue
		}
		b.buf = append(b.buf, data...)
		data = nil
		start := 0
		for {
			rest := b.buf[start:]
			n := sse.FrameEnd(rest)
			if n < 0 {
				if len(rest) > b.c.p.MaxFrame {
					// An oversized frame: scan it from its first byte and
					// release all of it but the last byte.
					b.big = bigframe.NewFrame()
					b.big.Write(rest) // no frame ends in rest
					b.out = append(b.out, rest[:len(rest)-1]...)
					start += len(rest) - 1
				}
				break
			}
			frame := rest[:n]
			start += n
			if err := b.deliver(sse.Parse(frame), frame, false); err != nil {
				return err
			}
		}
		b.buf = append(b.buf[:0], b.buf[start:]...)
	}
	return nil
}

// deliver meters one complete frame and releases it: after the durable
// record if it is terminal, never if the meter drops it. big says the frame
// was relayed already but for its tail, which frame is: it is neither
// dropped nor rewritten.
func (b *meteredBody) deliver(ev sse.Event, frame []byte, big bool) error {
	terminal, drop := b.c.meter.Frame(ev)
	if !b.c.progressed && b.c.meterStarted() {
		b.c.progress()
	}
	if drop && !big {
		return nil
	}
	if terminal {
		if err := b.c.finish(tokenmeter.OutcomeOK, "", true); err != nil && !b.c.p.FailOpen {
			b.c.p.log.Error("terminal event withheld: the ledger could not record the call", "request", b.c.id, "err", err)
			return errors.New("tokenmeter: ledger unavailable; response withheld")
		}
	}
	if b.c.stripNullUsage && !big {
		frame = openai.StripNullUsage(frame)
	}
	b.out = append(b.out, frame...)
	return nil
}

// deliverBig meters an oversized frame that has ended, from what its
// scanner read, and releases its tail, held in b.buf.
func (b *meteredBody) deliverBig(big *bigframe.Scanner) error {
	if n := big.OutputChars(); n > 0 {
		if r, ok := b.c.meter.(relayCounter); ok {
			r.Relayed().AddChars(n)
		}
	}
	var err error
	b.meterBig(big, func(ev sse.Event) { err = b.deliver(ev, b.buf, true) })
	b.buf = b.buf[:0]
	return err
}

// meterBig gives the meter the frame an oversized frame's scanner made of
// it, through frame. When the meter finds it malformed (usage it cannot
// read), the call's reason gives the real frame's size and fault, which
// the small frame's own would not.
func (b *meteredBody) meterBig(big *bigframe.Scanner, frame func(sse.Event)) {
	before := b.c.meter.Malformed()
	ev := big.Event()
	frame(ev)
	if err := big.Err(); err != nil && before == "" && b.c.meter.Malformed() != "" && b.c.reason == "" {
		name := ev.Name
		if name == "" {
			name = "an SSE"
		}
		b.c.reason = name + " frame of " + strconv.FormatInt(big.Size(), 10) + " bytes is not valid JSON: " + err.Error()
	}
}

// relayCounter is a meter that counts the output relayed to the client.
type relayCounter interface{ Relayed() *estimate.Output }

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
	switch {
	case !b.sse && b.big != nil:
		// A body too large to copy, read by its scanner. One that is not
		// JSON is not given to the meter, whose reason would give the size
		// of the scanner's small body rather than the real one.
		if err := b.big.Err(); err != nil {
			b.c.reason = "response body of more than " + byteSize(b.c.p.MaxMeteredBody) + " is not valid JSON: " + err.Error()
		} else {
			b.c.meter.Body(b.big.Body())
		}
		b.big = nil
	case !b.sse:
		b.c.meter.Body(b.copy)
		b.copy = nil
	case b.big != nil:
		// An oversized final frame without its blank line: meter what it
		// has, as a frame.
		if n := b.big.OutputChars(); n > 0 {
			if r, ok := b.c.meter.(relayCounter); ok {
				r.Relayed().AddChars(n)
			}
		}
		b.meterBig(b.big, func(ev sse.Event) { b.c.meter.Frame(ev) })
		b.big = nil
	case len(b.buf) > 0:
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

// byteSize writes n bytes for a message: "16 MiB", or the count.
func byteSize(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.Itoa(n>>20) + " MiB"
	}
	return strconv.Itoa(n) + " bytes"
}
