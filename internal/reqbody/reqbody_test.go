package reqbody_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/tokenmeter/tokenmeter/internal/reqbody"
)

// secret marks prompt text: no error may ever quote it.
const secret = "SECRETPROMPT"

const doc = `{"model":"gpt-4o","n":2,"messages":[{"role":"user","content":"` + secret + ` héllo 👋"}]}`

func write(t testing.TB, w io.WriteCloser, b []byte) {
	t.Helper()
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func gz(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	write(t, gzip.NewWriter(&out), b)
	return out.Bytes()
}

func zl(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	write(t, zlib.NewWriter(&out), b)
	return out.Bytes()
}

func deflateRaw(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	w, err := flate.NewWriter(&out, flate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, b)
	return out.Bytes()
}

func br(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	write(t, brotli.NewWriterLevel(&out, 5), b)
	return out.Bytes()
}

var zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))

func zs(t testing.TB, b []byte) []byte {
	return zenc.EncodeAll(b, nil)
}

// zsWindow streams b through a zstd encoder with the given window, so the
// frame declares that window instead of its content size.
func zsWindow(t testing.TB, b []byte, window int) []byte {
	var out bytes.Buffer
	w, err := zstd.NewWriter(&out, zstd.WithWindowSize(window), zstd.WithEncoderConcurrency(1), zstd.WithSingleSegment(false))
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, b)
	return out.Bytes()
}

func utf16Bytes(s string, bo binary.AppendByteOrder, bom bool) []byte {
	var out []byte
	if bom {
		out = bo.AppendUint16(out, 0xFEFF)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		out = bo.AppendUint16(out, u)
	}
	return out
}

func utf32Bytes(s string, bo binary.AppendByteOrder, bom bool) []byte {
	var out []byte
	if bom {
		out = bo.AppendUint32(out, 0xFEFF)
	}
	for _, r := range s {
		out = bo.AppendUint32(out, uint32(r))
	}
	return out
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func header(codings ...string) http.Header {
	h := http.Header{}
	for _, c := range codings {
		h.Add("Content-Encoding", c)
	}
	return h
}

// safeMessage is every message Decode may produce: fixed words and numbers.
var safeMessage = regexp.MustCompile(`^reqbody: (body|content-encoding|gzip|deflate|br|zstd|utf-(16|32)(le|be)): ` +
	`(decoded body is over the limit|unsupported content encoding|compressed body does not decode|body is not valid text)` +
	`(: [a-z0-9 ().-]+)?$`)

func checkError(t *testing.T, err error) {
	t.Helper()
	var e *reqbody.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *reqbody.Error", err, err)
	}
	if !safeMessage.MatchString(err.Error()) {
		t.Errorf("error message %q is not one of the package's own", err.Error())
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error message %q quotes the body", err.Error())
	}
}

func TestDecode(t *testing.T) {
	body := []byte(doc)
	big := bytes.Repeat([]byte(`{"content":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},`), 40_000) // 1.7 MB
	zeros := make([]byte, 4<<20)
	gzBody := gz(t, body)
	tests := []struct {
		name       string
		h          http.Header
		body       []byte
		limit      int64
		want       []byte // when wantKind is nil
		wantKind   error
		wantDetail string
	}{
		{name: "Plain", body: body, want: body},
		{name: "Empty", body: nil, want: nil},
		{name: "Identity", h: header("identity"), body: body, want: body},
		{name: "EmptyHeaderValue", h: header(""), body: body, want: body},
		{name: "Gzip", h: header("gzip"), body: gzBody, want: body},
		{name: "XGzipUpperCase", h: header("X-GZIP"), body: gzBody, want: body},
		{name: "GzipConcatenatedMembers", h: header("gzip"), body: cat(gz(t, body[:10]), gz(t, body[10:])), want: body},
		{name: "DeflateZlib", h: header("deflate"), body: zl(t, body), want: body},
		{name: "DeflateRaw", h: header("Deflate"), body: deflateRaw(t, body), want: body},
		{name: "Brotli", h: header("br"), body: br(t, body), want: body},
		{name: "Zstd", h: header("zstd"), body: zs(t, body), want: body},
		{name: "ZstdTwoFrames", h: header("zstd"), body: cat(zs(t, body[:7]), zs(t, body[7:])), want: body},
		{name: "ZstdStreamedWindow", h: header("zstd"), body: zsWindow(t, body, 1<<20), want: body},
		{name: "ZstdHandMadeFrame", h: header("zstd"), body: zstdFrame(0x00, '{', '}'), want: []byte("{}")},
		{name: "StackedOneLine", h: header("gzip, br"), body: br(t, gz(t, body)), want: body},
		{name: "StackedTwoLines", h: header("deflate", "zstd"), body: zs(t, zl(t, body)), want: body},
		{name: "StackedWithIdentityAndSpaces", h: header(" identity ,\tgzip ,, zstd "), body: zs(t, gz(t, body)), want: body},
		{name: "GzipThenUTF16", h: header("gzip"), body: gz(t, utf16Bytes(doc, binary.LittleEndian, true)), want: body},
		{name: "BigGzip", h: header("gzip"), body: gz(t, big), limit: 4 << 20, want: big},

		{name: "UTF8BOM", body: cat([]byte{0xEF, 0xBB, 0xBF}, body), want: body},
		{name: "UTF16LEBOM", body: utf16Bytes(doc, binary.LittleEndian, true), want: body},
		{name: "UTF16BEBOM", body: utf16Bytes(doc, binary.BigEndian, true), want: body},
		{name: "UTF16LE", body: utf16Bytes(doc, binary.LittleEndian, false), want: body},
		{name: "UTF16BE", body: utf16Bytes(doc, binary.BigEndian, false), want: body},
		{name: "UTF16LEWhitespaceFirst", body: utf16Bytes("\r\n "+doc, binary.LittleEndian, false), want: []byte("\r\n " + doc)},
		{name: "UTF16BENonLatinSecond", body: utf16Bytes(`"€"`, binary.BigEndian, false), want: []byte(`"€"`)},
		{name: "UTF32LEBOM", body: utf32Bytes(doc, binary.LittleEndian, true), want: body},
		{name: "UTF32BEBOM", body: utf32Bytes(doc, binary.BigEndian, true), want: body},
		{name: "UTF32LE", body: utf32Bytes(doc, binary.LittleEndian, false), want: body},
		{name: "UTF32BE", body: utf32Bytes(doc, binary.BigEndian, false), want: body},
		{name: "BOMOnly", body: []byte{0xFF, 0xFE}, want: []byte{}},
		{name: "NotABOM", body: []byte{0xEF, 0xBB, '{', '}'}, want: []byte{0xEF, 0xBB, '{', '}'}},

		// Hostile input.
		{name: "PlainOverLimit", body: body, limit: 10, wantKind: reqbody.ErrTooLarge},
		{name: "ZeroLimit", body: body, limit: -1, wantKind: reqbody.ErrTooLarge},
		{name: "GzipTruncatedEnd", h: header("gzip"), body: gzBody[:len(gzBody)-4], wantKind: reqbody.ErrCorrupt, wantDetail: "truncated"},
		{name: "GzipTruncatedMiddle", h: header("gzip"), body: gzBody[:len(gzBody)/2], wantKind: reqbody.ErrCorrupt, wantDetail: "truncated"},
		{name: "GzipHeaderOnly", h: header("gzip"), body: gzBody[:5], wantKind: reqbody.ErrCorrupt},
		{name: "GzipBadChecksum", h: header("gzip"), body: flip(gzBody, len(gzBody)-6), wantKind: reqbody.ErrCorrupt, wantDetail: "checksum mismatch"},
		{name: "GzipTrailingGarbage", h: header("gzip"), body: cat(gzBody, []byte(secret)), wantKind: reqbody.ErrCorrupt},
		{name: "ZlibTrailingGarbage", h: header("deflate"), body: cat(zl(t, body), []byte(secret)), wantKind: reqbody.ErrCorrupt, wantDetail: "data after the end"},
		{name: "RawDeflateTrailingGarbage", h: header("deflate"), body: cat(deflateRaw(t, body), []byte(secret)), wantKind: reqbody.ErrCorrupt, wantDetail: "data after the end"},
		{name: "ZlibTruncated", h: header("deflate"), body: trim(zl(t, body), 3), wantKind: reqbody.ErrCorrupt, wantDetail: "truncated"},
		{name: "BrotliTruncated", h: header("br"), body: trim(br(t, body), 3), wantKind: reqbody.ErrCorrupt, wantDetail: "truncated"},
		{name: "BrotliTrailingGarbage", h: header("br"), body: cat(br(t, body), []byte(secret)), wantKind: reqbody.ErrCorrupt},
		{name: "ZstdTruncated", h: header("zstd"), body: trim(zs(t, body), 3), wantKind: reqbody.ErrCorrupt},
		{name: "ZstdTrailingGarbage", h: header("zstd"), body: cat(zs(t, body), []byte(secret)), wantKind: reqbody.ErrCorrupt},
		{name: "GzipDeclaredPlainSent", h: header("gzip"), body: body, wantKind: reqbody.ErrCorrupt, wantDetail: "bad header"},
		{name: "BrDeclaredGzipSent", h: header("br"), body: gzBody, wantKind: reqbody.ErrCorrupt},
		{name: "ZstdDeclaredGzipSent", h: header("zstd"), body: gzBody, wantKind: reqbody.ErrCorrupt, wantDetail: "bad header"},
		{name: "DeflateDeclaredGzipSent", h: header("deflate"), body: gzBody, wantKind: reqbody.ErrCorrupt},
		{name: "StackedWrongOrder", h: header("br, gzip"), body: br(t, gz(t, body)), wantKind: reqbody.ErrCorrupt},
		{name: "EmptyGzip", h: header("gzip"), body: nil, wantKind: reqbody.ErrCorrupt, wantDetail: "empty body"},
		{name: "EmptyZstd", h: header("zstd"), body: []byte{}, wantKind: reqbody.ErrCorrupt, wantDetail: "empty body"},
		// Encoded twice, declared once: one layer is undone and what is
		// left is returned for the parser to refuse, not guessed at.
		{name: "DoubleGzipDeclaredOnce", h: header("gzip"), body: gz(t, gzBody), want: gzBody},
		{name: "DoubleGzipDeclaredTwice", h: header("gzip, gzip"), body: gz(t, gzBody), want: body},
		{name: "GzipBomb", h: header("gzip"), body: gz(t, zeros), limit: 1 << 20, wantKind: reqbody.ErrTooLarge},
		{name: "DeflateBomb", h: header("deflate"), body: zl(t, zeros), limit: 1 << 20, wantKind: reqbody.ErrTooLarge},
		{name: "BrotliBomb", h: header("br"), body: br(t, zeros), limit: 1 << 20, wantKind: reqbody.ErrTooLarge},
		{name: "ZstdBomb", h: header("zstd"), body: zs(t, zeros), limit: 1 << 20, wantKind: reqbody.ErrTooLarge},
		{name: "ZstdHugeWindow", h: header("zstd"), body: zstdFrame(0x80, '{', '}'), limit: 256 << 20, wantKind: reqbody.ErrTooLarge, wantDetail: "window"},
		{name: "StackedBomb", h: header("gzip, gzip"), body: gz(t, gz(t, zeros)), limit: 1 << 20, wantKind: reqbody.ErrTooLarge},
		{name: "UTF16OverLimit", body: utf16Bytes(doc, binary.LittleEndian, true), limit: 20, wantKind: reqbody.ErrTooLarge},
		{name: "UnknownEncoding", h: header("compress"), body: body, wantKind: reqbody.ErrUnsupportedEncoding, wantDetail: "compress is not supported"},
		{name: "MadeUpEncoding", h: header("gzip", secret), body: gzBody, wantKind: reqbody.ErrUnsupportedEncoding, wantDetail: "not registered"},
		{name: "TooManyCodings", h: header("gzip, gzip, gzip, gzip, gzip"), body: gzBody, wantKind: reqbody.ErrUnsupportedEncoding, wantDetail: "more than 4"},
		{name: "UTF16OddLength", body: append(utf16Bytes(doc, binary.LittleEndian, true), '}'), wantKind: reqbody.ErrBadText, wantDetail: "odd number"},
		{name: "UTF16UnpairedHigh", body: cat(utf16Bytes(`{"a":"`, binary.LittleEndian, true), []byte{0x3D, 0xD8}, utf16Bytes(`"}`, binary.LittleEndian, false)),
			wantKind: reqbody.ErrBadText, wantDetail: "unpaired surrogate at byte 14"},
		{name: "UTF16LoneLow", body: cat(utf16Bytes(`{"a":"`, binary.BigEndian, false), []byte{0xDC, 0x00}), wantKind: reqbody.ErrBadText, wantDetail: "unpaired surrogate at byte 12"},
		{name: "UTF16HighAtEnd", body: cat(utf16Bytes(`{"a":"`, binary.BigEndian, false), []byte{0xD8, 0x3D}), wantKind: reqbody.ErrBadText, wantDetail: "unpaired surrogate"},
		{name: "UTF32BeyondUnicode", body: cat(utf32Bytes(`{`, binary.LittleEndian, false), []byte{0, 0, 0x11, 0}), wantKind: reqbody.ErrBadText, wantDetail: "invalid code point at byte 4"},
		{name: "UTF32Surrogate", body: cat(utf32Bytes(`{`, binary.BigEndian, true), []byte{0, 0, 0xD8, 0}), wantKind: reqbody.ErrBadText, wantDetail: "invalid code point at byte 8"},
		{name: "UTF32BadLength", body: append(utf32Bytes(`{}`, binary.BigEndian, false), 0), wantKind: reqbody.ErrBadText},
		{name: "LoneNUL", body: []byte{0}, wantKind: reqbody.ErrBadText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit == 0 {
				limit = 1 << 20
			}
			got, err := reqbody.Decode(tt.h, tt.body, limit)
			if tt.wantKind != nil {
				if !errors.Is(err, tt.wantKind) {
					t.Fatalf("Decode = %d bytes, %v; want %v", len(got), err, tt.wantKind)
				}
				checkError(t, err)
				if !strings.Contains(err.Error(), tt.wantDetail) {
					t.Errorf("Decode error %q, want it to say %q", err, tt.wantDetail)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode error: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("Decode = %.80q (%d bytes), want %.80q (%d bytes)", got, len(got), tt.want, len(tt.want))
			}
		})
	}
}

// zstdFrame is a zstd frame with the given window descriptor (exponent<<3 |
// mantissa: 0x80 is 64 MiB), no content size, and one last raw block.
func zstdFrame(window byte, content ...byte) []byte {
	frame := []byte{0x28, 0xB5, 0x2F, 0xFD, 0x00, window}
	h := uint32(1 | len(content)<<3) // last block, raw
	return append(append(frame, byte(h), byte(h>>8), byte(h>>16)), content...)
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xFF
	return c
}

func trim(b []byte, n int) []byte { return b[:len(b)-n] }

// TestDecodeKeepsInput checks that the common body comes back as the very
// slice passed in, without allocating, and that nothing Decode does changes
// its input.
func TestDecodeKeepsInput(t *testing.T) {
	body := []byte(doc)
	got, err := reqbody.Decode(http.Header{"Content-Type": {"application/json"}}, body, 1<<20)
	if err != nil || len(got) != len(body) || &got[0] != &body[0] {
		t.Fatalf("Decode(plain) = %p, %v; want the input slice %p", got, err, body)
	}
	if n := testing.AllocsPerRun(100, func() { reqbody.Decode(nil, body, 1<<20) }); n != 0 {
		t.Errorf("Decode(plain) allocates %v times, want 0", n)
	}
	bom := cat([]byte{0xEF, 0xBB, 0xBF}, body)
	if got, _ := reqbody.Decode(nil, bom, 1<<20); &got[0] != &bom[3] {
		t.Errorf("Decode(UTF-8 BOM) copied the body; want it resliced")
	}
	for _, in := range [][]byte{gz(t, body), utf16Bytes(doc, binary.BigEndian, true)} {
		keep := bytes.Clone(in)
		h := http.Header{}
		if in[0] == 0x1f {
			h.Set("Content-Encoding", "gzip")
		}
		if _, err := reqbody.Decode(h, in, 1<<20); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(in, keep) {
			t.Errorf("Decode modified its input")
		}
	}
}

// TestDecodeBombMemory checks that a bomb is stopped at the limit: what is
// allocated stays near the limit, not near the declared or real size.
func TestDecodeBombMemory(t *testing.T) {
	const limit = 1 << 20
	zeros := make([]byte, 16<<20)
	bombs := map[string][]byte{
		"gzip":    gz(t, zeros),
		"deflate": zl(t, zeros),
		"br":      br(t, zeros),
		"zstd":    zsWindow(t, zeros, 8<<20),
	}
	zeros = nil
	for coding, bomb := range bombs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := reqbody.Decode(header(coding), bomb, limit)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, reqbody.ErrTooLarge) {
			t.Errorf("%s bomb of %d bytes: %v, want ErrTooLarge", coding, len(bomb), err)
		}
		// The output buffer doubles up to limit+1 (under 2×limit in all),
		// plus the decoder's own state: a brotli window of a few MiB, a
		// zstd one no larger than the limit. Reading it all would take
		// more than the 16 MiB it holds.
		t.Logf("%s bomb (%d bytes): %d bytes allocated", coding, len(bomb), after.TotalAlloc-before.TotalAlloc)
		if got := after.TotalAlloc - before.TotalAlloc; got > 12<<20 {
			t.Errorf("%s bomb: allocated %d bytes to refuse it, want well under the 16 MiB it holds", coding, got)
		}
	}
}

// TestDecodeZstdDeclaredSize checks that a zstd frame declaring a content
// size far beyond the limit is refused without allocating it.
func TestDecodeZstdDeclaredSize(t *testing.T) {
	// A frame with Single_Segment set and an 8-byte content size of 1 TiB,
	// then one raw block of two bytes, last.
	frame := []byte{0x28, 0xB5, 0x2F, 0xFD, 0xE0}
	frame = binary.LittleEndian.AppendUint64(frame, 1<<40)
	frame = append(frame, 0x11, 0x00, 0x00, '{', '}')
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := reqbody.Decode(header("zstd"), frame, 1<<20)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, reqbody.ErrTooLarge) && !errors.Is(err, reqbody.ErrCorrupt) {
		t.Fatalf("Decode(zstd declaring 1 TiB) = %v, want ErrTooLarge or ErrCorrupt", err)
	}
	checkError(t, err)
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("allocated %d bytes for a frame declaring 1 TiB", got)
	}
}

func FuzzDecode(f *testing.F) {
	body := []byte(doc)
	zeros := make([]byte, 2<<20)
	for _, s := range []struct {
		coding string
		body   []byte
	}{
		{"", body},
		{"gzip", gz(f, body)},
		{"zstd", zs(f, body)},
		{"br", br(f, body)},
		{"deflate", zl(f, body)},
		{"deflate", deflateRaw(f, body)},
		{"gzip, br", br(f, gz(f, body))},
		{"", cat([]byte{0xEF, 0xBB, 0xBF}, body)},
		{"", utf16Bytes(doc, binary.LittleEndian, true)},
		{"", utf16Bytes(doc, binary.BigEndian, false)},
		{"", utf32Bytes(doc, binary.LittleEndian, false)},
		{"gzip", trim(gz(f, body), 5)},
		{"zstd", trim(zs(f, body), 2)},
		{"br", trim(br(f, body), 2)},
		{"gzip", gz(f, zeros)},
		{"zstd", zs(f, zeros)},
		{"br", br(f, zeros)},
		{"deflate", zl(f, zeros)},
		{"compress", body},
		{"gzip", nil},
	} {
		f.Add(s.coding, s.body)
	}
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, coding string, b []byte) {
		var h http.Header
		if coding != "" {
			h = header(coding)
		}
		out, err := reqbody.Decode(h, b, limit)
		if err != nil {
			checkError(t, err)
		} else if len(out) > limit {
			t.Fatalf("Decode returned %d bytes, over the limit %d", len(out), limit)
		}

		// Round trips: every coding of b, and UTF-16 of valid UTF-8 JSON-ish
		// text, decodes to what b itself decodes to.
		want, wantErr := reqbody.Decode(nil, b, limit)
		if wantErr == nil && len(b) > 0 && !(b[0] == 0xEF || b[0] == 0xFE || b[0] == 0xFF || b[0] == 0 || len(b) > 1 && b[1] == 0) {
			if &want[0] != &b[0] {
				t.Fatalf("Decode(plain %q) copied the body", b)
			}
		}
		for name, enc := range map[string]func(testing.TB, []byte) []byte{"gzip": gz, "deflate": zl, "br": br, "zstd": zs} {
			got, err := reqbody.Decode(header(name), enc(t, b), limit)
			if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("Decode(%s(%q)) = %q, %v; Decode of it plain = %q, %v", name, b, got, err, want, wantErr)
			}
		}
		if utf8.Valid(b) && len(b) > 0 && b[0] > 0 && b[0] < utf8.RuneSelf {
			s := string(b)
			if r, _ := utf8.DecodeRuneInString(s[1:]); r != 0 || len(s) == 1 {
				for _, bo := range []binary.AppendByteOrder{binary.LittleEndian, binary.BigEndian} {
					for _, bom := range []bool{false, true} {
						got, err := reqbody.Decode(nil, utf16Bytes(s, bo, bom), 4*limit)
						if err != nil || string(got) != s {
							t.Fatalf("Decode(UTF-16 %v bom=%v of %q) = %q, %v", bo, bom, s, got, err)
						}
					}
				}
			}
		}
	})
}

func benchBody() []byte {
	var sb strings.Builder
	sb.WriteString(`{"model":"gpt-4o","stream":true,"messages":[`)
	for i := range 200 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"role":"user","content":"Please look at the file src/main.go and explain what \"run\" does."}`)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// BenchmarkDecodePlain is the gateway's common case: no Content-Encoding,
// UTF-8 without a mark. It must not allocate.
func BenchmarkDecodePlain(b *testing.B) {
	body := benchBody()
	h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer x"}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reqbody.Decode(h, body, 32<<20); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	body := benchBody()
	for _, c := range []struct {
		name, coding string
		in           []byte
	}{
		{"gzip", "gzip", gz(b, body)},
		{"deflate", "deflate", zl(b, body)},
		{"br", "br", br(b, body)},
		{"zstd", "zstd", zs(b, body)},
		{"utf16", "", utf16Bytes(string(body), binary.LittleEndian, true)},
	} {
		b.Run(c.name, func(b *testing.B) {
			var h http.Header
			if c.coding != "" {
				h = header(c.coding)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reqbody.Decode(h, c.in, 32<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
