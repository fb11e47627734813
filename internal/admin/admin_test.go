package admin_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/admin"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	hash, tok, err := admin.LoadToken(dir, "")
	if err != nil || !strings.HasPrefix(tok, admin.TokenPrefix) || len(tok) != len(admin.TokenPrefix)+43 || hash != admin.HashToken(tok) {
		t.Fatalf("first LoadToken: %q %q %v; want a generated token and its hash", hash, tok, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, admin.TokenFile))
	if err != nil || strings.TrimSpace(string(b)) != hash || strings.Contains(string(b), tok) {
		t.Fatalf("hash file %q (%v); want the hash only", b, err)
	}
	hash2, tok2, err := admin.LoadToken(dir, "")
	if err != nil || hash2 != hash || tok2 != "" {
		t.Errorf("second LoadToken: %q %q %v; want the same hash, no new token", hash2, tok2, err)
	}
	hash3, tok3, err := admin.LoadToken(dir, "configured-token-0123456789")
	if err != nil || hash3 != admin.HashToken("configured-token-0123456789") || tok3 != "" {
		t.Errorf("configured token: %q %q %v", hash3, tok3, err)
	}
	for _, bad := range []string{"short", " padded-token-0123456789", "tm-0123456789abcdefghij"} {
		if _, _, err := admin.LoadToken(dir, bad); err == nil || strings.Contains(err.Error(), strings.TrimSpace(bad)) {
			t.Errorf("LoadToken(%q): %v; want an error that does not echo it", bad, err)
		}
	}
	os.WriteFile(filepath.Join(dir, admin.TokenFile), []byte("not a hash\n"), 0o600)
	if _, _, err := admin.LoadToken(dir, ""); err == nil {
		t.Error("a corrupt hash file was accepted")
	}
}

func TestNoLimitStore(t *testing.T) {
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const tok = "test-admin-token-0123456789"
	h := admin.New(db, admin.HashToken(tok), slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/limits", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(body), "not_implemented") {
		t.Errorf("/api/limits without a limit store: %d %s; want 501 not_implemented", resp.StatusCode, body)
	}
	// An empty TokenHash admits no one.
	h2 := admin.New(db, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	h2.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("empty TokenHash: %d; want 401", rec.Code)
	}
}
