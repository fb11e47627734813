package openai

import (
	"encoding/json"
	"strconv"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
)

// MaxOutputField returns the request field that bounds the output of api:
// max_completion_tokens for chat completions (max_tokens is deprecated
// there and refused by reasoning models), max_output_tokens for the
// Responses API; "" for other endpoints.
func MaxOutputField(api API) string {
	switch api {
	case Chat:
		return "max_completion_tokens"
	case Responses:
		return "max_output_tokens"
	}
	return ""
}

// InjectMaxOutput returns body with api's output bound (MaxOutputField)
// set to n: the value of a member already there (a null one: a request
// with a number there has its own bound and is not given to this) is
// replaced, else the member is added first in the object. The rest of the
// body is kept byte for byte. It is how the gateway makes the worst case it
// reserves under a hard limit a bound for requests that set none.
func InjectMaxOutput(api API, body []byte, n int64) ([]byte, error) {
	field := MaxOutputField(api)
	if field == "" {
		return nil, tokenmeter.Errorf(tokenmeter.EINVALID, "no output bound for this endpoint")
	}
	if n <= 0 {
		return nil, tokenmeter.Errorf(tokenmeter.EINVALID, "output bound %d must be positive", n)
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		return nil, tokenmeter.Errorf(tokenmeter.EINVALID, "request body: %s", jsonscan.DescribeError(body, err))
	}
	value := strconv.FormatInt(n, 10)
	var at [][2]int // the values of every member named field
	err := jsonscan.EachMember(body, func(key []byte, start, end int) {
		if jsonscan.KeyIs(key, field) {
			at = append(at, [2]int{start, end})
		}
	})
	if err != nil {
		return nil, tokenmeter.Errorf(tokenmeter.EINVALID, "request body is not a JSON object")
	}
	if len(at) > 0 {
		// Every copy, so whichever of duplicate keys the API reads holds n.
		out := make([]byte, 0, len(body)+len(at)*len(value))
		prev := 0
		for _, v := range at {
			out = append(append(out, body[prev:v[0]]...), value...)
			prev = v[1]
		}
		return append(out, body[prev:]...), nil
	}
	open := jsonscan.SkipSpace(body, 0) + 1
	text := `"` + field + `":` + value
	if o := jsonscan.SkipSpace(body, open); o < len(body) && body[o] != '}' {
		text += ","
	}
	out := make([]byte, 0, len(body)+len(text))
	out = append(append(append(out, body[:open]...), text...), body[open:]...)
	return out, nil
}
