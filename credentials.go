package tokenmeter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Credential is a provider credential (an API key or a subscription token)
// that the gateway has forwarded, known by a hash of it and a display hint,
// never by the secret. The ledger records a pass-through call with
// Principal == ID; the provider's rate-limit counters are kept per ID (see
// Sample), and reconciliation matches IDs to the provider's own key listing
// through Hint.
type Credential struct {
	// ID is "cred:" and the first 16 hex digits of the SHA-256 of the
	// secret (see CredentialID).
	ID string
	// Provider is the gateway route the credential was forwarded on:
	// "anthropic", "openai" or the name of an OpenAI-compatible upstream.
	Provider string
	// Hint is what the provider's key listing shows of the key (see
	// CredentialHint).
	Hint string
	// FirstSeen and LastSeen bound when the gateway forwarded it.
	FirstSeen, LastSeen time.Time
	// VirtualKeys says the gateway forwarded it in place of virtual keys:
	// it is the route's configured credential, so calls recorded as
	// key:NAME on that route were made with it (reconcile --by key maps
	// them through it).
	VirtualKeys bool
}

// CredentialID returns the identity recorded for a provider credential:
// "cred:" and the first 16 hex digits of the SHA-256 of secret.
func CredentialID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "cred:" + hex.EncodeToString(sum[:8])
}

// CredentialHint returns a display hint for secret in the form provider
// key listings use: the first 12 characters, "..." and the last 4 for a
// secret of 24 characters or more, otherwise the first 4 (at most) and
// "...". A short secret is never shown whole.
func CredentialHint(secret string) string {
	if len(secret) >= 24 {
		return secret[:12] + "..." + secret[len(secret)-4:]
	}
	n := min(4, len(secret)/2)
	return secret[:n] + "..."
}

// CredentialOf returns the Credential for secret forwarded on provider's
// route, with its times left zero.
func CredentialOf(provider, secret string) Credential {
	return Credential{ID: CredentialID(secret), Provider: provider, Hint: CredentialHint(secret)}
}

// CredentialStore keeps the provider credentials the gateway has forwarded,
// by ID. It is part of Store.
type CredentialStore interface {
	// NoteCredential records that c was forwarded at c.LastSeen (c.FirstSeen
	// is used when LastSeen is zero): it inserts c, or moves the stored
	// credential's LastSeen forward (never back) and keeps its FirstSeen;
	// VirtualKeys, once noted, stays set. It returns EINVALID when c.ID
	// does not have CredentialID's form.
	NoteCredential(ctx context.Context, c Credential) error

	// Credentials returns every credential noted, by ID.
	Credentials(ctx context.Context) ([]Credential, error)
}

// ValidCredentialID reports whether id has the form CredentialID returns.
func ValidCredentialID(id string) bool {
	if len(id) != len("cred:")+16 || id[:5] != "cred:" {
		return false
	}
	for _, r := range id[5:] {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}
