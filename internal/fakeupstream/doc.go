// Package fakeupstream is a deterministic stand-in for the Anthropic Messages
// API and the OpenAI Chat Completions, Responses, legacy Completions and
// Embeddings APIs (and a few endpoints that report no usage), served as one
// http.Handler. The same request always gets the same usage figures and the
// same reply text, and a test can ask for any usage, status or stream fault it
// needs, so the gateway can be tried and tested without an API key. It also
// keeps an account of what it billed for each call, the way a provider
// bills (see Billing), so tests can hold a gateway's ledger against the
// upstream's bill rather than against what the gateway happened to see.
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
//	POST /v1/chat/completions       OpenAI Chat Completions, JSON or SSE, with or without stream_options.include_usage; n choices
//	POST /v1/responses              OpenAI Responses, JSON or SSE; "background": true (see Background responses)
//	GET  /v1/responses/{id}         a background response as it stands; ?stream=true[&starting_after=N] streams its events
//	POST /v1/responses/{id}/cancel  cancels a background response
//	GET  /v1/responses              with Upgrade: websocket, the Responses WebSocket transport (websocket.go)
//	POST /v1/completions            OpenAI legacy Completions, JSON or SSE; n and best_of
//	POST /v1/embeddings             OpenAI Embeddings: usage.prompt_tokens and total_tokens
//	POST /v1/images/generations     stand-in, no usage (see Stand-ins)
//	POST /v1/audio/speech           stand-in, no usage
//	POST /v1/audio/transcriptions   stand-in, no usage (multipart/form-data)
//	POST /v1/batches                stand-in, no usage
//	GET  /_fake/billed              the billing account (see Billing); not an API route
//
// The admin endpoints of both providers (usage and cost reports, API keys)
// are described in admin.go. Anything else is a 404, and a body that is not
// a JSON object is a 400 invalid_request_error. Errors come in the provider's own shape: Anthropic's
// {"type":"error","error":{"type":...,"message":...},"request_id":"req_..."}
// when the path starts with /v1/messages or the request has an
// anthropic-version header, OpenAI's
// {"error":{"message":...,"type":...,"param":null,"code":null}} otherwise.
// Requests must name a model; Anthropic requests must also set max_tokens.
// Credentials are not checked.
//
// Request bodies are read as a real upstream reads them (DecodeBody): a
// Content-Encoding of gzip, deflate (zlib or raw), br or zstd (or a list of
// them) is undone, an unknown one is a 415, a corrupt one a 400, and one
// over MaxBodyBytes once decoded a 413; then a UTF-8 byte order mark is
// dropped and UTF-16 or UTF-32 text (by its byte order mark, or by the zero
// bytes of its first character) is decoded to UTF-8, as Python servers
// built on FastAPI or Starlette (json.loads of the body's bytes), the usual
// OpenAI-compatible servers a gateway may front, accept it. Go servers
// (encoding/json) refuse such bodies; the fake accepts them so that a
// gateway can be tested against the lenient kind. Usage and directives are read from the
// decoded text, so a 311-byte gzip body can bill 150k input tokens.
//
// # Usage
//
// Usage is a pure function of the request:
//
//   - Uncached input tokens are InputTokens(body) = max(1, len(body)/4) over
//     the decoded request bytes, unless the input directive sets them.
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
//   - Chat Completions n (1..MaxChoices) returns n choices, choice k with
//     the text ChoiceText(k, words), each with the output and reasoning
//     directives' tokens: completion_tokens counts every choice's, as
//     OpenAI reports it. Streams send a role chunk per choice, then one
//     content chunk per word going round the choices (each chunk carries one
//     choice and its index), then a finish chunk per choice.
//   - Legacy completions are counted like Chat Completions, with max_tokens
//     DefaultCompletionMaxTokens (16) when the request sets none; best_of
//     candidates (best_of >= n, not streamed) are generated and counted in
//     completion_tokens though only n are returned.
//   - Responses echo the request's instructions (string or array, null if
//     absent) in every response object, JSON and in response.created,
//     response.in_progress and the terminal event, as the real API does: a
//     large instructions field makes a terminal event over 1 MiB.
//   - Embeddings: prompt_tokens = total_tokens = the input tokens; one vector
//     per input (see embeddings.go for shapes and limits).
//
// ExpectedUsage computes the same figures in tokenmeter's categories, and
// ExpectedBilled what a call served in full bills (also on the stand-ins,
// which report nothing). Faults and delays do not change the reported
// usage, only what reaches the client (and, for streams, what is billed).
// count_tokens answers with the uncached input alone.
//
// # Background responses
//
// A Responses request with "background": true is answered at once with
// status "queued", "background": true, no output and "usage": null; with
// "stream": true its stream starts with response.created and
// response.queued (status queued), as OpenAI sends it. Its work then runs
// on a timeline from the create (real time): queued for the first half of
// the background_delay directive (default DefaultBackgroundDelay), in
// progress while its words are generated (one per delay directive, all at
// once without one), completed (or incomplete) the second half later, with
// the full usage. GET /v1/responses/{id} answers its state (output and usage
// once completed); with ?stream=true (or the JSON body {"stream":true} the
// Go SDK's GetStreaming sends) it streams the events after
// ?starting_after=N, each at its time, ending with the terminal event;
// a client that leaves changes nothing. POST /v1/responses/{id}/cancel
// makes an unfinished response "cancelled" with "usage": null (as OpenAI
// answers it) and ends its streams; a finished one is answered as it is.
// Only background responses are kept (at most MaxBackgroundResponses; a
// create that would exceed the bounds with unfinished work gets 429);
// other ids are a 404.
//
// # Stand-ins
//
// POST /v1/images/generations, /v1/audio/speech, /v1/audio/transcriptions
// and /v1/batches answer plausibly and cheaply (images as URLs or a 1×1
// PNG, audio as filler bytes of the requested format, a transcription of
// OutputText(n), a Batch "validating") with no usage object, so a gateway
// must not record them as known zero, while the fake bills input =
// InputTokens(body) (or the input directive) and output = units × (the
// output directive, else DefaultOutputTokens), units being the images' n
// and 1 otherwise. See standin.go for the fields each requires.
//
// # Billing
//
// The fake keeps an account of what it billed, per call, independent of
// what the reply reported or a client read (billing.go has the rules):
// errors bill nothing; a non-stream reply bills its planned usage once
// accepted (also if cut or the client left before it); a stream bills its
// input in full and the output generated until it stopped, the generation
// being modelled as producing the stream's events in order at the delay
// directive's pace (reasoning first, then one token per text event), and
// stopping when a write fails, the client leaves or a fault ends the
// stream: a client that reads 200 text deltas of a stream paced at
// delay=5ms and leaves is billed about 200 output tokens (plus reasoning),
// not the planned total. n and best_of bill every choice's output. A
// background response's create bills nothing and its work bills the planned
// usage when it completes, polled or not (a cancel bills what was generated
// by then). Embeddings bill their input; stand-ins the amount above.
//
// Each call on a billing route gets one Bill of Kind "call" (also when it
// billed nothing), and a background response a second of Kind
// "background" when its work ends; Call.Billed and Call.BillSeq give the
// call's. Server.Billing(since) and GET /_fake/billed?since=SEQ return a
// BillingReport, as JSON:
//
//	{"since": 0,
//	 "bills": [{"seq": 1, "kind": "call", "call_id": "req_...", "time": "...",
//	            "method": "POST", "path": "/v1/chat/completions", "provider": "openai",
//	            "model": "gpt-5.4", "status": 200, "stream": true, "background": false,
//	            "response_id": "resp_..." (Responses only), "state": "completed" (background only),
//	            "planned": {usage}, "billed": {usage}, "stopped": true,
//	            "cost_micros": 1234, "cost_known": true}, ...],
//	 "last_seq": 1, "missed": 0, "pending_background": 0,
//	 "totals": {"entries": 1, "billed": {usage}, "cost_micros": 1234, "unpriced": 0}}
//
// where {usage} is tokenmeter.Usage as JSON (input_tokens, output_tokens,
// cache_creation_5m_input_tokens, cache_creation_1h_input_tokens,
// cache_read_input_tokens, reasoning_tokens, web_search_requests,
// web_fetch_requests). bills are the kept entries after since, oldest
// first; pass last_seq as the next since. The last Options.BillingWindow
// entries (DefaultBillingWindow) are kept, missed counts those after since
// that were dropped, and totals cover every entry since the server
// started. Reading the account first bills background work whose time has
// come; pending_background counts the work not yet billed, so a test waits
// for it to reach 0. A bad since is a 400. The endpoint is not observed,
// counted or rate-limited, and the admin usage reports count what was
// billed too.
//
// # Directives
//
// A test chooses usage and faults with directives, given in the request
// header X-Fake-Upstream as "key=value key=value" (separated by spaces or
// commas; the header may be repeated), or anywhere in the decoded request
// body, typically inside the prompt, as "[[fake key=value key=value]]".
// Body directives apply in the order they appear, then the header's, so
// the header wins. Unknown keys are ignored; a known key with a bad value
// is a 400.
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
//	                  (the generation's pace: a background response generates a word per D)
//	background_delay=D  queue and finishing time of a background response (default 100ms, at most 10m)
//	scenario=NAME     a rate-limit scenario (see the Scenario constants)
//
// The count_tokens, models and hello routes honour status, ttfb and delay (and
// count_tokens input); the other directives apply to the reply routes.
// Embeddings honour input, the stand-ins input and output, and both status,
// ttfb, delay and the non-stream faults.
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
// request id, model, status, the usage the reply reported and what the call
// billed, so a test can compare a gateway's ledger with what the upstream
// really answered and billed. Background work is billed after its create
// call was observed: read it from the billing account. Routes kept in other
// files (a WebSocket transport) register through extraRoutes in server.go.
//
// A Server is safe for concurrent use.
package fakeupstream
