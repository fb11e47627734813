package tokenmeter

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
)

// GenesisHash is the PrevHash of the first event in a ledger.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// ChainHash returns the hash that chains ev to the event before it: SHA-256
// over ev.PrevHash and the canonical form of every recorded field of ev,
// Seq included, Hash excluded. Any later edit, deletion, insertion or
// reordering of events changes a hash that Verify recomputes.
//
// The canonical form is a sequence of length-prefixed fields in a fixed
// order; times are Unix microseconds in UTC and durations microseconds, so
// the hash does not depend on how a database stores them.
func ChainHash(ev *Event) string {
	// The fields are laid out in one buffer and hashed once: appending
	// is several times cheaper than many small writes to the digest.
	buf := make([]byte, 0, 512)
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	num := func(v int64) {
		var d [20]byte
		n := strconv.AppendInt(d[:0], v, 10)
		buf = binary.AppendUvarint(buf, uint64(len(n)))
		buf = append(buf, n...)
	}
	flag := func(b bool) {
		if b {
			str("1")
		} else {
			str("0")
		}
	}
	str("tokenmeter-event-v1")
	str(ev.PrevHash)
	num(ev.Seq)
	str(ev.Key)
	str(ev.RequestKey)
	str(string(ev.Kind))
	num(ev.Time.UnixMicro())
	str(string(ev.Source))
	str(ev.Instance)
	str(ev.Provider)
	str(ev.Endpoint)
	str(ev.Model)
	flag(ev.Stream)
	str(ev.Principal)
	str(ev.Project)
	str(ev.Tags)
	str(ev.UpstreamRequestID)
	num(int64(ev.Status))
	str(string(ev.Outcome))
	str(ev.Reason)
	u := ev.Usage
	for _, v := range [...]int64{u.InputTokens, u.OutputTokens, u.CacheWrite5mTokens, u.CacheWrite1hTokens,
		u.CacheReadTokens, u.ReasoningTokens, u.WebSearchRequests, u.WebFetchRequests} {
		num(v)
	}
	flag(ev.UsageKnown)
	str(string(ev.RawUsage))
	num(ev.Latency.Microseconds())
	num(ev.TTFB.Microseconds())
	num(int64(ev.Cost))
	flag(ev.CostKnown)
	// Fields added after v1 are hashed only when set, so events written
	// before they existed keep their hashes.
	if ev.Session != "" {
		str("session")
		str(ev.Session)
	}
	if ev.ResponseID != "" {
		str("response_id")
		str(ev.ResponseID)
	}
	if ev.Estimate != "" {
		str("estimate")
		str(ev.Estimate)
	}
	if ev.ServiceTier != "" {
		str("service_tier")
		str(ev.ServiceTier)
	}
	if !ev.Hold.IsZero() {
		str("hold")
		num(ev.Hold.Tokens)
		num(ev.Hold.InputTokens)
		num(ev.Hold.OutputTokens)
		num(int64(ev.Hold.Cost))
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

// Seal assigns ev its place in the chain after an event whose hash is prev:
// it sets Seq, PrevHash and Hash. Stores call it inside the transaction that
// appends ev, so the chain is extended by one writer at a time.
func Seal(ev *Event, seq int64, prev string) {
	ev.Seq = seq
	ev.PrevHash = prev
	ev.Time = ev.Time.UTC().Truncate(1000) // stored at microsecond precision
	ev.Latency = ev.Latency.Truncate(1000)
	ev.TTFB = ev.TTFB.Truncate(1000)
	ev.Hash = ChainHash(ev)
}
