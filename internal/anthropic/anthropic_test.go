package anthropic_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/anthropic"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    anthropic.Request
		wantErr string // substring of the error; "" means no error
	}{
		{
			name: "Streaming",
			body: `{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Hello"}]}`,
			want: anthropic.Request{Model: "claude-sonnet-4-5", Stream: true, MaxTokens: 1024},
		},
		{
			name: "NotStreaming",
			body: `{"messages":[{"role":"user","content":"{\"model\":\"x\"}"}],"model":"claude-haiku-4-5","max_tokens":8}`,
			want: anthropic.Request{Model: "claude-haiku-4-5", MaxTokens: 8},
		},
		{
			name: "UnknownFieldsAndNested",
			body: " {\n \"system\": [{\"type\":\"text\",\"text\":\"be brief \\\" }\"}], \"tools\": [], \"metadata\": {\"model\": \"nested\"},\n \"model\" : \"m\", \"stream\" : false, \"thinking\": {\"budget_tokens\": 5}}\n",
			want: anthropic.Request{Model: "m"},
		},
		{name: "Nulls", body: `{"model":null,"stream":null,"max_tokens":null}`, want: anthropic.Request{}},
		{name: "Empty", body: `{}`, want: anthropic.Request{}},
		{name: "KeysAreExact", body: `{"model":"a","Model":"b","STREAM":true,"Max_Tokens":5}`, want: anthropic.Request{Model: "a"}},
		{name: "EscapedKey", body: `{"mod\u0065l":"a"}`, want: anthropic.Request{Model: "a"}},
		{name: "LastDuplicateWins", body: `{"model":"a","model":"b"}`, want: anthropic.Request{Model: "b"}},
		{name: "InvalidJSON", body: `{"model":"a",}`, wantErr: "invalid JSON at byte 14"},
		{name: "Truncated", body: `{"model":"claude-sonnet-4-5","messages":[{"role":"us`, wantErr: "truncated after 52 bytes"},
		{name: "EmptyBody", body: ``, wantErr: "request body: empty"},
		{name: "NotObject", body: `["model"]`, wantErr: "request body is not a JSON object"},
		{name: "ModelNotString", body: `{"model":42}`, wantErr: "model is not a string"},
		{name: "StreamNotBool", body: `{"stream":"true"}`, wantErr: "stream is not a boolean"},
		{name: "MaxTokensFloat", body: `{"max_tokens":10.5}`, wantErr: "max_tokens is not an integer"},
		{name: "MaxTokensString", body: `{"max_tokens":"10"}`, wantErr: "max_tokens is not an integer (a string)"},
		{name: "ModelNotStringKind", body: `{"model":{"id":"m"}}`, wantErr: "model is not a string (an object)"},
		{name: "MaxTokensNegative", body: `{"max_tokens":-1}`, wantErr: "max_tokens is negative"},
		{name: "TrailingGarbage", body: `{"model":"a"} x`, wantErr: "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := anthropic.ParseRequest([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRequest(%s) error = %v, want it to contain %q", tt.body, err, tt.wantErr)
				}
				if code := tokenmeter.ErrorCode(err); code != tokenmeter.EINVALID {
					t.Errorf("ParseRequest(%s) error code = %q, want %q", tt.body, code, tokenmeter.EINVALID)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRequest(%s) error: %v", tt.body, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRequest(%s) mismatch (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

// TestParseRequestQuotesNothing checks that no error about a field quotes
// the body: the reason a body was unreadable is kept in the ledger, and
// must hold no prompt text. (Syntax errors are jsonscan.DescribeError's.)
func TestParseRequestQuotesNothing(t *testing.T) {
	const secret = "SECRETPROMPT"
	for _, body := range []string{
		`{"messages":[{"role":"user","content":"` + secret,
		`{"model":["` + secret + `"]}`,
		`{"model":"` + secret + `\x"}`,
		`{"stream":"` + secret + `"}`,
		`{"max_tokens":"` + secret + `"}`,
		`{"max_tokens":-` + secret + `}`,
		`{"max_tokens":{"` + secret + `":1}}`,
	} {
		_, err := anthropic.ParseRequest([]byte(body))
		if err == nil {
			t.Fatalf("ParseRequest(%s) error = nil", body)
		}
		if msg := err.Error(); strings.Contains(msg, "SECRET") || len(msg) > 120 {
			t.Errorf("ParseRequest(%s) error = %q, want it to quote nothing", body, msg)
		}
	}
}

func TestParseRequestModelTooLong(t *testing.T) {
	for _, body := range []string{
		`{"model":"` + strings.Repeat("m", anthropic.MaxModelBytes+1) + `","max_tokens":1}`,
		`{"model":"` + strings.Repeat(`\u00e9`, anthropic.MaxModelBytes/2+1) + `"}`, // 2 bytes each once decoded
		`{"model":"` + strings.Repeat("m", 32<<20) + `","stream":"x"}`,
	} {
		_, err := anthropic.ParseRequest([]byte(body))
		if !errors.Is(err, anthropic.ErrModelTooLong) || tokenmeter.ErrorCode(err) != tokenmeter.EINVALID {
			t.Errorf("ParseRequest(model of %d bytes) = %v, want ErrModelTooLong (EINVALID)", len(body), err)
		}
	}
	long := strings.Repeat("m", anthropic.MaxModelBytes)
	if r, err := anthropic.ParseRequest([]byte(`{"model":"` + long + `"}`)); err != nil || r.Model != long {
		t.Errorf("ParseRequest(model of exactly %d bytes) = %+v, %v; want it read", anthropic.MaxModelBytes, r, err)
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	anthropic.WriteError(rec, 529, "overloaded_error", `Overloaded "now"`)
	if rec.Code != 529 {
		t.Errorf("status = %d, want 529", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	want := `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded \"now\""}}`
	if got := rec.Body.String(); got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	// The body reads back as an Anthropic error with the official SDK's shape.
	var v struct {
		Type  string `json:"type"`
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || v.Type != "error" || v.Error.Type != "overloaded_error" {
		t.Errorf("body does not decode as an error: %+v, %v", v, err)
	}
	m := anthropic.NewMeter()
	m.Body(rec.Body.Bytes())
	if got := m.ErrorReason(); got != `overloaded_error: Overloaded "now"` {
		t.Errorf("Meter.Body(WriteError output).ErrorReason() = %q", got)
	}
	_ = http.StatusOK
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"claude","stream":true,"max_tokens":5}`,
		`{"a":[{"b":"\"}"}],"model":"x"}`,
		`{"mod\u0065l":"a","stream":null}`,
		`{"model":"a",}`, `[]`, `"x"`, `{`, ``,
		`{"model":"` + strings.Repeat("m", anthropic.MaxModelBytes+1) + `"}`,
		`{"model":"\u00e9\u00e9","max_tokens":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := anthropic.ParseRequest(b)
		if err != nil {
			return
		}
		if r.MaxTokens < 0 {
			t.Fatalf("ParseRequest(%q).MaxTokens = %d", b, r.MaxTokens)
		}
		if len(r.Model) > anthropic.MaxModelBytes {
			t.Fatalf("ParseRequest(%q).Model is %d bytes, over the cap", b, len(r.Model))
		}
		// What we read agrees with encoding/json when no key differs from
		// ours only by case (encoding/json matches keys case-insensitively).
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			// ParseRequest reads only the top level and leaves full
			// validation to the upstream, which rejects such a body.
			return
		}
		for k := range m {
			if l := strings.ToLower(k); l != k && (l == "model" || l == "stream" || l == "max_tokens") {
				return
			}
		}
		var v struct {
			Model     string `json:"model"`
			Stream    bool   `json:"stream"`
			MaxTokens int64  `json:"max_tokens"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("ParseRequest(%q) = %+v, but encoding/json fails: %v", b, r, err)
		}
		if got := (anthropic.Request{Model: v.Model, Stream: v.Stream, MaxTokens: v.MaxTokens}); got != r {
			t.Fatalf("ParseRequest(%q) = %+v, encoding/json reads %+v", b, r, got)
		}
	})
}

func BenchmarkParseRequest(b *testing.B) {
	// A Claude Code-sized request: a long system prompt and history.
	var sb strings.Builder
	sb.WriteString(`{"model":"claude-sonnet-4-5-20250929","max_tokens":32000,"stream":true,"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"messages":[`)
	for i := 0; i < 200; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"role":"user","content":[{"type":"text","text":"Please look at the file src/main.go and explain what \"run\" does, line by line."}]}`)
	}
	sb.WriteString(`],"tools":[{"name":"Bash","description":"Run a command","input_schema":{"type":"object","properties":{"command":{"type":"string"}}}}]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := anthropic.ParseRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}
