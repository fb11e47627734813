package anthropic

import "github.com/tokenmeter/tokenmeter"

// maxReason bounds the length of error and malformed reasons, which may quote
// provider messages.
const maxReason = 300

// maxName bounds model names and message ids taken from responses.
const maxName = 256

// MaxModelBytes bounds the model name a request may carry (decoded). Real
// names are well under 100 bytes; a longer one is refused rather than
// stored in the ledger and used as a metrics label.
const MaxModelBytes = maxName

// ErrModelTooLong is the error ParseRequest returns, as it is, for a model
// name longer than MaxModelBytes. Its code is EINVALID; the gateway answers
// it with 400. Test for it with errors.Is.
var ErrModelTooLong = tokenmeter.Errorf(tokenmeter.EINVALID, "request body: model is longer than %d bytes", MaxModelBytes)
