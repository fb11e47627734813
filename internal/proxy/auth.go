package proxy

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
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
// carrying a virtual key (tm-..., in any header or query parameter, in any
// of the forms findVirtualKey reads) is checked against Keys and, if valid,
// attributed to the key and given the route's provider credential (see
// rewrite); the returned keyClaim says where the key was, for the caller to
// remove it before forwarding. Any other request passes with its own
// credential, unless RequireVirtualKey is set. On refusal it answers the
// client in the provider's error shape and returns false.
func (p *Proxy) authenticate(w http.ResponseWriter, r *http.Request, c *call) (keyClaim, bool) {
	k := findVirtualKey(r.Header, r.URL.RawQuery)
	secret := k.secret
	refuse := func(status int, reason, msg string) (keyClaim, bool) {
		shown := "none"
		if secret != "" {
			shown = tokenmeter.KeyDisplayPrefix(secret) + "…"
		}
		level := slog.LevelWarn
		if status >= 500 {
			level = slog.LevelError
		}
		p.log.Log(r.Context(), level, "request refused", "route", c.rt.Name, "request", c.id, "key", shown, "where", k.where, "reason", reason)
		c.refuse(w, status, msg)
		return keyClaim{}, false
	}
	switch {
	case k.conflict:
		return refuse(http.StatusUnauthorized, "two different virtual keys", "the request carries two different virtual keys")
	case secret == "" && p.RequireVirtualKey:
		return refuse(http.StatusUnauthorized, "no virtual key", "this gateway requires a tokenmeter virtual key (tm-...) in x-api-key or Authorization: Bearer")
	case secret == "":
		return k, true
	case p.Keys == nil:
		return refuse(http.StatusUnauthorized, "virtual keys disabled", "virtual keys are not enabled on this gateway")
	}
	shown := tokenmeter.KeyDisplayPrefix(secret) + "…"
	invalid := "virtual key " + shown + " (" + k.where + ") is not valid (unknown, or replaced by keys rotate)"
	unknown := "unknown virtual key"
	if p.KeysWhere != "" {
		unknown += " (not in the ledger at " + p.KeysWhere + ": created with another --data or --config?)"
	}
	hash := tokenmeter.HashKey(secret)
	key, err := p.lookupKey(r.Context(), hash)
	if tokenmeter.ErrorCode(err) == tokenmeter.ENOTFOUND {
		return refuse(http.StatusUnauthorized, unknown, invalid)
	} else if err != nil {
		p.log.Error("cannot look up a virtual key", "route", c.rt.Name, "request", c.id, "err", err)
		c.refuse(w, http.StatusServiceUnavailable, "the virtual key cannot be checked right now")
		return keyClaim{}, false
	}
	// The lookup is keyed by the SHA-256 of the secret, so its timing says
	// nothing about the secret; the final comparison takes constant time.
	if subtle.ConstantTimeCompare([]byte(key.Hash), []byte(hash)) != 1 {
		return refuse(http.StatusUnauthorized, unknown, invalid)
	}
	switch key.Status(p.Now()) {
	case tokenmeter.KeyRevoked:
		return refuse(http.StatusUnauthorized, "revoked virtual key "+key.Name, "virtual key "+shown+" was revoked")
	case tokenmeter.KeyExpired:
		return refuse(http.StatusUnauthorized, "expired virtual key "+key.Name, "virtual key "+shown+" expired at "+key.Expires.Format(time.RFC3339))
	}
	cred := p.Credentials[c.rt.Name]
	if cred == "" {
		fix := "see docs/keys.md"
		if f := p.CredentialFix[c.rt.Name]; f != "" {
			fix = f
		}
		return refuse(http.StatusInternalServerError, "no provider credential configured for route "+c.rt.Name+" ("+fix+")",
			"no provider credential is configured for route "+c.rt.Name+", so virtual keys cannot be used on it; the gateway's log says how to set one")
	}
	c.virtual, c.principal, c.keyProject, c.upstreamCred = true, "key:"+key.Name, key.Project, cred
	return k, true
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

// Where a virtual key can hide, and how findVirtualKey finds it.
//
// Every header value (except tokenmeter's own x-tokenmeter-* headers, which
// never leave the gateway) and every query parameter's name and value is
// read two ways:
//
//   - As a credential: the whole value, or what follows its first word (an
//     auth scheme of any name and case, then any run of whitespace), or the
//     user and the password of Basic auth. If that starts with "tm-" (any
//     case) and holds no whitespace, it is a virtual key, well-formed or
//     not: "Authorization: tm-…", "Bearer<TAB>tm-…", "api-key: tm-…",
//     "x-goog-api-key: tm-…", "?key=tm-…". User-Agent is not read this way
//     (a product may be called tm-something).
//   - Anywhere in the value: "tm-" (any case) at the start of a word,
//     followed by exactly the 43 base62 characters of a key and the end of
//     the word, is a virtual key: "Bearer=tm-…", a cookie "k=tm-…", a
//     quoted key.
//
// A request whose only tm- text is neither (a word like "tm-cli/1.0" in a
// longer value) carries no key.

// keyClaim is what findVirtualKey found: the virtual key a request
// carries, if any, and every place that carries one.
type keyClaim struct {
	// secret is the key found; "" if none.
	secret string
	// conflict says a second, different key was found.
	conflict bool
	// where names the place secret was found, for messages: "header NAME"
	// or "query string". Never the key.
	where string
	// headers are the names of the headers that carry a key.
	headers []string
	// query is the raw query without the parameters that carry a key;
	// queryHit says there were some.
	query    string
	queryHit bool
}

func (k *keyClaim) add(secret, where string) {
	switch {
	case k.secret == "":
		k.secret, k.where = secret, where
	case k.secret != secret:
		k.conflict = true
	}
}

// scrub removes every header and query parameter that carried the key
// from h and u, so that no form of it goes upstream. The route's provider
// credential is set afterwards, by rewrite.
func (k *keyClaim) scrub(h http.Header, u *url.URL) {
	for _, name := range k.headers {
		delete(h, name)
	}
	if k.queryHit {
		u.RawQuery = k.query
	}
}

// findVirtualKey returns the virtual keys the headers h and the raw query
// string carry (see the comment above keyClaim).
func findVirtualKey(h http.Header, rawQuery string) keyClaim {
	var k keyClaim
	for name, vs := range h {
		if ownHeader(name) {
			continue
		}
		whole := len(name) != len("User-Agent") || !strings.EqualFold(name, "User-Agent")
		for _, v := range vs {
			if !mayHoldKey(v) {
				continue
			}
			hit := false
			scanValue(v, whole, func(secret string) {
				hit = true
				k.add(secret, "header "+name)
			})
			if hit {
				k.headers = append(k.headers, name)
				break
			}
		}
	}
	if rawQuery != "" {
		k.scanQuery(rawQuery)
	}
	return k
}

// scanQuery reads every parameter of the raw query string, and sets
// k.query to the query without those that carry a key. Parameters are
// kept as the client escaped them.
func (k *keyClaim) scanQuery(raw string) {
	var kept strings.Builder
	for rest := raw; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		hit := false
		name, value, _ := strings.Cut(pair, "=")
		for _, part := range [2]string{name, value} {
			if d, err := url.QueryUnescape(part); err == nil {
				part = d
			}
			if mayHoldKey(part) {
				scanValue(part, true, func(secret string) {
					hit = true
					k.add(secret, "query string")
				})
			}
		}
		if hit {
			k.queryHit = true
			continue
		}
		if kept.Len() > 0 {
			kept.WriteByte('&')
		}
		kept.WriteString(pair)
	}
	if k.queryHit {
		k.query = kept.String()
	}
}

// spaces are the whitespace bytes a client may put between an auth scheme
// and its credential.
const spaces = " \t\v\f\r\n"

// ownHeader reports whether name is one of tokenmeter's own x-tokenmeter-*
// headers, which are stripped before forwarding.
func ownHeader(name string) bool {
	const p = "x-tokenmeter-"
	return len(name) >= len(p) && name[0]|0x20 == 'x' && strings.EqualFold(name[:len(p)], p)
}

// mayHoldKey is the cheap test run on every value: false means v certainly
// carries no key (no "tm-" in any case, and not Basic auth).
func mayHoldKey(v string) bool {
	for i := 0; i < len(v); {
		j := strings.IndexByte(v[i:], '-')
		if j < 0 {
			break
		}
		j += i
		if j >= 2 && v[j-1]|0x20 == 'm' && v[j-2]|0x20 == 't' {
			return true
		}
		i = j + 1
	}
	i := 0
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	t := v[i:]
	return len(t) > 6 && t[0]|0x20 == 'b' && strings.EqualFold(t[:5], "basic") && isSpace(t[5])
}

func isSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// hasKeyPrefix reports whether s starts with "tm-" in any case.
func hasKeyPrefix(s string) bool {
	return len(s) >= 3 && s[0]|0x20 == 't' && s[1]|0x20 == 'm' && s[2] == '-'
}

// scanValue calls found with each virtual key in v. With whole, v is also
// read as a credential (bare, after an auth scheme, or Basic auth).
func scanValue(v string, whole bool, found func(secret string)) {
	if whole {
		t := strings.Trim(v, spaces)
		cred := t
		if i := strings.IndexAny(t, spaces); i > 0 {
			scheme, rest := t[:i], strings.TrimLeft(t[i:], spaces)
			cred = rest
			if strings.EqualFold(scheme, "basic") {
				if user, pass, ok := decodeBasic(rest); ok {
					scanValue(user, true, found)
					scanValue(pass, true, found)
				}
				cred = ""
			}
		}
		if hasKeyPrefix(cred) && !strings.ContainsAny(cred, spaces) {
			found(cred)
			return
		}
	}
	for i := 0; i < len(v); {
		j := strings.IndexByte(v[i:], '-')
		if j < 0 {
			return
		}
		j += i
		i = j + 1
		if j < 2 || v[j-1]|0x20 != 'm' || v[j-2]|0x20 != 't' || (j > 2 && wordByte(v[j-3])) {
			continue
		}
		end := j + 1
		for end < len(v) && base62(v[end]) {
			end++
		}
		if end < len(v) && wordByte(v[end]) {
			continue
		}
		if tokenmeter.IsKeySecret(tokenmeter.KeyPrefix + v[j+1:end]) {
			found(v[j-2 : end])
		}
		i = end
	}
}

// decodeBasic returns the user and password of Basic auth credentials.
func decodeBasic(s string) (user, pass string, ok bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return "", "", false
		}
	}
	user, pass, _ = strings.Cut(string(b), ":")
	return user, pass, true
}

func base62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// wordByte reports whether c continues a word around a key: a base62
// character, '-' or '_'.
func wordByte(c byte) bool { return base62(c) || c == '-' || c == '_' }

// credentialSecret returns the pass-through credential in h, the one the
// principal is a hash of: x-api-key, else the token of Authorization:
// Bearer, else the whole Authorization header. It is never a virtual key:
// a request carrying one was authenticated or refused before this is
// read, and a value that still holds one yields "".
func credentialSecret(h http.Header) string {
	s := h.Get("X-Api-Key")
	if s == "" {
		s = h.Get("Authorization")
		if tok, ok := strings.CutPrefix(s, "Bearer "); ok {
			s = strings.TrimSpace(tok)
		}
	}
	if s != "" && mayHoldKey(s) {
		hit := false
		scanValue(s, true, func(string) { hit = true })
		if hit {
			return ""
		}
	}
	return s
}
