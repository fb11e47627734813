// Package authlimit slows down the guessing of credentials: it counts
// failed log-ins (the dashboard's form, the admin API's bearer token) per
// client address and refuses further attempts from an address that failed
// too often, for a while, with a retry-after.
//
// What it guarantees:
//
//   - An address gets Burst failed attempts at once, then one more every
//     Refill: a token chosen by a person (the admin token may be one) cannot
//     be tried faster than that. A refused attempt is not checked at all, so
//     it tells the guesser nothing, and it does not count as a failure.
//   - IPv6 clients are counted by their /64 network, which one host can
//     fill with addresses; IPv4 clients by address. X-Forwarded-For and
//     similar headers are not trusted: the key is the connection's peer.
//   - Memory is bounded: at most MaxClients addresses are tracked; those
//     whose allowance is full again are forgotten first.
//   - Successful log-ins are never delayed and do not touch the count.
package authlimit

import (
	"math"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Defaults of a Limiter.
const (
	// DefaultBurst is how many failed attempts an address may make at once.
	DefaultBurst = 10
	// DefaultRefill is how often an address earns one more attempt.
	DefaultRefill = 6 * time.Second
	// DefaultMaxClients bounds the addresses tracked.
	DefaultMaxClients = 10_000
)

// Limiter counts failed attempts per client. The zero value is not
// usable; call New. It is safe for concurrent use.
type Limiter struct {
	// Burst, Refill and MaxClients tune the limiter (see the Default*
	// constants).
	Burst      int
	Refill     time.Duration
	MaxClients int
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	clients map[netip.Prefix]*bucket
}

// bucket is one client's allowance: tokens (fractional) at time at.
type bucket struct {
	tokens float64
	at     time.Time
}

// New returns a Limiter with the default settings.
func New() *Limiter {
	return &Limiter{Burst: DefaultBurst, Refill: DefaultRefill, MaxClients: DefaultMaxClients, clients: map[netip.Prefix]*bucket{}}
}

func (l *Limiter) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Client returns the key remoteAddr (an http.Request's RemoteAddr,
// "host:port") is counted under.
func Client(remoteAddr string) netip.Prefix {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{} // unknown peers share one allowance
	}
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// level returns b's tokens at now, refilled.
func (l *Limiter) level(b *bucket, now time.Time) float64 {
	if b == nil {
		return float64(l.Burst)
	}
	earned := float64(now.Sub(b.at)) / float64(l.Refill)
	return math.Min(float64(l.Burst), b.tokens+earned)
}

// Allow reports whether client may make an attempt now; when not, wait is
// how long until it may.
func (l *Limiter) Allow(client netip.Prefix) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	level := l.level(l.clients[client], now)
	if level >= 1 {
		return true, 0
	}
	wait = time.Duration((1 - level) * float64(l.Refill))
	return false, max(wait.Round(time.Second), time.Second)
}

// Fail records a failed attempt of client.
func (l *Limiter) Fail(client netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.clients[client]
	level := l.level(b, now)
	if b == nil {
		if len(l.clients) >= l.MaxClients {
			l.evict(now)
		}
		b = &bucket{}
		l.clients[client] = b
	}
	b.tokens, b.at = max(level-1, 0), now
}

// evict forgets clients whose allowance is full again, and if none is,
// the one closest to full.
func (l *Limiter) evict(now time.Time) {
	var fullest netip.Prefix
	best := -1.0
	for c, b := range l.clients {
		lv := l.level(b, now)
		if lv >= float64(l.Burst) {
			delete(l.clients, c)
			continue
		}
		if lv > best {
			best, fullest = lv, c
		}
	}
	if len(l.clients) >= l.MaxClients {
		delete(l.clients, fullest)
	}
}

// Clients returns how many clients are tracked (tests, metrics).
func (l *Limiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
