package tokenmeter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

func TestNewKeySecret(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		s := tokenmeter.NewKeySecret()
		if !tokenmeter.IsKeySecret(s) || len(s) != 46 {
			t.Fatalf("NewKeySecret() = %q: want tm- and 43 base62 characters", s)
		}
		if seen[s] {
			t.Fatalf("NewKeySecret() repeated %q", s)
		}
		seen[s] = true
		for _, r := range s[3:] {
			counts[r]++
		}
	}
	// 86,000 characters over 62 symbols: about 1,387 each.
	if len(counts) != 62 {
		t.Errorf("secrets use %d distinct characters, want 62", len(counts))
	}
	for r, n := range counts {
		if n < 1100 || n > 1700 {
			t.Errorf("character %q appears %d times in 86,000, want about 1,387", r, n)
		}
	}
}

func TestHashKey(t *testing.T) {
	// printf tm-abc | sha256sum
	if got, want := tokenmeter.HashKey("tm-abc"), "6c0b278b4b615212325cf33cd4a29df396f3ca483f9db917c2a3753b4761b4bb"; got != want {
		t.Errorf("HashKey(tm-abc) = %s, want %s", got, want)
	}
}

func TestKeyDisplayPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"tm-AbC123xyz":      "tm-AbC123",
		"tm-ab":             "tm-ab",
		"tm-a\nb\x1b[31mzz": "tm-a",
		"tm-":               "tm-",
		"tm-ab/cdef":        "tm-ab",
	} {
		if got := tokenmeter.KeyDisplayPrefix(in); got != want {
			t.Errorf("KeyDisplayPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateKeyName(t *testing.T) {
	for _, ok := range []string{"a", "ci.build-1", "Alice_2", strings.Repeat("x", 64)} {
		if err := tokenmeter.ValidateKeyName(ok); err != nil {
			t.Errorf("ValidateKeyName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "a b", "a/b", "é", strings.Repeat("x", 65), "tm-ci"} {
		if err := tokenmeter.ValidateKeyName(bad); tokenmeter.ErrorCode(err) != tokenmeter.EINVALID {
			t.Errorf("ValidateKeyName(%q) = %v, want EINVALID", bad, err)
		}
	}
	secret := tokenmeter.NewKeySecret()
	if err := tokenmeter.ValidateKeyName(secret); err == nil || strings.Contains(err.Error(), secret[9:]) {
		t.Errorf("ValidateKeyName(a key) = %v: want an error that does not echo it", err)
	}
}

func TestKeyStatusAndExpiry(t *testing.T) {
	exp, err := tokenmeter.ParseKeyExpiry("2026-12-31")
	if err != nil || !exp.Equal(time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("ParseKeyExpiry(date) = %v, %v", exp, err)
	}
	if got, err := tokenmeter.ParseKeyExpiry("2026-12-31T18:00:00+01:00"); err != nil || !got.Equal(time.Date(2026, 12, 31, 17, 0, 0, 0, time.UTC)) {
		t.Errorf("ParseKeyExpiry(RFC 3339) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "2026-13-01", "31.12.2026", "tomorrow"} {
		if _, err := tokenmeter.ParseKeyExpiry(bad); tokenmeter.ErrorCode(err) != tokenmeter.EINVALID {
			t.Errorf("ParseKeyExpiry(%q) = %v, want EINVALID", bad, err)
		}
	}
	k := tokenmeter.VirtualKey{Name: "k", Expires: exp}
	for _, tt := range []struct {
		now  time.Time
		want string
	}{
		{exp.Add(-time.Nanosecond), tokenmeter.KeyActive},
		{exp, tokenmeter.KeyExpired},
	} {
		if got := k.Status(tt.now); got != tt.want {
			t.Errorf("Status(%v) = %s, want %s", tt.now, got, tt.want)
		}
	}
	k.Revoked = exp.Add(-time.Hour)
	if got := k.Status(exp.Add(-2 * time.Hour)); got != tokenmeter.KeyRevoked {
		t.Errorf("revoked key: Status = %s", got)
	}
	if s := (tokenmeter.VirtualKey{Name: "n", Prefix: "tm-abcdef", Hash: "h"}).String(); s != "n (tm-abcdef…)" {
		t.Errorf("String() = %q", s)
	}
}

func TestModelBase(t *testing.T) {
	for in, want := range map[string]string{
		"claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
		"gpt-4o-2024-08-06":          "gpt-4o",
		"claude-sonnet-4-5":          "claude-sonnet-4-5",
		"gpt-5":                      "gpt-5",
		"model-2025092":              "model-2025092", // not a date
		"-20250929":                  "-20250929",
		"":                           "",
	} {
		if got := tokenmeter.ModelBase(in); got != want {
			t.Errorf("ModelBase(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tt := range []struct {
		scope, model string
		want         bool
	}{
		{"model:claude-sonnet-4-5", "claude-sonnet-4-5-20250929", true},
		{"model:claude-sonnet-4-5-20250929", "claude-sonnet-4-5", true},
		{"model:gpt-4o", "gpt-4o-2024-08-06", true},
		{"model:gpt-4o", "gpt-4o-mini", false},
		{"model:claude-sonnet-4-5", "claude-sonnet-4-5-1m", false},
		{"model:claude-sonnet-4-5", "", false},
	} {
		if got := tokenmeter.ScopeApplies(tt.scope, "", "", tt.model); got != tt.want {
			t.Errorf("ScopeApplies(%q, model %q) = %v, want %v", tt.scope, tt.model, got, tt.want)
		}
	}
}
