package openai

// maxReason bounds the length of error and malformed reasons, which may quote
// provider messages.
const maxReason = 300

// maxName bounds model names and message ids taken from responses.
const maxName = 256
