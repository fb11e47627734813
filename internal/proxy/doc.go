// Package proxy is the metering gateway: a reverse proxy for the Anthropic
// and OpenAI(-compatible) APIs that records every call in the ledger as the
// response passes, without buffering it.
//
// What it promises, given a ledger writer that keeps its word:
//
//   - A call's started record is durable before the client sees the first
//     byte of the response (in strict durability, before the request is
//     forwarded at all). Its commit overlaps the upstream's latency.
//   - The last bytes of a response (the terminal SSE event, or the last byte
//     of a JSON body) reach the client only after the completed record is
//     durable, so a response the client received in full is in the ledger.
//   - Stream events are relayed as soon as each is complete, with a flush
//     after each; the meter reads a bounded copy and never holds a frame
//     back except the terminal one.
//   - Request bytes, headers and query strings pass through unchanged except
//     for tokenmeter's own x-tokenmeter-* headers, which are stripped, and
//     stream_options.include_usage, which is added to OpenAI chat streams
//     that lack it (and the extra usage chunk removed from the response).
//   - When the ledger cannot record, requests are refused with 503 in the
//     provider's error shape (fail-closed) unless FailOpen is set.
//   - Client credentials are forwarded untouched and recorded only as a
//     truncated SHA-256 hash, except a tokenmeter virtual key (tm-..., see
//     auth.go and docs/keys.md): it is checked against the key store, the
//     call is recorded as "key:NAME", and the upstream receives the route's
//     provider credential instead of the key. Unknown, revoked and expired
//     keys are refused with 401 in the provider's error shape, naming the
//     key by its prefix only. A virtual key is found in any header or query
//     parameter, in any form, and never goes upstream.
//   - Admission (admit.go) bounds what a client can make the gateway hold
//     or record before anything is forwarded: canonical paths of at most
//     MaxEndpointLength bytes, at most MaxInFlight requests at once, and
//     request bodies that grow with the bytes that arrive and may pause at
//     most RequestReadTimeout.
package proxy
