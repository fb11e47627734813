package estimate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
)

// Input returns the input tokens of a request for model, estimated from its
// body (as the provider reads it: decoded, JSON). It counts the characters
// of the body's string values, except base64 media, which count
// MediaTokens each; a body that is not JSON counts all its characters. With
// a tokenizer it tokenizes at most InputSampleBytes of that text, taken
// from the heads of its strings in proportion across the body, and
// extrapolates. It keeps no reference to body.
func Input(model string, body []byte) Estimate {
	if !json.Valid(body) {
		chars := int64(utf8.RuneCount(body))
		return Estimate{
			Tokens: byChars(chars),
			Basis:  fmt.Sprintf("input: %d characters of a request body that is not JSON, %d characters per token", chars, CharsPerToken),
		}
	}
	var chars, rawBytes, media int64
	eachText(body, func(lit []byte) {
		if isMedia(lit) {
			media++
			return
		}
		n, _ := jsonscan.StringLen(lit)
		chars += int64(n)
		rawBytes += int64(len(lit) - 2)
	})
	mediaTokens := media * MediaTokens
	mediaNote := ""
	if media > 0 {
		mediaNote = fmt.Sprintf(" + %d base64 media at %d tokens each", media, MediaTokens)
	}
	if t := tokenizerFor(model); t != nil && chars > 0 {
		if tokens, sampled, ok := tokenizeSample(t, body, rawBytes); ok {
			basis := fmt.Sprintf("input: %d characters of request text, %s tokenizer", chars, t.name)
			if sampled < chars {
				basis = fmt.Sprintf("input: %d characters of request text, %s tokenizer on %d of them, extrapolated", chars, t.name, sampled)
			}
			return Estimate{Tokens: scale(tokens, sampled, chars) + mediaTokens, Basis: basis + mediaNote}
		}
	}
	return Estimate{
		Tokens: byChars(chars) + mediaTokens,
		Basis:  fmt.Sprintf("input: %d characters of request text, %d characters per token", chars, CharsPerToken) + mediaNote,
	}
}

// tokenizeSample tokenizes about InputSampleBytes of the text strings of
// body, whose raw text is rawBytes long, so that a sample of a large body
// spreads over all of it: each string earns credit in proportion to its
// length; a short string is taken whole once the credit covers it, a long
// one gives the head its credit covers, cut at a space. It returns the
// tokens and the characters sampled.
func tokenizeSample(t *tokenizer, body []byte, rawBytes int64) (tokens, sampled int64, ok bool) {
	const minPiece = 256 // bytes: shorter heads would count cut words
	ok = true
	var buf []byte
	credit := 0.0 // bytes of text the sample may still take
	share := min(1, float64(InputSampleBytes)/float64(max(rawBytes, 1)))
	eachText(body, func(lit []byte) {
		if !ok || isMedia(lit) {
			return
		}
		raw := len(lit) - 2
		credit += float64(raw) * share
		take := raw
		switch {
		case raw <= minPiece && credit < float64(raw):
			return
		case raw > minPiece && credit < minPiece:
			return
		case raw > minPiece:
			take = min(raw, int(credit))
		}
		var n int
		buf, n = jsonscan.AppendString(buf[:0], lit, take)
		if take < raw {
			// A head: end it at a space, not inside a word.
			if sp := bytes.LastIndexByte(buf, ' '); sp > len(buf)/2 {
				buf = buf[:sp]
				n = utf8.RuneCount(buf)
			}
		}
		if n == 0 {
			return
		}
		credit -= float64(len(buf))
		c, good := t.count(string(buf))
		tokens += c
		sampled += int64(n)
		ok = ok && good
	})
	return tokens, sampled, ok
}

// eachText calls fn with every string value in the valid JSON document
// doc (a JSON string literal, quotes included), in order; keys are left
// out.
func eachText(doc []byte, fn func(lit []byte)) {
	for i := 0; i < len(doc); {
		j := bytes.IndexByte(doc[i:], '"')
		if j < 0 {
			return
		}
		start := i + j
		end := jsonscan.SkipString(doc, start)
		if end < 0 {
			return // not reached for valid JSON
		}
		i = end
		// In valid JSON a string followed by a colon is a key.
		if k := jsonscan.SkipSpace(doc, end); k < len(doc) && doc[k] == ':' {
			continue
		}
		fn(doc[start:end])
	}
}

// isMedia reports whether a string literal holds base64 media: a data URL
// ("data:image/png;base64,...") or at least 1 KiB of the base64 alphabet
// alone (Anthropic's image and document "data").
func isMedia(lit []byte) bool {
	s := lit[1 : len(lit)-1]
	if bytes.HasPrefix(s, []byte("data:")) {
		head := s[:min(len(s), 128)]
		return bytes.Contains(head, []byte(";base64,"))
	}
	if len(s) < 1<<10 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/', c == '=':
		case c == '\\': // an escaped slash, \/, as some encoders write
		default:
			return false
		}
	}
	return true
}
