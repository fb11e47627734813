package tokenmeter

import (
	"errors"
	"fmt"
)

// Error codes. Each maps onto one HTTP status at the edge.
const (
	EINVALID      = "invalid"      // 400: the caller sent something malformed
	ENOTFOUND     = "not_found"    // 404
	ETOOLARGE     = "too_large"    // 413
	EUNAVAILABLE  = "unavailable"  // 503: e.g. the ledger cannot record
	EINTERNAL     = "internal"     // 500
	ECONFLICT     = "conflict"     // 409
	EUNAUTHORIZED = "unauthorized" // 401
)

// Error is an error meant for the user of tokenmeter: Message is safe to
// show (it never carries a secret), Code picks the HTTP status.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return fmt.Sprintf("tokenmeter: %s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// EINTERNAL for any other non-nil error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of the first *Error in err's
// chain, or a generic message for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
