package postgres

import (
	"context"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL's text holds UTF-8 without NUL bytes; a Go string, and so an
// event's field, may hold anything (a provider's error message with a NUL,
// a model name cut in the middle of a character). The hash chain covers
// the bytes as written, so the store must give them back exactly: every
// string it sends as text is escaped, and every text it reads unescaped.
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

// Every statement goes through the functions below, which escape the
// strings among its arguments (and in its []string arguments) and unescape
// the strings it reads (pgx encodes and decodes Go strings itself, without
// a codec that could do it). TestEscapedEverywhere checks that nothing in
// the package calls pgx past them.

// escapeArgs escapes the strings among args, in place.
func escapeArgs(args []any) []any {
	for i, a := range args {
		switch v := a.(type) {
		case string:
			args[i] = escapeText(v)
		case []string:
			var out []string
			for j, s := range v {
				if e := escapeText(s); e != s {
					if out == nil {
						out = slices.Clone(v)
					}
					out[j] = e
				}
			}
			if out != nil {
				args[i] = out
			}
		}
	}
	return args
}

// unescapeDest unescapes the strings scanned into dest.
func unescapeDest(dest []any) {
	for _, d := range dest {
		if p, ok := d.(*string); ok {
			*p = unescapeText(*p)
		}
	}
}

// row and rows unescape what they scan.
type row struct{ pgx.Row }

func (r row) Scan(dest ...any) error {
	if err := r.Row.Scan(dest...); err != nil {
		return err
	}
	unescapeDest(dest)
	return nil
}

type rows struct{ pgx.Rows }

func (r rows) Scan(dest ...any) error {
	if err := r.Rows.Scan(dest...); err != nil {
		return err
	}
	unescapeDest(dest)
	return nil
}

// querier is a pool, a connection or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func exec(ctx context.Context, q querier, sql string, args ...any) (pgconn.CommandTag, error) {
	return q.Exec(ctx, sql, escapeArgs(args)...)
}

func query(ctx context.Context, q querier, sql string, args ...any) (pgx.Rows, error) {
	r, err := q.Query(ctx, sql, escapeArgs(args)...)
	if err != nil {
		return nil, err
	}
	return rows{r}, nil
}

func queryRow(ctx context.Context, q querier, sql string, args ...any) pgx.Row {
	return row{q.QueryRow(ctx, sql, escapeArgs(args)...)}
}

// queued is a statement queued in a batch by queue.
type queued struct{ qq *pgx.QueuedQuery }

// queue queues a statement in b.
func queue(b *pgx.Batch, sql string, args ...any) queued {
	return queued{b.Queue(sql, escapeArgs(args)...)}
}

// query sets fn to read the statement's rows.
func (q queued) query(fn func(pgx.Rows) error) {
	q.qq.Query(func(r pgx.Rows) error { return fn(rows{r}) })
}

// queryRow sets fn to read the statement's row.
func (q queued) queryRow(fn func(pgx.Row) error) {
	q.qq.QueryRow(func(r pgx.Row) error { return fn(row{r}) })
}
