// Package admin serves tokenmeter's admin JSON API under /api/: virtual
// keys, usage reports, the live status and limits, for the dashboard,
// alerts and scripts.
//
// Every request needs a credential. The admin token (Authorization:
// Bearer) opens every route but /api/me; a virtual key (x-api-key or
// Authorization: Bearer) opens /api/me only, which shows that key's own
// usage and nothing else. Only hashes of either are compared, in constant
// time; neither ever appears in a response, a log line or an error.
//
// Every route is listed in routes(). Errors are JSON:
// {"error":{"type":...,"message":...}}.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/authlimit"
	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// DefaultMaxBody bounds a request body (POST /api/keys).
const DefaultMaxBody = 64 << 10

// Store is what the admin API reads and changes: the virtual keys and the
// usage aggregates (a tokenmeter.Store is one).
type Store interface {
	tokenmeter.KeyStore
	Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error)
}

// Handler serves /api/*.
type Handler struct {
	// Store holds the keys and the ledger.
	Store Store
	// Limits, when set, serves /api/limits and the limits of /api/me; nil
	// answers /api/limits with 501.
	Limits limits.Store
	// TokenHash is the hex SHA-256 of the admin token (see LoadToken).
	// Empty refuses every admin request.
	TokenHash string
	// Loc is the default time zone of reports and status (?tz= overrides);
	// nil means time.Local.
	Loc *time.Location
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxBody bounds request bodies; zero means DefaultMaxBody.
	MaxBody int64
	// Sessions, when set, admits the dashboard's session cookie on
	// requests without a credential header (see session.go).
	Sessions Sessions
	// Limiter, when set, counts requests whose admin token or virtual key
	// is refused, per client address, and answers 429 with retry-after to
	// an address that failed too often (serve shares it with the
	// dashboard's log-in).
	Limiter *authlimit.Limiter

	log *slog.Logger
	mux *http.ServeMux
	// overviewCache keeps /api/overview's sums of past days (overview.go).
	overviewCache overviewCache
}

// New returns a Handler over store that admits the admin token hashing to
// tokenHash, logging to log.
func New(store Store, tokenHash string, log *slog.Logger) *Handler {
	h := &Handler{Store: store, TokenHash: tokenHash, log: log}
	h.mux = h.routes()
	return h
}

// role is who a request authenticated as.
type role int

const (
	roleAdmin role = iota + 1
	roleKey
)

// caller is the authenticated client of a request.
type caller struct {
	role role
	key  tokenmeter.VirtualKey // roleKey only
}

// handlerFunc is an admin route: it writes its response or returns an
// error, which writeError turns into one.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c caller) error

func (h *Handler) routes() *http.ServeMux {
	mux := http.NewServeMux()
	h.handle(mux, "/api/keys", roleAdmin, map[string]handlerFunc{"GET": h.listKeys, "POST": h.createKey})
	h.handle(mux, "/api/keys/{name}/revoke", roleAdmin, map[string]handlerFunc{"POST": h.revokeKey})
	h.handle(mux, "/api/keys/{name}/rotate", roleAdmin, map[string]handlerFunc{"POST": h.rotateKey})
	h.handle(mux, "/api/usage", roleAdmin, map[string]handlerFunc{"GET": h.usage})
	h.handle(mux, "/api/status", roleAdmin, map[string]handlerFunc{"GET": h.status})
	h.handle(mux, "/api/limits", roleAdmin, map[string]handlerFunc{"GET": h.limits})
	h.handle(mux, "/api/limits/{name}", roleAdmin, map[string]handlerFunc{"PUT": h.setLimit, "DELETE": h.deleteLimit})
	h.handle(mux, "/api/anomalies", roleAdmin, map[string]handlerFunc{"GET": h.anomalies})
	h.handle(mux, "/api/anomalies/{id}", roleAdmin, map[string]handlerFunc{"GET": h.anomaly})
	h.handle(mux, "/api/counters", roleAdmin, map[string]handlerFunc{"GET": h.counterSamples})
	h.handle(mux, "/api/me", roleKey, map[string]handlerFunc{"GET": h.me})
	h.handle(mux, "/api/requests", roleAdmin, map[string]handlerFunc{"GET": h.requests})
	h.handle(mux, "/api/me/requests", roleKey, map[string]handlerFunc{"GET": h.requests})
	h.handle(mux, "/api/hourly", roleAdmin, map[string]handlerFunc{"GET": h.hourly})
	h.handle(mux, "/api/overview", roleAdmin, map[string]handlerFunc{"GET": h.overview})
	h.handle(mux, "/api/me/overview", roleKey, map[string]handlerFunc{"GET": h.overview})
	h.handle(mux, "/api/me/hourly", roleKey, map[string]handlerFunc{"GET": h.hourly})
	h.handle(mux, "/api/alerts", roleAdmin, map[string]handlerFunc{"GET": h.alerts})
	h.handle(mux, "/api/alerts/{id}", roleAdmin, map[string]handlerFunc{"GET": h.alert})
	h.handle(mux, "/api/reconcile", roleAdmin, map[string]handlerFunc{"GET": h.reconcileRuns})
	h.handle(mux, "/api/reconcile/{id}", roleAdmin, map[string]handlerFunc{"GET": h.reconcileRun})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, &httpError{http.StatusNotFound, "not_found",
			fmt.Sprintf("no admin route %s %s (see docs/admin-api.md)", r.Method, r.URL.Path)})
	})
	return mux
}

// handle registers the methods of one path, open to callers of role;
// other methods get 405 (HEAD is served as GET).
func (h *Handler) handle(mux *http.ServeMux, path string, want role, methods map[string]handlerFunc) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		if methods[m] != nil {
			allow = append(allow, m)
		}
	}
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		c := r.Context().Value(callerKey{}).(caller)
		if c.role != want {
			if want == roleKey {
				h.writeError(w, r, &httpError{http.StatusForbidden, "forbidden", "/api/me answers for a virtual key: call it with the key (x-api-key or Authorization: Bearer); the admin token reads any key's usage at /api/usage?by=key"})
			} else {
				h.writeError(w, r, &httpError{http.StatusForbidden, "forbidden", "a virtual key may read only /api/me; this route needs the admin token"})
			}
			return
		}
		m := r.Method
		if m == http.MethodHead {
			m = http.MethodGet
		}
		fn := methods[m]
		if fn == nil {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			h.writeError(w, r, &httpError{http.StatusMethodNotAllowed, "method_not_allowed",
				fmt.Sprintf("%s %s is not allowed; use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))})
			return
		}
		if err := fn(w, r, c); err != nil {
			h.writeError(w, r, err)
		}
	})
}

type callerKey struct{}

// ServeHTTP authenticates the request (401 without a valid credential, on
// every path) and then routes it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	client := authlimit.Client(r.RemoteAddr)
	guess := h.Limiter != nil && (len(r.Header.Values("Authorization")) > 0 || len(r.Header.Values("X-Api-Key")) > 0)
	if guess {
		if ok, wait := h.Limiter.Allow(client); !ok {
			secs := int(wait.Seconds())
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			h.writeError(w, r, &httpError{http.StatusTooManyRequests, "rate_limited",
				fmt.Sprintf("too many requests with a wrong admin token or virtual key from this address; try again in %d s", secs)})
			return
		}
	}
	c, err := h.authenticate(r)
	if err != nil {
		var he *httpError
		if guess && errors.As(err, &he) && he.status == http.StatusUnauthorized {
			h.Limiter.Fail(client)
		}
		h.writeError(w, r, err)
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
}

// authenticate returns the caller of r: the admin, for the admin token in
// Authorization: Bearer; a virtual key, for an active key in x-api-key or
// Authorization: Bearer.
func (h *Handler) authenticate(r *http.Request) (caller, error) {
	var creds []string
	for _, v := range r.Header.Values("Authorization") {
		if len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
			creds = append(creds, strings.TrimSpace(v[7:]))
		}
	}
	for _, v := range r.Header.Values("X-Api-Key") {
		creds = append(creds, strings.TrimSpace(v))
	}
	if len(creds) == 0 {
		if c, ok, err := h.authenticateSession(r); ok {
			return c, err
		}
		return caller{}, unauthorized("this route needs the admin token (Authorization: Bearer TOKEN), or a virtual key for /api/me")
	}
	cred := creds[0]
	for _, c := range creds[1:] {
		if subtle.ConstantTimeCompare([]byte(c), []byte(cred)) != 1 {
			return caller{}, unauthorized("the request carries two different credentials")
		}
	}
	if strings.HasPrefix(cred, tokenmeter.KeyPrefix) {
		return h.authenticateKey(r.Context(), cred)
	}
	if h.TokenHash == "" || !tokenMatches(cred, h.TokenHash) {
		return caller{}, unauthorized("the admin token is not valid")
	}
	if len(r.Header.Values("Authorization")) == 0 {
		// The admin token goes in Authorization only, as documented.
		return caller{}, unauthorized("send the admin token as Authorization: Bearer TOKEN")
	}
	return caller{role: roleAdmin}, nil
}

// authenticateKey checks a virtual key as the gateway does: known, with a
// matching hash, neither revoked nor expired.
func (h *Handler) authenticateKey(ctx context.Context, secret string) (caller, error) {
	shown := tokenmeter.KeyDisplayPrefix(secret) + "…"
	hash := tokenmeter.HashKey(secret)
	k, err := h.Store.KeyByHash(ctx, hash)
	if tokenmeter.ErrorCode(err) == tokenmeter.ENOTFOUND {
		return caller{}, unauthorized("virtual key " + shown + " is not valid (unknown, or replaced by keys rotate)")
	} else if err != nil {
		return caller{}, fmt.Errorf("look up a virtual key: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) != 1 {
		return caller{}, unauthorized("virtual key " + shown + " is not valid (unknown, or replaced by keys rotate)")
	}
	switch k.Status(h.now()) {
	case tokenmeter.KeyRevoked:
		return caller{}, unauthorized("virtual key " + shown + " was revoked")
	case tokenmeter.KeyExpired:
		return caller{}, unauthorized("virtual key " + shown + " expired at " + k.Expires.Format(time.RFC3339))
	}
	return caller{role: roleKey, key: k}, nil
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) loc() *time.Location {
	if h.Loc != nil {
		return h.Loc
	}
	return time.Local
}

// httpError is an error with its own status, for the statuses that
// tokenmeter's error codes do not cover (403, 405, 501).
type httpError struct {
	status  int
	typ     string
	message string
}

func (e *httpError) Error() string { return e.message }

func unauthorized(msg string) error {
	return &httpError{http.StatusUnauthorized, "unauthorized", msg}
}

// codeStatus maps tokenmeter error codes to HTTP statuses.
var codeStatus = map[string]int{
	tokenmeter.EINVALID:      http.StatusBadRequest,
	tokenmeter.ENOTFOUND:     http.StatusNotFound,
	tokenmeter.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	tokenmeter.EUNAVAILABLE:  http.StatusServiceUnavailable,
	tokenmeter.EINTERNAL:     http.StatusInternalServerError,
	tokenmeter.ECONFLICT:     http.StatusConflict,
	tokenmeter.EUNAUTHORIZED: http.StatusUnauthorized,
}

// writeError answers with err as JSON. Internal errors are logged with
// their detail and answered with a generic message; the others carry their
// message, which never holds a secret.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	status, typ, msg := 0, "", ""
	if errors.As(err, &he) {
		status, typ, msg = he.status, he.typ, he.message
	} else {
		code := tokenmeter.ErrorCode(err)
		status, typ, msg = codeStatus[code], code, tokenmeter.ErrorMessage(err)
		if status == 0 {
			status = http.StatusInternalServerError
		}
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tokenmeter"`)
	}
	if status >= 500 {
		h.log.Error("admin API request failed", "method", r.Method, "path", logPath(r.URL.Path), "err", err)
	} else if status == http.StatusUnauthorized || status == http.StatusForbidden {
		h.log.Warn("admin API request refused", "method", r.Method, "path", logPath(r.URL.Path), "status", status, "reason", msg)
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"type": typ, "message": msg}})
}

// logPath returns path as it may be logged: a segment that looks like a
// credential (a virtual key or an admin token pasted where a name
// belongs) is cut to its displayable prefix, and the whole to 200 bytes.
func logPath(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, tokenmeter.KeyPrefix) || strings.HasPrefix(s, TokenPrefix) || len(s) > 40 {
			segs[i] = "(redacted)"
		}
	}
	path = strings.Join(segs, "/")
	if len(path) > 200 {
		path = path[:200] + "…"
	}
	return path
}

// writeJSON writes v as indented JSON, as the CLI's --json does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
