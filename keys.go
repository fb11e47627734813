package tokenmeter

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// KeyPrefix starts every virtual key, so the gateway can tell a virtual key
// from a provider credential passing through.
const KeyPrefix = "tm-"

// keyChars is the alphabet of a virtual key's secret part: base62, so a key
// is one word to a double click and needs no escaping anywhere.
const keyChars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// keyLen is the number of base62 characters after KeyPrefix: 43 of them
// carry 256 bits (62^43 > 2^256), as much as 32 random bytes.
const keyLen = 43

// Key statuses, as keys list shows them.
const (
	KeyActive  = "active"
	KeyRevoked = "revoked"
	KeyExpired = "expired"
)

// VirtualKey is a credential tokenmeter issues in place of a provider key.
// Only the SHA-256 of the secret is stored (Hash); the secret itself is
// shown once, when the key is created or rotated, and never again.
type VirtualKey struct {
	// Name identifies the key; calls made with it are recorded with the
	// principal "key:NAME". Names are unique, also among revoked keys.
	Name string `json:"name"`
	// Prefix is "tm-" and the first 6 characters of the secret: enough to
	// recognise a key in a list, too little to use it.
	Prefix string `json:"prefix"`
	// Hash is the hex SHA-256 of the whole secret (see HashKey).
	Hash string `json:"-"`
	// Project is recorded for every call made with the key ("" = none).
	Project string    `json:"project,omitempty"`
	Created time.Time `json:"created"`
	// Expires is when the key stops working; zero means never.
	Expires time.Time `json:"expires,omitzero"`
	// Revoked is when the key was revoked; zero means it was not.
	Revoked time.Time `json:"revoked,omitzero"`
	// Rotated is when the secret was last replaced; zero means never.
	Rotated time.Time `json:"rotated,omitzero"`
}

// Status returns KeyRevoked, KeyExpired or KeyActive for the key at now.
func (k VirtualKey) Status(now time.Time) string {
	switch {
	case !k.Revoked.IsZero():
		return KeyRevoked
	case !k.Expires.IsZero() && !now.Before(k.Expires):
		return KeyExpired
	}
	return KeyActive
}

// Validate checks the fields a store requires of a new key.
func (k VirtualKey) Validate() error {
	if err := ValidateKeyName(k.Name); err != nil {
		return err
	}
	if !strings.HasPrefix(k.Prefix, KeyPrefix) || len(k.Prefix) > len(KeyPrefix)+6 {
		return Errorf(EINVALID, "key prefix must be %q and at most 6 characters", KeyPrefix)
	}
	if len(k.Hash) != 2*sha256.Size || strings.Trim(k.Hash, "0123456789abcdef") != "" {
		return Errorf(EINVALID, "key hash must be a hex SHA-256")
	}
	if err := ValidateProject(k.Project); err != nil {
		return err
	}
	if k.Created.IsZero() {
		return Errorf(EINVALID, "key creation time required")
	}
	return nil
}

// ValidateKeyName checks a virtual key's name: 1 to 64 letters, digits,
// '.', '_' or '-', starting with a letter or digit, and not with "tm-" (a
// key pasted where its name belongs is refused without being echoed).
func ValidateKeyName(name string) error {
	if strings.HasPrefix(name, KeyPrefix) {
		return Errorf(EINVALID, "%s… looks like a virtual key, not a key name (names must not start with %q)", KeyDisplayPrefix(name), KeyPrefix)
	}
	ok := len(name) > 0 && len(name) <= 64
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '.' || r == '_' || r == '-'):
		default:
			ok = false
		}
	}
	if !ok {
		return Errorf(EINVALID, "key name %q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// ValidateProject checks a project label: at most 200 bytes of printable
// text without leading or trailing space.
func ValidateProject(p string) error {
	if len(p) > 200 || strings.TrimSpace(p) != p || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return Errorf(EINVALID, "project must be at most 200 characters of printable text")
	}
	return nil
}

// NewKeySecret returns a new virtual key: "tm-" and 43 characters of
// base62 (0-9, A-Z, a-z) drawn uniformly from crypto/rand, 256 bits in all.
func NewKeySecret() string {
	var b [keyLen]byte
	buf := make([]byte, 64)
	for n := 0; n < keyLen; {
		rand.Read(buf) // never fails (crypto/rand panics instead)
		for _, c := range buf {
			// 248 = 4*62: rejecting larger bytes keeps every character
			// equally likely.
			if c < 248 && n < keyLen {
				b[n] = keyChars[c%62]
				n++
			}
		}
	}
	return KeyPrefix + string(b[:])
}

// HashKey returns the hex SHA-256 of a virtual key's whole secret: what the
// store keeps and looks keys up by. A fast hash suffices: the secret is 256
// random bits, not a password.
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// KeyDisplayPrefix returns what may be shown of a credential that starts
// with "tm-": the prefix and at most its first 6 characters, keeping only
// base62 ones (a hostile header shows nothing odd in logs or errors).
func KeyDisplayPrefix(secret string) string {
	rest := strings.TrimPrefix(secret, KeyPrefix)
	var b strings.Builder
	b.WriteString(KeyPrefix)
	for i := 0; i < len(rest) && i < 6; i++ {
		if strings.IndexByte(keyChars, rest[i]) < 0 {
			break
		}
		b.WriteByte(rest[i])
	}
	return b.String()
}

// IsKeySecret reports whether s has the form of a virtual key (tm- and 43
// base62 characters).
func IsKeySecret(s string) bool {
	rest, ok := strings.CutPrefix(s, KeyPrefix)
	if !ok || len(rest) != keyLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(keyChars, rest[i]) < 0 {
			return false
		}
	}
	return true
}

// ParseKeyExpiry parses an expiry given as YYYY-MM-DD (00:00 UTC that day:
// the key works until the date begins) or as an RFC 3339 time.
func ParseKeyExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, Errorf(EINVALID, "expiry %q: want YYYY-MM-DD or an RFC 3339 time such as 2026-12-31T18:00:00Z", s)
}

// String returns the key's name and prefix, never more.
func (k VirtualKey) String() string { return fmt.Sprintf("%s (%s…)", k.Name, k.Prefix) }
