// Package fakeupstream is a deterministic stand-in for the Anthropic Messages
// API and the OpenAI Chat Completions and Responses APIs, served as one
// http.Handler. The same request always gets the same usage figures and the
// same reply text, and a test can ask for any usage, status or stream fault it
// needs, so the gateway can be tried and tested without an API key.
//
// # Routes
//
// Both providers are served on one handler, at the paths the real APIs use
// (the gateway maps /anthropic/* and /openai/* onto them):
//
//	POST /v1/messages               Anthropic Messages, JSON or SSE ("stream": true); ?beta=true is accepted
//	POST /v1/messages/count_tokens  {"input_tokens": N}
//	GET  /v1/models                 Anthropic list if the request has an anthropic-version header, else OpenAI list
//	GET  /api/hello                 200 {} (also HEAD): the connectivity check Claude Code sends to its base URL
//	POST /v1/chat/completions       OpenAI Chat Completions, JSON or SSE, with or without stream_options.include_usage
//	POST /v1/responses              OpenAI Responses, JSON or SSE
//	GET  /v1/responses              with Upgrade: websocket, the Responses WebSocket transport (websocket.go)
//
// Anything else is a 404, and a body that is not a JSON object is a 400
// invalid_request_error. Errors come in the provider's own shape: Anthropic's
// {"type":"error","error":{"type":...,"message":...},"request_id":"req_..."}
// when the path starts with /v1/messages or the request has an
// anthropic-version header, OpenAI's
// {"error":{"message":...,"type":...,"param":null,"code":null}} otherwise.
// Requests must name a model; Anthropic requests must also set max_tokens.
// Credentials are not checked.
//
// # Usage
//
// Usage is a pure function of the request:
//
//   - Uncached input tokens are InputTokens(body) = max(1, len(body)/4) over
//     the raw request bytes, unless the input directive sets them.
//   - The reply text is OutputText(n): n words of lorem ipsum, one output
//     token each. n is the output directive, else DefaultOutputTokens (12),
//     capped by max_tokens (Anthropic), max_completion_tokens or max_tokens
//     (Chat Completions) or max_output_tokens (Responses). A capped reply
//     stops with max_tokens, length, or status "incomplete" with
//     response.incomplete.
//   - Output tokens are n + reasoning; reasoning tokens are reported as
//     output_tokens_details.thinking_tokens (Anthropic),
//     completion_tokens_details.reasoning_tokens (Chat Completions) or
//     output_tokens_details.reasoning_tokens (Responses).
//   - An Anthropic request that enables thinking ("thinking" with type
//     "enabled" or "adaptive", as Claude Code sends) and has reasoning
//     tokens gets a thinking block before the text block: one word per
//     reasoning token (at most MaxOutputTokens), or no text with display
//     "omitted", and a signature "fakeupstream-signature-..." that nothing
//     verifies. Streams send it as thinking_delta events and a
//     signature_delta, and the text block then has index 1.
//   - Anthropic: input_tokens is the uncached input;
//     cache_creation_input_tokens = cache_write_5m + cache_write_1h, split in
//     cache_creation.ephemeral_5m_input_tokens and ephemeral_1h_input_tokens;
//     cache_read_input_tokens = cache_read; web_search sets
//     server_tool_use.web_search_requests.
//   - OpenAI: prompt_tokens (input_tokens for Responses) = uncached input +
//     cache_read, with cache_read as prompt_tokens_details.cached_tokens
//     (input_tokens_details.cached_tokens); total_tokens = prompt + output.
//     The cache_write and web_search directives do not apply.
//
// ExpectedUsage computes the same figures in tokenmeter's categories.
// Faults and delays do not change them, only what reaches the client.
// count_tokens answers with the uncached input alone.
//
// # Directives
//
// A test chooses usage and faults with directives, given in the request
// header X-Fake-Upstream as "key=value key=value" (separated by spaces or
// commas; the header may be repeated), or anywhere in the raw request body,
// typically inside the prompt, as "[[fake key=value key=value]]". Body
// directives apply in the order they appear, then the header's, so the
// header wins. Unknown keys are ignored; a known key with a bad value is a
// 400.
//
//	input=N           uncached input tokens, instead of InputTokens(body) (use it when a proxy rewrites the body)
//	output=N          reply words (output tokens besides reasoning), 0..MaxOutputTokens
//	reasoning=N       reasoning (thinking) tokens, added to the output tokens
//	cache_read=N      input tokens read from the prompt cache
//	cache_write_5m=N  input tokens written to the 5-minute cache (Anthropic)
//	cache_write_1h=N  input tokens written to the 1-hour cache (Anthropic)
//	web_search=N      web search requests (Anthropic)
//	status=S          answer with HTTP status S (400..599) and the provider's error body, before any usage
//	retry_after=N     seconds sent in retry-after with status=429 (default 1)
//	fault=F           error_event, cut or malformed, see below
//	after=K           events sent before a stream fault (default DefaultFaultAfter = 2)
//	ttfb=D            sleep D (a Go duration such as 300ms) before sending headers
//	delay=D           sleep D between stream events, and before the headers of a non-stream reply
//
// The count_tokens, models and hello routes honour status, ttfb and delay (and
// count_tokens input); the other directives apply to the three reply routes.
// Stream faults happen after K events; K is capped so that at least the
// last event of the stream is lost.
//
//   - fault=error_event sends an in-stream error and ends the stream: for
//     Anthropic "event: error" with an overloaded_error; for Chat Completions a
//     data: {"error":{...}} chunk; for Responses an "error" event followed by
//     response.failed. On a non-stream request it answers 529
//     overloaded_error (Anthropic) or 500 server_error (OpenAI).
//   - fault=cut flushes what was sent and aborts the connection (the handler
//     panics with http.ErrAbortHandler, which net/http turns into a broken
//     response). On a non-stream request, half of the body is sent first.
//   - fault=malformed replaces the data of the event that carries the final
//     usage (Anthropic message_delta, the Chat Completions usage chunk or,
//     without include_usage, the finish chunk, the Responses terminal event)
//     with truncated, invalid JSON, or with after=K the event after the first
//     K; the stream then goes on. A non-stream reply gets a truncated body.
//
// # Responses
//
// Every response, success or error, carries a request id unique to this
// server instance (Anthropic request-id, OpenAI x-request-id, "req_..."),
// repeated in Anthropic error bodies; message, completion and response ids
// ("msg_...", "chatcmpl-...", "resp_...") share its suffix. Every response also
// carries rate-limit headers (anthropic-ratelimit-* or x-ratelimit-*) from
// fixed one-minute windows counted per provider and credential in memory:
// the counters report, they never refuse a request. Streams use
// Content-Type text/event-stream; charset=utf-8 and are flushed after every
// event. When the client goes away, the handler stops at the next event.
//
// Options.Observe sees every request once it is served, as a Call: route,
// request id, model, status and the usage the fake computed, so a test can
// compare a gateway's ledger with what the upstream really answered.
//
// A Server is safe for concurrent use.
package fakeupstream
