// Package window computes the windows that tokenmeter's limits count usage
// over: 5-hour blocks, rolling windows, and hours, days, weeks and months in
// a time zone. Fixed windows tile time with no gap or overlap and start and
// end exactly at their configured boundary in their zone, across DST changes,
// month ends and leap days. Everything is a pure function of its arguments
// (no clock, no state), so a restart in the middle of a window finds the same
// window (G3).
//
// # Window kinds
//
//   - hour, day, week, month (fixed windows): a window starts at a wall-clock
//     boundary in the spec's zone and ends at the next one. Hours start on
//     the hour; days at the reset time (default 00:00); weeks on the reset
//     weekday (default Monday) at the reset time; months on the 1st of each
//     month at the reset time (there is no day-of-month option, so no month
//     is ever short of its reset day). Windows are half-open, [start, end).
//   - rolling:D: the window at now is [now-D, now). Usage recorded at t
//     counts toward the window while now-D <= t < now, so it stops counting
//     as soon as now passes t+D. Reset(now) is now+D, the instant by which
//     everything counted at now has fallen out if nothing new comes in.
//   - 5h-block: Claude subscription blocks, as ccusage and tokenmeter's
//     report package compute them. A block starts at its first call floored
//     to the UTC hour and lasts BlockLength. A call that comes at or after the
//     end of the latest block starts a new block. Which block is current
//     therefore depends on history: see BlockAt and Spec.Current.
//
// # Daylight saving time
//
// A fixed boundary is a wall-clock time (its label). A label that the zone
// skips (02:30 on a spring-forward day in New York, or 02:00 to 02:29 on
// Lord Howe Island's 30-minute shift) resolves to the first instant at or
// after it, which is the transition itself: a day window that resets at 02:30
// starts at 03:00 EDT on the spring-forward day. A label that occurs twice
// (01:30 on a fall-back day) resolves to its first occurrence; the second
// occurrence is not a boundary. So a day may last 23 or 25 hours (23.5 or
// 24.5 on Lord Howe Island), and the hour window that contains the repeated
// hour of a fall-back night lasts two hours ([01:00 EDT, 02:00 EST) in New
// York). Should two labels resolve to the same instant (a zone skipping a
// whole day), the empty window between them is skipped.
//
// Computing a fixed window takes a few time-zone look-ups (about a
// microsecond); callers on a hot path may keep a window until its end.
package window

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// BlockLength is the length of a 5-hour block.
const BlockLength = 5 * time.Hour

// MinRolling and MaxRolling bound the length of a rolling window.
const (
	MinRolling = time.Minute
	MaxRolling = 366 * 24 * time.Hour
)

// Kind is the kind of a window.
type Kind uint8

// The window kinds. The zero Kind is invalid.
const (
	FiveHourBlock Kind = iota + 1 // --window 5h-block
	Rolling                       // --window rolling:DURATION
	Hourly                        // --window hour
	Daily                         // --window day
	Weekly                        // --window week
	Monthly                       // --window month
)

var kindNames = [...]string{
	FiveHourBlock: "5h-block",
	Rolling:       "rolling",
	Hourly:        "hour",
	Daily:         "day",
	Weekly:        "week",
	Monthly:       "month",
}

// String returns the kind as the --window flag spells it ("rolling" without
// its duration).
func (k Kind) String() string {
	if k == 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", k)
	}
	return kindNames[k]
}

// Fixed reports whether windows of kind k start and end at wall-clock
// boundaries in a time zone (hour, day, week and month).
func (k Kind) Fixed() bool { return k >= Hourly && k <= Monthly }

// Spec describes a window. Build it with Parse; a Spec built by hand must pass
// Validate before its methods are used, or they may panic.
type Spec struct {
	Kind Kind
	// Length is the length of a Rolling window; zero for other kinds.
	Length time.Duration
	// ResetAt is the time of day at which Daily, Weekly and Monthly windows
	// start, as whole minutes since midnight (0 to 23h59m); zero for other
	// kinds.
	ResetAt time.Duration
	// Weekday is the day Weekly windows start; Sunday (zero) for other
	// kinds.
	Weekday time.Weekday
	// Location is the zone of a fixed window's boundaries; nil for Rolling
	// and FiveHourBlock. Nil in a fixed spec means UTC.
	Location *time.Location
}

// Parse parses the --window, --reset-at and --tz values of a limit.
//
//   - window is 5h-block, rolling:DURATION, hour, day, week or month. A
//     duration is a Go duration ("90m", "12h", "1h30m") optionally preceded
//     by whole days ("7d", "1d12h"); it must be whole seconds, at least
//     MinRolling and at most MaxRolling.
//   - resetAt is "HH:MM" (24-hour clock; "9:00" is accepted) for day, week
//     and month windows, default 00:00. For week windows it may name the
//     weekday too: "mon 09:00", "sunday 18:30" or just "fri"; the default
//     weekday is Monday. Names are case-insensitive, three letters or full.
//   - tz is an IANA zone name, "UTC", or "Local" (or empty) for the local
//     zone, default local. Only fixed windows take one.
//
// Every error is one line that starts with the bad flag, such as
// `--tz: unknown time zone "Mars/Base"`.
func Parse(window, resetAt, tz string) (Spec, error) {
	var s Spec
	w := strings.ToLower(strings.TrimSpace(window))
	switch {
	case w == "":
		return Spec{}, errors.New("--window: missing (want 5h-block, rolling:DURATION, hour, day, week or month)")
	case w == "5h-block":
		s.Kind = FiveHourBlock
	case w == "hour":
		s.Kind = Hourly
	case w == "day":
		s.Kind = Daily
	case w == "week":
		s.Kind = Weekly
		s.Weekday = time.Monday
	case w == "month":
		s.Kind = Monthly
	case strings.HasPrefix(w, "rolling:"):
		d, err := parseDuration(strings.TrimPrefix(w, "rolling:"))
		if err != nil {
			return Spec{}, fmt.Errorf("--window: %q is not a duration (like 30m, 12h or 7d)", window)
		}
		switch {
		case d < MinRolling:
			return Spec{}, fmt.Errorf("--window: %q must be a positive duration of at least %s", window, formatDuration(MinRolling))
		case d > MaxRolling:
			return Spec{}, fmt.Errorf("--window: %q must be at most %s", window, formatDuration(MaxRolling))
		case d%time.Second != 0:
			return Spec{}, fmt.Errorf("--window: %q must be a whole number of seconds", window)
		}
		s.Kind, s.Length = Rolling, d
	case w == "rolling":
		return Spec{}, fmt.Errorf("--window: %q needs a duration, like rolling:24h", window)
	default:
		return Spec{}, fmt.Errorf("--window: unknown window %q (want 5h-block, rolling:DURATION, hour, day, week or month)", window)
	}

	if r := strings.TrimSpace(resetAt); r != "" {
		switch s.Kind {
		case Daily, Weekly, Monthly:
		case Hourly:
			return Spec{}, errors.New("--reset-at: only day, week and month windows have a reset time (hour windows start on the hour)")
		default:
			return Spec{}, fmt.Errorf("--reset-at: only day, week and month windows have a reset time, not %s", s.Kind)
		}
		at, wd, hasWD, err := parseResetAt(r)
		if err != nil {
			return Spec{}, err
		}
		if hasWD {
			if s.Kind != Weekly {
				return Spec{}, fmt.Errorf("--reset-at: %q names a weekday, which only week windows take", resetAt)
			}
			s.Weekday = wd
		}
		s.ResetAt = at
	}

	if s.Kind.Fixed() {
		loc, err := loadLocation(strings.TrimSpace(tz))
		if err != nil {
			return Spec{}, err
		}
		s.Location = loc
	} else if strings.TrimSpace(tz) != "" {
		return Spec{}, fmt.Errorf("--tz: %s windows do not depend on a time zone; only hour, day, week and month windows take --tz", s.Kind)
	}
	return s, nil
}

// ParseString parses the form String returns: the window, then for fixed
// windows the weekday (week), the reset time (day, week, month) and the
// zone, separated by spaces ("week mon 09:00 Europe/Berlin"). Omitted parts
// take their defaults. Errors name the flag the bad part stands for.
func ParseString(str string) (Spec, error) {
	f := strings.Fields(str)
	if len(f) == 0 {
		return Parse("", "", "")
	}
	var reset []string
	tz := ""
	for _, p := range f[1:] {
		if _, ok := parseWeekday(p); ok {
			reset = append(reset, p)
		} else if _, err := parseClock(p); err == nil {
			reset = append(reset, p)
		} else if tz == "" {
			tz = p
		} else {
			return Spec{}, fmt.Errorf("--tz: more than one time zone in %q", str)
		}
	}
	return Parse(f[0], strings.Join(reset, " "), tz)
}

// Validate reports whether s is a spec Parse could have returned (apart from
// a nil Location, which means UTC). The error names the flag at fault.
func (s Spec) Validate() error {
	switch s.Kind {
	case FiveHourBlock, Rolling, Hourly, Daily, Weekly, Monthly:
	default:
		return fmt.Errorf("--window: invalid kind %d", s.Kind)
	}
	if s.Kind == Rolling {
		if s.Length < MinRolling || s.Length > MaxRolling || s.Length%time.Second != 0 {
			return fmt.Errorf("--window: rolling length %s must be whole seconds from %s to %s", s.Length, formatDuration(MinRolling), formatDuration(MaxRolling))
		}
	} else if s.Length != 0 {
		return fmt.Errorf("--window: only rolling windows have a length, not %s", s.Kind)
	}
	switch s.Kind {
	case Daily, Weekly, Monthly:
		if s.ResetAt < 0 || s.ResetAt >= 24*time.Hour || s.ResetAt%time.Minute != 0 {
			return fmt.Errorf("--reset-at: %s is not a time of day in whole minutes", s.ResetAt)
		}
	default:
		if s.ResetAt != 0 {
			return fmt.Errorf("--reset-at: only day, week and month windows have a reset time, not %s", s.Kind)
		}
	}
	if s.Weekday < time.Sunday || s.Weekday > time.Saturday || (s.Kind != Weekly && s.Weekday != time.Sunday) {
		return fmt.Errorf("--reset-at: weekday %d is not allowed for a %s window", s.Weekday, s.Kind)
	}
	if !s.Kind.Fixed() && s.Location != nil {
		return fmt.Errorf("--tz: %s windows do not depend on a time zone", s.Kind)
	}
	return nil
}

// Flags returns the canonical --window, --reset-at and --tz values of s;
// Parse(s.Flags()) returns a spec Equal to s. Values a kind does not take
// are empty; the local zone is "Local".
func (s Spec) Flags() (window, resetAt, tz string) {
	window = s.Kind.String()
	if s.Kind == Rolling {
		window += ":" + formatDuration(s.Length)
	}
	switch s.Kind {
	case Daily, Monthly:
		resetAt = formatClock(s.ResetAt)
	case Weekly:
		resetAt = strings.ToLower(s.Weekday.String()[:3]) + " " + formatClock(s.ResetAt)
	}
	if s.Kind.Fixed() {
		tz = s.loc().String()
	}
	return window, resetAt, tz
}

// String returns s in the form ParseString reads, with every default
// spelled out: "5h-block", "rolling:7d", "hour Asia/Kolkata", "day 00:00
// Local", "week mon 09:00 Europe/Berlin", "month 00:00 UTC".
func (s Spec) String() string {
	w, r, tz := s.Flags()
	return strings.Join(strings.Fields(w+" "+r+" "+tz), " ")
}

// Equal reports whether s and o describe the same windows (zones compare by
// name).
func (s Spec) Equal(o Spec) bool {
	if s.Kind != o.Kind || s.Length != o.Length || s.ResetAt != o.ResetAt || s.Weekday != o.Weekday {
		return false
	}
	if s.Kind.Fixed() {
		return s.loc().String() == o.loc().String()
	}
	return (s.Location == nil) == (o.Location == nil)
}

// At returns the window that contains now, [start, end); start and end are
// in the spec's zone for fixed windows.
//
// A rolling window is [now-Length, now). For a 5h-block spec, At assumes no
// block is open at now, so it returns the block a call at now would start;
// use Current when the start of the latest block is known.
func (s Spec) At(now time.Time) (start, end time.Time) {
	switch s.Kind {
	case FiveHourBlock:
		return BlockAt(time.Time{}, now)
	case Rolling:
		return now.Add(-s.Length), now
	case Hourly, Daily, Weekly, Monthly:
		return s.fixed(now)
	}
	panic(fmt.Sprintf("window: At on a Spec of invalid kind %d", s.Kind))
}

// Current is At for a caller that knows history: latest is the start of the
// latest 5-hour block that began at or before now (zero if none), as
// returned by BlockAt. Only 5h-block specs use it; for the other kinds
// Current is At.
func (s Spec) Current(latest, now time.Time) (start, end time.Time) {
	if s.Kind == FiveHourBlock {
		return BlockAt(latest, now)
	}
	return s.At(now)
}

// Reset returns when the window containing now ends: the time shown to users
// as "resets at". For a fixed window it is the window's end, the next
// boundary. For a rolling window it is now+Length, the instant by which all
// usage counted at now has fallen out of the window if nothing new comes in
// (each use at t stops counting once the clock passes t+Length, so usage
// drains gradually before then). For a 5h-block spec it is the end of the
// block a call at now would start; with history take the end from Current.
func (s Spec) Reset(now time.Time) time.Time {
	if s.Kind == Rolling {
		return now.Add(s.Length)
	}
	_, end := s.At(now)
	return end
}

// BlockAt returns the 5-hour block that contains a call at t, given the start
// of the latest block that began at or before t (zero if there is none). If t
// is before latest+BlockLength the call is in that block; otherwise it starts
// a new block at t floored to the UTC hour. Fold it over calls in time order
// to find the latest block:
//
//	for _, t := range calls { latest, _ = window.BlockAt(latest, t) }
//
// This is the rule of report.SplitBlocks with one difference at the
// nanosecond: a call exactly at latest+BlockLength starts a new block here
// (windows are half-open), where the report, like ccusage, keeps it in the
// earlier one. (The report's other rule, that a call more than BlockLength
// after the previous call starts a new block, never applies on its own: such
// a call is also past the end of the block.)
func BlockAt(latest, t time.Time) (start, end time.Time) {
	if !latest.IsZero() && !t.Before(latest) && t.Before(latest.Add(BlockLength)) {
		return latest, latest.Add(BlockLength)
	}
	start = t.UTC().Truncate(time.Hour)
	return start, start.Add(BlockLength)
}

func (s Spec) loc() *time.Location {
	if s.Location == nil {
		return time.UTC
	}
	return s.Location
}

// fixed returns the fixed window containing now. Labels (wall-clock
// boundaries) are held as UTC times with the label's wall clock.
func (s Spec) fixed(now time.Time) (start, end time.Time) {
	loc := s.loc()
	w := now.In(loc)
	wall := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.UTC)
	label := s.floor(wall)
	// The label at or before now's wall clock is right unless a DST
	// change makes the wall clock disagree with the order of instants:
	// step until resolve(label) <= now < resolve(next label).
	for resolve(label, loc).After(now) {
		label = s.step(label, -1)
	}
	for next := s.step(label, 1); !resolve(next, loc).After(now); next = s.step(label, 1) {
		label = next
	}
	return resolve(label, loc).In(loc), resolve(s.step(label, 1), loc).In(loc)
}

// floor returns the latest label at or before the wall clock wall.
func (s Spec) floor(wall time.Time) time.Time {
	y, m, d := wall.Date()
	at := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(s.ResetAt)
	switch s.Kind {
	case Hourly:
		return wall.Truncate(time.Hour)
	case Daily:
		if wall.Before(at) {
			at = at.AddDate(0, 0, -1)
		}
		return at
	case Weekly:
		at = at.AddDate(0, 0, -((int(wall.Weekday()) - int(s.Weekday) + 7) % 7))
		if wall.Before(at) {
			at = at.AddDate(0, 0, -7)
		}
		return at
	case Monthly:
		at = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Add(s.ResetAt)
		if wall.Before(at) {
			at = at.AddDate(0, -1, 0)
		}
		return at
	}
	panic(fmt.Sprintf("window: floor on kind %s", s.Kind))
}

// step returns the label n windows after label (before it if n < 0).
func (s Spec) step(label time.Time, n int) time.Time {
	switch s.Kind {
	case Hourly:
		return label.Add(time.Duration(n) * time.Hour)
	case Daily:
		return label.AddDate(0, 0, n)
	case Weekly:
		return label.AddDate(0, 0, 7*n)
	default: // Monthly: labels are on the 1st, so AddDate never overflows.
		return label.AddDate(0, n, 0)
	}
}

// resolve returns the first instant at which the wall clock in loc shows
// label or a later time: label's first occurrence if it occurs twice, and
// the transition that skips it if it does not occur at all.
//
// It takes the UTC offsets in effect within a day either side of label
// (no zone changes its offset more than once in so short a time, except on
// paper before standard time) and keeps the earliest instant u = label -
// offset whose own offset is that offset. If there is none, label was
// skipped, and the transition is found by bisection between the instants
// the two offsets give, where the wall clock rises with the instant.
func resolve(label time.Time, loc *time.Location) time.Time {
	var first time.Time
	var lo, hi time.Duration
	for i, probe := range [...]time.Duration{0, -26 * time.Hour, -13 * time.Hour, 13 * time.Hour, 26 * time.Hour} {
		o := offsetAt(label.Add(probe), loc)
		if i == 0 {
			lo, hi = o, o
		}
		lo, hi = min(lo, o), max(hi, o)
		if u := label.Add(-o); offsetAt(u, loc) == o && (first.IsZero() || u.Before(first)) {
			first = u
		}
	}
	if !first.IsZero() {
		return first.In(loc)
	}
	// Skipped: the wall clock is below label at a and at or above it at b.
	a, b := label.Add(-hi), label.Add(-lo)
	for b.Sub(a) > time.Nanosecond {
		m := a.Add(b.Sub(a) / 2)
		if m.Add(offsetAt(m, loc)).Before(label) {
			a = m
		} else {
			b = m
		}
	}
	return b.In(loc)
}

// offsetAt returns the UTC offset of loc at the instant t.
func offsetAt(t time.Time, loc *time.Location) time.Duration {
	_, o := t.In(loc).Zone()
	return time.Duration(o) * time.Second
}

// parseDuration parses a Go duration optionally preceded by whole days
// ("7d", "1d12h").
func parseDuration(v string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(v, 'd'); i >= 0 {
		n, err := strconv.ParseUint(v[:i], 10, 16)
		if err != nil {
			return 0, err
		}
		days, v = time.Duration(n)*24*time.Hour, v[i+1:]
		if v == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, err
	}
	if days > 0 && d < 0 {
		return 0, errors.New("negative part")
	}
	return days + d, nil
}

// formatDuration formats d (whole seconds) in days, hours, minutes and
// seconds, leaving out zero parts: "7d", "1d12h", "1h30m", "90s" is "1m30s".
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return d.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	if d > 0 { // sub-second rest; Parse never allows it
		return (b.String() + " " + d.String())
	}
	return b.String()
}

// parseResetAt parses "[WEEKDAY] [HH:MM]" (at least one of them).
func parseResetAt(v string) (at time.Duration, wd time.Weekday, hasWD bool, err error) {
	f := strings.Fields(v)
	if len(f) > 2 {
		return 0, 0, false, fmt.Errorf("--reset-at: %q is not HH:MM (or WEEKDAY HH:MM for week windows)", v)
	}
	if wd, hasWD = parseWeekday(f[0]); hasWD {
		f = f[1:]
	}
	if len(f) == 0 {
		return 0, wd, hasWD, nil
	}
	if len(f) == 2 {
		if _, ok := parseWeekday(f[1]); ok {
			return 0, 0, false, fmt.Errorf("--reset-at: %q must put the weekday first, as in \"mon 09:00\"", v)
		}
		return 0, 0, false, fmt.Errorf("--reset-at: %q is not HH:MM (or WEEKDAY HH:MM for week windows)", v)
	}
	at, err = parseClock(f[0])
	if err != nil {
		return 0, 0, false, fmt.Errorf("--reset-at: %q is not a time of day HH:MM from 00:00 to 23:59", v)
	}
	return at, wd, hasWD, nil
}

// parseClock parses H:MM or HH:MM, 00:00 to 23:59.
func parseClock(v string) (time.Duration, error) {
	h, m, ok := strings.Cut(v, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 {
		return 0, errors.New("not HH:MM")
	}
	hh, err1 := strconv.ParseUint(h, 10, 8)
	mm, err2 := strconv.ParseUint(m, 10, 8)
	if err1 != nil || err2 != nil || hh > 23 || mm > 59 {
		return 0, errors.New("not HH:MM")
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

func formatClock(at time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(at/time.Hour), int(at%time.Hour/time.Minute))
}

// parseWeekday parses a weekday name, three letters or in full, any case.
func parseWeekday(v string) (time.Weekday, bool) {
	v = strings.ToLower(v)
	for d := time.Sunday; d <= time.Saturday; d++ {
		name := strings.ToLower(d.String())
		if v == name || v == name[:3] {
			return d, true
		}
	}
	return 0, false
}

// loadLocation loads an IANA zone; "", "local" and "Local" are the local
// zone and "utc" in any case is UTC.
func loadLocation(tz string) (*time.Location, error) {
	switch {
	case tz == "" || strings.EqualFold(tz, "local"):
		return time.Local, nil
	case strings.EqualFold(tz, "utc"):
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("--tz: unknown time zone %q", tz)
	}
	return loc, nil
}
