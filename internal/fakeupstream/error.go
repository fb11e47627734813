package fakeupstream

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/tokenmeter/tokenmeter"
)

// apiError is an error answered to the client in the provider's shape. The
// error type and message default from the status.
type apiError struct {
	status  int
	typ     string // provider error type; "" means from the status
	message string // "" means from the status
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s", e.status, e.message)
}

// invalidRequest returns a 400 invalid_request_error with msg.
func invalidRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf(format, args...)}
}

// anthropicErrorType returns the error.type Anthropic uses for status.
func anthropicErrorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 504:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// openAIErrorType returns the error type and code OpenAI uses for status.
func openAIErrorType(status int) (typ string, code string) {
	switch {
	case status == 401:
		return "invalid_request_error", "invalid_api_key"
	case status == 429:
		return "requests", "rate_limit_exceeded"
	case status >= 500:
		return "server_error", ""
	}
	return "invalid_request_error", ""
}

// defaultErrorMessage returns the message of an error that has none.
func defaultErrorMessage(p provider, status int) string {
	switch status {
	case 429:
		if p == providerAnthropic {
			return "This request would exceed your account's rate limit. Please try again later."
		}
		return "Rate limit reached for requests. Please try again later."
	case 529:
		return "Overloaded"
	case 500:
		if p == providerAnthropic {
			return "Internal server error"
		}
		return "The server had an error while processing your request. Sorry about that!"
	}
	return "fake-upstream: injected status " + strconv.Itoa(status)
}

type anthropicErrorBody struct {
	Type      string             `json:"type"`
	Error     anthropicErrorInfo `json:"error"`
	RequestID string             `json:"request_id,omitempty"`
}

type anthropicErrorInfo struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type openAIErrorBody struct {
	Error openAIErrorInfo `json:"error"`
}

type openAIErrorInfo struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// writeError answers e in the provider's shape.
func (s *Server) writeError(w http.ResponseWriter, c *call, e *apiError) {
	c.inputTokens, c.outputTokens = 0, 0 // a refused request uses no tokens
	c.usage = tokenmeter.Usage{}
	msg := e.message
	if msg == "" {
		msg = defaultErrorMessage(c.provider, e.status)
	}
	if e.status == http.StatusTooManyRequests {
		w.Header().Set("retry-after", strconv.FormatInt(c.dir.retryAfterOr(DefaultRetryAfter), 10))
	}
	if c.provider == providerAnthropic {
		typ := e.typ
		if typ == "" {
			typ = anthropicErrorType(e.status)
		}
		s.writeJSON(w, c, e.status, anthropicErrorBody{
			Type:      "error",
			Error:     anthropicErrorInfo{Type: typ, Message: msg},
			RequestID: c.requestID(),
		})
		return
	}
	typ, code := openAIErrorType(e.status)
	if e.typ != "" {
		typ = e.typ
	}
	body := openAIErrorBody{Error: openAIErrorInfo{Message: msg, Type: typ}}
	if code != "" {
		body.Error.Code = &code
	}
	s.writeJSON(w, c, e.status, body)
}
