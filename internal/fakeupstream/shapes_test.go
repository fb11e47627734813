package fakeupstream_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	openaisdk "github.com/openai/openai-go/v3"
	openaioption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

func TestChatChoicesSDK(t *testing.T) {
	const n, words, reasoning = 3, 5, 2
	params := openaisdk.ChatCompletionNewParams{
		Model:    "gpt-5.4",
		N:        openaisdk.Int(n),
		Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage(fmt.Sprintf("hi [[fake output=%d reasoning=%d]]", words, reasoning))},
	}
	want := func(body []byte) tokenmeter.Usage {
		return tokenmeter.Usage{InputTokens: fakeupstream.InputTokens(body), OutputTokens: n * (words + reasoning), ReasoningTokens: n * reasoning}
	}
	check := func(t *testing.T, rec *recorder, texts []string, u openaisdk.CompletionUsage, callID string) {
		t.Helper()
		body := rec.lastBody()
		for k := range n {
			if texts[k] != fakeupstream.ChoiceText(k, words) {
				t.Errorf("choice %d text = %q, want %q", k, texts[k], fakeupstream.ChoiceText(k, words))
			}
		}
		if texts[0] == texts[1] {
			t.Errorf("choices 0 and 1 have the same text %q", texts[0])
		}
		if diff := cmp.Diff(want(body), chatUsage(u)); diff != "" {
			t.Errorf("usage mismatch (-want +got):\n%s", diff)
		}
		if exp, err := fakeupstream.ExpectedBilled("/v1/chat/completions", "", body); err != nil || exp != want(body) {
			t.Errorf("ExpectedBilled = %+v, %v; want %+v", exp, err, want(body))
		}
		if b := billOf(t, rec.srv, callID, fakeupstream.BillCall); b.Billed != want(body) {
			t.Errorf("billed %+v, want every choice's output %+v", b.Billed, want(body))
		}
	}
	t.Run("JSON", func(t *testing.T) {
		rec := mustServeRecorded(t)
		client := openAIClient(rec)
		var resp *http.Response
		c, err := client.Chat.Completions.New(context.Background(), params, openaioption.WithResponseInto(&resp))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) != n {
			t.Fatalf("%d choices, want %d", len(c.Choices), n)
		}
		texts := make([]string, n)
		for _, ch := range c.Choices {
			texts[ch.Index] = ch.Message.Content
		}
		check(t, rec, texts, c.Usage, resp.Header.Get("x-request-id"))
	})
	t.Run("Stream", func(t *testing.T) {
		rec := mustServeRecorded(t)
		client := openAIClient(rec)
		var resp *http.Response
		p := params
		p.StreamOptions = openaisdk.ChatCompletionStreamOptionsParam{IncludeUsage: openaisdk.Bool(true)}
		stream := client.Chat.Completions.NewStreaming(context.Background(), p, openaioption.WithResponseInto(&resp))
		var acc openaisdk.ChatCompletionAccumulator
		finished := map[int64]bool{}
		for stream.Next() {
			chunk := stream.Current()
			acc.AddChunk(chunk)
			for _, ch := range chunk.Choices {
				if ch.FinishReason != "" {
					finished[ch.Index] = true
				}
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if len(acc.Choices) != n || len(finished) != n {
			t.Fatalf("%d choices, %d finished; want %d", len(acc.Choices), len(finished), n)
		}
		texts := make([]string, n)
		for _, ch := range acc.Choices {
			texts[ch.Index] = ch.Message.Content
		}
		check(t, rec, texts, acc.Usage, resp.Header.Get("x-request-id"))
	})
	t.Run("Invalid", func(t *testing.T) {
		_, srv := mustServe(t)
		for _, bad := range []string{`,"n":0`, `,"n":129`, `,"n":"3"`, `,"n":100,"messages":[{"role":"user","content":"[[fake output=20000]]"}]`} {
			resp, body := mustDo(t, srv, request{path: "/v1/chat/completions", body: fmt.Sprintf(chatBody, bad)})
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400: %s", bad, resp.StatusCode, body)
			}
		}
	})
}

// pollResponse polls GET /v1/responses/{id} with the SDK until its status
// leaves queued and in_progress, and returns every status seen.
func pollResponse(t *testing.T, client openaisdk.Client, id string) (*responses.Response, []responses.ResponseStatus) {
	t.Helper()
	var seen []responses.ResponseStatus
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := client.Responses.Get(context.Background(), id, responses.ResponseGetParams{})
		if err != nil {
			t.Fatalf("Responses.Get: %v", err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != r.Status {
			seen = append(seen, r.Status)
		}
		if r.Status != responses.ResponseStatusQueued && r.Status != responses.ResponseStatusInProgress {
			return r, seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("response %s still %s after 10s", id, r.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBackgroundSDK(t *testing.T) {
	rec := mustServeRecorded(t)
	client := openAIClient(rec)
	var resp *http.Response
	r, err := client.Responses.New(context.Background(), responses.ResponseNewParams{
		Model:      "gpt-5.4",
		Background: openaisdk.Bool(true),
		Input:      responses.ResponseNewParamsInputUnion{OfString: openaisdk.String("work [[fake output=9000 background_delay=300ms]]")},
	}, openaioption.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	body := rec.lastBody()
	want, err := fakeupstream.ExpectedBilled("/v1/responses", "", body)
	if err != nil || want.OutputTokens != 9000 {
		t.Fatalf("ExpectedBilled = %+v, %v", want, err)
	}
	if r.Status != responses.ResponseStatusQueued || !r.Background || r.Usage.TotalTokens != 0 || len(r.Output) != 0 || r.JSON.Usage.Raw() != "null" {
		t.Errorf("create answered status %q, background %t, usage %s, %d outputs; want queued, background, usage null, no output", r.Status, r.Background, r.JSON.Usage.Raw(), len(r.Output))
	}
	callID := resp.Header.Get("x-request-id")
	create := billOf(t, rec.srv, callID, fakeupstream.BillCall)
	if create.Billed != (tokenmeter.Usage{}) || !create.Background || create.ResponseID != r.ID {
		t.Errorf("create bill = %+v, want nothing billed, background, response %s", create, r.ID)
	}

	final, seen := pollResponse(t, client, r.ID)
	if final.Status != responses.ResponseStatusCompleted || final.OutputText() != fakeupstream.OutputText(9000) {
		t.Errorf("final status %q, %d chars of text", final.Status, len(final.OutputText()))
	}
	if diff := cmp.Diff(want, responseUsage(final.Usage)); diff != "" {
		t.Errorf("completed usage mismatch (-want +got):\n%s", diff)
	}
	if seen[0] != responses.ResponseStatusQueued || !cmp.Equal(seen[len(seen)-1], responses.ResponseStatusCompleted) {
		t.Errorf("statuses seen %v, want queued ... completed", seen)
	}
	work := billOf(t, rec.srv, callID, fakeupstream.BillBackground)
	if work.Billed != want || work.State != "completed" || work.ResponseID != r.ID || work.Stopped || work.Seq <= create.Seq {
		t.Errorf("background bill = %+v, want %+v completed after the create", work, want)
	}
	if rep := billed(t, rec.srv, 0); rep.PendingBackground != 0 || rep.Totals.Billed != want {
		t.Errorf("pending %d, totals %+v; want 0 and %+v", rep.PendingBackground, rep.Totals.Billed, want)
	}
}

// TestBackgroundBilledUnpolled: background work is billed when it
// completes, though nobody asks for the response.
func TestBackgroundBilledUnpolled(t *testing.T) {
	fs, srv := mustServe(t)
	const calls = 5
	body := fmt.Sprintf(responsesBody, `,"background":true`)
	for range calls {
		resp, out := mustDo(t, srv, request{path: "/v1/responses", body: body, header: map[string]string{fakeupstream.DirectiveHeader: "output=9000 background_delay=20ms"}})
		if resp.StatusCode != 200 || !strings.Contains(string(out), `"status":"queued"`) || !strings.Contains(string(out), `"usage":null`) {
			t.Fatalf("create: %d %s", resp.StatusCode, out)
		}
	}
	if rep := fs.Billing(0); rep.PendingBackground+int(rep.Totals.Billed.OutputTokens/9000) != calls {
		t.Errorf("right after the creates: %d pending, %d output tokens billed", rep.PendingBackground, rep.Totals.Billed.OutputTokens)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fs.Billing(0).PendingBackground > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	rep := billed(t, srv, 0)
	if rep.PendingBackground != 0 || rep.Totals.Billed.OutputTokens != calls*9000 || rep.Totals.Entries != 2*calls {
		t.Errorf("pending %d, %d output tokens in %d entries; want 0, %d in %d", rep.PendingBackground, rep.Totals.Billed.OutputTokens, rep.Totals.Entries, calls*9000, 2*calls)
	}
	var prev time.Time
	for _, b := range rep.Bills {
		if b.Kind == fakeupstream.BillBackground {
			if !b.Time.After(t0) || b.Time.Before(prev) {
				t.Errorf("background bill at %v (create at %v, previous %v): want after the create, in order", b.Time, t0, prev)
			}
			prev = b.Time
		}
	}
}

func TestBackgroundStream(t *testing.T) {
	rec := mustServeRecorded(t)
	client := openAIClient(rec)
	params := responses.ResponseNewParams{
		Model:      "gpt-5.4",
		Background: openaisdk.Bool(true),
		Input:      responses.ResponseNewParamsInputUnion{OfString: openaisdk.String("work [[fake output=20 delay=2ms background_delay=40ms]]")},
	}
	var resp *http.Response
	stream := client.Responses.NewStreaming(context.Background(), params, openaioption.WithResponseInto(&resp))
	var types []string
	var id string
	var last int64
	for len(types) < 4 && stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		last = ev.SequenceNumber
		if ev.Type == "response.created" {
			id = ev.Response.ID
			if ev.Response.Status != responses.ResponseStatusQueued || !ev.Response.Background {
				t.Errorf("response.created: status %q, background %t; want queued, true", ev.Response.Status, ev.Response.Background)
			}
		}
	}
	stream.Close() // the client leaves; the work goes on
	if want := []string{"response.created", "response.queued", "response.in_progress", "response.output_item.added"}; !cmp.Equal(types, want) {
		t.Errorf("first events %v, want %v", types, want)
	}
	body := rec.lastBody()
	want, err := fakeupstream.ExpectedBilled("/v1/responses", "", body)
	if err != nil {
		t.Fatal(err)
	}

	// Resume after the last event read, with the SDK's GetStreaming.
	resumed := client.Responses.GetStreaming(context.Background(), id, responses.ResponseGetParams{StartingAfter: openaisdk.Int(last)})
	var text strings.Builder
	var final *responses.Response
	seq := last + 1
	for resumed.Next() {
		ev := resumed.Current()
		if ev.SequenceNumber != seq {
			t.Errorf("event %s sequence %d, want %d", ev.Type, ev.SequenceNumber, seq)
		}
		seq++
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed":
			r := ev.Response
			final = &r
		}
	}
	if err := resumed.Err(); err != nil {
		t.Fatal(err)
	}
	if final == nil || text.String() != fakeupstream.OutputText(20) {
		t.Fatalf("resumed stream: text %q, terminal %v", text.String(), final != nil)
	}
	if diff := cmp.Diff(want, responseUsage(final.Usage)); diff != "" {
		t.Errorf("usage mismatch (-want +got):\n%s", diff)
	}
	if b := billOf(t, rec.srv, resp.Header.Get("x-request-id"), fakeupstream.BillBackground); b.Billed != want || !b.Stream {
		t.Errorf("background bill %+v, want %+v of a streamed create", b, want)
	}

	// A finished response streams its terminal event at once with ?stream=true.
	_, all := mustDo(t, rec.srv, request{method: http.MethodGet, path: "/v1/responses/" + id + "?stream=true&starting_after=" + fmt.Sprint(seq-2)})
	if ev := parseSSE(t, all); len(ev) != 1 || ev[0].name != "response.completed" {
		t.Errorf("replay after %d: %v", seq-2, names(ev))
	}
}

func TestBackgroundCancel(t *testing.T) {
	rec := mustServeRecorded(t)
	client := openAIClient(rec)
	create := func(prompt string) (*responses.Response, string, []byte) {
		var resp *http.Response
		r, err := client.Responses.New(context.Background(), responses.ResponseNewParams{
			Model: "gpt-5.4", Background: openaisdk.Bool(true),
			Input: responses.ResponseNewParamsInputUnion{OfString: openaisdk.String(prompt)},
		}, openaioption.WithResponseInto(&resp))
		if err != nil {
			t.Fatal(err)
		}
		return r, resp.Header.Get("x-request-id"), rec.lastBody()
	}

	t.Run("Queued", func(t *testing.T) {
		r, callID, _ := create("[[fake output=100 background_delay=1m]]")
		c, err := client.Responses.Cancel(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != responses.ResponseStatusCancelled || c.JSON.Usage.Raw() != "null" {
			t.Errorf("cancel: status %q usage %s, want cancelled, null", c.Status, c.JSON.Usage.Raw())
		}
		if b := billOf(t, rec.srv, callID, fakeupstream.BillBackground); b.Billed != (tokenmeter.Usage{}) || b.State != "cancelled" {
			t.Errorf("bill %+v, want nothing billed while queued, cancelled", b)
		}
		if g, err := client.Responses.Get(context.Background(), r.ID, responses.ResponseGetParams{}); err != nil || g.Status != responses.ResponseStatusCancelled {
			t.Errorf("get after cancel: %v, %v", g.Status, err)
		}
	})
	t.Run("InProgress", func(t *testing.T) {
		r, callID, body := create("[[fake output=1000 reasoning=5 delay=5ms background_delay=20ms]]")
		deadline := time.Now().Add(10 * time.Second)
		for {
			g, err := client.Responses.Get(context.Background(), r.ID, responses.ResponseGetParams{})
			if err != nil {
				t.Fatal(err)
			}
			if g.Status == responses.ResponseStatusInProgress {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still %s", g.Status)
			}
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		if _, err := client.Responses.Cancel(context.Background(), r.ID); err != nil {
			t.Fatal(err)
		}
		b := billOf(t, rec.srv, callID, fakeupstream.BillBackground)
		if b.State != "cancelled" || !b.Stopped || b.Billed.InputTokens != fakeupstream.InputTokens(body) ||
			b.Billed.OutputTokens <= 5 || b.Billed.OutputTokens >= 1005 || b.Billed.ReasoningTokens != 5 {
			t.Errorf("bill %+v, want cancelled with input in full, reasoning and some of the 1000 words", b)
		}
		// Cancelling again changes nothing.
		if c, err := client.Responses.Cancel(context.Background(), r.ID); err != nil || c.Status != responses.ResponseStatusCancelled {
			t.Errorf("second cancel: %v, %v", c, err)
		}
		if rep := billed(t, rec.srv, 0); rep.Totals.Billed != b.Billed {
			t.Errorf("totals %+v, want the one cancelled bill %+v", rep.Totals.Billed, b.Billed)
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		_, err := client.Responses.Get(context.Background(), "resp_nope", responses.ResponseGetParams{})
		var apiErr *openaisdk.Error
		if !errorsAs(err, &apiErr) || apiErr.StatusCode != 404 {
			t.Errorf("get unknown: %v, want 404", err)
		}
	})
}

func TestInstructionsEcho(t *testing.T) {
	instructions := strings.Repeat("Be thorough. ", 100_000) // 1.3 MB
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%t", stream), func(t *testing.T) {
			_, srv := mustServe(t)
			reqBody, _ := json.Marshal(map[string]any{"model": "gpt-5.4", "input": "hi", "instructions": instructions, "stream": stream})
			resp, body := mustDo(t, srv, request{path: "/v1/responses", body: string(reqBody)})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			terminal := string(body)
			if stream {
				events := parseSSEBig(t, body)
				created := events[0]
				terminal = events[len(events)-1].data
				if got, _ := field(t, created.data, "response.instructions").(string); got != instructions {
					t.Errorf("response.created echoes %d bytes of instructions, want %d", len(got), len(instructions))
				}
				if len(terminal) <= 1<<20 {
					t.Errorf("terminal frame is %d bytes, want over 1 MiB", len(terminal))
				}
				terminal = `{"r":` + terminal + `}`
				if got, _ := field(t, terminal, "r.response.instructions").(string); got != instructions {
					t.Errorf("response.completed echoes %d bytes of instructions", len(got))
				}
				if n := num(t, terminal, "r.response.usage.input_tokens"); n != fakeupstream.InputTokens(reqBody) {
					t.Errorf("terminal usage input %d, want %d", n, fakeupstream.InputTokens(reqBody))
				}
				return
			}
			if got, _ := field(t, terminal, "instructions").(string); got != instructions {
				t.Errorf("reply echoes %d bytes of instructions", len(got))
			}
		})
	}
	_, srv := mustServe(t)
	_, body := mustDo(t, srv, request{path: "/v1/responses", body: fmt.Sprintf(responsesBody, "")})
	if !strings.Contains(string(body), `"instructions":null`) {
		t.Errorf("reply without instructions: %s", body)
	}
}

// parseSSEBig splits an event stream whose lines may be longer than
// parseSSE allows.
func parseSSEBig(t *testing.T, body []byte) []event {
	t.Helper()
	var events []event
	for _, block := range strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n") {
		var e event
		for _, line := range strings.Split(block, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				e.name = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				e.data = v
			}
		}
		events = append(events, e)
	}
	return events
}

func TestEmbeddingsSDK(t *testing.T) {
	rec := mustServeRecorded(t)
	client := openAIClient(rec)
	var resp *http.Response
	e, err := client.Embeddings.New(context.Background(), openaisdk.EmbeddingNewParams{
		Model:      "text-embedding-3-small",
		Input:      openaisdk.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"one", "two [[fake input=777]]"}},
		Dimensions: openaisdk.Int(8),
	}, openaioption.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Data) != 2 || len(e.Data[1].Embedding) != 8 || e.Data[1].Index != 1 || e.Model != "text-embedding-3-small" {
		t.Errorf("embeddings: %d vectors, model %q", len(e.Data), e.Model)
	}
	if e.Usage.PromptTokens != 777 || e.Usage.TotalTokens != 777 {
		t.Errorf("usage %+v, want 777 prompt and total tokens", e.Usage)
	}
	b := billOf(t, rec.srv, resp.Header.Get("x-request-id"), fakeupstream.BillCall)
	if b.Billed != (tokenmeter.Usage{InputTokens: 777}) || b.Model != "text-embedding-3-small" {
		t.Errorf("bill %+v, want 777 input tokens", b)
	}

	// base64 vectors are little-endian float32s of the same values.
	_, srv := mustServe(t)
	_, floats := mustDo(t, srv, request{path: "/v1/embeddings", body: `{"model":"m","input":[[1,2,3]],"dimensions":4}`})
	_, b64 := mustDo(t, srv, request{path: "/v1/embeddings", body: `{"model":"m","input":[[1,2,3]],"dimensions":4,"encoding_format":"base64"}`})
	var f struct {
		Data []struct{ Embedding []float32 } `json:"data"`
	}
	var g struct {
		Data []struct{ Embedding string } `json:"data"`
	}
	if json.Unmarshal(floats, &f) != nil || json.Unmarshal(b64, &g) != nil || len(f.Data) != 1 || len(g.Data) != 1 {
		t.Fatalf("replies: %s / %s", floats, b64)
	}
	raw, err := base64.StdEncoding.DecodeString(g.Data[0].Embedding)
	if err != nil || len(raw) != 16 {
		t.Fatalf("base64 embedding: %v, %d bytes", err, len(raw))
	}
	for i, v := range f.Data[0].Embedding {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != v {
			t.Errorf("component %d: base64 %v, float %v", i, got, v)
		}
	}
	for _, bad := range []string{`{"model":"m"}`, `{"model":"m","input":""}`, `{"model":"m","input":[]}`, `{"input":"x"}`, `{"model":"m","input":{}}`, `{"model":"m","input":"x","dimensions":0}`} {
		if resp, body := mustDo(t, srv, request{path: "/v1/embeddings", body: bad}); resp.StatusCode != 400 {
			t.Errorf("%s: status %d: %s", bad, resp.StatusCode, body)
		}
	}
}

func TestCompletionsSDK(t *testing.T) {
	rec := mustServeRecorded(t)
	client := openAIClient(rec)
	var resp *http.Response
	c, err := client.Completions.New(context.Background(), openaisdk.CompletionNewParams{
		Model:     openaisdk.CompletionNewParamsModel("gpt-3.5-turbo-instruct"),
		Prompt:    openaisdk.CompletionNewParamsPromptUnion{OfString: openaisdk.String("say [[fake output=7]]")},
		N:         openaisdk.Int(2),
		BestOf:    openaisdk.Int(3),
		MaxTokens: openaisdk.Int(100),
	}, openaioption.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	body := rec.lastBody()
	if len(c.Choices) != 2 || c.Choices[1].Text != fakeupstream.ChoiceText(1, 7) || c.Choices[0].FinishReason != "stop" {
		t.Errorf("choices %+v", c.Choices)
	}
	want := tokenmeter.Usage{InputTokens: fakeupstream.InputTokens(body), OutputTokens: 3 * 7} // best_of candidates are billed
	if c.Usage.CompletionTokens != 21 || c.Usage.PromptTokens != want.InputTokens {
		t.Errorf("usage %+v, want %+v", c.Usage, want)
	}
	if b := billOf(t, rec.srv, resp.Header.Get("x-request-id"), fakeupstream.BillCall); b.Billed != want {
		t.Errorf("bill %+v, want %+v", b.Billed, want)
	}

	// Without max_tokens a legacy completion stops at 16 tokens.
	stream := client.Completions.NewStreaming(context.Background(), openaisdk.CompletionNewParams{
		Model:         openaisdk.CompletionNewParamsModel("gpt-3.5-turbo-instruct"),
		Prompt:        openaisdk.CompletionNewParamsPromptUnion{OfString: openaisdk.String("say [[fake output=40]]")},
		StreamOptions: openaisdk.ChatCompletionStreamOptionsParam{IncludeUsage: openaisdk.Bool(true)},
	})
	var text strings.Builder
	var usage openaisdk.CompletionUsage
	finish := ""
	for stream.Next() {
		ch := stream.Current()
		for _, c := range ch.Choices {
			text.WriteString(c.Text)
			if c.FinishReason != "" {
				finish = string(c.FinishReason)
			}
		}
		if ch.Usage.TotalTokens > 0 {
			usage = ch.Usage
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != fakeupstream.OutputText(16) || finish != "length" || usage.CompletionTokens != 16 {
		t.Errorf("stream: text %q, finish %q, usage %+v; want 16 words, length", text.String(), finish, usage)
	}

	_, srv := mustServe(t)
	for _, bad := range []string{`{"model":"m","prompt":"x","n":3,"best_of":2}`, `{"model":"m","prompt":"x","best_of":2,"stream":true}`, `{"model":"m","prompt":"x","best_of":21}`} {
		if resp, body := mustDo(t, srv, request{path: "/v1/completions", body: bad}); resp.StatusCode != 400 {
			t.Errorf("%s: status %d: %s", bad, resp.StatusCode, body)
		}
	}
}

// TestStandIns: images, audio and batches answer without usage, and bill
// the documented amount.
func TestStandIns(t *testing.T) {
	rec := mustServeRecorded(t)
	client := openAIClient(rec)
	type result struct {
		path   string
		body   []byte
		callID string
		raw    string
	}
	var results []result
	capture := func(path string, resp *http.Response) {
		body := rec.lastBody()
		raw, _ := io.ReadAll(resp.Body)
		results = append(results, result{path, body, resp.Header.Get("x-request-id"), string(raw)})
	}
	var resp *http.Response

	img, err := client.Images.Generate(context.Background(), openaisdk.ImageGenerateParams{
		Prompt: "a cat [[fake output=1000]]", Model: openaisdk.ImageModel("gpt-image-1"), N: openaisdk.Int(2),
	}, openaioption.WithResponseInto(&resp))
	if err != nil || len(img.Data) != 2 || img.Data[0].B64JSON == "" {
		t.Fatalf("images: %v, %+v", err, img)
	}
	results = append(results, result{"/v1/images/generations", rec.lastBody(), resp.Header.Get("x-request-id"), img.RawJSON()})

	speech, err := client.Audio.Speech.New(context.Background(), openaisdk.AudioSpeechNewParams{
		Model: openaisdk.SpeechModel("tts-1"), Input: "hello there", Voice: openaisdk.AudioSpeechNewParamsVoiceUnion{OfString: openaisdk.String("alloy")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if speech.Header.Get("Content-Type") != "audio/mpeg" {
		t.Errorf("speech content type %q", speech.Header.Get("Content-Type"))
	}
	capture("/v1/audio/speech", speech)
	speech.Body.Close()

	tr, err := client.Audio.Transcriptions.New(context.Background(), openaisdk.AudioTranscriptionNewParams{
		Model: openaisdk.AudioModel("whisper-1"),
		File:  openaisdk.File(bytes.NewReader(bytes.Repeat([]byte{1, 2, 3, 4}, 4000)), "a.mp3", "audio/mpeg"),
	}, openaioption.WithResponseInto(&resp))
	if err != nil || tr.Text != fakeupstream.OutputText(fakeupstream.DefaultOutputTokens) {
		t.Fatalf("transcription: %v, %+v", err, tr)
	}
	results = append(results, result{"/v1/audio/transcriptions", rec.lastBody(), resp.Header.Get("x-request-id"), tr.RawJSON()})

	batch, err := client.Batches.New(context.Background(), openaisdk.BatchNewParams{
		InputFileID: "file-abc", Endpoint: openaisdk.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openaisdk.BatchNewParamsCompletionWindow24h,
	}, openaioption.WithResponseInto(&resp))
	if err != nil || batch.Status != "validating" || !strings.HasPrefix(batch.ID, "batch_") {
		t.Fatalf("batch: %v, %+v", err, batch)
	}
	results = append(results, result{"/v1/batches", rec.lastBody(), resp.Header.Get("x-request-id"), batch.RawJSON()})

	for _, r := range results {
		if strings.Contains(r.raw, "usage") || strings.Contains(r.raw, "tokens") {
			t.Errorf("%s answers a usage: %s", r.path, r.raw)
		}
		want, err := fakeupstream.ExpectedBilled(r.path, "", r.body)
		if err != nil {
			t.Errorf("ExpectedBilled(%s): %v", r.path, err)
			continue
		}
		if want.InputTokens != fakeupstream.InputTokens(r.body) || want.OutputTokens <= 0 {
			t.Errorf("ExpectedBilled(%s) = %+v", r.path, want)
		}
		if _, err := fakeupstream.ExpectedUsage(r.path, "", r.body); err == nil {
			t.Errorf("ExpectedUsage(%s) has usage for a route that reports none", r.path)
		}
		if r.callID == "" {
			// The speech reply was captured from the raw response.
			continue
		}
		if b := billOf(t, rec.srv, r.callID, fakeupstream.BillCall); b.Billed != want {
			t.Errorf("%s billed %+v, want %+v", r.path, b.Billed, want)
		}
	}
	if got := results[0]; got.path == "/v1/images/generations" {
		if want, _ := fakeupstream.ExpectedBilled(got.path, "", got.body); want.OutputTokens != 2000 {
			t.Errorf("images billed %d output tokens, want n × 1000", want.OutputTokens)
		}
	}
	if rep := billed(t, rec.srv, 0); rep.Totals.Entries != 4 {
		t.Errorf("%d entries, want 4", rep.Totals.Entries)
	}
}

func errorsAs(err error, target **openaisdk.Error) bool {
	e, ok := err.(*openaisdk.Error)
	if ok {
		*target = e
	}
	return ok
}

// TestBackgroundBounds: at most MaxBackgroundResponses unfinished
// responses are kept; more is a 429 until one finishes.
func TestBackgroundBounds(t *testing.T) {
	fs, srv := mustServe(t)
	body := fmt.Sprintf(responsesBody, `,"background":true`)
	header := map[string]string{fakeupstream.DirectiveHeader: "background_delay=10m"}
	var first string
	for i := range fakeupstream.MaxBackgroundResponses {
		resp, out := mustDo(t, srv, request{path: "/v1/responses", body: body, header: header})
		if resp.StatusCode != 200 {
			t.Fatalf("create %d: status %d: %s", i, resp.StatusCode, out)
		}
		if i == 0 {
			first, _ = field(t, string(out), "id").(string)
		}
	}
	resp, out := mustDo(t, srv, request{path: "/v1/responses", body: body, header: header})
	if resp.StatusCode != http.StatusTooManyRequests || errorShape(t, resp, out) != "openai requests" {
		t.Fatalf("create past the bound: status %d: %s", resp.StatusCode, out)
	}
	if rep := fs.Billing(0); rep.PendingBackground != fakeupstream.MaxBackgroundResponses {
		t.Errorf("%d pending, want %d", rep.PendingBackground, fakeupstream.MaxBackgroundResponses)
	}
	// A cancelled response is finished: it makes room, and is forgotten.
	if resp, out := mustDo(t, srv, request{path: "/v1/responses/" + first + "/cancel"}); resp.StatusCode != 200 {
		t.Fatalf("cancel: %d %s", resp.StatusCode, out)
	}
	if resp, out := mustDo(t, srv, request{path: "/v1/responses", body: body, header: header}); resp.StatusCode != 200 {
		t.Errorf("create after a cancel: status %d: %s", resp.StatusCode, out)
	}
	if resp, _ := mustDo(t, srv, request{method: http.MethodGet, path: "/v1/responses/" + first}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("forgotten response: status %d, want 404", resp.StatusCode)
	}
}
