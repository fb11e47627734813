package authlimit_test

import (
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/authlimit"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLimiter(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	l := authlimit.New()
	l.Now = c.now
	a, b := authlimit.Client("192.0.2.7:51234"), authlimit.Client("192.0.2.8:40000")
	for i := range authlimit.DefaultBurst {
		if ok, _ := l.Allow(a); !ok {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
		l.Fail(a)
	}
	ok, wait := l.Allow(a)
	if ok || wait != authlimit.DefaultRefill {
		t.Errorf("after %d failures: allowed %v, wait %v; want refused for %v", authlimit.DefaultBurst, ok, wait, authlimit.DefaultRefill)
	}
	if ok, _ := l.Allow(b); !ok {
		t.Error("another address is refused")
	}
	c.t = c.t.Add(authlimit.DefaultRefill / 2)
	if ok, wait := l.Allow(a); ok || wait != 3*time.Second {
		t.Errorf("half a refill later: allowed %v, wait %v; want refused for 3s", ok, wait)
	}
	c.t = c.t.Add(authlimit.DefaultRefill / 2)
	if ok, _ := l.Allow(a); !ok {
		t.Error("a refill later: still refused")
	}
	l.Fail(a)
	if ok, _ := l.Allow(a); ok {
		t.Error("one attempt earned, used, and allowed again")
	}
	c.t = c.t.Add(time.Duration(authlimit.DefaultBurst) * authlimit.DefaultRefill)
	for i := range authlimit.DefaultBurst {
		if ok, _ := l.Allow(a); !ok {
			t.Fatalf("after a full refill, attempt %d refused", i+1)
		}
		l.Fail(a)
	}
}

func TestClient(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"2001:db8:1:2:aaaa::1]:1", ""}, // malformed: the shared unknown key
		{"[2001:db8:1:2::1]:443", "[2001:db8:1:2:ffff::9]:80"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1:9"},
		{"[fe80::1%eth0]:80", "[fe80::2]:80"},
	} {
		if authlimit.Client(tt.a) != authlimit.Client(tt.b) {
			t.Errorf("Client(%q) = %v, Client(%q) = %v; want one key", tt.a, authlimit.Client(tt.a), tt.b, authlimit.Client(tt.b))
		}
	}
	if authlimit.Client("192.0.2.1:1") == authlimit.Client("192.0.2.2:1") || authlimit.Client("[2001:db8:1:2::1]:1") == authlimit.Client("[2001:db8:1:3::1]:1") {
		t.Error("different IPv4 addresses or IPv6 /64s share a key")
	}
}

// TestMaxClients: a flood of addresses keeps at most MaxClients entries,
// forgetting those whose allowance is full first.
func TestMaxClients(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	l := authlimit.New()
	l.Now, l.MaxClients = c.now, 100
	for i := range 1000 {
		l.Fail(authlimit.Client("10.0." + itoa(i/250) + "." + itoa(i%250) + ":1"))
		if n := l.Clients(); n > 100 {
			t.Fatalf("%d clients tracked, at most 100", n)
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
