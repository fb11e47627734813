package window_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests' zones must not depend on the machine's

	"github.com/tokenmeter/tokenmeter/internal/window"
)

func mustParse(t testing.TB, w, reset, tz string) window.Spec {
	t.Helper()
	s, err := window.Parse(w, reset, tz)
	if err != nil {
		t.Fatalf("Parse(%q, %q, %q): %v", w, reset, tz, err)
	}
	return s
}

func mustTime(t testing.TB, v string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// TestAtFixed checks fixed windows against boundaries worked out by hand
// from the zones' rules. Times are UTC unless they carry an offset.
func TestAtFixed(t *testing.T) {
	tests := []struct {
		name              string
		window, reset, tz string
		now, start, end   string
		wantLength        time.Duration // checked when set
	}{
		// UTC.
		{"utc hour", "hour", "", "UTC", "2026-05-04T10:59:59.999999999Z", "2026-05-04T10:00:00Z", "2026-05-04T11:00:00Z", time.Hour},
		{"utc hour at boundary", "hour", "", "UTC", "2026-05-04T11:00:00Z", "2026-05-04T11:00:00Z", "2026-05-04T12:00:00Z", 0},
		{"utc day", "day", "", "UTC", "2026-03-08T12:00:00Z", "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z", 24 * time.Hour},
		{"utc day reset before", "day", "09:30", "UTC", "2026-03-08T09:29:59Z", "2026-03-07T09:30:00Z", "2026-03-08T09:30:00Z", 0},
		{"utc day reset at", "day", "09:30", "UTC", "2026-03-08T09:30:00Z", "2026-03-08T09:30:00Z", "2026-03-09T09:30:00Z", 0},
		{"utc day reset 23:59", "day", "23:59", "UTC", "2026-12-31T23:59:30Z", "2026-12-31T23:59:00Z", "2027-01-01T23:59:00Z", 0},

		// Leap days.
		{"leap day", "day", "", "UTC", "2028-02-29T23:00:00Z", "2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z", 0},
		{"day before leap day", "day", "", "UTC", "2028-02-28T23:00:00Z", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z", 0},
		{"leap day berlin", "day", "", "Europe/Berlin", "2028-02-28T23:30:00Z", "2028-02-28T23:00:00Z", "2028-02-29T23:00:00Z", 0},
		{"no leap day 2026", "day", "", "UTC", "2026-02-28T12:00:00Z", "2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z", 0},
		{"month feb leap", "month", "", "UTC", "2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z", 29 * 24 * time.Hour},
		{"week over leap day", "week", "", "UTC", "2028-02-29T12:00:00Z", "2028-02-28T00:00:00Z", "2028-03-06T00:00:00Z", 7 * 24 * time.Hour},

		// Month ends.
		{"jan 31", "month", "", "UTC", "2026-01-31T23:59:59Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", 31 * 24 * time.Hour},
		{"feb", "month", "", "UTC", "2026-02-15T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", 28 * 24 * time.Hour},
		{"dec to jan", "month", "", "UTC", "2026-12-31T23:00:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", 0},
		{"month reset 09:00 before", "month", "09:00", "UTC", "2027-01-01T05:00:00Z", "2026-12-01T09:00:00Z", "2027-01-01T09:00:00Z", 0},
		{"month reset 23:30 last day", "month", "23:30", "UTC", "2026-01-31T23:45:00Z", "2026-01-01T23:30:00Z", "2026-02-01T23:30:00Z", 0},
		{"month new york dst", "month", "", "America/New_York", "2026-03-15T12:00:00Z", "2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z", 31*24*time.Hour - time.Hour},
		{"month kolkata", "month", "", "Asia/Kolkata", "2026-01-31T20:00:00Z", "2026-01-31T18:30:00Z", "2026-02-28T18:30:00Z", 0},

		// Weeks across a year end and DST.
		{"week year end", "week", "", "UTC", "2027-01-01T12:00:00Z", "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z", 0},
		{"week mon at boundary", "week", "mon", "UTC", "2027-01-04T00:00:00Z", "2027-01-04T00:00:00Z", "2027-01-11T00:00:00Z", 0},
		{"week sun 18:00 year end", "week", "sun 18:00", "UTC", "2027-01-03T17:59:00Z", "2026-12-27T18:00:00Z", "2027-01-03T18:00:00Z", 0},
		{"week saturday full name", "week", "Saturday 06:15", "UTC", "2026-12-31T00:00:00Z", "2026-12-26T06:15:00Z", "2027-01-02T06:15:00Z", 0},
		{"week new york spring", "week", "sun 09:00", "America/New_York", "2026-03-08T12:00:00Z", "2026-03-01T14:00:00Z", "2026-03-08T13:00:00Z", 7*24*time.Hour - time.Hour},
		{"week berlin spring", "week", "", "Europe/Berlin", "2026-03-29T12:00:00Z", "2026-03-22T23:00:00Z", "2026-03-29T22:00:00Z", 0},
		{"week berlin fall", "week", "", "Europe/Berlin", "2026-10-25T12:00:00Z", "2026-10-18T22:00:00Z", "2026-10-25T23:00:00Z", 7*24*time.Hour + time.Hour},

		// America/New_York: spring forward 2026-03-08 02:00 EST -> 03:00 EDT
		// (07:00Z); fall back 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z).
		{"ny day spring", "day", "", "America/New_York", "2026-03-08T12:00:00-04:00", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", 23 * time.Hour},
		{"ny day fall", "day", "", "America/New_York", "2026-11-01T12:00:00-05:00", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", 25 * time.Hour},
		{"ny reset 02:30 missing", "day", "02:30", "America/New_York", "2026-03-08T14:00:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", 23*time.Hour + 30*time.Minute},
		{"ny reset 02:30 day before", "day", "02:30", "America/New_York", "2026-03-08T06:00:00Z", "2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", 23*time.Hour + 30*time.Minute},
		{"ny reset 02:30 at transition", "day", "02:30", "America/New_York", "2026-03-08T07:00:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", 0},
		{"ny reset 01:30 repeated, first pass", "day", "01:30", "America/New_York", "2026-11-01T05:10:00Z", "2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", 24 * time.Hour},
		{"ny reset 01:30 repeated, second pass", "day", "01:30", "America/New_York", "2026-11-01T06:10:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", 25 * time.Hour},
		{"ny reset 01:30 repeated, second 01:30", "day", "01:30", "America/New_York", "2026-11-01T06:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", 0},
		{"ny hour spring before", "hour", "", "America/New_York", "2026-03-08T06:59:00Z", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", time.Hour},
		{"ny hour spring after", "hour", "", "America/New_York", "2026-03-08T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z", time.Hour},
		{"ny hour fall repeated", "hour", "", "America/New_York", "2026-11-01T06:30:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", 2 * time.Hour},
		{"ny hour fall first pass", "hour", "", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", 2 * time.Hour},

		// Europe/Berlin: spring 2026-03-29 01:00Z (02:00 CET -> 03:00 CEST);
		// fall 2026-10-25 01:00Z (03:00 CEST -> 02:00 CET).
		{"berlin day spring", "day", "", "Europe/Berlin", "2026-03-29T12:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 23 * time.Hour},
		{"berlin day fall", "day", "", "Europe/Berlin", "2026-10-25T12:00:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 25 * time.Hour},
		{"berlin reset 02:30 missing", "day", "02:30", "Europe/Berlin", "2026-03-29T05:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", 0},
		{"berlin reset 02:30 repeated", "day", "02:30", "Europe/Berlin", "2026-10-25T01:15:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", 25 * time.Hour},
		{"berlin hour fall", "hour", "", "Europe/Berlin", "2026-10-25T01:30:00Z", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", 2 * time.Hour},

		// Australia/Lord_Howe: +10:30 standard, +11 in summer, a 30-minute
		// shift. Spring 2026-10-04 02:00 +10:30 -> 02:30 +11 (10-03 15:30Z);
		// fall 2026-04-05 02:00 +11 -> 01:30 +10:30 (04-04 15:00Z).
		{"lord howe hour before spring", "hour", "", "Australia/Lord_Howe", "2026-10-03T15:10:00Z", "2026-10-03T14:30:00Z", "2026-10-03T15:30:00Z", time.Hour},
		{"lord howe hour half after spring", "hour", "", "Australia/Lord_Howe", "2026-10-03T15:45:00Z", "2026-10-03T15:30:00Z", "2026-10-03T16:00:00Z", 30 * time.Minute},
		{"lord howe hour fall", "hour", "", "Australia/Lord_Howe", "2026-04-04T15:10:00Z", "2026-04-04T14:00:00Z", "2026-04-04T15:30:00Z", 90 * time.Minute},
		{"lord howe day spring", "day", "", "Australia/Lord_Howe", "2026-10-04T05:00:00Z", "2026-10-03T13:30:00Z", "2026-10-04T13:00:00Z", 23*time.Hour + 30*time.Minute},
		{"lord howe day fall", "day", "", "Australia/Lord_Howe", "2026-04-05T00:00:00Z", "2026-04-04T13:00:00Z", "2026-04-05T13:30:00Z", 24*time.Hour + 30*time.Minute},
		{"lord howe reset 02:15 missing", "day", "02:15", "Australia/Lord_Howe", "2026-10-03T16:00:00Z", "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z", 0},
		{"lord howe reset 01:45 repeated", "day", "01:45", "Australia/Lord_Howe", "2026-04-04T15:20:00Z", "2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z", 24*time.Hour + 30*time.Minute},

		// Asia/Kolkata: +5:30 all year, so hours start at :30 UTC.
		{"kolkata hour", "hour", "", "Asia/Kolkata", "2026-06-01T10:00:00Z", "2026-06-01T09:30:00Z", "2026-06-01T10:30:00Z", time.Hour},
		{"kolkata day", "day", "", "Asia/Kolkata", "2026-06-01T20:00:00Z", "2026-06-01T18:30:00Z", "2026-06-02T18:30:00Z", 24 * time.Hour},
		{"kolkata week year end", "week", "", "Asia/Kolkata", "2026-12-31T19:00:00Z", "2026-12-27T18:30:00Z", "2027-01-03T18:30:00Z", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.window, tt.reset, tt.tz)
			now := mustTime(t, tt.now)
			start, end := s.At(now)
			wantStart, wantEnd := mustTime(t, tt.start), mustTime(t, tt.end)
			if !start.Equal(wantStart) || !end.Equal(wantEnd) {
				t.Errorf("%s.At(%s) = [%s, %s), want [%s, %s)", s, tt.now,
					start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339),
					wantStart.UTC().Format(time.RFC3339), wantEnd.UTC().Format(time.RFC3339))
			}
			if tt.wantLength != 0 && end.Sub(start) != tt.wantLength {
				t.Errorf("%s.At(%s) lasts %s, want %s", s, tt.now, end.Sub(start), tt.wantLength)
			}
			if start.Location().String() != s.Location.String() {
				t.Errorf("%s.At(%s) start in %s, want %s", s, tt.now, start.Location(), s.Location)
			}
			if r := s.Reset(now); !r.Equal(wantEnd) {
				t.Errorf("%s.Reset(%s) = %s, want %s", s, tt.now, r.UTC().Format(time.RFC3339), tt.end)
			}
		})
	}
}

func TestAtLocalDefault(t *testing.T) {
	s := mustParse(t, "day", "", "")
	if s.Location != time.Local {
		t.Fatalf(`Parse("day", "", "").Location = %v, want time.Local`, s.Location)
	}
	now := time.Now()
	start, end := s.At(now)
	y, m, d := now.In(time.Local).Date()
	if want := time.Date(y, m, d, 0, 0, 0, 0, time.Local); !start.Equal(want) {
		t.Errorf("%s.At(%s) start = %s, want %s", s, now, start, want)
	}
	if end.Before(now) || !start.Before(end) {
		t.Errorf("%s.At(%s) = [%s, %s), does not contain now", s, now, start, end)
	}
}

func TestAtRolling(t *testing.T) {
	tests := []struct {
		window string
		length time.Duration
	}{
		{"rolling:1m", time.Minute},
		{"rolling:90m", 90 * time.Minute},
		{"rolling:24h", 24 * time.Hour},
		{"rolling:7d", 7 * 24 * time.Hour},
		{"rolling:1d12h", 36 * time.Hour},
	}
	now := mustTime(t, "2026-03-08T07:00:00Z") // a DST change in New York: irrelevant
	for _, tt := range tests {
		s := mustParse(t, tt.window, "", "")
		start, end := s.At(now)
		if !start.Equal(now.Add(-tt.length)) || !end.Equal(now) {
			t.Errorf("%s.At(%s) = [%s, %s), want [now-%s, now)", s, now, start, end, tt.length)
		}
		if r := s.Reset(now); !r.Equal(now.Add(tt.length)) {
			t.Errorf("%s.Reset(%s) = %s, want now+%s", s, now, r, tt.length)
		}
	}
}

func TestBlockAt(t *testing.T) {
	tests := []struct {
		name               string
		latest, at         string // latest empty: no block yet
		wantStart, wantEnd string
	}{
		{"first call", "", "2026-05-04T10:17:00Z", "2026-05-04T10:00:00Z", "2026-05-04T15:00:00Z"},
		{"first call on the hour", "", "2026-05-04T10:00:00Z", "2026-05-04T10:00:00Z", "2026-05-04T15:00:00Z"},
		{"same block", "2026-05-04T10:00:00Z", "2026-05-04T14:59:59.999999999Z", "2026-05-04T10:00:00Z", "2026-05-04T15:00:00Z"},
		{"at the end starts a new block", "2026-05-04T10:00:00Z", "2026-05-04T15:00:00Z", "2026-05-04T15:00:00Z", "2026-05-04T20:00:00Z"},
		{"after a gap", "2026-05-04T10:00:00Z", "2026-05-04T18:30:00Z", "2026-05-04T18:00:00Z", "2026-05-04T23:00:00Z"},
		{"floored to the UTC hour, not the local one", "", "2026-05-04T10:47:00+05:30", "2026-05-04T05:00:00Z", "2026-05-04T10:00:00Z"},
		{"across a DST change", "2026-03-08T05:00:00Z", "2026-03-08T09:59:00Z", "2026-03-08T05:00:00Z", "2026-03-08T10:00:00Z"},
		{"call before latest", "2026-05-04T10:00:00Z", "2026-05-04T09:30:00Z", "2026-05-04T09:00:00Z", "2026-05-04T14:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var latest time.Time
			if tt.latest != "" {
				latest = mustTime(t, tt.latest)
			}
			at := mustTime(t, tt.at)
			start, end := window.BlockAt(latest, at)
			if !start.Equal(mustTime(t, tt.wantStart)) || !end.Equal(mustTime(t, tt.wantEnd)) {
				t.Errorf("BlockAt(%s, %s) = [%s, %s), want [%s, %s)", tt.latest, tt.at, start, end, tt.wantStart, tt.wantEnd)
			}
		})
	}
}

// TestBlockFold folds BlockAt over a day of calls, as the limits code will
// over the ledger, and checks the blocks found.
func TestBlockFold(t *testing.T) {
	calls := []string{
		"2026-05-04T08:12:00Z", "2026-05-04T09:00:00Z", "2026-05-04T12:59:00Z", // block 08-13
		"2026-05-04T13:00:00Z", "2026-05-04T16:00:00Z", // block 13-18
		"2026-05-04T23:45:00Z", // block 23-04 after a gap
		"2026-05-05T03:59:59Z",
	}
	want := []string{"08", "08", "08", "13", "13", "23", "23"}
	var latest time.Time
	for i, c := range calls {
		latest, _ = window.BlockAt(latest, mustTime(t, c))
		if got := latest.UTC().Format("15"); got != want[i] {
			t.Errorf("after call %s the block starts at %s:00, want %s:00", c, got, want[i])
		}
	}
	s := mustParse(t, "5h-block", "", "")
	now := mustTime(t, "2026-05-05T04:10:00Z")
	if start, _ := s.Current(latest, now); !start.Equal(mustTime(t, "2026-05-05T04:00:00Z")) {
		t.Errorf("%s.Current(%s, %s) starts at %s, want a new block at 04:00", s, latest, now, start)
	}
	now = mustTime(t, "2026-05-05T03:10:00Z")
	start, end := s.Current(latest, now)
	if !start.Equal(latest) || !end.Equal(latest.Add(window.BlockLength)) {
		t.Errorf("%s.Current(%s, %s) = [%s, %s), want the open block", s, latest, now, start, end)
	}
	if start, end := s.At(now); !start.Equal(mustTime(t, "2026-05-05T03:00:00Z")) || !end.Equal(mustTime(t, "2026-05-05T08:00:00Z")) {
		t.Errorf("%s.At(%s) = [%s, %s), want the block a call at now would open", s, now, start, end)
	}
	if r := s.Reset(now); !r.Equal(mustTime(t, "2026-05-05T08:00:00Z")) {
		t.Errorf("%s.Reset(%s) = %s, want 08:00", s, now, r)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		window, reset, tz string
		want              string // String() of the result
	}{
		{"5h-block", "", "", "5h-block"},
		{"5H-Block", "", "", "5h-block"},
		{"rolling:30m", "", "", "rolling:30m"},
		{"rolling:90m", "", "", "rolling:1h30m"},
		{"rolling:90s", "", "", "rolling:1m30s"},
		{"rolling:168h", "", "", "rolling:7d"},
		{"rolling:1d12h", "", "", "rolling:1d12h"},
		{"rolling:366d", "", "", "rolling:366d"},
		{"hour", "", "UTC", "hour UTC"},
		{"hour", "", "Asia/Kolkata", "hour Asia/Kolkata"},
		{"day", "", "", "day 00:00 Local"},
		{"day", "", "local", "day 00:00 Local"},
		{"day", "9:05", "utc", "day 09:05 UTC"},
		{"day", " 23:59 ", "Europe/Berlin", "day 23:59 Europe/Berlin"},
		{"week", "", "UTC", "week mon 00:00 UTC"},
		{"week", "sun", "UTC", "week sun 00:00 UTC"},
		{"week", "FRIDAY 18:00", "UTC", "week fri 18:00 UTC"},
		{"week", "09:00", "America/New_York", "week mon 09:00 America/New_York"},
		{"month", "", "Australia/Lord_Howe", "month 00:00 Australia/Lord_Howe"},
		{"month", "06:00", "UTC", "month 06:00 UTC"},
	}
	for _, tt := range tests {
		s, err := window.Parse(tt.window, tt.reset, tt.tz)
		if err != nil {
			t.Errorf("Parse(%q, %q, %q): %v", tt.window, tt.reset, tt.tz, err)
			continue
		}
		if got := s.String(); got != tt.want {
			t.Errorf("Parse(%q, %q, %q).String() = %q, want %q", tt.window, tt.reset, tt.tz, got, tt.want)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("Parse(%q, %q, %q).Validate() = %v", tt.window, tt.reset, tt.tz, err)
		}
		checkRoundTrip(t, s)
	}
}

func checkRoundTrip(t *testing.T, s window.Spec) {
	t.Helper()
	back, err := window.ParseString(s.String())
	if err != nil {
		t.Errorf("ParseString(%q): %v", s, err)
	} else if !back.Equal(s) {
		t.Errorf("ParseString(%q) = %+v, want %+v", s, back, s)
	}
	w, r, tz := s.Flags()
	back, err = window.Parse(w, r, tz)
	if err != nil {
		t.Errorf("Parse(%q, %q, %q) of Flags: %v", w, r, tz, err)
	} else if !back.Equal(s) {
		t.Errorf("Parse(%q, %q, %q) = %+v, want %+v", w, r, tz, back, s)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		window, reset, tz string
		want              string
	}{
		{"", "", "", `--window: missing (want 5h-block, rolling:DURATION, hour, day, week or month)`},
		{"fortnight", "", "", `--window: unknown window "fortnight" (want 5h-block, rolling:DURATION, hour, day, week or month)`},
		{"hourly", "", "", `--window: unknown window "hourly" (want 5h-block, rolling:DURATION, hour, day, week or month)`},
		{"rolling", "", "", `--window: "rolling" needs a duration, like rolling:24h`},
		{"rolling:", "", "", `--window: "rolling:" is not a duration (like 30m, 12h or 7d)`},
		{"rolling:abc", "", "", `--window: "rolling:abc" is not a duration (like 30m, 12h or 7d)`},
		{"rolling:7", "", "", `--window: "rolling:7" is not a duration (like 30m, 12h or 7d)`},
		{"rolling:1d-2h", "", "", `--window: "rolling:1d-2h" is not a duration (like 30m, 12h or 7d)`},
		{"rolling:0s", "", "", `--window: "rolling:0s" must be a positive duration of at least 1m`},
		{"rolling:-5m", "", "", `--window: "rolling:-5m" must be a positive duration of at least 1m`},
		{"rolling:59s", "", "", `--window: "rolling:59s" must be a positive duration of at least 1m`},
		{"rolling:0d", "", "", `--window: "rolling:0d" must be a positive duration of at least 1m`},
		{"rolling:367d", "", "", `--window: "rolling:367d" must be at most 366d`},
		{"rolling:1m0.5s", "", "", `--window: "rolling:1m0.5s" must be a whole number of seconds`},
		{"hour", "00:00", "", `--reset-at: only day, week and month windows have a reset time (hour windows start on the hour)`},
		{"5h-block", "09:00", "", `--reset-at: only day, week and month windows have a reset time, not 5h-block`},
		{"rolling:1h", "09:00", "", `--reset-at: only day, week and month windows have a reset time, not rolling`},
		{"day", "24:00", "", `--reset-at: "24:00" is not a time of day HH:MM from 00:00 to 23:59`},
		{"day", "9", "", `--reset-at: "9" is not a time of day HH:MM from 00:00 to 23:59`},
		{"day", "09:60", "", `--reset-at: "09:60" is not a time of day HH:MM from 00:00 to 23:59`},
		{"day", "09:00:30", "", `--reset-at: "09:00:30" is not a time of day HH:MM from 00:00 to 23:59`},
		{"day", "-1:00", "", `--reset-at: "-1:00" is not a time of day HH:MM from 00:00 to 23:59`},
		{"day", "mon 09:00", "", `--reset-at: "mon 09:00" names a weekday, which only week windows take`},
		{"month", "fri", "", `--reset-at: "fri" names a weekday, which only week windows take`},
		{"week", "09:00 mon", "", `--reset-at: "09:00 mon" must put the weekday first, as in "mon 09:00"`},
		{"week", "mon 09:00 x", "", `--reset-at: "mon 09:00 x" is not HH:MM (or WEEKDAY HH:MM for week windows)`},
		{"week", "mon tue", "", `--reset-at: "mon tue" is not a time of day HH:MM from 00:00 to 23:59`},
		{"week", "funday 09:00", "", `--reset-at: "funday 09:00" is not HH:MM (or WEEKDAY HH:MM for week windows)`},
		{"day", "", "Mars/Base", `--tz: unknown time zone "Mars/Base"`},
		{"day", "", "../etc/passwd", `--tz: unknown time zone "../etc/passwd"`},
		{"rolling:1h", "", "UTC", `--tz: rolling windows do not depend on a time zone; only hour, day, week and month windows take --tz`},
		{"5h-block", "", "Europe/Berlin", `--tz: 5h-block windows do not depend on a time zone; only hour, day, week and month windows take --tz`},
	}
	for _, tt := range tests {
		_, err := window.Parse(tt.window, tt.reset, tt.tz)
		if err == nil {
			t.Errorf("Parse(%q, %q, %q) = nil error, want %q", tt.window, tt.reset, tt.tz, tt.want)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("Parse(%q, %q, %q) error = %q, want %q", tt.window, tt.reset, tt.tz, got, tt.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q, %q, %q) error has more than one line", tt.window, tt.reset, tt.tz)
		}
	}
}

func TestParseString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"week", "week mon 00:00 Local"},
		{"week sun", "week sun 00:00 Local"},
		{"week Europe/Berlin sat 10:00", "week sat 10:00 Europe/Berlin"},
		{"day  07:45   UTC", "day 07:45 UTC"},
		{"rolling:2h", "rolling:2h"},
	}
	for _, tt := range tests {
		s, err := window.ParseString(tt.in)
		if err != nil {
			t.Errorf("ParseString(%q): %v", tt.in, err)
		} else if got := s.String(); got != tt.want {
			t.Errorf("ParseString(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, in := range []string{"", "day UTC Europe/Berlin", "rolling:2h UTC", "hour 09:00 UTC"} {
		if _, err := window.ParseString(in); err == nil {
			t.Errorf("ParseString(%q) = nil error, want one", in)
		}
	}
}

func TestValidate(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	valid := []window.Spec{
		{Kind: window.FiveHourBlock},
		{Kind: window.Rolling, Length: time.Hour},
		{Kind: window.Hourly},
		{Kind: window.Daily, ResetAt: 23*time.Hour + 59*time.Minute, Location: berlin},
		{Kind: window.Weekly, Weekday: time.Saturday},
		{Kind: window.Monthly, ResetAt: time.Hour},
	}
	for _, s := range valid {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v.Validate() = %v", s, err)
		}
	}
	invalid := []window.Spec{
		{},
		{Kind: 7},
		{Kind: window.Rolling},
		{Kind: window.Rolling, Length: time.Minute + time.Millisecond},
		{Kind: window.Daily, Length: time.Hour},
		{Kind: window.Daily, ResetAt: 24 * time.Hour},
		{Kind: window.Daily, ResetAt: -time.Minute},
		{Kind: window.Daily, ResetAt: time.Second},
		{Kind: window.Hourly, ResetAt: time.Minute},
		{Kind: window.Daily, Weekday: time.Monday},
		{Kind: window.Weekly, Weekday: 7},
		{Kind: window.Rolling, Length: time.Hour, Location: berlin},
	}
	for _, s := range invalid {
		err := s.Validate()
		if err == nil {
			t.Errorf("%+v.Validate() = nil, want an error", s)
		} else if !strings.HasPrefix(err.Error(), "--") {
			t.Errorf("%+v.Validate() = %q, want it to name a flag", s, err)
		}
	}
}

// TestTiling checks, for many random instants, every fixed kind and several
// zones, that windows contain their instant and tile time: start <= now <
// end, At(start) is the same window, and the window at end starts at end.
func TestTiling(t *testing.T) {
	zones := []string{"UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia", "America/Santiago"}
	resets := []string{"", "00:00", "01:30", "02:00", "02:30", "03:00", "23:59", "12:45"}
	rng := rand.New(rand.NewPCG(1, 2))
	lo := time.Date(1995, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	n := 1000
	if testing.Short() {
		n = 300
	}
	for _, zone := range zones {
		for _, kind := range []string{"hour", "day", "week", "month"} {
			for i := range n {
				reset := ""
				if kind != "hour" {
					reset = resets[i%len(resets)]
					if kind == "week" {
						reset = strings.TrimSpace([]string{"", "mon", "sun", "wed", "sat"}[i%5] + " " + reset)
					}
				}
				s := mustParse(t, kind, reset, zone)
				now := time.Unix(lo+rng.Int64N(hi-lo), rng.Int64N(1e9))
				if i%4 == 0 { // land near a DST change or a boundary more often
					start, _ := s.At(now)
					now = start.Add(time.Duration(rng.Int64N(int64(2*time.Hour))) - time.Hour)
				}
				checkTiling(t, s, now)
			}
		}
	}
}

// checkTiling checks the tiling property of s at now, and that a window
// is as long as its kind allows.
func checkTiling(t *testing.T, s window.Spec, now time.Time) {
	t.Helper()
	start, end := s.At(now)
	if now.Before(start) || !now.Before(end) {
		t.Fatalf("%s.At(%s) = [%s, %s), does not contain now", s, now, start, end)
	}
	if s2, e2 := s.At(start); !s2.Equal(start) || !e2.Equal(end) {
		t.Fatalf("%s.At(%s) = [%s, %s), want [%s, %s) (now %s)", s, start, s2, e2, start, end, now)
	}
	if s2, _ := s.At(end); !s2.Equal(end) {
		t.Fatalf("%s.At(%s) starts at %s, want %s (now %s)", s, end, s2, end, now)
	}
	if p, e2 := s.At(start.Add(-time.Nanosecond)); !e2.Equal(start) || !p.Before(start) {
		t.Fatalf("%s.At(%s) = [%s, %s), want it to end at %s", s, start.Add(-time.Nanosecond), p, e2, start)
	}
	if r := s.Reset(now); !r.Equal(end) {
		t.Fatalf("%s.Reset(%s) = %s, want %s", s, now, r, end)
	}
	// Pacific/Apia skipped 2011-12-30, so a day or week may be a day short.
	d := end.Sub(start)
	const day = 24 * time.Hour
	var lo, hi time.Duration
	switch s.Kind {
	case window.Hourly:
		lo, hi = time.Minute, 25*time.Hour
	case window.Daily:
		lo, hi = 20*time.Hour, 2*day
	case window.Weekly:
		lo, hi = 6*day-3*time.Hour, 7*day+3*time.Hour
	case window.Monthly:
		lo, hi = 27*day-3*time.Hour, 31*day+3*time.Hour
	}
	if d < lo || d > hi {
		t.Fatalf("%s.At(%s) = [%s, %s) lasts %s, want %s to %s", s, now, start, end, d, lo, hi)
	}
}

// TestResolveSkippedDay checks Pacific/Apia, which skipped 2011-12-30
// entirely (UTC-10 to UTC+14): the day window of the 29th ends where the
// 31st begins, and no empty window is returned.
func TestResolveSkippedDay(t *testing.T) {
	s := mustParse(t, "day", "", "Pacific/Apia")
	start, end := s.At(mustTime(t, "2011-12-30T09:00:00Z")) // 29th, 23:00 -10
	if want := mustTime(t, "2011-12-29T10:00:00Z"); !start.Equal(want) {
		t.Errorf("%s.At(...) start = %s, want %s", s, start.UTC(), want)
	}
	if want := mustTime(t, "2011-12-30T10:00:00Z"); !end.Equal(want) {
		t.Errorf("%s.At(...) end = %s, want %s (the 31st, 00:00 +14)", s, end.UTC(), want)
	}
}

func BenchmarkAt(b *testing.B) {
	for _, tt := range []struct{ window, reset, tz string }{
		{"hour", "", "UTC"},
		{"day", "02:30", "America/New_York"},
		{"week", "sun 09:00", "Australia/Lord_Howe"},
		{"month", "", "Europe/Berlin"},
		{"rolling:7d", "", ""},
	} {
		s := mustParse(b, tt.window, tt.reset, tt.tz)
		now := time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC)
		b.Run(strings.ReplaceAll(s.String(), "/", "_"), func(b *testing.B) {
			for b.Loop() {
				s.At(now)
			}
		})
	}
}
