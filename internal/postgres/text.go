package postgres

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// PostgreSQL's text holds UTF-8 without NUL bytes; a Go string, and so an
// event's field, may hold anything (a provider's error message with a NUL,
// a model name cut in the middle of a character). The hash chain covers
// the bytes as written, so the store must give them back exactly: every
// string it sends as text is escaped, and every text it reads unescaped,
// by a codec registered on each connection (see register).
//
// The escape is byte-wise: a valid UTF-8 character other than NUL and DEL
// (0x7f) is kept, and any other byte (NUL, DEL, a byte that is not part of
// a valid character) becomes DEL followed by the byte's two lower-case hex
// digits. So a string of valid text without DEL or NUL (all
// but a few in practice) is stored as it is; equal strings stay equal, and
// an escaped string joined to plain ASCII is the escape of the joined
// string, so keys built by appending ("call/completed") still match.

const escape = 0x7f

// needsEscape reports whether s is not stored as it is.
func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == 0 || c == escape {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return true
		}
		i += n
	}
	return false
}

// escapeText returns s as it is stored.
func escapeText(s string) string {
	if !needsEscape(s) {
		return s
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		c := s[i]
		n := 1
		ok := c != 0 && c != escape
		if c >= utf8.RuneSelf {
			var r rune
			r, n = utf8.DecodeRuneInString(s[i:])
			ok = !(r == utf8.RuneError && n <= 1)
		}
		if ok {
			b.WriteString(s[i : i+n])
		} else {
			b.WriteByte(escape)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			n = 1
		}
		i += n
	}
	return b.String()
}

// unescapeText returns the string stored as t.
func unescapeText(t string) string {
	if strings.IndexByte(t, escape) < 0 {
		return t
	}
	unhex := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		}
		return 0, false
	}
	b := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		if t[i] == escape && i+2 < len(t) {
			hi, ok1 := unhex(t[i+1])
			lo, ok2 := unhex(t[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, t[i]) // not written by escapeText: kept as read
	}
	return string(b)
}

// textCodec is PostgreSQL's text codec with the escape applied to Go
// strings in both directions.
type textCodec struct{ pgtype.TextCodec }

func (c textCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(string); ok && (format == pgtype.TextFormatCode || format == pgtype.BinaryFormatCode) {
		return encodeEscaped{}
	}
	return c.TextCodec.PlanEncode(m, oid, format, value)
}

func (c textCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*string); ok && (format == pgtype.TextFormatCode || format == pgtype.BinaryFormatCode) {
		return scanEscaped{}
	}
	return c.TextCodec.PlanScan(m, oid, format, target)
}

func (c textCodec) DecodeValue(m *pgtype.Map, oid uint32, format int16, src []byte) (any, error) {
	if src == nil {
		return nil, nil
	}
	return unescapeText(string(src)), nil
}

type encodeEscaped struct{}

func (encodeEscaped) Encode(value any, buf []byte) ([]byte, error) {
	return append(buf, escapeText(value.(string))...), nil
}

type scanEscaped struct{}

func (scanEscaped) Scan(src []byte, dst any) error {
	if src == nil {
		return errNullText
	}
	*dst.(*string) = unescapeText(string(src))
	return nil
}

var errNullText = errors.New("cannot scan NULL into *string")

// register installs the escaping text codec on a new connection.
func register(conn *pgx.Conn) {
	m := conn.TypeMap()
	text := &pgtype.Type{Name: "text", OID: pgtype.TextOID, Codec: textCodec{}}
	m.RegisterType(text)
	m.RegisterType(&pgtype.Type{Name: "_text", OID: pgtype.TextArrayOID, Codec: &pgtype.ArrayCodec{ElementType: text}})
}
