package reconcile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/reconcile"
)

func TestDecimalMicros(t *testing.T) {
	tests := []struct {
		in    string
		shift int
		want  tokenmeter.Micros
	}{
		{"123.45", 4, 1_234_500}, // Anthropic: cents
		{"0.0001", 4, 1},         // a hundredth of a cent is one micro-dollar
		{"0.00005", 4, 1},        // half a micro-dollar rounds away from zero
		{"0.000049", 4, 0},       // under half rounds down
		{"12345678.9012", 4, 123456789_012},
		{"-2.5", 4, -25_000}, // a credit
		{"0", 4, 0},
		{"0.06", 6, 60_000}, // OpenAI: dollars, exactly (0.06 is not exact in binary)
		{"0.1", 6, 100_000},
		{"1.5e-05", 6, 15}, // exponent form as JSON encoders write small floats
		{"2E+2", 6, 200_000_000},
		{"0.0000005", 6, 1},
		{"0.30000000000000004", 6, 300_000}, // a float's long tail rounds once, in decimal
		{"9223372036854.775807", 6, 9223372036854775807},
	}
	for _, tt := range tests {
		got, err := reconcile.DecimalMicros(tt.in, tt.shift)
		if err != nil || got != tt.want {
			t.Errorf("DecimalMicros(%q, %d) = %d, %v; want %d", tt.in, tt.shift, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "abc", "1/3", "0x10", "1.2.3", "Inf", "NaN", " 1", "1e999", "99999999999999999999999999", "1.", ".5", "--1"} {
		if got, err := reconcile.DecimalMicros(bad, 6); err == nil {
			t.Errorf("DecimalMicros(%q) = %d, want an error", bad, got)
		}
	}
}

func TestParseTolerance(t *testing.T) {
	tol, err := reconcile.ParseTolerance("2%")
	if err != nil || !tol.Pct || tol.PPM != 20_000 || tol.String() != "2%" {
		t.Errorf("ParseTolerance(2%%) = %+v, %v", tol, err)
	}
	tol, err = reconcile.ParseTolerance("0.5%")
	if err != nil || tol.PPM != 5_000 || tol.String() != "0.5%" {
		t.Errorf("ParseTolerance(0.5%%) = %+v (%s), %v", tol, tol, err)
	}
	tol, err = reconcile.ParseTolerance("100")
	if err != nil || tol.Pct || tol.Tokens != 100 || tol.String() != "100" {
		t.Errorf("ParseTolerance(100) = %+v, %v", tol, err)
	}
	for _, bad := range []string{"-1", "x", "101%", "-2%", "1e3%", "1/2%", "2 %"} {
		if _, err := reconcile.ParseTolerance(bad); tokenmeter.ErrorCode(err) != tokenmeter.EINVALID {
			t.Errorf("ParseTolerance(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func TestHintsMatch(t *testing.T) {
	secret := "sk-ant-api03-R2DxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxigAA"
	ours := tokenmeter.CredentialHint(secret) // sk-ant-api03...igAA
	tests := []struct {
		a, b string
		want bool
	}{
		{ours, "sk-ant-api03-R2D...igAA", true},  // Anthropic partial_key_hint: longer prefix
		{ours, "sk-ant-api04-R2D...igAA", false}, // the prefixes differ where both show it
		{ours, "sk-ant-api03-R2D...igAB", false},
		{"sk-proj-abc1...wxyz", "sk-proj-********************wxyz", true}, // asterisks separate too
		{"sk-proj-abc1...wxyz", "sk-...xyz", true},
		{"sk-proj-abc1...wxyz", "sk-proj-abc1", false}, // no separator: not a hint
		{"sk...wxyz", "sk...wxyz", false},              // prefix too short to mean anything
	}
	for _, tt := range tests {
		if got := reconcile.HintsMatch(tt.a, tt.b); got != tt.want {
			t.Errorf("HintsMatch(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestParseAnthropicUsage(t *testing.T) {
	page := `{"data":[{"starting_at":"2026-11-28T10:00:00Z","ending_at":"2026-11-28T11:00:00Z","results":[
		{"uncached_input_tokens":1500,"cache_creation":{"ephemeral_1h_input_tokens":1000,"ephemeral_5m_input_tokens":500},
		 "cache_read_input_tokens":200,"output_tokens":500,"server_tool_use":{"web_search_requests":10},
		 "api_key_id":"apikey_01","workspace_id":null,"model":"claude-sonnet-5-5","service_tier":"standard","context_window":"0-200k","inference_geo":"us"}]},
		{"starting_at":"2026-11-28T11:00:00Z","ending_at":"2026-11-28T12:00:00Z","results":[]}],
		"has_more":true,"next_page":"page_abc"}`
	p, err := reconcile.ParseAnthropicUsage([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Buckets) != 2 || len(p.Rows) != 1 || !p.HasMore || p.NextPage != "page_abc" {
		t.Fatalf("page = %+v", p)
	}
	r := p.Rows[0]
	want := tokenmeter.Usage{InputTokens: 1500, OutputTokens: 500, CacheWrite5mTokens: 500, CacheWrite1hTokens: 1000, CacheReadTokens: 200, WebSearchRequests: 10}
	if r.Usage != want || r.Model != "claude-sonnet-5-5" || r.APIKeyID != "apikey_01" || r.HasRequests {
		t.Errorf("row = %+v, want usage %+v", r, want)
	}
	if string(r.Extra["inference_geo"]) != `"us"` || string(r.Extra["service_tier"]) != `"standard"` {
		t.Errorf("unknown fields not kept: %v", r.Extra)
	}
}

func TestParseOpenAIUsage(t *testing.T) {
	page := `{"object":"page","data":[{"object":"bucket","start_time":1764324000,"end_time":1764327600,"results":[
		{"object":"organization.usage.completions.result","input_tokens":1000,"input_cached_tokens":300,"output_tokens":50,
		 "num_model_requests":3,"project_id":null,"user_id":null,"api_key_id":"key_1","model":"gpt-6.1-sol","batch":false,"service_tier":null}]}],
		"has_more":false,"next_page":null}`
	p, err := reconcile.ParseOpenAIUsage([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Rows[0]
	// input_tokens includes the cached ones: uncached input is 700.
	if r.Usage.InputTokens != 700 || r.Usage.CacheReadTokens != 300 || r.Usage.OutputTokens != 50 || r.Requests != 3 || !r.HasRequests {
		t.Errorf("row = %+v", r)
	}
	if !r.Start.Equal(time.Unix(1764324000, 0)) || p.HasMore {
		t.Errorf("bucket %v, has_more %v", r.Start, p.HasMore)
	}
}

func TestParseCosts(t *testing.T) {
	a, err := reconcile.ParseAnthropicCost([]byte(`{"data":[{"starting_at":"2026-11-28T00:00:00Z","ending_at":"2026-11-29T00:00:00Z",
		"results":[{"currency":"USD","amount":"123.4567","model":null},{"currency":"USD","amount":"0.0033"}]}],"has_more":false,"next_page":null}`))
	if err != nil || len(a.Rows) != 2 || a.Rows[0].Amount != 1_234_567 || a.Rows[1].Amount != 33 {
		t.Errorf("Anthropic cost = %+v, %v; want 1234567 and 33 micro-dollars", a.Rows, err)
	}
	o, err := reconcile.ParseOpenAICost([]byte(`{"object":"page","data":[{"object":"bucket","start_time":1764288000,"end_time":1764374400,
		"results":[{"object":"organization.costs.result","amount":{"value":0.06,"currency":"usd"},"line_item":null,"project_id":null}]}],"has_more":false,"next_page":null}`))
	if err != nil || len(o.Rows) != 1 || o.Rows[0].Amount != 60_000 {
		t.Errorf("OpenAI cost = %+v, %v; want 60000 micro-dollars", o.Rows, err)
	}
}

// TestParseHostile: every malformed page is one error naming the field.
func TestParseHostile(t *testing.T) {
	bucket := `"starting_at":"2026-11-28T10:00:00Z","ending_at":"2026-11-28T11:00:00Z"`
	good := `"uncached_input_tokens":1,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"cache_read_input_tokens":0,"output_tokens":1`
	tests := []struct {
		name, page, field string
	}{
		{"not JSON", `<html>bad gateway</html>`, "(page)"},
		{"truncated", `{"data":[{` + bucket, "(page)"},
		{"array", `[]`, "(page)"},
		{"no data", `{"has_more":false}`, "data"},
		{"data not array", `{"data":{},"has_more":false}`, "data"},
		{"no has_more", `{"data":[]}`, "has_more"},
		{"has_more string", `{"data":[],"has_more":"yes"}`, "has_more"},
		{"more without cursor", `{"data":[],"has_more":true,"next_page":null}`, "next_page"},
		{"bucket not object", `{"data":[1],"has_more":false}`, "data[0]"},
		{"no starting_at", `{"data":[{"ending_at":"2026-11-28T11:00:00Z","results":[]}],"has_more":false}`, "data[0].starting_at"},
		{"bad time", `{"data":[{"starting_at":"yesterday","ending_at":"2026-11-28T11:00:00Z","results":[]}],"has_more":false}`, "data[0].starting_at"},
		{"ends before start", `{"data":[{"starting_at":"2026-11-28T11:00:00Z","ending_at":"2026-11-28T10:00:00Z","results":[]}],"has_more":false}`, "data[0].ending_at"},
		{"no results", `{"data":[{` + bucket + `}],"has_more":false}`, "data[0].results"},
		{"missing output", `{"data":[{` + bucket + `,"results":[{"uncached_input_tokens":1,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"cache_read_input_tokens":0}]}],"has_more":false}`, "data[0].results[0].output_tokens"},
		{"string tokens", `{"data":[{` + bucket + `,"results":[{` + strings.Replace(good, `"output_tokens":1`, `"output_tokens":"1"`, 1) + `}]}],"has_more":false}`, "data[0].results[0].output_tokens"},
		{"negative tokens", `{"data":[{` + bucket + `,"results":[{` + strings.Replace(good, `"output_tokens":1`, `"output_tokens":-5`, 1) + `}]}],"has_more":false}`, "data[0].results[0].output_tokens"},
		{"fractional tokens", `{"data":[{` + bucket + `,"results":[{` + strings.Replace(good, `"output_tokens":1`, `"output_tokens":1.5`, 1) + `}]}],"has_more":false}`, "data[0].results[0].output_tokens"},
		{"huge tokens", `{"data":[{` + bucket + `,"results":[{` + strings.Replace(good, `"output_tokens":1`, `"output_tokens":1e300`, 1) + `}]}],"has_more":false}`, "data[0].results[0].output_tokens"},
		{"integer beyond 2^53", `{"data":[{` + bucket + `,"results":[{` + strings.Replace(good, `"output_tokens":1`, `"output_tokens":9223372036854775807`, 1) + `}]}],"has_more":false}`, "data[0].results[0].output_tokens"},
		{"no cache_creation", `{"data":[{` + bucket + `,"results":[{"uncached_input_tokens":1,"cache_read_input_tokens":0,"output_tokens":1}]}],"has_more":false}`, "data[0].results[0].cache_creation"},
		{"model number", `{"data":[{` + bucket + `,"results":[{` + good + `,"model":7}]}],"has_more":false}`, "data[0].results[0].model"},
	}
	for _, tt := range tests {
		_, err := reconcile.ParseAnthropicUsage([]byte(tt.page))
		var fe *reconcile.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: ParseAnthropicUsage error = %v, want one naming %s", tt.name, err, tt.field)
		}
	}
	openai := []struct{ name, page, field string }{
		{"missing requests", `{"data":[{"start_time":1,"end_time":2,"results":[{"input_tokens":5,"output_tokens":1}]}],"has_more":false}`, "data[0].results[0].num_model_requests"},
		{"cached exceeds input", `{"data":[{"start_time":1,"end_time":2,"results":[{"input_tokens":5,"input_cached_tokens":9,"output_tokens":1,"num_model_requests":1}]}],"has_more":false}`, "data[0].results[0].input_cached_tokens"},
		{"time as string", `{"data":[{"start_time":"1","end_time":2,"results":[]}],"has_more":false}`, "data[0].start_time"},
	}
	for _, tt := range openai {
		_, err := reconcile.ParseOpenAIUsage([]byte(tt.page))
		var fe *reconcile.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: ParseOpenAIUsage error = %v, want one naming %s", tt.name, err, tt.field)
		}
	}
	costs := []struct{ name, page, field string }{
		{"amount number", `{"data":[{` + bucket + `,"results":[{"currency":"USD","amount":1.5}]}],"has_more":false}`, "data[0].results[0].amount"},
		{"amount junk", `{"data":[{` + bucket + `,"results":[{"currency":"USD","amount":"1,5"}]}],"has_more":false}`, "data[0].results[0].amount"},
		{"currency", `{"data":[{` + bucket + `,"results":[{"currency":"EUR","amount":"1.5"}]}],"has_more":false}`, "data[0].results[0].currency"},
	}
	for _, tt := range costs {
		_, err := reconcile.ParseAnthropicCost([]byte(tt.page))
		var fe *reconcile.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: ParseAnthropicCost error = %v, want one naming %s", tt.name, err, tt.field)
		}
	}
	if _, err := reconcile.ParseOpenAICost([]byte(`{"data":[{"start_time":1,"end_time":2,"results":[{"amount":{"value":"0.06","currency":"usd"}}]}],"has_more":false}`)); err == nil ||
		!strings.Contains(err.Error(), "data[0].results[0].amount.value") {
		t.Errorf("OpenAI cost as a string: %v, want an error naming amount.value", err)
	}
}

// FuzzParsePage feeds arbitrary bytes to every page parser: none may
// panic, and a page that parses has sane figures.
func FuzzParsePage(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "pages", "*.json"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"data":[],"has_more":false}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) (reconcile.UsagePage, error){reconcile.ParseAnthropicUsage, reconcile.ParseOpenAIUsage} {
			p, err := parse(b)
			if err != nil {
				continue
			}
			for _, r := range p.Rows {
				u := r.Usage
				if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.CacheWrite5mTokens < 0 || u.CacheWrite1hTokens < 0 || !r.End.After(r.Start) {
					t.Fatalf("parsed a row with impossible figures: %+v", r)
				}
			}
			if p.HasMore && p.NextPage == "" {
				t.Fatal("has_more without a cursor accepted")
			}
		}
		reconcile.ParseAnthropicCost(b)
		reconcile.ParseOpenAICost(b)
	})
}
