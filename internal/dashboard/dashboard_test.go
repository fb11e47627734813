package dashboard_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/dashboard"
)

const adminToken = "tma-dashboard-test-token-0123456789"

// auth admits adminToken and one virtual key.
type auth struct{ key string }

func (a auth) CheckToken(t string) bool { return t == adminToken }

func (a auth) CheckKey(_ context.Context, secret string) (tokenmeter.VirtualKey, error) {
	if secret != a.key {
		return tokenmeter.VirtualKey{}, errors.New("unknown key")
	}
	return tokenmeter.VirtualKey{Name: "alice", Hash: tokenmeter.HashKey(secret)}, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newDashboard(t testing.TB) (*dashboard.Dashboard, *clock, string) {
	t.Helper()
	key := tokenmeter.NewKeySecret()
	d := dashboard.New(auth{key: key}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c := &clock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	d.Now = c.now
	return d, c, key
}

// login posts cred and returns the session cookie's value ("" if none).
func login(t testing.TB, d *dashboard.Dashboard, cred string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("POST", "/ui/login", strings.NewReader(url.Values{"token": {cred}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == dashboard.CookieName {
			return rec.Code, c.Value
		}
	}
	return rec.Code, ""
}

func request(method, cookie, csrf string) *http.Request {
	r := httptest.NewRequest(method, "/api/keys", nil)
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: dashboard.CookieName, Value: cookie})
	}
	if csrf != "" {
		r.Header.Set(dashboard.CSRFHeader, csrf)
	}
	return r
}

func csrfOf(t *testing.T, d *dashboard.Dashboard, cookie string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/ui/session", nil)
	r.AddCookie(&http.Cookie{Name: dashboard.CookieName, Value: cookie})
	d.ServeHTTP(rec, r)
	body := rec.Body.String()
	i := strings.Index(body, `"csrf_token":"`)
	if rec.Code != 200 || i < 0 {
		t.Fatalf("GET /ui/session = %d %s", rec.Code, body)
	}
	rest := body[i+len(`"csrf_token":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func TestSessions(t *testing.T) {
	d, c, key := newDashboard(t)
	if code, cookie := login(t, d, "wrong"); code != http.StatusUnauthorized || cookie != "" {
		t.Errorf("wrong token: %d, cookie %q; want 401 and none", code, cookie)
	}
	code, adminCookie := login(t, d, adminToken)
	if code != http.StatusSeeOther || adminCookie == "" || strings.Contains(adminCookie, adminToken) {
		t.Fatalf("admin log-in: %d, cookie %q", code, adminCookie)
	}
	csrf := csrfOf(t, d, adminCookie)
	for _, tc := range []struct {
		name       string
		r          *http.Request
		admin, ok  bool
		wantErr    bool
		wantKeyHsh string
	}{
		{"NoCookie", request("GET", "", ""), false, false, false, ""},
		{"UnknownCookie", request("GET", "nope", ""), false, false, false, ""},
		{"AdminGET", request("GET", adminCookie, ""), true, true, false, ""},
		{"AdminPOSTNoCSRF", request("POST", adminCookie, ""), false, false, true, ""},
		{"AdminPOSTWrongCSRF", request("POST", adminCookie, csrf+"x"), false, false, true, ""},
		{"AdminPOST", request("POST", adminCookie, csrf), true, true, false, ""},
		{"AdminDELETE", request("DELETE", adminCookie, csrf), true, true, false, ""},
	} {
		admin, _, ok, err := d.Session(tc.r)
		if admin != tc.admin || ok != tc.ok || (err != nil) != tc.wantErr {
			t.Errorf("%s: Session = %v, %v, %v; want %v, %v, error %v", tc.name, admin, ok, err, tc.admin, tc.ok, tc.wantErr)
		}
	}
	cross := request("POST", adminCookie, csrf)
	cross.Header.Set("Origin", "https://evil.example")
	if _, _, _, err := d.Session(cross); err == nil {
		t.Errorf("cross-origin POST with the CSRF token: Session admitted it")
	}

	_, keyCookie := login(t, d, key)
	admin, hash, ok, err := d.Session(request("GET", keyCookie, ""))
	if admin || !ok || err != nil || hash != tokenmeter.HashKey(key) {
		t.Errorf("key session = %v, %q, %v, %v; want the key's hash", admin, hash, ok, err)
	}

	// Sessions end after SessionTTL.
	c.t = c.t.Add(dashboard.DefaultSessionTTL)
	if _, _, ok, _ := d.Session(request("GET", adminCookie, "")); ok {
		t.Errorf("session still valid after its TTL")
	}
}

func TestSessionEviction(t *testing.T) {
	d, c, _ := newDashboard(t)
	d.MaxSessions = 3
	var cookies []string
	for range 5 {
		c.t = c.t.Add(time.Second)
		_, cookie := login(t, d, adminToken)
		cookies = append(cookies, cookie)
	}
	for i, cookie := range cookies {
		_, _, ok, _ := d.Session(request("GET", cookie, ""))
		if want := i >= 2; ok != want {
			t.Errorf("session %d valid = %v; want %v (the oldest go first)", i, ok, want)
		}
	}
}

func TestPagesNeedSession(t *testing.T) {
	d, _, _ := newDashboard(t)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", http.StatusSeeOther},
		{"GET", "/ui/session", http.StatusUnauthorized},
		{"POST", "/ui/logout", http.StatusForbidden},
		{"GET", "/ui/login", http.StatusOK},
		{"GET", "/ui/assets/app.js", http.StatusOK},
		{"GET", "/ui/assets/", http.StatusNotFound},
		{"GET", "/ui/assets/login.html", http.StatusNotFound},
		{"GET", "/ui/assets/vendor.sh", http.StatusNotFound},
		{"GET", "/ui/nothing", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.want {
			t.Errorf("%s %s = %d; want %d", tc.method, tc.path, rec.Code, tc.want)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s %s: no Content-Security-Policy", tc.method, tc.path)
		}
	}
	// A hostile log-in body: too large, or not a form.
	for _, body := range []string{strings.Repeat("token=x&", 2000), "%zz", "token=" + strings.Repeat("a", 5000)} {
		req := httptest.NewRequest("POST", "/ui/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, req)
		if rec.Code < 400 || len(rec.Result().Cookies()) != 0 {
			t.Errorf("log-in with body %.20q… = %d with cookies %v; want an error and no session", body, rec.Code, rec.Result().Cookies())
		}
	}
}

// FuzzSession: no cookie, header or method makes a session out of nothing,
// and nothing panics.
func FuzzSession(f *testing.F) {
	f.Add("GET", "abc", "", "")
	f.Add("POST", "", "token", "https://evil.example")
	f.Add("PUT", strings.Repeat("A", 43), "x", "null")
	d, _, _ := newDashboard(f)
	_, valid := login(f, d, adminToken)
	f.Add("POST", valid, "", "")
	f.Fuzz(func(t *testing.T, method, cookie, csrf, origin string) {
		r, err := http.NewRequest("GET", "http://127.0.0.1/api/keys", nil)
		if err != nil {
			t.Skip()
		}
		r.Method = method
		r.Header.Set("Cookie", dashboard.CookieName+"="+cookie)
		r.Header.Set(dashboard.CSRFHeader, csrf)
		r.Header.Set("Origin", origin)
		admin, _, ok, err := d.Session(r)
		if cookie != valid && (ok || admin) {
			t.Fatalf("cookie %q opened a session", cookie)
		}
		if cookie == valid && method != "GET" && method != "HEAD" && ok {
			t.Fatalf("a %s without the CSRF token was admitted (csrf %q)", method, csrf)
		}
		_ = err
	})
}
