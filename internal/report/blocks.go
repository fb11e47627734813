package report

import (
	"math"
	"sort"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// BlockLength is the length of a usage block, the window of Anthropic's
// subscription limits that ccusage's "blocks" report models.
const BlockLength = 5 * time.Hour

// Block is a 5-hour usage block, or a gap between two blocks.
//
// A block starts at its first entry floored to the UTC hour and ends
// BlockLength later. An entry starts a new block when it is more than
// BlockLength after the block's start or more than BlockLength after the
// previous entry; in the second case a gap block [previous entry +
// BlockLength, entry) is placed between the two. This is ccusage's
// identify_session_blocks (its Rust blocks.rs; _session-blocks.ts before v20).
type Block struct {
	Start, End time.Time
	// First and Last are the times of the block's earliest and latest
	// entry (zero for a gap block).
	First, Last time.Time
	// Active is set for the block still open at now: now is less than
	// BlockLength after its last entry and before its end.
	Active bool
	Gap    bool
	Models []string
	Figures
	// Unpriced lists the models whose calls in the block had no price.
	Unpriced []string
	// BurnRate and Projection are set for the active block only, and only
	// once its first entry is MinBurnSpan before now (see BurnRateAt).
	BurnRate   *BurnRate
	Projection *Projection
}

// MinBurnSpan is the least time from an active block's first entry to
// now before the block has a burn rate and a projection. A rate over a
// shorter span says more about the spacing of a few calls than about a
// pace: 370 tokens from calls milliseconds apart would read as hundreds of
// thousands of tokens a minute. The burn-rate alert rule waits for as much
// history (alerts.MinBurnElapsed).
const MinBurnSpan = 10 * time.Minute

// BurnRate is how fast the active block is consumed: its tokens and cost
// divided by the time from its first entry to now, once that is at least
// MinBurnSpan (see BurnRateAt). status, statusline, /api/status, the
// dashboard and report blocks all take it from here.
type BurnRate struct {
	TokensPerMinute   float64 `json:"tokens_per_minute"`
	CostUSDPerHour    float64 `json:"cost_usd_per_hour"`
	CostMicrosPerHour int64   `json:"cost_micros_per_hour"`
}

// Projection is the active block's total at its end if the burn rate
// holds from now until then.
type Projection struct {
	TotalTokens      int64   `json:"total_tokens"`
	CostUSD          float64 `json:"cost_usd"`
	CostMicros       int64   `json:"cost_micros"`
	RemainingMinutes int64   `json:"remaining_minutes"`
}

// SplitBlocks splits usage buckets into 5-hour blocks, oldest first, with gap
// blocks between them, and marks the block active at now.
//
// The buckets must come from a Usage query whose Bucket width divides an
// hour (15 minutes, the rollup grid, or 30 or 60 minutes). Block starts are
// whole UTC hours, so such a bucket never straddles a block's end, and the
// time between two entries in different buckets is exactly the time from
// the earlier bucket's Last to the later one's First: the split is the one
// computed entry by entry, with one exception. An entry exactly BlockLength
// after its block's start (to the microsecond) belongs to that block, but
// when its bucket also holds later entries the whole bucket starts the next
// block. (A bucket whose only entries are at that instant is placed
// exactly.)
func SplitBlocks(buckets []tokenmeter.UsageBucket, now time.Time) []Block {
	slots := mergeSlots(buckets)
	var blocks []Block
	var cur *Block
	var models, unpriced map[string]bool
	closeBlock := func() {
		if cur == nil {
			return
		}
		cur.Models, cur.Unpriced = sortedKeys(models), sortedKeys(unpriced)
		finishBlock(cur, now)
		blocks = append(blocks, *cur)
	}
	for _, s := range slots {
		if cur != nil {
			boundary := cur.Start.Add(BlockLength)
			atBoundary := s.first.Equal(boundary) && s.last.Equal(boundary)
			gap := s.first.Sub(cur.Last) > BlockLength
			if gap || (!s.start.Before(boundary) && !atBoundary) {
				last := cur.Last
				closeBlock()
				if gap {
					blocks = append(blocks, Block{Start: last.Add(BlockLength), End: s.first, Gap: true})
				}
				cur = nil
			}
		}
		if cur == nil {
			start := s.first.UTC().Truncate(time.Hour)
			cur = &Block{Start: start, End: start.Add(BlockLength), First: s.first}
			models, unpriced = map[string]bool{}, map[string]bool{}
		}
		cur.Last = s.last
		for _, b := range s.buckets {
			cur.Add(b)
			if b.Model != "" {
				models[b.Model] = true
			}
			if b.CostUnknown > 0 {
				unpriced[label(b.Model)] = true
			}
		}
	}
	closeBlock()
	return blocks
}

// finishBlock decides whether b is active at now and, if so, its burn rate
// and projection.
func finishBlock(b *Block, now time.Time) {
	b.Active = now.Sub(b.Last) < BlockLength && now.Before(b.End)
	if !b.Active {
		return
	}
	b.BurnRate, b.Projection = BurnRateAt(b.First, b.End, now, b.TotalTokens, b.CostMicros)
}

// BurnRateAt is the one burn-rate rule: tokens and cost used since first
// (a block's first call) divided by the time from first to now, and the
// total at end (the block's reset) if that pace holds from now on. Both
// are nil until now is at least MinBurnSpan after first. The span ends at
// now, not at the last call, so a pause lowers the pace instead of leaving
// the pace of the last burst projected over the rest of the block.
func BurnRateAt(first, end, now time.Time, tokens, costMicros int64) (*BurnRate, *Projection) {
	span := now.Sub(first)
	if span < MinBurnSpan {
		return nil, nil
	}
	minutes := span.Minutes()
	perMinute := float64(tokens) / minutes
	microsPerHour := int64(math.Round(float64(costMicros) / minutes * 60))
	rate := &BurnRate{
		TokensPerMinute:   math.Round(perMinute*100) / 100,
		CostMicrosPerHour: microsPerHour,
		CostUSDPerHour:    tokenmeter.Micros(microsPerHour).USD(),
	}
	remaining := max(end.Sub(now).Minutes(), 0)
	cost := costMicros + int64(math.Round(float64(costMicros)/minutes*remaining))
	return rate, &Projection{
		TotalTokens:      tokens + int64(math.Round(perMinute*remaining)),
		CostMicros:       cost,
		CostUSD:          tokenmeter.Micros(cost).USD(),
		RemainingMinutes: int64(math.Round(remaining)),
	}
}

// slot is every bucket of one start time.
type slot struct {
	start, first, last time.Time
	buckets            []tokenmeter.UsageBucket
}

func mergeSlots(buckets []tokenmeter.UsageBucket) []slot {
	byStart := map[int64]*slot{}
	var out []*slot
	for _, b := range buckets {
		if b.Requests == 0 {
			continue
		}
		k := b.Start.UnixMicro()
		s := byStart[k]
		if s == nil {
			s = &slot{start: b.Start.UTC(), first: b.First, last: b.Last}
			byStart[k] = s
			out = append(out, s)
		}
		if b.First.Before(s.first) {
			s.first = b.First
		}
		if b.Last.After(s.last) {
			s.last = b.Last
		}
		s.buckets = append(s.buckets, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	slots := make([]slot, len(out))
	for i, s := range out {
		slots[i] = *s
	}
	return slots
}
