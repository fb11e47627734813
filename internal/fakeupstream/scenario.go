package fakeupstream

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Rate-limit scenarios: what the fake's counters do over time, so that the
// gateway's counter watch (docs/counters.md) can be shown end to end. A
// request picks one with the directive scenario=NAME (or the server with
// Options.Scenario). Every response of a scenario carries, besides the
// per-minute anthropic-ratelimit-* or x-ratelimit-* headers every response
// has, Anthropic's subscription headers: a 5-hour window
// (anthropic-ratelimit-unified-5h-*) that starts at the hour of the
// credential's first request and resets at its advertised time, a 7-day
// window (-7d-*) that slides by the hour (its reset is when its oldest hour
// of usage leaves it), and the summary (-status, -reset,
// -representative-claim).
//
// The timeline starts at T0, the credential's first request in the
// scenario (truncated to the minute); the events happen on the first
// request at or after their time:
//
//	steady        nothing else: resets at the advertised times only
//	drift         in the minute [T0+2m, T0+3m) the per-minute token counter
//	              (anthropic-ratelimit-tokens, x-ratelimit-tokens) charges
//	              DriftPhantomTokens more per request than the usage reports
//	reset-moved   at T0+1h the 5-hour window's advertised reset moves one
//	              hour later
//	early-reset   at T0+2h the 5-hour window resets, hours before its
//	              advertised reset: utilization back to 0, a new reset
//	limit-change  from T0+10m the per-minute request limit is halved
//	all           all of the above on one timeline
//
// Bursts of 429 and 529 come from the status directive (status=429).
const (
	ScenarioSteady      = "steady"
	ScenarioDrift       = "drift"
	ScenarioResetMoved  = "reset-moved"
	ScenarioEarlyReset  = "early-reset"
	ScenarioLimitChange = "limit-change"
	ScenarioAll         = "all"
)

// Scenario parameters.
const (
	// UnifiedTokens5h and UnifiedTokens7d are the token budgets behind the
	// 5-hour and 7-day utilization.
	UnifiedTokens5h = 1_000_000
	UnifiedTokens7d = 10_000_000
	// DriftPhantomTokens is what the drift scenario charges per request
	// beyond the usage it reports.
	DriftPhantomTokens = 20_000
	// Offsets of the scenario events from T0.
	DriftAt       = 2 * time.Minute
	LimitChangeAt = 10 * time.Minute
	ResetMovedAt  = time.Hour
	EarlyResetAt  = 2 * time.Hour
)

// ValidScenario reports whether name is a scenario.
func ValidScenario(name string) bool {
	switch name {
	case ScenarioSteady, ScenarioDrift, ScenarioResetMoved, ScenarioEarlyReset, ScenarioLimitChange, ScenarioAll:
		return true
	}
	return false
}

// scenarios keeps each credential's state in each scenario.
type scenarios struct {
	def string // Options.Scenario

	mu    sync.Mutex
	state map[string]*scenarioState // by scenario and principal
}

type scenarioState struct {
	t0 time.Time

	start5h, reset5h time.Time
	used5h           int64
	moved, early     bool

	hours7d []hourUse // oldest first

	phantomMinute time.Time
	phantom       int64
}

type hourUse struct {
	hour   time.Time
	tokens int64
}

func newScenarios(def string) *scenarios {
	return &scenarios{def: def, state: make(map[string]*scenarioState)}
}

// apply adds the scenario's headers to h for c's response at now.
func (sc *scenarios) apply(h http.Header, c *call, now time.Time) {
	name := c.dir.scenario
	if name == "" {
		name = sc.def
	}
	if name == "" {
		return
	}
	has := func(event string) bool { return name == event || name == ScenarioAll }
	tokens := c.inputTokens + c.outputTokens

	sc.mu.Lock()
	defer sc.mu.Unlock()
	key := name + "\x00" + c.principal
	st := sc.state[key]
	if st == nil {
		if len(sc.state) >= maxWindows {
			sc.state = make(map[string]*scenarioState)
		}
		st = &scenarioState{t0: now.Truncate(time.Minute)}
		st.start5h = now.Truncate(time.Hour)
		st.reset5h = st.start5h.Add(5 * time.Hour)
		sc.state[key] = st
	}

	// The 5-hour window: fixed, from the hour of its first request.
	if !now.Before(st.reset5h) {
		st.start5h, st.used5h = now.Truncate(time.Hour), 0
		st.reset5h = st.start5h.Add(5 * time.Hour)
	}
	if has(ScenarioResetMoved) && !st.moved && !now.Before(st.t0.Add(ResetMovedAt)) {
		st.moved = true
		st.reset5h = st.reset5h.Add(time.Hour)
	}
	if has(ScenarioEarlyReset) && !st.early && !now.Before(st.t0.Add(EarlyResetAt)) {
		st.early = true
		st.start5h, st.used5h = now.Truncate(time.Hour), 0
		st.reset5h = st.start5h.Add(5 * time.Hour)
	}
	st.used5h += tokens

	// The 7-day window slides by the hour.
	hour := now.Truncate(time.Hour)
	i := 0
	for i < len(st.hours7d) && !now.Before(st.hours7d[i].hour.Add(7*24*time.Hour)) {
		i++
	}
	st.hours7d = st.hours7d[i:]
	if n := len(st.hours7d); n > 0 && st.hours7d[n-1].hour.Equal(hour) {
		st.hours7d[n-1].tokens += tokens
	} else {
		st.hours7d = append(st.hours7d, hourUse{hour, tokens})
	}
	var used7d int64
	for _, u := range st.hours7d {
		used7d += u.tokens
	}
	reset7d := st.hours7d[0].hour.Add(7 * 24 * time.Hour)

	if c.provider == providerAnthropic {
		util5h := float64(st.used5h) / UnifiedTokens5h
		util7d := float64(used7d) / UnifiedTokens7d
		setUnified(h, "5h", util5h, st.reset5h)
		setUnified(h, "7d", util7d, reset7d)
		h.Set("anthropic-ratelimit-unified-status", windowStatus(max(util5h, util7d)))
		h.Set("anthropic-ratelimit-unified-reset", strconv.FormatInt(st.reset5h.Unix(), 10))
		h.Set("anthropic-ratelimit-unified-representative-claim", "five_hour")
	}

	// Drift: the per-minute token counter charges phantom tokens.
	if has(ScenarioDrift) {
		minute := now.Truncate(time.Minute)
		if !minute.Equal(st.phantomMinute) {
			st.phantomMinute, st.phantom = minute, 0
		}
		if !minute.Before(st.t0.Add(DriftAt)) && minute.Before(st.t0.Add(DriftAt+time.Minute)) {
			st.phantom += DriftPhantomTokens
		}
		if st.phantom > 0 {
			name := "anthropic-ratelimit-tokens-remaining"
			if c.provider != providerAnthropic {
				name = "x-ratelimit-remaining-tokens"
			}
			if v, err := strconv.ParseInt(h.Get(name), 10, 64); err == nil {
				h.Set(name, strconv.FormatInt(max(0, v-st.phantom), 10))
			}
		}
	}
	// Limit change: the request limit is halved.
	if has(ScenarioLimitChange) && !now.Before(st.t0.Add(LimitChangeAt)) {
		limName, remName := "anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining"
		if c.provider != providerAnthropic {
			limName, remName = "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests"
		}
		lim, err1 := strconv.ParseInt(h.Get(limName), 10, 64)
		rem, err2 := strconv.ParseInt(h.Get(remName), 10, 64)
		if err1 == nil && err2 == nil {
			half := lim / 2
			h.Set(limName, strconv.FormatInt(half, 10))
			h.Set(remName, strconv.FormatInt(max(0, half-(lim-rem)), 10))
		}
	}
}

func setUnified(h http.Header, window string, util float64, reset time.Time) {
	p := "anthropic-ratelimit-unified-" + window + "-"
	h.Set(p+"utilization", strconv.FormatFloat(util, 'f', 4, 64))
	h.Set(p+"reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set(p+"status", windowStatus(util))
}

func windowStatus(util float64) string {
	switch {
	case util >= 1:
		return "rejected"
	case util >= 0.8:
		return "allowed_warning"
	}
	return "allowed"
}
