package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tokenmeter/tokenmeter"
)

// TokenFile is the file in the data directory holding the hex SHA-256 of
// a generated admin token. The token itself is never written anywhere.
const TokenFile = "admin-token.sha256"

// TokenPrefix starts every generated admin token. It differs from
// tokenmeter.KeyPrefix, so the gateway never takes an admin token for a
// virtual key.
const TokenPrefix = "tma-"

// MinTokenLen is the shortest admin token accepted from --admin-token or
// TOKENMETER_ADMIN_TOKEN.
const MinTokenLen = 16

// NewToken returns a new admin token: "tma-" and 43 base62 characters
// from crypto/rand (256 bits).
func NewToken() string {
	return TokenPrefix + strings.TrimPrefix(tokenmeter.NewKeySecret(), tokenmeter.KeyPrefix)
}

// HashToken returns the hex SHA-256 of an admin token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// LoadToken returns the hash of the admin token that protects /api/*.
//
// If token is set (--admin-token, TOKENMETER_ADMIN_TOKEN or admin_token),
// its hash is returned and dir is left alone. Otherwise the hash is read
// from dir/TokenFile; if there is none, a token is generated, its hash
// written there (mode 0600) and the token returned as generated, for the
// caller to show once. Errors never carry the token.
func LoadToken(dir, token string) (hash, generated string, err error) {
	if token != "" {
		if len(token) < MinTokenLen || strings.TrimSpace(token) != token {
			return "", "", tokenmeter.Errorf(tokenmeter.EINVALID, "admin token must be at least %d characters without leading or trailing space", MinTokenLen)
		}
		if strings.HasPrefix(token, tokenmeter.KeyPrefix) {
			return "", "", tokenmeter.Errorf(tokenmeter.EINVALID, "admin token must not start with %q (that is a virtual key's prefix)", tokenmeter.KeyPrefix)
		}
		return HashToken(token), "", nil
	}
	path := filepath.Join(dir, TokenFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		hash = strings.TrimSpace(string(b))
		if len(hash) != 2*sha256.Size || strings.Trim(hash, "0123456789abcdef") != "" {
			return "", "", fmt.Errorf("admin token hash file %s is not a hex SHA-256 (delete it to generate a new token)", path)
		}
		return hash, "", nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", "", fmt.Errorf("read admin token hash: %w", err)
	}
	generated = NewToken()
	hash = HashToken(generated)
	// O_EXCL: two processes never both generate one.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", fmt.Errorf("write admin token hash: %w", err)
	}
	if _, err := f.WriteString(hash + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return "", "", fmt.Errorf("write admin token hash: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return "", "", fmt.Errorf("write admin token hash: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", "", fmt.Errorf("write admin token hash: %w", err)
	}
	return hash, generated, nil
}

// tokenMatches reports, in constant time, whether token hashes to hash.
func tokenMatches(token, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(HashToken(token)), []byte(hash)) == 1
}
