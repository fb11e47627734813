package tokenmeter

// Usage is the token count of one call, split into categories that mean the
// same thing for every provider:
//
//   - InputTokens is uncached input (Anthropic's input_tokens; for OpenAI the
//     prompt or input tokens minus the cached ones).
//   - CacheWrite5mTokens and CacheWrite1hTokens are input tokens written to the
//     prompt cache with a 5-minute and a 1-hour lifetime.
//   - CacheReadTokens is input served from the cache.
//   - OutputTokens is all output, reasoning included; ReasoningTokens is the
//     reasoning (thinking) part of it, kept on its own for display.
//
// All counts are non-negative int64.
type Usage struct {
	InputTokens        int64 `json:"input_tokens"`
	OutputTokens       int64 `json:"output_tokens"`
	CacheWrite5mTokens int64 `json:"cache_creation_5m_input_tokens"`
	CacheWrite1hTokens int64 `json:"cache_creation_1h_input_tokens"`
	CacheReadTokens    int64 `json:"cache_read_input_tokens"`
	ReasoningTokens    int64 `json:"reasoning_tokens"`
	// WebSearchRequests and WebFetchRequests count server-side tool calls
	// that providers bill per use.
	WebSearchRequests int64 `json:"web_search_requests"`
	WebFetchRequests  int64 `json:"web_fetch_requests"`
}

// CacheWriteTokens returns the cache-write tokens of both lifetimes, the
// figure providers report as cache_creation_input_tokens.
func (u Usage) CacheWriteTokens() int64 { return u.CacheWrite5mTokens + u.CacheWrite1hTokens }

// PromptTokens returns every input token, cached or not.
func (u Usage) PromptTokens() int64 {
	return u.InputTokens + u.CacheWriteTokens() + u.CacheReadTokens
}

// TotalTokens returns input + output + cache write + cache read, the total
// that ccusage and tokenmeter's limits count.
func (u Usage) TotalTokens() int64 { return u.PromptTokens() + u.OutputTokens }

// Add returns the sum of u and v, category by category.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		InputTokens:        u.InputTokens + v.InputTokens,
		OutputTokens:       u.OutputTokens + v.OutputTokens,
		CacheWrite5mTokens: u.CacheWrite5mTokens + v.CacheWrite5mTokens,
		CacheWrite1hTokens: u.CacheWrite1hTokens + v.CacheWrite1hTokens,
		CacheReadTokens:    u.CacheReadTokens + v.CacheReadTokens,
		ReasoningTokens:    u.ReasoningTokens + v.ReasoningTokens,
		WebSearchRequests:  u.WebSearchRequests + v.WebSearchRequests,
		WebFetchRequests:   u.WebFetchRequests + v.WebFetchRequests,
	}
}

// Sub returns u minus v, category by category.
func (u Usage) Sub(v Usage) Usage {
	return Usage{
		InputTokens:        u.InputTokens - v.InputTokens,
		OutputTokens:       u.OutputTokens - v.OutputTokens,
		CacheWrite5mTokens: u.CacheWrite5mTokens - v.CacheWrite5mTokens,
		CacheWrite1hTokens: u.CacheWrite1hTokens - v.CacheWrite1hTokens,
		CacheReadTokens:    u.CacheReadTokens - v.CacheReadTokens,
		ReasoningTokens:    u.ReasoningTokens - v.ReasoningTokens,
		WebSearchRequests:  u.WebSearchRequests - v.WebSearchRequests,
		WebFetchRequests:   u.WebFetchRequests - v.WebFetchRequests,
	}
}

// Covers reports whether u is at least v in every category and more in
// some: a later, fuller reading of the same call.
func (u Usage) Covers(v Usage) bool {
	d := u.Sub(v)
	return d.InputTokens >= 0 && d.OutputTokens >= 0 && d.CacheWrite5mTokens >= 0 && d.CacheWrite1hTokens >= 0 &&
		d.CacheReadTokens >= 0 && d.ReasoningTokens >= 0 && d.WebSearchRequests >= 0 && d.WebFetchRequests >= 0 && !d.IsZero()
}

// IsZero reports whether every count is zero.
func (u Usage) IsZero() bool { return u == Usage{} }
