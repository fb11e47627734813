// Package sse frames and parses Server-Sent Events over byte slices, for the
// gateway's hot path and for test servers. Its functions never panic on any
// input, and FrameEnd and Parse allocate nothing for ordinary single-data-line
// frames with well-known event names.
//
// Framing follows the WHATWG "server-sent events" processing model: lines end
// in "\n", "\r\n" or a lone "\r", and a frame (one event) ends at the first
// empty line. The stream-level details a browser adds (a leading byte-order
// mark, the retry field, reconnection) are left to the caller.
package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

// FrameEnd returns the length of the first complete frame at the start of
// buf, including the empty line that ends it, or -1 if buf holds no complete
// frame yet. The result is always -1 or in (0, len(buf)].
//
// A "\r" at the very end of buf makes the frame incomplete even when it would
// end it: the next read may start with "\n", and "\r\n" is one line ending,
// not two. FrameEnd is therefore prefix-stable: if FrameEnd(buf[:k]) is n >= 0
// then FrameEnd(buf) is n too, so feeding a stream in pieces finds the same
// frames as feeding it whole. At the end of a stream, bytes after the last
// complete frame are an incomplete event (the SSE spec discards them; a caller
// may still Parse them for diagnostics).
//
// A buffer that starts with an empty line is a frame of its own (length 1 or
// 2) that parses to the zero Event.
func FrameEnd(buf []byte) int {
	i := 0
	for i < len(buf) {
		j := indexEOL(buf[i:])
		if j < 0 {
			return -1
		}
		empty := j == 0
		k := i + j
		if buf[k] == '\r' {
			if k+1 == len(buf) {
				return -1 // "\r" may be the first half of "\r\n"
			}
			if buf[k+1] == '\n' {
				k++
			}
		}
		k++
		if empty {
			return k
		}
		i = k
	}
	return -1
}

// indexEOL returns the index of the first "\r" or "\n" in b, or -1.
func indexEOL(b []byte) int {
	n := bytes.IndexByte(b, '\n')
	if n < 0 {
		return bytes.IndexByte(b, '\r')
	}
	if r := bytes.IndexByte(b[:n], '\r'); r >= 0 {
		return r
	}
	return n
}

// nextLine splits the first line off b. It returns the line without its
// ending and the rest of b after the ending; a final line without an ending is
// returned whole.
func nextLine(b []byte) (line, rest []byte) {
	j := indexEOL(b)
	if j < 0 {
		return b, nil
	}
	k := j + 1
	if b[j] == '\r' && k < len(b) && b[k] == '\n' {
		k++
	}
	return b[:j], b[k:]
}

// Event is one parsed frame.
type Event struct {
	// Name is the value of the last "event" field, "" if there was none.
	Name string
	// Data holds the values of the "data" fields joined by "\n"; it is nil
	// if the frame had no data field. When the frame has exactly one data
	// field, Data aliases the frame passed to Parse: copy it to keep it
	// after the frame's buffer is reused.
	Data []byte
	// ID is the value of the last "id" field that contained no NUL byte.
	ID string
}

// Parse parses one frame, as delimited by FrameEnd. It stops at the first
// empty line; a last line without a line ending is parsed as if it had one.
// Comment lines (starting with ":") and unknown fields are ignored, a field
// without a colon has an empty value, and one space after the colon is
// stripped ("data:x" and "data: x" are the same).
func Parse(frame []byte) Event {
	var ev Event
	var joined bool // ev.Data is our own buffer, not an alias of frame
	for rest := frame; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if c := bytes.IndexByte(line, ':'); c >= 0 {
			field, value = line[:c], line[c+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			switch {
			case ev.Data == nil:
				if value == nil {
					value = line[len(line):]
				}
				ev.Data = value
			case !joined:
				buf := make([]byte, 0, len(ev.Data)+1+len(value))
				ev.Data = append(append(append(buf, ev.Data...), '\n'), value...)
				joined = true
			default:
				ev.Data = append(append(ev.Data, '\n'), value...)
			}
		case "event":
			ev.Name = eventName(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.ID = string(value)
			}
		}
	}
	return ev
}

// eventName returns b as a string, without allocating for the event names
// Anthropic and OpenAI send most often.
func eventName(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case "message_start":
		return "message_start"
	case "message_delta":
		return "message_delta"
	case "message_stop":
		return "message_stop"
	case "content_block_start":
		return "content_block_start"
	case "content_block_delta":
		return "content_block_delta"
	case "content_block_stop":
		return "content_block_stop"
	case "ping":
		return "ping"
	case "error":
		return "error"
	case "response.created":
		return "response.created"
	case "response.in_progress":
		return "response.in_progress"
	case "response.output_item.added":
		return "response.output_item.added"
	case "response.output_item.done":
		return "response.output_item.done"
	case "response.content_part.added":
		return "response.content_part.added"
	case "response.content_part.done":
		return "response.content_part.done"
	case "response.output_text.delta":
		return "response.output_text.delta"
	case "response.output_text.done":
		return "response.output_text.done"
	case "response.reasoning_summary_text.delta":
		return "response.reasoning_summary_text.delta"
	case "response.function_call_arguments.delta":
		return "response.function_call_arguments.delta"
	case "response.completed":
		return "response.completed"
	case "response.incomplete":
		return "response.incomplete"
	case "response.failed":
		return "response.failed"
	}
	return string(b)
}

// ErrBadName is returned by WriteEvent for an event name that contains a
// line break, which would end the frame early.
var ErrBadName = errors.New("sse: event name contains a line break")

// Writer writes event frames to an underlying writer, for servers. It is not
// safe for concurrent use.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer that writes frames to w. If w has a Flush method
// (http.Flusher, or Flush() error as on bufio.Writer), each WriteEvent calls
// it, so that every event reaches the client as it is written.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteEvent writes one frame: "event: name\n" (omitted when name is ""),
// then one "data: " line per line of data (split on "\n", "\r\n" and "\r", so
// that Parse returns data with its line breaks normalised to "\n"), then the
// empty line. Empty data is written as a single empty data line. The frame is
// passed to the underlying writer in a single Write call.
func (w *Writer) WriteEvent(name string, data []byte) error {
	if strings.ContainsAny(name, "\r\n") {
		return ErrBadName
	}
	b := w.buf[:0]
	if name != "" {
		b = append(append(append(b, "event: "...), name...), '\n')
	}
	for rest := data; ; {
		var line []byte
		line, rest = nextLine(rest)
		if len(line) == 0 {
			b = append(b, "data:\n"...)
		} else {
			b = append(append(append(b, "data: "...), line...), '\n')
		}
		if rest == nil {
			break
		}
		// A line ending at the very end of data leaves one more, empty line.
	}
	b = append(b, '\n')
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	switch f := w.w.(type) {
	case interface{ Flush() error }:
		return f.Flush()
	case interface{ Flush() }:
		f.Flush()
	}
	return nil
}
