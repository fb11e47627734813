package server_test

import (
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/server"
)

func TestHostAllowed(t *testing.T) {
	public := []string{"tokenmeter.example.com", "Dash.Example.org."}
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"127.0.0.1:8787", true},
		{"127.0.0.1", true},
		{"127.9.9.9:80", true},
		{"[::1]:8787", true},
		{"localhost:8787", true},
		{"LOCALHOST", true},
		{"localhost.", true},
		{"app.localhost:8787", true},
		{"192.168.1.20:8787", true}, // an address is never a rebound name
		{"[fe80::1]:8787", true},
		{"tokenmeter.example.com", true},
		{"TOKENMETER.EXAMPLE.COM.:443", true},
		{"dash.example.org", true},
		{"evil.example", false},
		{"evil.example:8787", false},
		{"localhost.evil.example", false},
		{"127.0.0.1.nip.io", false},
		{"tokenmeter.example.com.evil.example", false},
		{"", false},
		{":8787", false},
	} {
		if got := server.HostAllowed(tt.host, public); got != tt.want {
			t.Errorf("HostAllowed(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

// FuzzHostAllowed: no Host header panics the check, and a name that is
// neither loopback, an address nor listed is refused.
func FuzzHostAllowed(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8787", "evil.example", "[::1]", "localhost", "x.localhost.", "[", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		server.HostAllowed(host, []string{"tm.example.com"})
		if server.HostAllowed(host, nil) && !server.HostAllowed(host, []string{"other.example"}) {
			t.Fatalf("HostAllowed(%q) depends on an unrelated public name", host)
		}
	})
}
