package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
)

type nopRecorder struct{}

func (nopRecorder) Submit(tokenmeter.Event) *ledger.Pending { return ledger.Done(nil) }
func (nopRecorder) Healthy() bool                           { return true }

// countingKeys is a key store of one key that counts its lookups.
type countingKeys struct {
	mu      sync.Mutex
	key     tokenmeter.VirtualKey
	lookups atomic.Int32
}

func (c *countingKeys) KeyByHash(_ context.Context, hash string) (tokenmeter.VirtualKey, error) {
	c.lookups.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if hash != c.key.Hash {
		return tokenmeter.VirtualKey{}, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no such key")
	}
	return c.key, nil
}

// TestKeyCache: lookups are reused for KeyCacheTTL, unknown keys are never
// cached, and a revocation shows once the entry is older than the TTL.
func TestKeyCache(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"usage":{"input_tokens":1,"output_tokens":1}}`)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	secret := tokenmeter.NewKeySecret()
	keys := &countingKeys{key: tokenmeter.VirtualKey{Name: "k", Prefix: tokenmeter.KeyDisplayPrefix(secret), Hash: tokenmeter.HashKey(secret), Created: time.Now()}}
	p := New([]Route{{Name: "openai", Prefix: "/openai", Wire: OpenAI, Upstream: u}}, nopRecorder{}, slog.New(slog.DiscardHandler))
	p.Keys, p.Credentials, p.KeyCacheTTL = keys, map[string]string{"openai": "sk-upstream"}, time.Second
	call := func(cred string) int {
		req := httptest.NewRequest(http.MethodPost, "/openai/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[]}`))
		req.Header.Set("Authorization", "Bearer "+cred)
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req)
		return w.Code
	}
	for range 5 {
		if code := call(secret); code != http.StatusOK {
			t.Fatalf("valid key: %d", code)
		}
	}
	if n := keys.lookups.Load(); n != 1 {
		t.Errorf("5 calls within the TTL looked the key up %d times, want 1", n)
	}
	unknown := tokenmeter.NewKeySecret()
	for range 3 {
		if code := call(unknown); code != http.StatusUnauthorized {
			t.Fatalf("unknown key: %d", code)
		}
	}
	if n := keys.lookups.Load(); n != 4 {
		t.Errorf("unknown keys: %d lookups in all, want 4 (never cached)", n)
	}
	keys.mu.Lock()
	keys.key.Revoked = time.Now()
	keys.mu.Unlock()
	time.Sleep(1100 * time.Millisecond)
	if code := call(secret); code != http.StatusUnauthorized {
		t.Errorf("revoked key after the TTL: %d, want 401", code)
	}

	// Without a key store, virtual keys are refused, never forwarded.
	p.Keys = nil
	if code := call(secret); code != http.StatusUnauthorized {
		t.Errorf("no key store: %d, want 401", code)
	}
}
