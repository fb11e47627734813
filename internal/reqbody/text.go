package reqbody

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// text drops a UTF-8 byte order mark and transcodes UTF-16 and UTF-32 to
// UTF-8; other input is returned as it is. The encoding is told by a byte
// order mark or, without one, by where the NUL bytes fall in the first
// characters, which in JSON are ASCII (RFC 4627 §3): 00 00 xx is UTF-32BE,
// 00 xx UTF-16BE, xx 00 00 00 UTF-32LE and xx 00 UTF-16LE.
func text(b []byte, limit int64) ([]byte, error) {
	out := b
	var err error
	switch {
	case len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF:
		out = b[3:]
	case len(b) >= 4 && b[0] == 0x00 && b[1] == 0x00 && b[2] == 0xFE && b[3] == 0xFF:
		out, err = utf32(b[4:], binary.BigEndian, "utf-32be", 4, limit)
	case len(b) >= 4 && b[0] == 0xFF && b[1] == 0xFE && b[2] == 0x00 && b[3] == 0x00:
		// Read as UTF-32LE, not as UTF-16LE starting with U+0000,
		// which no JSON text does.
		out, err = utf32(b[4:], binary.LittleEndian, "utf-32le", 4, limit)
	case len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF:
		out, err = utf16(b[2:], true, "utf-16be", 2, limit)
	case len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE:
		out, err = utf16(b[2:], false, "utf-16le", 2, limit)
	case len(b) >= 2 && b[0] == 0x00 && b[1] == 0x00:
		out, err = utf32(b, binary.BigEndian, "utf-32be", 0, limit)
	case len(b) >= 2 && b[0] == 0x00:
		out, err = utf16(b, true, "utf-16be", 0, limit)
	case len(b) >= 4 && b[1] == 0x00 && b[2] == 0x00 && b[3] == 0x00:
		out, err = utf32(b, binary.LittleEndian, "utf-32le", 0, limit)
	case len(b) >= 2 && b[1] == 0x00:
		out, err = utf16(b, false, "utf-16le", 0, limit)
	case len(b) == 1 && b[0] == 0x00:
		return nil, &Error{Stage: "utf-16be", Kind: ErrBadText, Detail: "odd number of bytes"}
	}
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, tooLarge("body", limit)
	}
	return out, nil
}

// utf16 transcodes UTF-16 (big-endian if be) to UTF-8. base is how many bytes
// preceded b in the body (a byte order mark), for error offsets.
func utf16(b []byte, be bool, stage string, base int, limit int64) ([]byte, error) {
	unit := func(i int) rune {
		if be {
			return rune(b[i])<<8 | rune(b[i+1])
		}
		return rune(b[i+1])<<8 | rune(b[i])
	}
	if len(b)%2 != 0 {
		return nil, &Error{Stage: stage, Kind: ErrBadText, Detail: "odd number of bytes"}
	}
	// JSON is mostly ASCII: one UTF-8 byte for every two here.
	out := make([]byte, 0, min(int64(len(b)/2), max(limit, 0)+1))
	for i := 0; i < len(b); i += 2 {
		r := unit(i)
		switch {
		case r < utf8.RuneSelf:
			if int64(len(out)) >= limit {
				return nil, tooLarge(stage, limit)
			}
			out = append(out, byte(r))
			continue
		case r < 0xD800 || r > 0xDFFF:
		case r <= 0xDBFF && i+4 <= len(b):
			lo := unit(i + 2)
			if lo < 0xDC00 || lo > 0xDFFF {
				return nil, badText(stage, "unpaired surrogate", base+i)
			}
			r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
			i += 2
		default:
			return nil, badText(stage, "unpaired surrogate", base+i)
		}
		out = utf8.AppendRune(out, r)
		if int64(len(out)) > limit {
			return nil, tooLarge(stage, limit)
		}
	}
	return out, nil
}

// utf32 transcodes UTF-32 in byte order bo to UTF-8; base is as for utf16.
func utf32(b []byte, bo binary.ByteOrder, stage string, base int, limit int64) ([]byte, error) {
	if len(b)%4 != 0 {
		return nil, &Error{Stage: stage, Kind: ErrBadText, Detail: "length is not a multiple of 4 bytes"}
	}
	out := make([]byte, 0, min(int64(len(b)/4), max(limit, 0)+1))
	for i := 0; i < len(b); i += 4 {
		c := bo.Uint32(b[i:])
		if c > utf8.MaxRune || (c >= 0xD800 && c <= 0xDFFF) {
			return nil, badText(stage, "invalid code point", base+i)
		}
		out = utf8.AppendRune(out, rune(c))
		if int64(len(out)) > limit {
			return nil, tooLarge(stage, limit)
		}
	}
	return out, nil
}

func badText(stage, what string, at int) *Error {
	return &Error{Stage: stage, Kind: ErrBadText, Detail: fmt.Sprintf("%s at byte %d", what, at)}
}
