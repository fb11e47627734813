package fakeupstream_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

// compressors make request bodies in each content coding.
var compressors = map[string]func(t testing.TB, b []byte) []byte{
	"gzip": func(t testing.TB, b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	},
	"deflate": func(t testing.TB, b []byte) []byte {
		var buf bytes.Buffer
		w := zlib.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	},
	"br": func(t testing.TB, b []byte) []byte {
		var buf bytes.Buffer
		w := brotli.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	},
	"zstd": func(t testing.TB, b []byte) []byte {
		w, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		return w.EncodeAll(b, nil)
	},
}

func rawDeflate(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func utf16Bytes(s string, bigEndian, bom bool) []byte {
	var out []byte
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xFEFF}, units...)
	}
	for _, u := range units {
		if bigEndian {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	return out
}

func utf32Bytes(s string, bigEndian, bom bool) []byte {
	var out []byte
	runes := []rune(s)
	if bom {
		runes = append([]rune{0xFEFF}, runes...)
	}
	for _, r := range runes {
		b := []byte{byte(r), byte(r >> 8), byte(r >> 16), byte(r >> 24)}
		if bigEndian {
			b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
		}
		out = append(out, b...)
	}
	return out
}

// TestContentEncoding: a compressed body is billed on its decoded size,
// the 311-byte gzip body of 150k tokens.
func TestContentEncoding(t *testing.T) {
	prompt := strings.Repeat("a", 600_000)
	body := []byte(fmt.Sprintf(`{"model":"gpt-5.4","messages":[{"role":"user","content":%q}]}`, prompt))
	want := fakeupstream.InputTokens(body)
	if want < 150_000 {
		t.Fatalf("plain body is %d tokens", want)
	}
	codings := map[string][]byte{"identity": body, "deflate (raw)": rawDeflate(body), "gzip, identity": compressors["gzip"](t, body)}
	for name, enc := range compressors {
		codings[name] = enc(t, body)
	}
	codings["gzip, br"] = compressors["br"](t, compressors["gzip"](t, body))
	for name, sent := range codings {
		t.Run(name, func(t *testing.T) {
			_, srv := mustServe(t)
			header := strings.TrimSuffix(name, " (raw)")
			resp, out := mustDo(t, srv, request{path: "/v1/chat/completions", body: string(sent), header: map[string]string{"Content-Encoding": header}})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, out)
			}
			if got := num(t, string(out), "usage.prompt_tokens"); got != want {
				t.Errorf("%d bytes sent as %s: prompt_tokens %d, want %d", len(sent), name, got, want)
			}
			if b := billOf(t, srv, resp.Header.Get("x-request-id"), "call"); b.Billed.InputTokens != want {
				t.Errorf("billed %d input tokens, want %d", b.Billed.InputTokens, want)
			}
			if name == "gzip" && len(sent) > 2000 {
				t.Errorf("gzip body is %d bytes; the point is a small body", len(sent))
			}
		})
	}

	// Directives inside a compressed body apply.
	_, srv := mustServe(t)
	small := compressors["zstd"](t, []byte(`{"model":"m","input":"[[fake input=150000 output=3]]"}`))
	_, out := mustDo(t, srv, request{path: "/v1/responses", body: string(small), header: map[string]string{"Content-Encoding": "zstd"}})
	if num(t, string(out), "usage.input_tokens") != 150_000 || num(t, string(out), "usage.output_tokens") != 3 {
		t.Errorf("directives in a zstd body: %s", out)
	}

	bad := []struct {
		name, coding, body string
		status             int
	}{
		{"UnknownCoding", "compress", `{}`, http.StatusUnsupportedMediaType},
		{"CorruptGzip", "gzip", "\x1f\x8b\x08\x00garbage", http.StatusBadRequest},
		{"NotGzip", "gzip", `{"model":"m"}`, http.StatusBadRequest},
		{"TruncatedBrotli", "br", string(compressors["br"](t, body)[:10]), http.StatusBadRequest},
	}
	for _, tt := range bad {
		resp, out := mustDo(t, srv, request{path: "/v1/chat/completions", body: tt.body, header: map[string]string{"Content-Encoding": tt.coding}})
		if resp.StatusCode != tt.status || errorShape(t, resp, out) == "" {
			t.Errorf("%s: status %d, want %d: %s", tt.name, resp.StatusCode, tt.status, out)
		}
	}

	// A bomb: more than MaxBodyBytes once decoded.
	bomb := compressors["gzip"](t, bytes.Repeat([]byte{' '}, fakeupstream.MaxBodyBytes+10))
	resp, out := mustDo(t, srv, request{path: "/v1/chat/completions", body: string(bomb), header: map[string]string{"Content-Encoding": "gzip"}})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("gzip bomb: status %d: %s", resp.StatusCode, out)
	}
}

// TestTextEncodings: a BOM, UTF-16 and UTF-32 bodies are read as their
// UTF-8 text, as Python servers read them.
func TestTextEncodings(t *testing.T) {
	text := `{"model":"gpt-5.4","input":"héllo wörld 🎉 [[fake output=4]]"}`
	want := fakeupstream.InputTokens([]byte(text))
	bodies := map[string][]byte{
		"UTF8BOM":       append([]byte{0xEF, 0xBB, 0xBF}, text...),
		"UTF16LE":       utf16Bytes(text, false, false),
		"UTF16BE":       utf16Bytes(text, true, false),
		"UTF16LEBOM":    utf16Bytes(text, false, true),
		"UTF16BEBOM":    utf16Bytes(text, true, true),
		"UTF32LE":       utf32Bytes(text, false, false),
		"UTF32BEBOM":    utf32Bytes(text, true, true),
		"GzipUTF16BOM":  compressors["gzip"](t, utf16Bytes(text, false, true)),
		"UTF8Plain":     []byte(text),
		"UTF32LEBOM":    utf32Bytes(text, false, true),
		"UTF16LEBOMbig": utf16Bytes(text+strings.Repeat(" ", 10), false, true),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			_, srv := mustServe(t)
			header := map[string]string{}
			if strings.HasPrefix(name, "Gzip") {
				header["Content-Encoding"] = "gzip"
			}
			resp, out := mustDo(t, srv, request{path: "/v1/responses", body: string(body), header: header})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, out)
			}
			wantIn := want
			if name == "UTF16LEBOMbig" {
				wantIn = fakeupstream.InputTokens([]byte(text + strings.Repeat(" ", 10)))
			}
			if got := num(t, string(out), "usage.input_tokens"); got != wantIn {
				t.Errorf("input_tokens %d, want %d (on the UTF-8 text)", got, wantIn)
			}
			if num(t, string(out), "usage.output_tokens") != 4 {
				t.Errorf("output directive in the body not applied: %s", out)
			}
			decoded, err := fakeupstream.DecodeBody(header["Content-Encoding"], body)
			if err != nil || !utf8.Valid(decoded) || !strings.HasPrefix(string(decoded), `{"model"`) {
				t.Errorf("DecodeBody: %q, %v", decoded, err)
			}
			if name != "GzipUTF16BOM" {
				if u, err := fakeupstream.ExpectedUsage("/v1/responses", "", body); err != nil || u.InputTokens != wantIn {
					t.Errorf("ExpectedUsage = %+v, %v; want input %d", u, err, wantIn)
				}
			}
		})
	}
	_, srv := mustServe(t)
	for _, bad := range [][]byte{{0xFF, 0xFE, '{', 0, 0xD8}, {0xFE, 0xFF, 0xDC, 0x00, 0, '}'}} {
		resp, out := mustDo(t, srv, request{path: "/v1/responses", body: string(bad)})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%x: status %d: %s", bad, resp.StatusCode, out)
		}
	}
}

func TestDecodeBody(t *testing.T) {
	tests := []struct {
		coding string
		in     []byte
		want   string
	}{
		{"", []byte("plain"), "plain"},
		{"IDENTITY", []byte("plain"), "plain"},
		{" gzip ", compressors["gzip"](t, []byte("zipped")), "zipped"},
		{"x-gzip", compressors["gzip"](t, []byte("zipped")), "zipped"},
		{"deflate", rawDeflate([]byte("raw")), "raw"},
		{"", []byte{0xEF, 0xBB, 0xBF, 'x'}, "x"},
		{"", utf16Bytes("é", false, true), "é"},
		{"", []byte("{}"), "{}"},
		{"", []byte{'{', 0}, "{"}, // two bytes, one of them zero: UTF-16LE
	}
	for _, tt := range tests {
		got, err := fakeupstream.DecodeBody(tt.coding, tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("DecodeBody(%q, %x) = %q, %v; want %q", tt.coding, tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []struct {
		coding string
		in     []byte
	}{{"lzma", []byte("x")}, {"gzip", []byte("x")}, {"zstd", []byte("not zstd")}, {"", []byte{0xFF, 0xFE, 'x'}}, {"", []byte{0, 0, 0xFE, 0xFF, 0, 0x11, 0, 0}}} {
		if got, err := fakeupstream.DecodeBody(bad.coding, bad.in); err == nil {
			t.Errorf("DecodeBody(%q, %x) = %q, want an error", bad.coding, bad.in, got)
		}
	}
}

func FuzzDecodeBody(f *testing.F) {
	f.Add("gzip", compressors["gzip"](f, []byte(`{"model":"m"}`)))
	f.Add("deflate", compressors["deflate"](f, []byte(`{"a":1}`)))
	f.Add("br", compressors["br"](f, []byte(`{"a":1}`)))
	f.Add("zstd", compressors["zstd"](f, []byte(`{"a":1}`)))
	f.Add("gzip, br", compressors["br"](f, compressors["gzip"](f, []byte("x"))))
	f.Add("", utf16Bytes(`{"model":"m"}`, false, true))
	f.Add("", utf32Bytes(`{"m":1}`, true, false))
	f.Add("", []byte{0xEF, 0xBB, 0xBF, '{', '}'})
	f.Fuzz(func(t *testing.T, coding string, body []byte) {
		out, err := fakeupstream.DecodeBody(coding, body)
		if err != nil {
			return
		}
		if len(out) > fakeupstream.MaxBodyBytes {
			t.Errorf("DecodeBody returned %d bytes, over MaxBodyBytes", len(out))
		}
		// Without a coding, a body that does not start with a byte order
		// mark or a zero byte among its first four is left as it is.
		plain := len(body) < 2 || bytes.IndexByte(body[:min(4, len(body))], 0) < 0
		for _, bom := range [][]byte{{0xEF, 0xBB, 0xBF}, {0xFF, 0xFE}, {0xFE, 0xFF}} {
			plain = plain && !bytes.HasPrefix(body, bom)
		}
		if strings.TrimSpace(coding) == "" && plain && !bytes.Equal(out, body) {
			t.Errorf("DecodeBody(\"\", %q) = %q, want it unchanged", body, out)
		}
	})
}
