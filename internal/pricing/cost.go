package pricing

import (
	"math"
	"math/bits"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// Cost returns what usage u of model cost at time at on the standard
// service tier, batch saying whether the call went through a provider's
// batch API. ok is false when the table has no price for the model at that
// time (see Lookup) or when Price.Cost cannot price u; the cost is then 0
// and must be recorded as unknown, not as free.
func (t *Table) Cost(model string, at time.Time, u tokenmeter.Usage, batch bool) (cost tokenmeter.Micros, ok bool) {
	return t.CostIn(model, at, u, batch, "")
}

// CostIn is Cost for a call served on the provider's service tier tier
// (tokenmeter.Event.ServiceTier): see Price.CostIn.
func (t *Table) CostIn(model string, at time.Time, u tokenmeter.Usage, batch bool, tier string) (cost tokenmeter.Micros, ok bool) {
	p, ok := t.Lookup(model, at)
	if !ok {
		return 0, false
	}
	return p.CostIn(u, batch, tier)
}

// StandardTier reports whether tier, as a provider names the tier that
// served a call, is the standard one: empty (not named), "default",
// "standard" or "auto".
func StandardTier(tier string) bool {
	switch NormalizeTier(tier) {
	case "", "default", "standard", "auto":
		return true
	}
	return false
}

// NormalizeTier returns the name a tier is listed under in ServiceTiers:
// lowercase, and OpenAI's "fast" (what "priority" processing has been
// called since 2026-07-30; both are accepted) as "priority".
func NormalizeTier(tier string) string {
	tier = strings.ToLower(strings.TrimSpace(tier))
	if tier == "fast" {
		return "priority"
	}
	return tier
}

// ServiceTierPct returns the percentage of p's rates a call served on tier
// pays: 100 for the standard tier, the row's ServiceTiers entry otherwise.
// ok is false for a tier the row does not list (Scale Tier capacity, a
// tier this table does not know for the model): such a call has no price,
// rather than the standard one.
func (p Price) ServiceTierPct(tier string) (pct int, ok bool) {
	if StandardTier(tier) {
		return 100, true
	}
	pct, ok = p.ServiceTiers[NormalizeTier(tier)]
	return pct, ok
}

// Cost returns what usage u costs at price p:
//
//	Σ(tokens × rate) × (100 − discount)/100 / 10⁶ + searches × WebSearchPer1k / 1000
//
// computed exactly and rounded once, half up. The long-context rates replace
// the standard ones when u's prompt tokens exceed the tier's threshold; the
// batch discount (when batch is true) applies to every token category, not
// to search fees. ok is false when a count or rate is negative, the discount
// is outside 0–100, or the cost does not fit in Micros.
func (p Price) Cost(u tokenmeter.Usage, batch bool) (cost tokenmeter.Micros, ok bool) {
	return p.CostIn(u, batch, "")
}

// CostIn is Cost for a call served on the provider's service tier tier:
// every token category (the long-context rates included) is priced at the
// tier's percentage of the rates (ServiceTierPct), search fees are not.
// ok is false for a tier the row does not list.
func (p Price) CostIn(u tokenmeter.Usage, batch bool, tier string) (cost tokenmeter.Micros, ok bool) {
	r := p.Rates
	if p.LongContext != nil && promptTokens(u) > uint64(max(p.LongContext.Threshold, 0)) {
		r = p.LongContext.Rates
	}
	if p.BatchDiscountPct < 0 || p.BatchDiscountPct > 100 {
		return 0, false
	}
	pct, ok := p.ServiceTierPct(tier)
	if !ok || pct < 1 || pct > 10_000 {
		return 0, false
	}
	// keep is the share of the rates paid, per 10,000: the tier's
	// percentage times what the batch discount leaves.
	keep := uint64(pct) * 100
	if batch {
		keep = uint64(pct) * uint64(100-p.BatchDiscountPct)
	}
	// The sum is kept in units of 10⁻¹⁰ micro-dollars: a token term is
	// tokens × rate × keep (rate per 10⁶ tokens, keep per 10⁴), a search
	// term searches × price × 10⁷ (price per 1,000 searches).
	var s sum
	s.add(u.InputTokens, r.Input, keep)
	s.add(u.OutputTokens, r.Output, keep)
	s.add(u.CacheWrite5mTokens, r.CacheWrite5m, keep)
	s.add(u.CacheWrite1hTokens, r.CacheWrite1h, keep)
	s.add(u.CacheReadTokens, r.CacheRead, keep)
	s.add(u.WebSearchRequests, p.WebSearchPer1k, 10_000_000)
	const unit = 10_000_000_000
	if s.bad || s.hi >= unit {
		return 0, false
	}
	q, rem := bits.Div64(s.hi, s.lo, unit)
	if rem >= unit/2 {
		q++
	}
	if q > math.MaxInt64 {
		return 0, false
	}
	return tokenmeter.Micros(q), true
}

// promptTokens returns u's input, cache-write and cache-read tokens,
// saturating instead of wrapping. Negative counts are refused by Cost.
func promptTokens(u tokenmeter.Usage) uint64 {
	var total uint64
	for _, n := range []int64{u.InputTokens, u.CacheWrite5mTokens, u.CacheWrite1hTokens, u.CacheReadTokens} {
		var carry uint64
		total, carry = bits.Add64(total, uint64(max(n, 0)), 0)
		if carry != 0 {
			return math.MaxUint64
		}
	}
	return total
}

// sum is an unsigned 128-bit accumulator that records overflow and negative
// inputs in bad.
type sum struct {
	hi, lo uint64
	bad    bool
}

// add adds n × rate × k.
func (s *sum) add(n, rate int64, k uint64) {
	if n < 0 || rate < 0 {
		s.bad = true
		return
	}
	hi, lo := bits.Mul64(uint64(n), uint64(rate)) // < 2¹²⁶
	h1, lo := bits.Mul64(lo, k)
	h2, mid := bits.Mul64(hi, k)
	hi, carry := bits.Add64(h1, mid, 0)
	if h2 != 0 || carry != 0 {
		s.bad = true
		return
	}
	var c uint64
	s.lo, c = bits.Add64(s.lo, lo, 0)
	s.hi, c = bits.Add64(s.hi, hi, c)
	if c != 0 {
		s.bad = true
	}
}
