// Package reqbody turns a request body as a client sent it into the plain
// UTF-8 JSON the gateway's request parsers read. It undoes the content
// codings a client may declare (gzip, deflate, br, zstd, stacked in any
// order) and the text encodings JSON may arrive in (a UTF-8 byte order mark,
// UTF-16 and UTF-32), so that a body the upstream can read is never one the
// gateway meters as empty.
//
// It guarantees: the result is a copy only when something was undone; the
// common body (no Content-Encoding, UTF-8 without a mark) is returned as the
// very slice passed in, without allocating; no result is longer than the
// caller's limit, and decoding stops as soon as it would be, whatever size
// the compressed data declares; malformed input is an error, never
// silently repaired or dropped; and no error quotes the body or the header
// values it was given.
//
// The gateway forwards the original bytes and headers: what this package
// returns is for metering only.
package reqbody

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// The kinds of failure, for errors.Is. Every error Decode returns is an
// *Error whose Kind is one of them.
var (
	// ErrTooLarge: the decoded body (or a stage of it) would be longer than
	// the limit, or a zstd frame asks for a larger window than is allowed.
	ErrTooLarge = errors.New("decoded body is over the limit")
	// ErrUnsupportedEncoding: a content coding this package does not
	// undo, or more stacked codings than MaxCodings.
	ErrUnsupportedEncoding = errors.New("unsupported content encoding")
	// ErrCorrupt: compressed data that does not decode as declared:
	// truncated, a bad header or checksum, bytes after the end of the
	// stream, an empty body, or another coding than the one declared.
	ErrCorrupt = errors.New("compressed body does not decode")
	// ErrBadText: UTF-16 or UTF-32 text with an odd length, an unpaired
	// surrogate or a code point beyond Unicode.
	ErrBadText = errors.New("body is not valid text")
)

// MaxCodings bounds how many content codings may be stacked on one body.
// Real clients use one; a longer list is refused rather than run.
const MaxCodings = 4

// MaxZstdWindow is the largest zstd window accepted (RFC 8878 §3.1.1.1.2
// asks HTTP senders to stay within 8 MiB). A decoder holds a buffer the size
// of the window, so this bounds what a tiny hostile frame can make it
// allocate.
const MaxZstdWindow = 8 << 20

// maxLimit is where larger limits are clamped, so that limit+1 never
// overflows; no body comes near it.
const maxLimit = 1 << 50

// Error reports why a body could not be decoded. Its message names the stage
// and what was wrong in this package's own words: it never includes body
// bytes, header values or the decompressor's own message.
type Error struct {
	// Stage is the content coding being undone ("gzip", "deflate", "br",
	// "zstd"), "content-encoding" for the header itself, or the text
	// encoding ("utf-16le", "utf-16be", "utf-32le", "utf-32be").
	Stage string
	// Kind is ErrTooLarge, ErrUnsupportedEncoding, ErrCorrupt or ErrBadText.
	Kind error
	// Detail says more, in this package's words ("truncated", "checksum
	// mismatch", "unpaired surrogate at byte 12"); may be empty.
	Detail string
	cause  error // the library's error, for errors.Is and errors.As only
}

// Error returns "reqbody: <stage>: <kind>[: <detail>]".
func (e *Error) Error() string {
	s := "reqbody: " + e.Stage + ": " + e.Kind.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the kind and, when there is one, the decompressor's error.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.cause}
}

// Decode returns the JSON text of a request body for metering: the body with
// the content codings named in h's Content-Encoding undone (the last-applied
// first: "gzip, br" is unbrotlied, then gunzipped) and then, if the text is
// UTF-16 or UTF-32 (by its byte order mark or, without one, by the NUL bytes
// of its first characters, which in JSON are ASCII), transcoded to UTF-8,
// with any byte order mark dropped.
//
// h is read as net/http gives it, with canonical keys: its Content-Encoding
// lines. Supported codings: gzip and x-gzip, deflate (zlib-wrapped as RFC 9110
// says, or raw deflate as some clients send it, told apart by the zlib
// header), br, zstd, and identity (a no-op). Names are case-insensitive and
// may be spread over several header lines. A zstd frame may use a window of
// at most MaxZstdWindow and at most limit bytes (a sender that knows the
// body's size, as HTTP clients do, writes a window no larger than the body).
//
// No result, and no intermediate stage, may be longer than limit bytes (a
// limit <= 0 allows only an empty body): decoding stops as soon as it would
// be, with ErrTooLarge. Output buffers grow as data is decoded, never to a
// size the compressed data declares. The decoders' own history buffers are
// bounded too: gzip and deflate 32 KiB, zstd its window (see above), brotli
// its window, at most 16 MiB, grown with the output.
//
// When there is nothing to undo, body itself is returned: no copy and no
// allocation. A UTF-8 byte order mark is dropped by reslicing. Otherwise the
// result is new memory and body is not modified. Every error is an *Error.
func Decode(h http.Header, body []byte, limit int64) ([]byte, error) {
	limit = min(limit, maxLimit)
	codings := h["Content-Encoding"]
	if len(codings) == 0 && plain(body) {
		if int64(len(body)) > limit {
			return nil, tooLarge("body", limit)
		}
		return body, nil
	}
	var stack [MaxCodings]string
	n := 0
	for _, line := range codings {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.Trim(name, " \t")
			if name == "" || strings.EqualFold(name, "identity") {
				continue
			}
			if n == MaxCodings {
				return nil, &Error{Stage: "content-encoding", Kind: ErrUnsupportedEncoding,
					Detail: fmt.Sprintf("more than %d codings", MaxCodings)}
			}
			stack[n] = name
			n++
		}
	}
	// Check every name before decoding anything.
	for _, name := range stack[:n] {
		if coding(name) == "" {
			return nil, &Error{Stage: "content-encoding", Kind: ErrUnsupportedEncoding, Detail: describeCoding(name)}
		}
	}
	b := body
	for i := n - 1; i >= 0; i-- {
		var err error
		if b, err = decompress(coding(stack[i]), b, limit); err != nil {
			return nil, err
		}
	}
	return text(b, limit)
}

// plain reports whether b needs no text decoding: it does not start with a
// byte order mark or a NUL byte, and its second byte is not NUL (as it is in
// UTF-16LE and UTF-32LE JSON, whose first character is ASCII).
func plain(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	switch b[0] {
	case 0x00, 0xEF, 0xFE, 0xFF:
		return false
	}
	return len(b) < 2 || b[1] != 0
}

// coding returns the canonical name of a supported content coding, or "".
func coding(name string) string {
	for _, c := range [...]string{"gzip", "deflate", "br", "zstd"} {
		if strings.EqualFold(name, c) {
			return c
		}
	}
	if strings.EqualFold(name, "x-gzip") {
		return "gzip"
	}
	return ""
}

// describeCoding names an unsupported coding only when it is one of the
// registered ones (so nothing a client made up, which could be anything,
// is echoed).
func describeCoding(name string) string {
	for _, c := range [...]string{"compress", "x-compress", "exi", "pack200-gzip", "aes128gcm", "dcb", "dcz"} {
		if strings.EqualFold(name, c) {
			return c + " is not supported"
		}
	}
	return "a coding that is not registered"
}

// decompress undoes one content coding.
func decompress(name string, in []byte, limit int64) ([]byte, error) {
	if len(in) == 0 {
		return nil, &Error{Stage: name, Kind: ErrCorrupt, Detail: "empty body"}
	}
	src := bytes.NewReader(in)
	var r io.Reader
	var err error
	switch name {
	case "gzip":
		// Concatenated members are read as one body, as RFC 1952 allows.
		r, err = gzip.NewReader(src)
	case "deflate":
		if zlibHeader(in) {
			r, err = zlib.NewReader(src)
		} else {
			r = flate.NewReader(src)
		}
	case "br":
		r = brotli.NewReader(src)
	case "zstd":
		// One goroutine-free decoder per call; zstd bodies are rare.
		var d *zstd.Decoder
		d, err = zstd.NewReader(src,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(uint64(max(limit, 1))),
			zstd.WithDecoderMaxWindow(uint64(min(max(limit, zstd.MinWindowSize), MaxZstdWindow))),
			zstd.WithDecodeBuffersBelow(0))
		if err != nil {
			return nil, &Error{Stage: name, Kind: ErrCorrupt, Detail: "decoder setup failed", cause: err}
		}
		defer d.Close()
		r = d
	}
	if err != nil {
		return nil, corrupt(name, err, limit)
	}
	out, err := readAll(r, limit, len(in))
	if err != nil {
		return nil, corrupt(name, err, limit)
	}
	if name == "deflate" && src.Len() > 0 {
		// flate and zlib read through src as a ByteReader, so whatever
		// is left was never part of the stream.
		return nil, &Error{Stage: name, Kind: ErrCorrupt, Detail: "data after the end of the stream"}
	}
	return out, nil
}

// zlibHeader reports whether b starts with a zlib header (RFC 1950 §2.2):
// method 8 (deflate), a window of at most 32 KiB, and the check bits.
func zlibHeader(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0F == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

// errLimit is readAll's own error for output over the limit.
var errLimit = errors.New("over the limit")

// readAll reads r to its end into a buffer grown as data arrives, failing
// with errLimit once more than limit bytes have come. inLen, the size of the
// compressed input, only sizes the first buffer.
func readAll(r io.Reader, limit int64, inLen int) ([]byte, error) {
	const minBuf, maxFirst = 512, 1 << 20
	first := int64(min(max(4*inLen, minBuf), maxFirst))
	buf := make([]byte, 0, min(first, max(limit, 0)+1))
	for {
		if len(buf) == cap(buf) {
			// Double, but never past limit+1: one byte over is enough
			// to know.
			room := min(int64(cap(buf)), max(limit, 0)+1-int64(len(buf)))
			buf = slices.Grow(buf, int(max(room, 1)))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, errLimit
		}
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return nil, err
		}
	}
}

// corrupt turns a decompressor's error into an *Error in this package's
// words.
func corrupt(stage string, err error, limit int64) *Error {
	e := &Error{Stage: stage, Kind: ErrCorrupt, cause: err}
	switch {
	case err == errLimit:
		return tooLarge(stage, limit)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		e.Kind, e.Detail = ErrTooLarge, fmt.Sprintf("the zstd window is over %d bytes or the limit", MaxZstdWindow)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		e.Detail = "truncated"
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, zlib.ErrChecksum), errors.Is(err, zstd.ErrCRCMismatch):
		e.Detail = "checksum mismatch"
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, zlib.ErrHeader), errors.Is(err, zstd.ErrMagicMismatch):
		e.Detail = "not " + stage + " data (bad header)"
	case errors.Is(err, zlib.ErrDictionary):
		e.Detail = "needs a preset dictionary"
	default:
		var ce flate.CorruptInputError
		if errors.As(err, &ce) {
			e.Detail = fmt.Sprintf("corrupt data at compressed byte %d", int64(ce))
		} else {
			e.Detail = "corrupt data"
		}
	}
	return e
}

func tooLarge(stage string, limit int64) *Error {
	return &Error{Stage: stage, Kind: ErrTooLarge, Detail: fmt.Sprintf("more than %d bytes", max(limit, 0))}
}
