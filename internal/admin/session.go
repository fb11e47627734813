package admin

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"

	"github.com/tokenmeter/tokenmeter"
)

// Sessions admits a browser session (the dashboard's cookie) in place of
// a credential header. It is defined here, by its consumer; the
// dashboard's session store implements it.
type Sessions interface {
	// Session returns who the session of r belongs to: the admin
	// (admin true), or the virtual key whose hash is keyHash. ok is false
	// when r carries no session. For a method other than GET and HEAD it
	// also checks the session's CSRF token and returns an error without a
	// secret in it when that is missing or wrong.
	Session(r *http.Request) (admin bool, keyHash string, ok bool, err error)
}

// authenticateSession returns the caller of a request that carries no
// credential header: its session's, if it has a valid one.
func (h *Handler) authenticateSession(r *http.Request) (caller, bool, error) {
	if h.Sessions == nil {
		return caller{}, false, nil
	}
	admin, keyHash, ok, err := h.Sessions.Session(r)
	if err != nil {
		return caller{}, true, &httpError{http.StatusForbidden, "forbidden", err.Error()}
	}
	if !ok {
		return caller{}, false, nil
	}
	if admin {
		return caller{role: roleAdmin}, true, nil
	}
	c, err := h.keyByHash(r.Context(), keyHash)
	return c, true, err
}

// keyByHash checks the virtual key of a session as the gateway checks a
// key: known, neither revoked nor expired (a key revoked or rotated after
// log-in ends its sessions).
func (h *Handler) keyByHash(ctx context.Context, hash string) (caller, error) {
	k, err := h.Store.KeyByHash(ctx, hash)
	if tokenmeter.ErrorCode(err) == tokenmeter.ENOTFOUND {
		return caller{}, unauthorized("the session's virtual key is no longer valid (revoked or rotated); log in again")
	} else if err != nil {
		return caller{}, fmt.Errorf("look up a virtual key: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) != 1 {
		return caller{}, unauthorized("the session's virtual key is no longer valid; log in again")
	}
	if st := k.Status(h.now()); st != tokenmeter.KeyActive {
		return caller{}, unauthorized("the session's virtual key is " + st + "; log in again")
	}
	return caller{role: roleKey, key: k}, nil
}

// CheckKey returns the virtual key a secret names when it is active, for
// the dashboard's log-in; the error never holds the secret.
func (h *Handler) CheckKey(ctx context.Context, secret string) (tokenmeter.VirtualKey, error) {
	c, err := h.authenticateKey(ctx, secret)
	if err != nil {
		return tokenmeter.VirtualKey{}, err
	}
	return c.key, nil
}

// CheckToken reports whether token is the admin token.
func (h *Handler) CheckToken(token string) bool {
	return h.TokenHash != "" && tokenMatches(token, h.TokenHash)
}

// ErrorStatus returns the HTTP status and message of an error returned by
// CheckKey, for the dashboard's log-in page.
func ErrorStatus(err error) (int, string) {
	if he, ok := err.(*httpError); ok {
		return he.status, he.message
	}
	return http.StatusInternalServerError, "internal error"
}
