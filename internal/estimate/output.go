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
	chars   int64  // every character relayed
	sample  []byte // the first of them, decoded, at most SampleBytes
	sampled int64  // characters in sample
}

// AddString counts the value of the JSON string literal lit (quotes
// included, as it appears in a frame) as relayed output. It allocates
// only while the sample has room, and keeps no reference to lit.
func (o *Output) AddString(lit []byte) {
	n, _ := jsonscan.StringLen(lit)
	if n == 0 {
		return
	}
	o.chars += int64(n)
	if len(o.sample) < SampleBytes {
		if o.sample == nil {
			o.sample = make([]byte, 0, min(SampleBytes, max(1<<10, 2*len(lit))))
		}
		var got int
		o.sample, got = jsonscan.AppendString(o.sample, lit, SampleBytes)
		o.sampled += int64(got)
	}
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
