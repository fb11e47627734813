package openai

import "bytes"

var (
	nullUsageAfter  = []byte(`,"usage":null`)
	nullUsageBefore = []byte(`"usage":null,`)
)

// StripNullUsage removes a `"usage":null` member from a chat completion
// chunk frame. When the gateway adds stream_options.include_usage for a
// client that did not ask for it, the upstream adds that member to every
// chunk; removing it gives the client the chunks it would have received.
// An unescaped `"usage":null` can only be a JSON member (quotes inside
// strings are escaped), so the byte-level removal is safe. frame is
// modified in place when it contains the member.
func StripNullUsage(frame []byte) []byte {
	if i := bytes.Index(frame, nullUsageAfter); i >= 0 {
		return append(frame[:i], frame[i+len(nullUsageAfter):]...)
	}
	if i := bytes.Index(frame, nullUsageBefore); i >= 0 {
		return append(frame[:i], frame[i+len(nullUsageBefore):]...)
	}
	return frame
}
