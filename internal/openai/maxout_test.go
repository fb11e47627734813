package openai_test

import (
	"strings"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/openai"
)

func TestInjectMaxOutput(t *testing.T) {
	tests := []struct {
		name      string
		api       openai.API
		body      string
		want      string
		wantErr   string
		wantField string
	}{
		{name: "Chat", api: openai.Chat, body: `{"model":"gpt-4o","messages":[]}`, want: `{"max_completion_tokens":32000,"model":"gpt-4o","messages":[]}`},
		{name: "Responses", api: openai.Responses, body: `{"model":"gpt-5","input":"hi"}`, want: `{"max_output_tokens":32000,"model":"gpt-5","input":"hi"}`},
		{name: "Pretty", api: openai.Chat, body: "{\n  \"model\": \"gpt-4o\"\n}\n", want: "{\"max_completion_tokens\":32000,\n  \"model\": \"gpt-4o\"\n}\n"},
		{name: "EmptyObject", api: openai.Chat, body: ` { } `, want: ` {"max_completion_tokens":32000 } `},
		{name: "NullReplaced", api: openai.Chat, body: `{"max_completion_tokens": null,"model":"m"}`, want: `{"max_completion_tokens": 32000,"model":"m"}`},
		{name: "DuplicatesAllSet", api: openai.Responses, body: `{"max_output_tokens":null,"max_output_tokens":null}`, want: `{"max_output_tokens":32000,"max_output_tokens":32000}`},
		{name: "NestedLookalikeUntouched", api: openai.Chat, body: `{"metadata":{"max_completion_tokens":null}}`, want: `{"max_completion_tokens":32000,"metadata":{"max_completion_tokens":null}}`},
		{name: "EscapedKey", api: openai.Chat, body: `{"max_completion_toke\u006es":null}`, want: `{"max_completion_toke\u006es":32000}`},
		{name: "OtherEndpoint", api: openai.Other, body: `{}`, wantErr: "no output bound"},
		{name: "InvalidJSON", api: openai.Chat, body: `{"model":"a"`, wantErr: "truncated"},
		{name: "NotObject", api: openai.Chat, body: `[1]`, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := openai.InjectMaxOutput(tt.api, []byte(tt.body), 32000)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("InjectMaxOutput(%s) = %s, %v; want error containing %q", tt.body, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("InjectMaxOutput(%s) = %s, %v; want %s", tt.body, got, err, tt.want)
			}
			r, err := openai.ParseRequest(tt.api, got)
			if err != nil || r.MaxTokens != 32000 {
				t.Errorf("ParseRequest(%s) = %+v, %v; want MaxTokens 32000", got, r, err)
			}
		})
	}
}
