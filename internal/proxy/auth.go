package proxy

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// DefaultKeyCacheTTL is how long the gateway reuses a virtual key it has
// looked up: the longest a revocation or rotation made elsewhere (keys
// revoke in another process) takes to reach it.
const DefaultKeyCacheTTL = 500 * time.Millisecond

// maxCachedKeys bounds the key cache; it is emptied when full. Only keys
// that exist are cached, so its size is bounded by the store's anyway.
const maxCachedKeys = 10000

// KeyLookup finds virtual keys by the hash of their secret (a
// tokenmeter.KeyStore does).
type KeyLookup interface {
	KeyByHash(ctx context.Context, hash string) (tokenmeter.VirtualKey, error)
}

type cachedKey struct {
	key tokenmeter.VirtualKey
	at  time.Time
}

// authenticate decides whether the request may pass and as whom. A request
// carrying a virtual key (tm-..., in x-api-key or Authorization: Bearer) is
// checked against Keys and, if valid, attributed to the key and given the
// route's provider credential (see rewrite). Any other request passes with
// its own credential, unless RequireVirtualKey is set. On refusal it
// answers the client in the provider's error shape and returns false.
func (p *Proxy) authenticate(w http.ResponseWriter, r *http.Request, c *call) bool {
	secret, conflict := virtualKey(r.Header)
	refuse := func(status int, reason, msg string) bool {
		shown := "none"
		if secret != "" {
			shown = tokenmeter.KeyDisplayPrefix(secret) + "…"
		}
		level := slog.LevelWarn
		if status >= 500 {
			level = slog.LevelError
		}
		p.log.Log(r.Context(), level, "request refused", "route", c.rt.Name, "request", c.id, "key", shown, "reason", reason)
		c.refuse(w, status, msg)
		return false
	}
	switch {
	case conflict:
		return refuse(http.StatusUnauthorized, "two different virtual keys", "the request carries two different virtual keys")
	case secret == "" && p.RequireVirtualKey:
		return refuse(http.StatusUnauthorized, "no virtual key", "this gateway requires a tokenmeter virtual key (tm-...) in x-api-key or Authorization: Bearer")
	case secret == "":
		return true
	case p.Keys == nil:
		return refuse(http.StatusUnauthorized, "virtual keys disabled", "virtual keys are not enabled on this gateway")
	}
	shown := tokenmeter.KeyDisplayPrefix(secret) + "…"
	hash := tokenmeter.HashKey(secret)
	k, err := p.lookupKey(r.Context(), hash)
	if tokenmeter.ErrorCode(err) == tokenmeter.ENOTFOUND {
		return refuse(http.StatusUnauthorized, "unknown virtual key", "virtual key "+shown+" is not valid (unknown, or replaced by keys rotate)")
	} else if err != nil {
		p.log.Error("cannot look up a virtual key", "route", c.rt.Name, "request", c.id, "err", err)
		c.refuse(w, http.StatusServiceUnavailable, "the virtual key cannot be checked right now")
		return false
	}
	// The lookup is keyed by the SHA-256 of the secret, so its timing says
	// nothing about the secret; the final comparison takes constant time.
	if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) != 1 {
		return refuse(http.StatusUnauthorized, "unknown virtual key", "virtual key "+shown+" is not valid (unknown, or replaced by keys rotate)")
	}
	switch k.Status(p.Now()) {
	case tokenmeter.KeyRevoked:
		return refuse(http.StatusUnauthorized, "revoked virtual key "+k.Name, "virtual key "+shown+" was revoked")
	case tokenmeter.KeyExpired:
		return refuse(http.StatusUnauthorized, "expired virtual key "+k.Name, "virtual key "+shown+" expired at "+k.Expires.Format(time.RFC3339))
	}
	cred := p.Credentials[c.rt.Name]
	if cred == "" {
		return refuse(http.StatusInternalServerError, "no provider credential configured for route "+c.rt.Name+" (see docs/keys.md)",
			"no provider credential is configured for route "+c.rt.Name+", so virtual keys cannot be used on it; the gateway's log says how to set one")
	}
	c.virtual, c.principal, c.keyProject, c.upstreamCred = true, "key:"+k.Name, k.Project, cred
	return true
}

// lookupKey returns the key whose hash is hash, from the cache when it was
// looked up less than KeyCacheTTL ago.
func (p *Proxy) lookupKey(ctx context.Context, hash string) (tokenmeter.VirtualKey, error) {
	ttl := p.KeyCacheTTL
	now := time.Now()
	if ttl > 0 {
		p.keyMu.Lock()
		e, ok := p.keyCache[hash]
		p.keyMu.Unlock()
		if ok && now.Sub(e.at) < ttl {
			return e.key, nil
		}
	}
	k, err := p.Keys.KeyByHash(ctx, hash)
	if err != nil || ttl <= 0 {
		return k, err
	}
	p.keyMu.Lock()
	if p.keyCache == nil || len(p.keyCache) >= maxCachedKeys {
		p.keyCache = make(map[string]cachedKey)
	}
	p.keyCache[hash] = cachedKey{k, now}
	p.keyMu.Unlock()
	return k, nil
}

// virtualKey returns the virtual key the request carries in any x-api-key
// or Authorization: Bearer header, and whether it carries two different
// ones.
func virtualKey(h http.Header) (secret string, conflict bool) {
	check := func(v string) {
		v = strings.TrimSpace(v)
		if !strings.HasPrefix(v, tokenmeter.KeyPrefix) {
			return
		}
		if secret != "" && secret != v {
			conflict = true
		}
		secret = v
	}
	for _, v := range h.Values("X-Api-Key") {
		check(v)
	}
	for _, v := range h.Values("Authorization") {
		if len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
			check(v[7:])
		}
	}
	return secret, conflict
}

// setCredential replaces whatever credential the client sent with the
// route's provider credential, in the form the route's API expects.
func setCredential(h http.Header, wire, cred string) {
	h.Del("X-Api-Key")
	h.Del("Authorization")
	if wire == Anthropic {
		h.Set("X-Api-Key", cred)
	} else {
		h.Set("Authorization", "Bearer "+cred)
	}
}
