// Package estimate counts the tokens of a call whose provider never said:
// a stream the client cut (Claude Code's Esc), or a request whose usage
// never arrived. It turns what the gateway saw, the output it relayed and
// the request body, into a token count and the basis of that count, a short
// sentence the ledger keeps beside an estimated event. It never sees a
// prompt or completion again after it returns, and its bases hold numbers
// and names only, never text.
//
// # Method
//
// The method depends on the model's family (see Method):
//
//   - OpenAI models are counted with the model's own vocabulary, through
//     github.com/tiktoken-go/tokenizer (vocabularies compiled into the
//     binary; nothing is downloaded): o200k_base for gpt-4o, gpt-4.1,
//     gpt-4.5, gpt-5, the o-series, codex and gpt-oss models, cl100k_base
//     for gpt-4 and gpt-3.5. A vocabulary is loaded on first use (about
//     0.1 s and a few MB of heap, once per process).
//   - Claude models (no public tokenizer exists for current ones) and every
//     other model are counted at 4 characters per token, rounded up: the
//     rate Anthropic's own gateway uses to floor the output of an aborted
//     stream.
//
// A tokenizer counts a bounded sample of the text (SampleBytes of relayed
// output, InputSampleBytes of request text); a longer text is counted at
// the sample's measured characters-per-token ratio. Character counts are
// always exact: characters are Unicode code points of the decoded text, so
// "\n" and "\u00e9" in JSON are one each.
//
// # What is counted
//
// Output (Output): the text the gateway relayed to the client as it
// passed: Anthropic text, thinking and tool-input deltas; OpenAI chat
// content, refusal, reasoning and tool-call argument deltas; Responses text,
// refusal, reasoning, function, custom-tool and code deltas. Signatures,
// citations, audio and images are not text and are not counted; neither is
// output the client never received (a provider that generated past the cut
// still bills it), nor thinking a provider summarised or redacted before
// sending. An output estimate is therefore a floor of what was billed, not
// a worst case.
//
// Input (Input): the text of the request body's JSON string values (keys and
// punctuation left out), plus MediaTokens for each base64 image or document
// in it, whose cost depends on its pixels or pages rather than its bytes.
// Per-message framing tokens are not added; the role and type strings that
// are counted stand in for them.
//
// Both come out above what tokenmeter's fake upstream bills: it answers
// with lorem-ipsum words and bills one token per word, where a word is
// about six characters. That is expected: the events carrying these counts
// are marked estimated, never known.
//
// # Cost
//
// Nothing here runs per frame except Output.AddString, which counts a
// delta's characters without allocating and copies it only while the
// sample has room. Estimate and Input run once, when a call ends without
// usage: counting a full output sample takes about 10 ms, a full input
// sample about 70 ms (tokenizer families only).
package estimate

import (
	"fmt"
	"strings"
	"sync"

	"github.com/tiktoken-go/tokenizer/codec"
)

// CharsPerToken is the rate used where no tokenizer fits the model.
const CharsPerToken = 4

// SampleBytes bounds the relayed output an Output keeps for a tokenizer.
const SampleBytes = 32 << 10

// InputSampleBytes bounds the request text Input gives a tokenizer.
const InputSampleBytes = 256 << 10

// MediaTokens is what Input counts for each base64 image or document in a
// request: about what Claude charges for its largest image (1.15 megapixels
// at 750 pixels a token) and above OpenAI's high-detail 1024x1024 image.
// A multi-page PDF can cost more; the estimate says how many it counted.
const MediaTokens = 1600

// Estimate is a token count that is not the provider's own, with the basis
// it was made on.
type Estimate struct {
	// Tokens is the estimated count.
	Tokens int64 `json:"tokens"`
	// Basis says how Tokens was counted, in a short sentence with numbers
	// and names only, e.g. "output: 812 relayed characters, o200k_base
	// tokenizer".
	Basis string `json:"basis"`
}

// tokenizer is a vocabulary loaded on first use.
type tokenizer struct {
	name  string
	load  func() *codec.Codec
	once  sync.Once
	codec *codec.Codec
}

var (
	o200k  = &tokenizer{name: "o200k_base", load: codec.NewO200kBase}
	cl100k = &tokenizer{name: "cl100k_base", load: codec.NewCl100kBase}
)

// count returns the number of tokens in s, or ok=false if the tokenizer
// failed (then the caller falls back to characters).
func (t *tokenizer) count(s string) (int64, bool) {
	t.once.Do(func() { t.codec = t.load() })
	n, err := t.codec.Count(s)
	return int64(n), err == nil
}

// tokenizerFor returns the tokenizer of model's family, or nil for a model
// counted by characters.
func tokenizerFor(model string) *tokenizer {
	m := strings.ToLower(strings.TrimSpace(model))
	m = strings.TrimPrefix(m, "ft:") // fine-tunes: ft:gpt-4o-mini-2024-07-18:org::id
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:] // router prefixes: openai/gpt-4o
	}
	switch {
	case strings.Contains(m, "claude"):
		return nil
	case hasAny(m, "gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "gpt-oss", "codex", "computer-use", "omni-"),
		series(m, "o1"), series(m, "o3"), series(m, "o4"):
		return o200k
	case hasAny(m, "gpt-4", "gpt-3.5", "gpt-35", "text-embedding-3", "text-embedding-ada-002"):
		return cl100k
	}
	return nil
}

// hasAny reports whether m starts with any of prefixes.
func hasAny(m string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}

// series reports whether m is the o-series model s or one of its variants
// ("o3", "o3-mini", "o3-2025-04-16").
func series(m, s string) bool {
	return m == s || strings.HasPrefix(m, s+"-")
}

// Method returns how a model's tokens are estimated: "o200k_base
// tokenizer", "cl100k_base tokenizer" or "4 characters per token".
func Method(model string) string {
	if t := tokenizerFor(model); t != nil {
		return t.name + " tokenizer"
	}
	return fmt.Sprintf("%d characters per token", CharsPerToken)
}

// byChars returns chars/CharsPerToken rounded up.
func byChars(chars int64) int64 {
	return (chars + CharsPerToken - 1) / CharsPerToken
}

// scale extrapolates tokens counted on sampled characters to all chars,
// rounding up.
func scale(tokens, sampled, chars int64) int64 {
	if sampled >= chars || sampled <= 0 {
		return tokens
	}
	// tokens <= sampled <= InputSampleBytes and chars < 2^40 in any call a
	// gateway relays, so the product cannot overflow.
	return (tokens*chars + sampled - 1) / sampled
}
