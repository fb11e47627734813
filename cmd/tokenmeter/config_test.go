package main

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

func TestConfigFiles(t *testing.T) {
	tests := []struct {
		file    string
		loadErr string   // substring of the LoadFile error, "" for none
		invalid []string // substrings of the Validate error, nil for valid
	}{
		{file: "valid.yaml"},
		{file: "empty.yaml"},
		{file: "unknown-key.yaml", loadErr: "line 2: unknown key `lisen` (did you mean `listen`?)"},
		{file: "not-yaml.yaml", loadErr: "not-yaml.yaml"},
		{file: "missing.yaml", loadErr: "no such file"},
		{file: "bad-values.yaml", invalid: []string{
			"durability = sometimes", "sync = maybe", "on_ledger_error = shrug", "max_request_body = -1",
			"log_level = loud", "upstreams.anthropic = ftp://example.com", "upstreams.healthz",
			"upstreams.Bad Name", "upstreams.openai = (redacted): must not carry credentials",
			"default_max_output = -5", "bytes_per_token = 99", "max_in_flight = -3", "request_read_timeout = soon",
			"admin_token/admin_token_file = both", `public_names = "https://tm.example.com"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c := DefaultConfig()
			err := c.LoadFile("testdata/config/" + tt.file)
			if tt.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.loadErr) {
					t.Fatalf("LoadFile(%s) error = %v, want one mentioning %q", tt.file, err, tt.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadFile(%s): %v", tt.file, err)
			}
			err = c.Validate()
			if tt.invalid == nil && err != nil {
				t.Fatalf("Validate(%s): %v", tt.file, err)
			}
			for _, want := range tt.invalid {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Validate(%s) error = %v, want it to mention %q", tt.file, err, want)
				}
			}
			if err != nil && strings.Contains(err.Error(), "sk-secret") {
				t.Errorf("Validate error leaks a credential from an upstream URL: %v", err)
			}
		})
	}
}

// TestConfigTypos shows config mistakes named in the file's terms: the
// line, the key's path and the nearest known key, never a Go type.
func TestConfigTypos(t *testing.T) {
	c := DefaultConfig()
	err := c.LoadFile("testdata/config/typos.yaml")
	if err == nil {
		t.Fatal("typos.yaml loaded without an error")
	}
	for _, want := range []string{
		"line 2: `max_in_flight` wants a whole number, got \"soon\"",
		"line 3: `require_virtual_key` wants true or false, got \"maybe\"",
		"line 5: unknown key `intervall` in `alerts` (did you mean `interval`?)",
		"line 7: unknown key `limt` in `alerts.rules[0]` (did you mean `limit`?)",
		"line 7: `alerts.rules[0].span`: \"forever\" is not a duration",
		"line 8: `alerts.sinks` wants a list",
		"line 9: `upstreams` wants keys and values",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	for _, goish := range []string{"main.", "tokenmeter.", "not found in type", "!!str", "unmarshal"} {
		if strings.Contains(err.Error(), goish) {
			t.Errorf("error speaks Go (%q):\n%v", goish, err)
		}
	}
}

func TestConfigValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.LoadFile("testdata/config/valid.yaml"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range c.Routes() {
		got = append(got, r.Name+" "+r.Prefix+" "+r.Wire+" "+r.Upstream.String())
	}
	want := []string{
		"anthropic /anthropic anthropic https://api.anthropic.com",
		"groq /groq openai https://api.groq.com/openai",
		"openai /openai openai https://api.openai.com",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Routes() (-want +got):\n%s", diff)
	}
	if d, err := c.readTimeout(); err != nil || d != 45*time.Second || c.MaxInFlight != 256 {
		t.Errorf("request_read_timeout %q (%v, %v), max_in_flight %d", c.RequestReadTimeout, d, err, c.MaxInFlight)
	}
	if c.Durability != "strict" || c.Sync != "full" || c.OnLedgerError != "fail-open" || c.MaxRequestBody != 1<<20 ||
		!c.RequireVirtualKey || c.DefaultMaxOutput != 64000 || c.BytesPerToken != 1 || len(c.Import) != 2 || c.Credentials["groq"] != "GROQ_API_KEY" {
		t.Errorf("config = %+v", c)
	}
}

func TestUpstreamFlag(t *testing.T) {
	f := upstreamFlag{}
	for _, bad := range []string{"", "anthropic", "=http://x", "anthropic="} {
		if err := f.Set(bad); err == nil {
			t.Errorf("--upstream %q accepted", bad)
		}
	}
	if err := f.Set("openai=http://127.0.0.1:1/v1=x"); err != nil || f["openai"] != "http://127.0.0.1:1/v1=x" {
		t.Errorf("--upstream with = in the URL: %v, %v", err, f)
	}
}

// FuzzDecodeConfig: the config reader never panics, accepts only what the
// strict YAML decoder accepts, and never speaks Go in its messages.
func FuzzDecodeConfig(f *testing.F) {
	for _, name := range []string{"valid.yaml", "typos.yaml", "bad-values.yaml", "unknown-key.yaml", "not-yaml.yaml"} {
		b, err := os.ReadFile("testdata/config/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, doc string) {
		c := DefaultConfig()
		err := decodeConfig([]byte(doc), &c)
		if err != nil {
			for _, goish := range []string{"main.", "not found in type", "!!"} {
				if strings.Contains(err.Error(), goish) {
					t.Fatalf("message speaks Go (%q): %v", goish, err)
				}
			}
			return
		}
		strict := DefaultConfig()
		dec := yaml.NewDecoder(strings.NewReader(doc))
		dec.KnownFields(true)
		if err := dec.Decode(&strict); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("decodeConfig accepted a document the strict decoder refuses: %v\n%q", err, doc)
		}
	})
}
