package estimate

import (
	"fmt"

	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
)

// Output is the output text relayed to the client in one call, as counted
// by a meter while the frames passed: the exact number of characters, and
// the first SampleBytes of the text itself for a tokenizer. The zero Output
// is empty and ready to use. It is not safe for concurrent use.
type Output struct {
	chars    int64  // every character relayed
	sample   []byte // the first of them, decoded, at most SampleBytes
	sampled  int64  // characters in sample
	noSample bool   // the model is counted by characters: keep no sample
}

// SetModel tells the Output which model is producing the text, as soon as
// the response names it. For a model counted by characters (Claude and
// unknown models) it keeps no sample from then on, so relaying costs no
// memory. Estimate still takes the model to count for.
func (o *Output) SetModel(model string) {
	o.noSample = tokenizerFor(model) == nil
}

// AddString counts the value of the JSON string literal lit (quotes
// included, as it appears in a frame) as relayed output. It allocates
// only while the sample grows (doubling, to at most SampleBytes), and keeps
// no reference to lit.
func (o *Output) AddString(lit []byte) {
	if !o.noSample && len(o.sample)+len(lit) <= SampleBytes {
		// The whole string fits the sample (a decoded string is never
		// longer than its literal): decoding it counts its characters.
		if need := len(o.sample) + len(lit); need > cap(o.sample) {
			o.grow(need)
		}
		var n int
		o.sample, n = jsonscan.AppendString(o.sample, lit, SampleBytes)
		o.chars += int64(n)
		o.sampled += int64(n)
		return
	}
	n, _ := jsonscan.StringLen(lit)
	if n == 0 {
		return
	}
	o.chars += int64(n)
	if o.noSample || len(o.sample) >= SampleBytes {
		return
	}
	// The sample's last room: take the string's head.
	if cap(o.sample) < SampleBytes {
		o.grow(SampleBytes)
	}
	var got int
	o.sample, got = jsonscan.AppendString(o.sample, lit, SampleBytes)
	o.sampled += int64(got)
}

// grow makes room in the sample for need bytes, at least doubling it (up
// to SampleBytes), so that AppendString never grows it by append's rule.
func (o *Output) grow(need int) {
	grown := make([]byte, len(o.sample), min(SampleBytes, max(need, 2*cap(o.sample), 256)))
	copy(grown, o.sample)
	o.sample = grown
}

// AddChars counts n characters of relayed output whose text was not seen,
// such as the deltas of a frame too large to parse. They are estimated at
// the sample's ratio.
func (o *Output) AddChars(n int64) {
	if n > 0 {
		o.chars += n
	}
}

// Chars returns the number of characters of output relayed.
func (o *Output) Chars() int64 { return o.chars }

// Estimate returns the output tokens the relayed text amounts to for model
// (see the package documentation for the method). It tokenizes at most
// SampleBytes, once per call; call it when the call ends without usage,
// never per frame.
func (o *Output) Estimate(model string) Estimate {
	if o.chars == 0 {
		return Estimate{Basis: "output: no text relayed"}
	}
	t := tokenizerFor(model)
	if t != nil && o.sampled > 0 {
		if n, ok := t.count(string(o.sample)); ok {
			if o.sampled >= o.chars {
				return Estimate{
					Tokens: n,
					Basis:  fmt.Sprintf("output: %d relayed characters, %s tokenizer", o.chars, t.name),
				}
			}
			return Estimate{
				Tokens: scale(n, o.sampled, o.chars),
				Basis: fmt.Sprintf("output: %d relayed characters, %s tokenizer on the first %d, extrapolated",
					o.chars, t.name, o.sampled),
			}
		}
	}
	return Estimate{
		Tokens: byChars(o.chars),
		Basis:  fmt.Sprintf("output: %d relayed characters, %d characters per token", o.chars, CharsPerToken),
	}
}
