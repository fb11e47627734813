package proxy

import (
	"net/http"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/counters"
)

// CounterObserver receives the rate-limit headers, status and credential of every
// upstream response (a *counters.Watcher). Observe must not block: it runs
// on the response path.
type CounterObserver interface {
	Observe(counters.Observation)
}

// CredentialNoteInterval is how often, at most, the gateway asks the
// observer to record that a provider credential was used.
const CredentialNoteInterval = time.Minute

// maxNotedCredentials bounds the credentials remembered; the memory is
// emptied when full.
const maxNotedCredentials = 10000

// observeState is the proxy's side of the counter watch: when each
// credential was last noted.
type observeState struct {
	mu    sync.Mutex
	noted map[string]time.Time
}

// observe hands resp's rate-limit headers to the Observer. It copies only
// those headers and computes the credential's hash; everything else
// happens on the observer's goroutine.
func (p *Proxy) observe(c *call, resp *http.Response) {
	if p.Counters == nil {
		return
	}
	now := p.Now()
	secret := c.upstreamCred
	if !c.virtual {
		secret = credentialSecret(resp.Request.Header)
	}
	// The provider's counters are read when it accepts the request, and a
	// non-streamed reply's headers come only at its end: the reading is
	// dated by the call's start, so a slow call's older reading sorts
	// before a quicker, later call's (the detector skips readings older
	// than the newest it has seen).
	o := counters.Observation{Time: c.start, Provider: c.rt.Name, Status: resp.StatusCode, Headers: counters.Select(resp.Header)}
	if secret != "" {
		// A pass-through call's principal is already its credential's ID
		// (prepare hashed it); a virtual key's call hashes the route's.
		o.Credential.ID = c.principal
		if c.virtual || o.Credential.ID == "" {
			o.Credential.ID = tokenmeter.CredentialID(secret)
		}
		// The route's credential is noted as such (it stands for the
		// virtual keys), apart from any pass-through use of the same key.
		due := o.Credential.ID
		if c.virtual {
			due += " virtual"
		}
		if p.obs.due(due, now) {
			o.NoteCredential = true
			o.Credential.Hint = tokenmeter.CredentialHint(secret)
			o.Credential.VirtualKeys = c.virtual
		}
	}
	p.Counters.Observe(o)
}

// due reports whether credential id should be noted at now, and if so
// remembers that it was.
func (s *observeState) due(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.noted[id]; ok && now.Sub(last) < CredentialNoteInterval && !now.Before(last) {
		return false
	}
	if s.noted == nil || len(s.noted) >= maxNotedCredentials {
		s.noted = make(map[string]time.Time)
	}
	s.noted[id] = now
	return true
}
