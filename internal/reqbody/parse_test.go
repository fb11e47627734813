package reqbody_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/anthropic"
	"github.com/tokenmeter/tokenmeter/internal/openai"
	"github.com/tokenmeter/tokenmeter/internal/reqbody"
)

// TestDecodeThenParse is issue 12's reproduction at the parser level:
// bodies the upstream reads (gzip, br, a BOM, UTF-16) yield the model and
// the worst case once decoded, where the raw bytes yielded nothing.
func TestDecodeThenParse(t *testing.T) {
	chat := `{"model":"gpt-4o","n":8,"max_completion_tokens":5000,"messages":[{"role":"user","content":"hi"}]}`
	msgs := `{"model":"claude-opus-4-1","max_tokens":32000,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name, coding string
		body         []byte
		anthropic    bool
	}{
		{"OpenAIGzip", "gzip", gz(t, []byte(chat)), false},
		{"OpenAIBrotliZstd", "zstd, br", br(t, zs(t, []byte(chat))), false},
		{"OpenAIUTF16", "", utf16Bytes(chat, binary.LittleEndian, false), false},
		{"AnthropicBOM", "", cat([]byte{0xEF, 0xBB, 0xBF}, []byte(msgs)), true},
		{"AnthropicDeflateUTF16BE", "deflate", zl(t, utf16Bytes(msgs, binary.BigEndian, true)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := header()
			if tt.coding != "" {
				h = header(tt.coding)
			}
			// The raw bytes do not parse: this is what was metered as $0.
			if tt.anthropic {
				if _, err := anthropic.ParseRequest(tt.body); err == nil {
					t.Fatalf("raw body parsed; the test shows nothing")
				}
			} else if _, err := openai.ParseRequest(openai.Chat, tt.body); err == nil {
				t.Fatalf("raw body parsed; the test shows nothing")
			}
			plain, err := reqbody.Decode(h, tt.body, 1<<20)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if tt.anthropic {
				r, err := anthropic.ParseRequest(plain)
				if err != nil || r.Model != "claude-opus-4-1" || r.MaxTokens != 32000 || !r.Stream {
					t.Errorf("anthropic.ParseRequest(decoded) = %+v, %v", r, err)
				}
				return
			}
			r, err := openai.ParseRequest(openai.Chat, plain)
			if err != nil || r.Model != "gpt-4o" || r.Choices != 8 || r.OutputBound(32000) != 40000 {
				t.Errorf("openai.ParseRequest(decoded) = %+v (OutputBound %d), %v; want gpt-4o, 8 choices, 40000", r, r.OutputBound(32000), err)
			}
		})
	}
	// A compressed body does not hide an over-long model name.
	long := `{"model":"` + strings.Repeat("m", 300) + `"}`
	plain, err := reqbody.Decode(header("gzip"), gz(t, []byte(long)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openai.ParseRequest(openai.Chat, plain); !errors.Is(err, openai.ErrModelTooLong) {
		t.Errorf("ParseRequest(decoded long model) = %v, want ErrModelTooLong", err)
	}
}
