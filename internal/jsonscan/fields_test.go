package jsonscan_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
)

func TestBoundedString(t *testing.T) {
	tests := []struct {
		v, want string
		err     string // "" for none; "long" for ErrTooLong
	}{
		{`"gpt-4o"`, "gpt-4o", ""},
		{` null `, "", ""},
		{``, "", ""},
		{`"` + strings.Repeat("m", 8) + `"`, strings.Repeat("m", 8), ""},
		{`"` + strings.Repeat("m", 9) + `"`, "", "long"},
		{`"` + strings.Repeat(`\u00e9`, 4) + `"`, strings.Repeat("é", 4), ""}, // 8 bytes decoded
		{`"` + strings.Repeat(`\u00e9`, 5) + `"`, "", "long"},
		{`"` + strings.Repeat("m", 1<<20) + `"`, "", "long"},
		{`"\x"`, "", "not a valid string"},
		{`["SECRET"]`, "", "not a string (an array)"},
		{`-SECRET`, "", "not a string (not JSON)"},
		{`12`, "", "not a string (a number)"},
	}
	for _, tt := range tests {
		got, err := jsonscan.BoundedString([]byte(tt.v), 8)
		switch {
		case tt.err == "long" && !errors.Is(err, jsonscan.ErrTooLong):
			t.Errorf("BoundedString(%.40s) = %q, %v; want ErrTooLong", tt.v, got, err)
		case tt.err != "" && tt.err != "long" && (err == nil || err.Error() != tt.err):
			t.Errorf("BoundedString(%.40s) = %q, %v; want error %q", tt.v, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("BoundedString(%.40s) = %q, %v; want %q", tt.v, got, err, tt.want)
		}
	}
}

func TestKind(t *testing.T) {
	for v, want := range map[string]string{
		`"x"`: "a string", `{}`: "an object", ` [1]`: "an array", `true`: "a boolean", `false`: "a boolean",
		`null`: "null", `-1.5e+3`: "a number", `0`: "a number", `-SECRET`: "not JSON", `12abc`: "not JSON", ``: "nothing", `x`: "not JSON",
	} {
		if got := jsonscan.Kind([]byte(v)); got != want {
			t.Errorf("Kind(%q) = %q, want %q", v, got, want)
		}
	}
}
