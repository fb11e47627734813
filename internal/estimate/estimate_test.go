package estimate_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer/codec"

	"github.com/tokenmeter/tokenmeter/internal/estimate"
)

func TestMethod(t *testing.T) {
	for _, tt := range []struct{ model, want string }{
		{"gpt-4o-2024-08-06", "o200k_base tokenizer"},
		{"gpt-4o-mini", "o200k_base tokenizer"},
		{"chatgpt-4o-latest", "o200k_base tokenizer"},
		{"gpt-4.1-nano", "o200k_base tokenizer"},
		{"gpt-5-2025-08-07", "o200k_base tokenizer"},
		{"gpt-5.1-codex", "o200k_base tokenizer"},
		{"o1", "o200k_base tokenizer"},
		{"o3-mini", "o200k_base tokenizer"},
		{"o4-mini-2025-04-16", "o200k_base tokenizer"},
		{"codex-mini-latest", "o200k_base tokenizer"},
		{"gpt-oss-120b", "o200k_base tokenizer"},
		{"openai/gpt-4o", "o200k_base tokenizer"},
		{"ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base tokenizer"},
		{"GPT-4o", "o200k_base tokenizer"},
		{"gpt-4", "cl100k_base tokenizer"},
		{"gpt-4-turbo-2024-04-09", "cl100k_base tokenizer"},
		{"gpt-3.5-turbo", "cl100k_base tokenizer"},
		{"claude-sonnet-4-5", "4 characters per token"},
		{"anthropic.claude-3-5-sonnet-20241022-v2:0", "4 characters per token"},
		{"llama-3.3-70b-versatile", "4 characters per token"},
		{"o3something", "4 characters per token"},
		{"", "4 characters per token"},
	} {
		if got := estimate.Method(tt.model); got != tt.want {
			t.Errorf("Method(%q) = %q, want %q", tt.model, got, tt.want)
		}
	}
}

// lit returns s as a JSON string literal, as a frame carries it.
func lit(s string) []byte { return []byte(strconv.Quote(s)) }

func TestOutputCountsCharacters(t *testing.T) {
	var o estimate.Output
	if e := o.Estimate("gpt-4o"); e.Tokens != 0 || e.Basis != "output: no text relayed" {
		t.Errorf("empty Output estimates %+v", e)
	}
	for _, s := range []string{`"Hel"`, `"lo, w\u00f6rld"`, `"!\n"`, `""`} {
		o.AddString([]byte(s))
	}
	if o.Chars() != 14 {
		t.Errorf("Chars() = %d, want 14 (escapes count one character each)", o.Chars())
	}
	want := estimate.Estimate{Tokens: 4, Basis: "output: 14 relayed characters, 4 characters per token"}
	if got := o.Estimate("claude-opus-4-1"); got != want {
		t.Errorf("Estimate(claude) = %+v, want %+v", got, want)
	}
}

func TestOutputTokenizer(t *testing.T) {
	var o estimate.Output
	for _, s := range []string{"Hello", ",", " world", "!"} {
		o.AddString(lit(s))
	}
	// "Hello, world!" is 4 tokens in both OpenAI vocabularies.
	for _, model := range []string{"gpt-4o", "gpt-4"} {
		e := o.Estimate(model)
		name := strings.TrimSuffix(estimate.Method(model), " tokenizer")
		if e.Tokens != 4 || e.Basis != "output: 13 relayed characters, "+name+" tokenizer" {
			t.Errorf("Estimate(%s) = %+v, want 4 tokens by %s", model, e, name)
		}
	}
}

// TestOutputExtrapolates relays far more than the sample keeps and checks
// the extrapolated count against the tokenizer run over the whole text.
func TestOutputExtrapolates(t *testing.T) {
	words := strings.Fields("the gateway relays every event as it arrives and counts what passed, café, naïve, 東京, 12345")
	var o estimate.Output
	var all strings.Builder
	for i := 0; all.Len() < 4*estimate.SampleBytes; i++ {
		d := " " + words[i%len(words)]
		o.AddString(lit(d))
		all.WriteString(d)
	}
	chars := int64(len([]rune(all.String())))
	if o.Chars() != chars {
		t.Fatalf("Chars() = %d, want %d", o.Chars(), chars)
	}
	full, err := codec.NewO200kBase().Count(all.String())
	if err != nil {
		t.Fatal(err)
	}
	e := o.Estimate("gpt-5")
	if diff := float64(e.Tokens-int64(full)) / float64(full); diff < -0.02 || diff > 0.02 {
		t.Errorf("extrapolated %d tokens, the whole text has %d (%.1f%% off)", e.Tokens, full, 100*diff)
	}
	if !strings.Contains(e.Basis, "o200k_base tokenizer on the first") || !strings.Contains(e.Basis, fmt.Sprint(chars)) {
		t.Errorf("basis %q does not say it extrapolated from %d characters", e.Basis, chars)
	}
}

func TestOutputUnsampledChars(t *testing.T) {
	var o estimate.Output
	o.AddChars(1001)
	o.AddChars(-5) // ignored
	if e := o.Estimate("gpt-4o"); e.Tokens != 251 || e.Basis != "output: 1001 relayed characters, 4 characters per token" {
		t.Errorf("Estimate of unsampled characters = %+v, want 251 at 4 per token", e)
	}
	o.AddString(lit("abcd abcd abcd abcd")) // 19 characters, sampled
	if e := o.Estimate("gpt-4o"); o.Chars() != 1020 || !strings.Contains(e.Basis, "extrapolated") || e.Tokens < 1020/19 {
		t.Errorf("Estimate with a sample = %+v (chars %d)", e, o.Chars())
	}
}

func TestInput(t *testing.T) {
	img := strings.Repeat("iVBORw0KGgoAAAANSUhEUgAA", 100)
	for _, tt := range []struct {
		name, model, body string
		tokens            int64
		basis             string
	}{
		{"claude", "claude-haiku-4-5", `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"Hello, w\u00f6rld!"}]}`,
			9, "input: 33 characters of request text, 4 characters per token"}, // claude-haiku-4-5, user, Hello, wörld!
		{"claude image", "claude-haiku-4-5", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + img + `"}},{"type":"text","text":"What is it?"}]}]}`,
			10 + 1600, "input: 39 characters of request text, 4 characters per token + 1 base64 media at 1600 tokens each"},
		{"openai", "gpt-4o", `{"model":"gpt-4o","messages":[{"role":"user","content":"Hello, world!"}]}`,
			o200k("gpt-4o", "user", "Hello, world!"), "input: 23 characters of request text, o200k_base tokenizer"},
		{"openai data url", "gpt-4.1", `{"input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/jpeg;base64,/9j/4AAQ"}]}]}`,
			o200k("input_image", "user") + 1600, "input: 15 characters of request text, o200k_base tokenizer + 1 base64 media at 1600 tokens each"},
		{"not json", "gpt-4o", "\x1f\x8b\x08 gzip bytes",
			4, "input: 14 characters of a request body that is not JSON, 4 characters per token"},
		{"empty", "gpt-4o", `{}`, 0, "input: 0 characters of request text, 4 characters per token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := estimate.Input(tt.model, []byte(tt.body))
			if got.Tokens != tt.tokens || got.Basis != tt.basis {
				t.Errorf("Input(%s) = %+v, want %d tokens, %q", tt.model, got, tt.tokens, tt.basis)
			}
		})
	}
}

// o200k returns the tokens of each string, counted apart and summed.
func o200k(strs ...string) int64 {
	enc := codec.NewO200kBase()
	var n int64
	for _, s := range strs {
		c, _ := enc.Count(s)
		n += int64(c)
	}
	return n
}

// TestInputSamples checks a body far larger than the sample against the
// tokenizer run over all of its text.
func TestInputSamples(t *testing.T) {
	var msgs []string
	var all []string
	prose := "Summarise the following log and say which request failed first, and why. "
	code := "func (b *meteredBody) Read(p []byte) (int, error) { return copy(p, b.out), nil }\n"
	rng := rand.New(rand.NewPCG(1, 2))
	for size := 0; size < 4*estimate.InputSampleBytes; {
		s := strings.Repeat(prose, 1+rng.IntN(7))
		if rng.IntN(3) == 0 {
			s = strings.Repeat(code, 1+rng.IntN(11))
		}
		size += len(s)
		all = append(all, "user", s)
		msgs = append(msgs, `{"role":"user","content":`+strconv.Quote(s)+`}`)
	}
	body := `{"model":"gpt-4o","messages":[` + strings.Join(msgs, ",") + `]}`
	enc := codec.NewO200kBase()
	var full int64
	for _, s := range append(all, "gpt-4o") {
		n, _ := enc.Count(s)
		full += int64(n)
	}
	got := estimate.Input("gpt-4o", []byte(body))
	if diff := float64(got.Tokens-full) / float64(full); diff < -0.03 || diff > 0.03 {
		t.Errorf("Input estimated %d tokens, the whole text has %d (%.1f%% off); basis %q", got.Tokens, full, 100*diff, got.Basis)
	}
	if !strings.Contains(got.Basis, "extrapolated") {
		t.Errorf("basis %q does not say the count was extrapolated", got.Basis)
	}
}

// TestBasisHoldsNoText: a basis is stored in the ledger, which never holds
// prompt or completion bytes.
func TestBasisHoldsNoText(t *testing.T) {
	secret := "SECRET-PROMPT-TEXT"
	var o estimate.Output
	o.AddString(lit(secret))
	for _, e := range []estimate.Estimate{
		o.Estimate("gpt-4o"), o.Estimate("claude-sonnet-4"),
		estimate.Input("gpt-4o", []byte(`{"input":"`+secret+`"}`)),
		estimate.Input("gpt-4o", []byte(secret)),
	} {
		if strings.Contains(e.Basis, "SECRET") {
			t.Errorf("basis %q holds request or response text", e.Basis)
		}
	}
}

// TestConcurrent runs estimates in parallel, as concurrent calls ending at
// once do (run with -race).
func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var o estimate.Output
			o.AddString(lit(strings.Repeat("concurrent words ", 50+i)))
			model := []string{"gpt-4o", "gpt-4"}[i%2]
			if e := o.Estimate(model); e.Tokens < 100 {
				t.Errorf("Estimate = %+v", e)
			}
			if e := estimate.Input(model, []byte(`{"input":"a few words"}`)); e.Tokens < 3 {
				t.Errorf("Input = %+v", e)
			}
		}()
	}
	wg.Wait()
}

// BenchmarkAddString is the per-frame cost a meter adds: one text delta.
func BenchmarkAddString(b *testing.B) {
	d := []byte(`" and the next few words"`)
	b.ReportAllocs()
	var o estimate.Output
	for b.Loop() {
		o.AddString(d)
	}
}

// BenchmarkOutputEstimate tokenizes a full output sample, as at the end of
// a long cut stream.
func BenchmarkOutputEstimate(b *testing.B) {
	var o estimate.Output
	for o.Chars() < 2*estimate.SampleBytes {
		o.AddString(lit("The quick brown fox jumps over the lazy dog, "))
	}
	o.Estimate("gpt-4o") // load the vocabulary
	b.ResetTimer()
	for b.Loop() {
		o.Estimate("gpt-4o")
	}
}

// BenchmarkInput estimates a 1 MiB request body.
func BenchmarkInput(b *testing.B) {
	var msgs []string
	for n := 0; n < 1<<20; n += 400 {
		msgs = append(msgs, `{"role":"user","content":`+strconv.Quote(strings.Repeat("Read the file and fix the failing test. ", 9))+`}`)
	}
	body := []byte(`{"model":"gpt-4o","messages":[` + strings.Join(msgs, ",") + `]}`)
	estimate.Input("gpt-4o", []byte(`{}`))
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		estimate.Input("gpt-4o", body)
	}
}

// BenchmarkPathological tokenizes samples built to be slow for a BPE
// tokenizer: one long word, text without spaces, runs of spaces.
func BenchmarkPathological(b *testing.B) {
	for name, s := range map[string]string{
		"letters": strings.Repeat("a", estimate.SampleBytes),
		"cjk":     strings.Repeat("東京都", estimate.SampleBytes/9),
		"spaces":  strings.Repeat(" ", estimate.SampleBytes-1) + "x",
		"digits":  strings.Repeat("1234567890", estimate.SampleBytes/10),
		"symbols": strings.Repeat("=-+*", estimate.SampleBytes/4),
	} {
		b.Run(name, func(b *testing.B) {
			var o estimate.Output
			o.AddString(lit(s))
			for b.Loop() {
				if e := o.Estimate("gpt-4o"); e.Tokens == 0 {
					b.Fatal(e)
				}
			}
		})
	}
}

// FuzzAddString checks that an Output counts the same characters whether
// it samples the text (decoding it) or not (counting it), for every string
// literal encoding/json accepts, and never panics on others.
func FuzzAddString(f *testing.F) {
	for _, s := range []string{`""`, `"a\nb"`, `"caf\u00e9 \ud83d\ude00"`, `"\ud83d"`, "\"\xff\xfe\"", `"\\\""`, `"a\qb"`, `"ab`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, lit []byte) {
		var sampled, counted estimate.Output
		counted.SetModel("claude-sonnet-4-5")
		sampled.AddString(lit)
		counted.AddString(lit)
		sampled.Estimate("gpt-4o")
		var v string
		if json.Unmarshal(lit, &v) != nil || lit[0] != '"' || lit[len(lit)-1] != '"' {
			return
		}
		if sampled.Chars() != counted.Chars() || sampled.Chars() != int64(utf8.RuneCountInString(v)) {
			t.Fatalf("AddString(%q): %d characters sampled, %d counted, encoding/json decodes %d", lit, sampled.Chars(), counted.Chars(), utf8.RuneCountInString(v))
		}
	})
}
