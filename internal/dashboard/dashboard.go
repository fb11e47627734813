// Package dashboard serves tokenmeter's web dashboard: a small page app
// (embedded HTML, CSS and JavaScript, with uPlot for charts) that reads
// everything it shows from the admin JSON API (/api/*), and the log-in
// that gives a browser a session for it.
//
// What it guarantees:
//   - Offline: every asset is embedded in the binary; pages load nothing
//     from another origin (the Content-Security-Policy says so too).
//   - Access: the app, its session endpoint and (through admin.Sessions)
//     /api/* need a session. Log-in takes the admin token, or a virtual
//     key, which then sees only its own usage (/api/me*). The session
//     cookie is a random id (HttpOnly, SameSite=Strict, Secure under TLS);
//     neither the token nor the key is ever in the cookie, the page, a log
//     line or an error: the server keeps only the key's hash.
//   - CSRF: every mutating request of a session must carry the session's
//     CSRF token in X-CSRF-Token (and, when sent, an Origin of this host).
//   - Sessions live in memory for at most SessionTTL; a restart, log-out,
//     or the revocation or rotation of the session's key ends them.
package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/authlimit"
)

//go:embed assets
var assets embed.FS

// Defaults for Dashboard's tuning fields.
const (
	DefaultSessionTTL  = 12 * time.Hour
	DefaultMaxSessions = 10000
)

// CookieName is the session cookie.
const CookieName = "tokenmeter_session"

// CSRFHeader carries a session's CSRF token on mutating requests.
const CSRFHeader = "X-CSRF-Token"

// Auth checks log-in credentials (an *admin.Handler).
type Auth interface {
	// CheckToken reports whether token is the admin token.
	CheckToken(token string) bool
	// CheckKey returns the active virtual key secret names.
	CheckKey(ctx context.Context, secret string) (tokenmeter.VirtualKey, error)
}

// Capabilities say which pages the gateway can fill; a page appears only
// when its capability exists.
type Capabilities struct {
	Limits    bool `json:"limits"`
	Counters  bool `json:"counters"`
	Anomalies bool `json:"anomalies"`
	Alerts    bool `json:"alerts"`
	Reconcile bool `json:"reconcile"`
}

// Dashboard serves / and /ui/*. Set its fields before serving.
type Dashboard struct {
	Auth Auth
	// Capabilities lists the optional pages.
	Capabilities Capabilities
	// TimeZone is the IANA name of the zone the pages ask the API to
	// report in (the gateway's own, as the CLI's reports); empty lets the
	// API use its default and the browser's clock name today.
	TimeZone string
	// SessionTTL is how long a session lasts; MaxSessions bounds how many
	// are kept (the oldest go first).
	SessionTTL  time.Duration
	MaxSessions int
	// Secure marks the cookie Secure (serve sets it under TLS).
	Secure bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// KeyError maps an error of Auth.CheckKey to the log-in page's status
	// and message (serve passes admin.ErrorStatus); nil answers 401.
	KeyError func(error) (int, string)
	// Limiter, when set, counts failed log-ins per client address and
	// answers 429 (with retry-after) to an address that failed too often.
	Limiter *authlimit.Limiter

	log   *slog.Logger
	mux   *http.ServeMux
	login *template.Template

	mu       sync.Mutex
	sessions map[string]*session // by SHA-256 of the cookie value
}

type session struct {
	admin   bool
	keyHash string
	keyName string
	csrf    string
	expires time.Time
	created time.Time
}

// New returns a Dashboard that logs in through auth.
func New(auth Auth, log *slog.Logger) *Dashboard {
	d := &Dashboard{Auth: auth, SessionTTL: DefaultSessionTTL, MaxSessions: DefaultMaxSessions, log: log,
		sessions: map[string]*session{}}
	d.login = template.Must(template.ParseFS(assets, "assets/login.html"))
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.app)
	mux.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusSeeOther) })
	mux.HandleFunc("GET /ui/login", d.loginPage)
	mux.HandleFunc("POST /ui/login", d.loginPost)
	mux.HandleFunc("POST /ui/logout", d.logout)
	mux.HandleFunc("GET /ui/session", d.sessionInfo)
	mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", assetFilter(files)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"type": "not_found", "message": "no dashboard route " + r.Method + " " + r.URL.Path}})
	})
	d.mux = mux
	return d
}

// assetFilter serves the static files but no directory listings and not
// the HTML templates.
func assetFilter(files http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") || strings.HasSuffix(r.URL.Path, ".html") || strings.HasSuffix(r.URL.Path, ".sh") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the dashboard with its security headers.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // no-referrer would make form posts send Origin: null
	d.mux.ServeHTTP(w, r)
}

func (d *Dashboard) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// app serves the page app, or sends a browser without a session to log in.
func (d *Dashboard) app(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.session(r); !ok {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, "dashboard not built", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

type loginData struct{ Error string }

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.session(r); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	d.renderLogin(w, http.StatusOK, "")
}

func (d *Dashboard) renderLogin(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	d.login.Execute(w, loginData{Error: msg})
}

// loginPost takes the admin token or a virtual key from the form field
// "token" and answers with a session cookie.
func (d *Dashboard) loginPost(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		// A log-in posted from another site would sign the browser into
		// someone else's session (login CSRF).
		d.renderLogin(w, http.StatusForbidden, err.Error())
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		d.renderLogin(w, http.StatusBadRequest, "the log-in form could not be read")
		return
	}
	cred := strings.TrimSpace(r.PostForm.Get("token"))
	s := &session{created: d.now(), expires: d.now().Add(d.ttl())}
	client := authlimit.Client(r.RemoteAddr)
	if cred != "" && d.Limiter != nil {
		// Checked before the credential, so a refused guess learns nothing.
		if ok, wait := d.Limiter.Allow(client); !ok {
			secs := int(wait.Seconds())
			d.log.Warn("dashboard log-in refused", "reason", "too many failed log-ins from the client's address", "retry_after_s", secs)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			d.renderLogin(w, http.StatusTooManyRequests, fmt.Sprintf("too many failed log-ins from your address: try again in %d seconds", secs))
			return
		}
	}
	failed := func() {
		if d.Limiter != nil {
			d.Limiter.Fail(client)
		}
	}
	switch {
	case cred == "":
		d.renderLogin(w, http.StatusUnauthorized, "enter the admin token or a virtual key")
		return
	case strings.HasPrefix(cred, tokenmeter.KeyPrefix):
		k, err := d.Auth.CheckKey(r.Context(), cred)
		if err != nil {
			status, msg := d.keyError(err)
			if status >= 500 {
				d.log.Error("dashboard log-in failed", "err", err)
			} else {
				failed()
				d.log.Warn("dashboard log-in refused", "reason", msg)
			}
			d.renderLogin(w, status, msg)
			return
		}
		s.keyHash, s.keyName = k.Hash, k.Name
	case d.Auth.CheckToken(cred):
		s.admin = true
	default:
		failed()
		d.log.Warn("dashboard log-in refused", "reason", "wrong admin token")
		d.renderLogin(w, http.StatusUnauthorized, "that is not the admin token (nor a virtual key, which starts with tm-)")
		return
	}
	id := randomString()
	s.csrf = randomString()
	d.put(id, s)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: "/", HttpOnly: true, Secure: d.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(d.ttl().Seconds())})
	who := "admin"
	if !s.admin {
		who = "key:" + s.keyName
	}
	d.log.Info("dashboard log-in", "as", who)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// keyError maps an error of Auth.CheckKey to a status and a message.
func (d *Dashboard) keyError(err error) (int, string) {
	if d.KeyError != nil {
		return d.KeyError(err)
	}
	return http.StatusUnauthorized, "that virtual key is not valid (unknown, revoked, expired or rotated)"
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if _, _, ok, err := d.Session(r); err != nil || !ok {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]string{"type": "forbidden", "message": "log-out needs a session and its CSRF token"}})
		return
	}
	if c, err := r.Cookie(CookieName); err == nil {
		d.mu.Lock()
		delete(d.sessions, hashID(c.Value))
		d.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: d.Secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]bool{"logged_out": true})
}

// sessionInfo serves GET /ui/session: who is logged in, the CSRF token
// for mutating requests, and the pages this gateway can fill.
func (d *Dashboard) sessionInfo(w http.ResponseWriter, r *http.Request) {
	s, ok := d.session(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"type": "unauthorized", "message": "log in at /ui/login"}})
		return
	}
	role, key := "admin", ""
	if !s.admin {
		role, key = "key", s.keyName
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"role": role, "key": key, "csrf_token": s.csrf, "time_zone": d.TimeZone,
		"expires": s.expires.UTC().Format(time.RFC3339), "capabilities": d.Capabilities})
}

// Session implements admin.Sessions.
func (d *Dashboard) Session(r *http.Request) (admin bool, keyHash string, ok bool, err error) {
	s, ok := d.session(r)
	if !ok {
		return false, "", false, nil
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
			return false, "", false, errors.New("this request needs the session's CSRF token in " + CSRFHeader)
		}
		if err := sameOrigin(r); err != nil {
			return false, "", false, err
		}
	}
	return s.admin, s.keyHash, true, nil
}

// sameOrigin refuses a request whose Origin header (browsers send it on
// POST) names another host.
func sameOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host != r.Host {
		return errors.New("cross-origin request refused")
	}
	return nil
}

// session returns the live session of r's cookie.
func (d *Dashboard) session(r *http.Request) (*session, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil, false
	}
	id := hashID(c.Value)
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sessions[id]
	if s == nil {
		return nil, false
	}
	if !d.now().Before(s.expires) {
		delete(d.sessions, id)
		return nil, false
	}
	return s, true
}

// put stores a new session, dropping expired ones and, beyond
// MaxSessions, the oldest.
func (d *Dashboard) put(id string, s *session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	max := d.MaxSessions
	if max <= 0 {
		max = DefaultMaxSessions
	}
	for k, v := range d.sessions {
		if !now.Before(v.expires) {
			delete(d.sessions, k)
		}
	}
	for len(d.sessions) >= max {
		var oldest string
		for k, v := range d.sessions {
			if oldest == "" || v.created.Before(d.sessions[oldest].created) {
				oldest = k
			}
		}
		delete(d.sessions, oldest)
	}
	d.sessions[hashID(id)] = s
}

func (d *Dashboard) ttl() time.Duration {
	if d.SessionTTL > 0 {
		return d.SessionTTL
	}
	return DefaultSessionTTL
}

func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return string(sum[:])
}

func randomString() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
