package window_test

import (
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/window"
)

// FuzzParse checks that Parse never panics, that every spec it accepts
// survives String and Flags round trips, and that fixed windows tile time
// at the fuzzed instant. Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add("day", "02:30", "America/New_York", int64(1772953200))
	f.Add("hour", "", "Australia/Lord_Howe", int64(1775314800))
	f.Add("week", "sun 09:00", "Europe/Berlin", int64(1792890000))
	f.Add("month", "23:59", "Asia/Kolkata", int64(1835395200))
	f.Add("rolling:1d12h", "", "", int64(0))
	f.Add("5h-block", "", "", int64(-1))
	f.Fuzz(func(t *testing.T, w, reset, tz string, unix int64) {
		s, err := window.Parse(w, reset, tz)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse(%q, %q, %q) = %s, which fails Validate: %v", w, reset, tz, s, err)
		}
		checkRoundTrip(t, s)
		// Keep the instant between 1900 and 2200.
		const lo, span = -2208988800, 300 * 365 * 24 * 3600
		now := time.Unix(lo+((unix%span)+span)%span, 0)
		if s.Kind.Fixed() {
			checkTiling(t, s, now)
			return
		}
		start, end := s.At(now)
		if now.Before(start) || !start.Before(end) || end.Before(now) {
			t.Fatalf("%s.At(%s) = [%s, %s)", s, now, start, end)
		}
	})
}
