// Package pricing turns token usage into money: it holds a dated, versioned
// table of list prices for Anthropic, OpenAI and Gemini models, embedded in
// the binary, and computes what a call cost in integer micro-dollars.
//
// Its promise: an event is priced at the rate in force when it happened, the
// same usage always costs the same number of micro-dollars, and a model the
// table does not know is reported as unknown, never priced at zero.
//
// # Prices
//
// Every row of the table covers one model id from effective_from (inclusive)
// to effective_to (exclusive, open when absent), with five rates in
// micro-dollars per million tokens (Rates): input, output, 5-minute and
// 1-hour cache writes, and cache reads. A row may carry a long-context Tier,
// whose rates apply to the whole request (output included) when the prompt,
// meaning input plus cache reads plus cache writes, exceeds its threshold. It
// also carries a batch discount, and for some models a price per 1,000 web
// searches.
//
// Lookup picks the row of a model whose period contains the event's time.
// An event before a model's first row, or in a gap between two rows, is
// priced with the next row that starts after it: a model's earliest known
// rate also covers the time before it. An event after the end of a model's
// last row has no price (the rate has ended and the next one is not known).
// Dates are UTC midnights.
//
// # Model names
//
// Lookup is case-insensitive and accepts the forms in which model names reach
// tokenmeter: the canonical id or a listed alias; a dated snapshot whose date
// is not listed (a trailing -YYYYMMDD, @YYYYMMDD or -YYYY-MM-DD is removed);
// Claude Code's "[1m]" suffix; Bedrock ids such as
// "us.anthropic.claude-sonnet-4-5-20250929-v1:0"; and path prefixes such as
// "models/" or a Vertex resource path. A name that still matches nothing is
// unknown. Fast-mode names (ccusage's "-fast") are deliberately unknown:
// fast mode costs several times the standard rate, which this table does
// not model.
//
// # Cost
//
// Cost is Σ(tokens × rate) / 10⁶ plus searches × price per 1,000 / 1,000,
// computed exactly and rounded once per request, half up. Reasoning tokens
// are part of Usage.OutputTokens and are not added again. The batch discount
// applies to every token category (input, output, cache writes and reads),
// and on top of the long-context rates; it does not apply to web-search fees.
// Web fetches carry no per-use charge.
//
// # Updating the table
//
// The table is prices.json in this directory, built from the providers'
// price pages and the sources docs/pricing.md lists. To change a price, do not edit the old row:
// give it an effective_to and add a row with the new rate from that date, so
// older events keep their price. Record the source keys and the confidence
// (O: provider's own page, S: secondary, U: unconfirmed), bump "version" to
// the date of the edit, and run the tests: TestDefaultRates checks every
// current rate against figures typed in a second time. Users can override or
// extend rows without a rebuild through a file in the same format (Parse,
// then Merge). docs/pricing.md describes the format.
package pricing
