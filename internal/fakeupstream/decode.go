package fakeupstream

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// DecodeBody returns a request body as the fake reads it: the
// Content-Encoding contentEncoding undone (gzip, x-gzip, deflate, br, zstd
// or identity, a comma-separated list applied in order, so undone last to
// first), then its text decoded to UTF-8 without a byte order mark (see
// decodeText). The decoded body may not exceed MaxBodyBytes. Usage and
// directives are read from what DecodeBody returns, so a small compressed
// body can bill many tokens, as it does upstream.
func DecodeBody(contentEncoding string, body []byte) ([]byte, error) {
	out, err := decompress(contentEncoding, body)
	if err != nil {
		return nil, err
	}
	if out, err = decodeText(out); err != nil {
		return nil, err
	}
	if len(out) > MaxBodyBytes {
		return nil, errDecodedTooLarge
	}
	return out, nil
}

// Decoding errors, answered in the provider's shape by handle.
var (
	errUnsupportedEncoding = errors.New("unsupported Content-Encoding")
	errDecodedTooLarge     = fmt.Errorf("decoded request body exceeds %d bytes", MaxBodyBytes)
)

// decompress undoes the content codings of contentEncoding.
func decompress(contentEncoding string, body []byte) ([]byte, error) {
	var codings []string
	for _, c := range strings.Split(contentEncoding, ",") {
		if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
			codings = append(codings, c)
		}
	}
	for i := len(codings) - 1; i >= 0; i-- {
		out, err := decompressOne(codings[i], body)
		if err != nil {
			return nil, err
		}
		body = out
	}
	return body, nil
}

func decompressOne(coding string, body []byte) ([]byte, error) {
	var r io.Reader
	switch coding {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		r = zr
	case "deflate":
		// HTTP's deflate is a zlib stream (RFC 9110); some clients send
		// raw DEFLATE, which servers commonly accept too.
		if zr, err := zlib.NewReader(bytes.NewReader(body)); err == nil {
			defer zr.Close()
			r = zr
		} else {
			fr := flate.NewReader(bytes.NewReader(body))
			defer fr.Close()
			r = fr
		}
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(2*MaxBodyBytes))
		if err != nil {
			return nil, fmt.Errorf("zstd body: %w", err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("%w %q: want gzip, deflate, br or zstd", errUnsupportedEncoding, coding)
	}
	out, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s body: %w", coding, err)
	}
	if len(out) > MaxBodyBytes {
		return nil, errDecodedTooLarge
	}
	return out, nil
}

// decodeText returns body as UTF-8 without a byte order mark. Like the
// JSON reader of Python servers (json.loads of the body's bytes, behind
// FastAPI and Starlette), it recognises UTF-8, UTF-16 and UTF-32 by a byte
// order mark, or without one by the zero bytes of the first ASCII
// character of a JSON text, and decodes UTF-16 and UTF-32; Go servers
// (encoding/json) refuse such bodies, the fake accepts them so that a
// gateway in front of a lenient server can be tested. Text that is not
// valid in its encoding is an error; other bytes are left as they are.
func decodeText(body []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(body, []byte{0xEF, 0xBB, 0xBF}):
		return body[3:], nil
	case bytes.HasPrefix(body, []byte{0xFF, 0xFE, 0, 0}):
		return decodeUTF32(body[4:], false)
	case bytes.HasPrefix(body, []byte{0, 0, 0xFE, 0xFF}):
		return decodeUTF32(body[4:], true)
	case bytes.HasPrefix(body, []byte{0xFF, 0xFE}):
		return decodeUTF16(body[2:], false)
	case bytes.HasPrefix(body, []byte{0xFE, 0xFF}):
		return decodeUTF16(body[2:], true)
	}
	if len(body) >= 4 {
		switch {
		case body[0] == 0 && body[1] == 0 && body[2] == 0 && body[3] != 0:
			return decodeUTF32(body, true)
		case body[0] == 0 && body[1] != 0:
			return decodeUTF16(body, true)
		case body[0] != 0 && body[1] == 0 && body[2] == 0 && body[3] == 0:
			return decodeUTF32(body, false)
		case body[0] != 0 && body[1] == 0:
			return decodeUTF16(body, false)
		}
	} else if len(body) == 2 {
		switch {
		case body[0] == 0 && body[1] != 0:
			return decodeUTF16(body, true)
		case body[0] != 0 && body[1] == 0:
			return decodeUTF16(body, false)
		}
	}
	return body, nil
}

var errBadText = errors.New("request body is not valid UTF-16 or UTF-32 text")

func decodeUTF16(b []byte, bigEndian bool) ([]byte, error) {
	if len(b)%2 != 0 {
		return nil, errBadText
	}
	units := make([]uint16, len(b)/2)
	for i := range units {
		hi, lo := b[2*i], b[2*i+1]
		if !bigEndian {
			hi, lo = lo, hi
		}
		units[i] = uint16(hi)<<8 | uint16(lo)
	}
	out := make([]byte, 0, len(units))
	for i := 0; i < len(units); i++ {
		u := units[i]
		switch {
		case utf16.IsSurrogate(rune(u)):
			if i+1 >= len(units) {
				return nil, errBadText
			}
			r := utf16.DecodeRune(rune(u), rune(units[i+1]))
			if r == utf8.RuneError {
				return nil, errBadText
			}
			out = utf8.AppendRune(out, r)
			i++
		default:
			out = utf8.AppendRune(out, rune(u))
		}
	}
	return out, nil
}

func decodeUTF32(b []byte, bigEndian bool) ([]byte, error) {
	if len(b)%4 != 0 {
		return nil, errBadText
	}
	out := make([]byte, 0, len(b)/4)
	for i := 0; i < len(b); i += 4 {
		var r rune
		if bigEndian {
			r = rune(b[i])<<24 | rune(b[i+1])<<16 | rune(b[i+2])<<8 | rune(b[i+3])
		} else {
			r = rune(b[i+3])<<24 | rune(b[i+2])<<16 | rune(b[i+1])<<8 | rune(b[i])
		}
		if !utf8.ValidRune(r) {
			return nil, errBadText
		}
		out = utf8.AppendRune(out, r)
	}
	return out, nil
}

// decodeError maps an error of DecodeBody to the answer: 415 for an
// unknown coding, 413 for a body too large once decoded, else 400.
func decodeError(err error) *apiError {
	switch {
	case errors.Is(err, errUnsupportedEncoding):
		return &apiError{status: http.StatusUnsupportedMediaType, message: err.Error()}
	case errors.Is(err, errDecodedTooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, message: err.Error()}
	}
	return invalidRequest("could not decode request body: %v", err)
}
